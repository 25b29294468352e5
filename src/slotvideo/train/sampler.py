"""A batch sampler that is deterministic from (seed, epoch), resumable mid-epoch and shards over ranks.

``data.batch_size`` is the GLOBAL batch: every step takes the next ``batch_size`` indices of the
epoch's permutation and rank ``r`` of ``W`` gets the ``r``-th of ``W`` equal slices of it, so ranks see
disjoint samples and the union over ranks is exactly what one device would have seen. The last
incomplete global batch of an epoch is dropped, so all ranks always take the same number of steps.

The permutation of epoch ``e`` is drawn from ``numpy.random.default_rng([seed, e])``: it does not
touch any global RNG and does not depend on how many epochs ran before. The sampler's state is
what the *loop* consumed (``epoch``, ``batch`` position), not how far DataLoader workers prefetched:
the loop calls :meth:`advance` after each step, and a new iterator starts from that point.

:class:`BalancedBatchSampler` (``data.balance: true``) draws every global batch with the same number of
samples from each group of the dataset (``dataset.balance_groups()``: descriptive / multiple-choice questions of
a mixed CLEVRER loader, static / moving camera of CATER's ``camera: both``), as Aloe's batches are built (A.3:
4 descriptive + 4 multiple-choice questions; 4 static + 4 moving-camera videos). The groups alternate inside a
batch, so any contiguous half of it (a rank's slice, Aloe's supervised sub-batch) is balanced too.
"""
from __future__ import annotations

from collections.abc import Iterator, Sequence

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


class BalancedBatchSampler(ResumableBatchSampler):
    """:class:`ResumableBatchSampler` whose every global batch holds ``batch_size / G`` samples of each of the
    ``G`` groups in ``groups`` (one group id per sample), interleaved ``g0, g1, ..., g0, g1, ...``.

    An epoch is a fresh permutation of every group; it ends when the smallest group runs out (the larger
    groups' unused samples come first in other epochs' permutations). Always shuffled, drops nothing within
    the batches it makes.
    """

    def __init__(self, groups: Sequence[int], batch_size: int, *, rank: int = 0, world_size: int = 1,
                 seed: int = 0, max_batches: int | None = None, what: str = "data"):
        ids = np.asarray(groups)
        if ids.ndim != 1 or len(ids) == 0:
            raise ConfigError(f"data.balance: {what} gave no group per sample")
        group_ids = sorted(set(ids.tolist()))
        self.members = [np.flatnonzero(ids == g) for g in group_ids]
        g = len(self.members)
        if batch_size % g or (batch_size // world_size) % g:
            raise ConfigError(f"data.balance: the batch per process ({batch_size // world_size}) must be divisible "
                              f"by the {g} groups of {what}")
        self.per_group = batch_size // g
        batches = min(len(m) for m in self.members) // self.per_group
        if batches < 1:
            sizes = ", ".join(f"group {gid}: {len(m)}" for gid, m in zip(group_ids, self.members))
            raise ConfigError(f"data.balance: {what} has too few samples of some group for one balanced batch of "
                              f"{batch_size} ({sizes})")
        super().__init__(batches * batch_size, batch_size, rank=rank, world_size=world_size, seed=seed,
                         shuffle=True, drop_last=True, infinite=True, max_batches=max_batches, what=what)

    def order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch])
        batches = self.batches_per_epoch
        picks = [rng.permutation(m)[:batches * self.per_group].reshape(batches, self.per_group) for m in self.members]
        # [batches, per_group, G] -> g0, g1, ..., g0, g1, ... within every batch
        return np.stack(picks, axis=-1).reshape(-1)
