"""A batch sampler that is deterministic from (seed, epoch), resumable mid-epoch and shards over ranks.

``data.batch_size`` is the GLOBAL batch: every step takes the next ``batch_size`` indices of the
epoch's permutation and rank ``r`` of ``W`` gets the ``r``-th of ``W`` equal slices of it, so ranks see
disjoint samples and the union over ranks is exactly what one device would have seen. The last
incomplete global batch of an epoch is dropped, so all ranks always take the same number of steps.

The permutation of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e])``: it does not
touch any global RNG and does not depend on how many epochs ran before. The sampler's state is
what the *loop* consumed (``epoch``, ``batch`` position), not how far DataLoader workers prefetched:
the loop calls :meth:`advance` after each step, and a new iterator starts from that point.
"""
from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import ConfigError


class ResumableBatchSampler:
    """Infinite (``shuffle``) or single-pass batch sampler over ``range(num_samples)``."""

    def __init__(self, num_samples: int, batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, shuffle: bool = True, drop_last: bool = True, infinite: bool = True,
                 max_batches: int | None = None, what: str = "data"):
        if batch_size % world_size:
            raise ConfigError(f"data.batch_size: the global batch ({batch_size}) must be divisible by the "
                              f"number of processes ({world_size})")
        if drop_last and num_samples < batch_size:
            raise ConfigError(f"data.batch_size: {what} has {num_samples} samples, fewer than one global "
                              f"batch of {batch_size}")
        self.num_samples = num_samples
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.shuffle = shuffle
        self.drop_last = drop_last
        self.infinite = infinite
        self.max_batches = max_batches
        self.epoch = 0
        self.batch = 0

    @property
    def batches_per_epoch(self) -> int:
        full, rest = divmod(self.num_samples, self.batch_size)
        return full if self.drop_last or not rest else full + 1

    def order(self, epoch: int) -> np.ndarray:
        if not self.shuffle:
            return np.arange(self.num_samples)
        return np.random.default_rng([self.seed, epoch]).permutation(self.num_samples)

    def local_indices(self, epoch: int, batch: int) -> list[int]:
        """The indices this rank takes for global batch ``batch`` of ``epoch``."""
        chunk = self.order(epoch)[batch * self.batch_size:(batch + 1) * self.batch_size]
        per_rank = -(-len(chunk) // self.world_size)
        return chunk[self.rank * per_rank:(self.rank + 1) * per_rank].tolist()

    def __iter__(self) -> Iterator[list[int]]:
        epoch, batch, done = self.epoch, self.batch, 0
        order = self.order(epoch)
        while self.max_batches is None or done < self.max_batches:
            if batch >= self.batches_per_epoch:
                if not self.infinite:
                    return
                epoch, batch = epoch + 1, 0
                order = self.order(epoch)
            chunk = order[batch * self.batch_size:(batch + 1) * self.batch_size]
            per_rank = -(-len(chunk) // self.world_size)
            mine = chunk[self.rank * per_rank:(self.rank + 1) * per_rank].tolist()
            if mine:  # a short last batch (drop_last=False) may leave a rank nothing
                yield mine
            batch += 1
            done += 1

    def __len__(self) -> int:
        n = self.batches_per_epoch
        return n if self.max_batches is None else min(n, self.max_batches)

    def advance(self) -> None:
        """Record that the loop consumed one batch."""
        self.batch += 1
        if self.batch >= self.batches_per_epoch:
            self.epoch, self.batch = self.epoch + 1, 0

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "batch": self.batch, "seed": self.seed, "num_samples": self.num_samples,
                "batch_size": self.batch_size}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.epoch = int(state["epoch"])
        self.batch = int(state["batch"])
