"""The resumable, rank-sharded batch sampler and the loader built on it."""
from __future__ import annotations

from itertools import islice
from pathlib import Path

import numpy as np
import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.train.config import load_config
from slotvideo.train.run import make_loader, open_split
from slotvideo.train.sampler import BalancedBatchSampler, ResumableBatchSampler


def test_deterministic_and_resumable_mid_epoch() -> None:
    full = list(islice(iter(ResumableBatchSampler(10, 4, seed=1)), 7))  # 2 batches/epoch, 3+ epochs
    assert full == list(islice(iter(ResumableBatchSampler(10, 4, seed=1)), 7))
    assert full != list(islice(iter(ResumableBatchSampler(10, 4, seed=2)), 7))
    assert sorted(full[0] + full[1]) != sorted(full[2] + full[3]) or full[0] != full[2]  # epochs reshuffle
    assert all(len(set(full[2 * e] + full[2 * e + 1])) == 8 for e in range(3))  # no repeats within an epoch
    s = ResumableBatchSampler(10, 4, seed=1)
    for _ in range(3):  # consumed 3 batches: epoch 1, position 1
        s.advance()
    assert s.state_dict()["epoch"] == 1 and s.state_dict()["batch"] == 1
    resumed = ResumableBatchSampler(10, 4, seed=1)
    resumed.load_state_dict(s.state_dict())
    assert list(islice(iter(resumed), 4)) == full[3:7]


def test_ranks_split_the_global_batch() -> None:
    single = list(islice(iter(ResumableBatchSampler(12, 6, seed=0)), 4))
    ranks = [list(islice(iter(ResumableBatchSampler(12, 6, seed=0, rank=r, world_size=3)), 4)) for r in range(3)]
    for step in range(4):
        parts = [ranks[r][step] for r in range(3)]
        assert all(len(p) == 2 for p in parts)
        assert sum(parts, []) == single[step]  # split, not repeated


def test_eval_pass_covers_everything_once() -> None:
    s = ResumableBatchSampler(7, 4, shuffle=False, drop_last=False, infinite=False)
    assert list(s) == [[0, 1, 2, 3], [4, 5, 6]] and len(s) == 2
    per_rank = [list(ResumableBatchSampler(7, 4, rank=r, world_size=2, shuffle=False, drop_last=False,
                                           infinite=False)) for r in range(2)]
    assert sorted(sum(per_rank[0] + per_rank[1], [])) == list(range(7))
    with pytest.raises(ConfigError, match="fewer than one global batch"):
        ResumableBatchSampler(3, 4)
    with pytest.raises(ConfigError, match="divisible"):
        ResumableBatchSampler(8, 4, world_size=3)


def test_loader_with_workers_gives_the_same_batches(config_file: Path) -> None:
    cfg = load_config(config_file)
    data = open_split(cfg, "train")
    plain = make_loader(data, cfg, rank=0, world_size=1, train=True, max_batches=None, what="data.train")
    cfg2 = load_config(config_file, ["data.num_workers=1"])
    workers = make_loader(data, cfg2, rank=0, world_size=1, train=True, max_batches=None, what="data.train")
    for a, b in zip(islice(iter(plain), 5), islice(iter(workers), 5)):
        assert torch.equal(a.video, b.video) and a.video.shape == (4, 2, 3, 4, 4)


def test_balanced_batches_alternate_equal_shares_of_every_group():
    groups = [0] * 30 + [1] * 11 + [2] * 7          # unequal groups, out of order
    groups = [groups[i] for i in np.random.default_rng(1).permutation(len(groups))]
    s = BalancedBatchSampler(groups, 6, seed=3)
    assert s.batches_per_epoch == 3                 # the smallest group (7) fills 3 batches of 2
    seen = []
    for batch in islice(iter(s), 9):     # three epochs
        assert [groups[i] for i in batch] == [0, 1, 2, 0, 1, 2]
        seen += batch
    assert len(set(seen[:18])) == 18                # no sample twice within an epoch
    assert len(set(seen)) > 18                      # the large group's other samples come in later epochs
    # deterministic from (seed, epoch) and resumable mid-epoch
    again = BalancedBatchSampler(groups, 6, seed=3)
    again.advance()
    assert next(iter(again)) == list(islice(iter(s), 2))[1]


def test_balanced_rank_slices_are_balanced_and_disjoint():
    groups = [0, 1] * 20
    ranks = [BalancedBatchSampler(groups, 8, rank=r, world_size=2, seed=0) for r in range(2)]
    for a, b in islice(zip(*ranks), 5):
        assert sorted(groups[i] for i in a) == [0, 0, 1, 1] == sorted(groups[i] for i in b)
        assert not set(a) & set(b)


def test_balanced_sampler_errors_name_the_problem():
    with pytest.raises(ConfigError, match="divisible by the 3 groups"):
        BalancedBatchSampler([0, 1, 2] * 10, 8)
    with pytest.raises(ConfigError, match="too few samples of some group"):
        BalancedBatchSampler([0] * 20 + [1], 4)


def test_data_balance_on_a_mixed_clevrer_loader_and_an_error_elsewhere(config_file: Path, tmp_path: Path) -> None:
    from slotvideo.data.clevrer import open_clevrer
    from slotvideo.data.fixtures import write_clevrer

    root = write_clevrer(tmp_path / "CLEVRER", frames=8)
    clip = {"root": str(root), "masks": "false", "num_frames": 2, "sampling": "uniform", "size": 16}
    mixed = open_clevrer("train", params={**clip, "task": "mixed"})
    cfg = load_config(config_file, ["data.balance=true", "data.batch_size=4"])
    loader = make_loader(mixed, cfg, rank=0, world_size=1, train=True, max_batches=None, what="data.train")
    for batch in islice(iter(loader), 3):  # alternating descriptive / multiple choice
        assert batch.choice_mask.any(-1).tolist() == [False, True, False, True]
    with pytest.raises(ConfigError, match="needs data.params.task: mixed"):
        make_loader(open_clevrer("train", params={**clip, "task": "descriptive"}), cfg, rank=0, world_size=1,
                    train=True, max_batches=None, what="data.train")
    with pytest.raises(ConfigError, match="has no groups to balance"):
        make_loader(open_split(cfg, "train"), cfg, rank=0, world_size=1, train=True, max_batches=None,
                    what="data.train")


def test_sampler_draws_a_new_order_every_epoch():
    batches = iter(ResumableBatchSampler(64, 8, seed=0))
    epochs = [[tuple(next(batches)) for _ in range(8)] for _ in range(2)]
    assert sorted(i for b in epochs[0] for i in b) == list(range(64))
    assert set(epochs[0]) != set(epochs[1])                 # a new permutation every epoch, not one order cycled
