"""The resumable, rank-sharded batch sampler and the loader built on it."""
from __future__ import annotations

from itertools import islice
from pathlib import Path

import pytest
import torch

from slotvideo.errors import ConfigError
from slotvideo.train.config import load_config
from slotvideo.train.run import make_loader, open_split
from slotvideo.train.sampler import ResumableBatchSampler


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
