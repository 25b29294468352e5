"""Seeded datasets: purity of (seed, split, index), streams, shards on disk, resuming, caching, errors."""
import itertools
import os

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from slotvideo.data import (GeneratedDataset, GeneratedStream, ShardedDataset, collate, generator_for,
                            open_dataset, read_meta, write_dataset)
from slotvideo.errors import ConfigError, DataError
from slotvideo.registry import lookup, names

SMALL = {"resolution": 16, "num_frames": 4, "radius": 2.0}


def _equal(a, b):
    return a.keys() == b.keys() and all(a[k].dtype == b[k].dtype and torch.equal(a[k], b[k]) for k in a)


def test_registered_generators_and_datasets():
    expected = {"gridworld", "bouncing-balls", "random-walk", "random-walk-compositional", "random-walk-ood"}
    assert expected <= set(names("generator")) and expected <= set(names("dataset"))
    assert lookup("dataset", "gridworld") is lookup("generator", "gridworld")


def test_sample_is_a_pure_function_of_seed_split_index():
    a = open_dataset("bouncing-balls", "train", num=10, params=SMALL)
    b = open_dataset("bouncing-balls", "train", num=10, params=SMALL)
    assert _equal(a[7], b[7]) and _equal(a[7], a[7])
    assert not torch.equal(a[7]["video"], a[6]["video"])
    other_splits = [open_dataset("bouncing-balls", s, num=10, params=SMALL)[7] for s in ("val", "test")]
    assert not any(torch.equal(a[7]["video"], o["video"]) for o in other_splits)
    assert not torch.equal(open_dataset("bouncing-balls", "train", num=10, seed=1, params=SMALL)[7]["video"],
                           a[7]["video"])
    assert _equal(a[-1], a[9])
    with pytest.raises(IndexError):
        a[10]


def test_stream_matches_map_style_and_collates():
    g = generator_for("gridworld")
    ds = GeneratedDataset(g, 6, seed=2)
    first = list(itertools.islice(iter(GeneratedStream(g, seed=2)), 6))
    assert all(_equal(x, ds[i]) for i, x in enumerate(first))
    batch = next(iter(DataLoader(ds, batch_size=3, collate_fn=collate)))
    assert batch.video.shape == (3, 8, 3, 5, 5) and batch.moves.shape == (3, 7, 3)


def test_shards_round_trip_exactly(tmp_path):
    g = generator_for("random-walk-compositional", {"num_frames": 5})
    out = write_dataset(tmp_path / "rw", g, num=7, seed=3, split="val", shard_size=3)
    meta = read_meta(out)
    assert meta["complete"] and meta["generator"] == "random-walk-compositional" and meta["seed"] == 3
    assert [s["count"] for s in meta["shards"]] == [3, 3, 1] and meta["params"]["num_frames"] == 5
    assert meta["keys"]["video"] == {"dtype": "uint8", "shape": [5, 32, 32, 3]}
    disk, fly = ShardedDataset(out), GeneratedDataset(g, 7, seed=3, split="val")
    assert len(disk) == 7
    assert all(_equal(disk[i], fly[i]) for i in range(7))


def test_scalar_labels_round_trip_as_scalars(tmp_path):
    # a 0-d label read back from a shard stays 0-d (batches of class ids [B], not [B, 1])
    g = generator_for("bouncing-balls", {"resolution": 16, "num_frames": 3, "radius": 2.0, "task": "locate"})
    disk, fly = ShardedDataset(write_dataset(tmp_path / "bb", g, num=4, seed=0, split="val")), GeneratedDataset(g, 4, split="val")
    assert disk[0]["label"].shape == fly[0]["label"].shape == () and disk[0]["label"].dtype == torch.int64
    assert all(_equal(disk[i], fly[i]) for i in range(4))


class _Crashing:
    """Wraps a generator and fails at one index, like an interrupted run."""

    def __init__(self, gen, fail_at):
        self.gen, self.fail_at, self.name = gen, fail_at, gen.name

    def params(self):
        return self.gen.params()

    def sample(self, seed, split, index):
        if index == self.fail_at:
            raise KeyboardInterrupt
        return self.gen.sample(seed, split, index)


def test_resume_after_a_partial_write(tmp_path):
    g = generator_for("gridworld")
    folder = tmp_path / "gw"
    with pytest.raises(KeyboardInterrupt):
        write_dataset(folder, _Crashing(g, 5), num=8, seed=0, split="train", shard_size=2)
    assert sorted(p.name for p in folder.iterdir()) == ["meta.json", "shard-00000.npz", "shard-00001.npz"]
    with pytest.raises(DataError, match="incomplete"):
        ShardedDataset(folder)
    kept = (folder / "shard-00000.npz").stat().st_mtime_ns
    (folder / "shard-00001.npz").write_bytes(b"truncated")  # a damaged shard is rewritten
    write_dataset(folder, g, num=8, seed=0, split="train", shard_size=2)
    assert (folder / "shard-00000.npz").stat().st_mtime_ns == kept
    assert not [p for p in folder.iterdir() if p.name.endswith(".tmp")]
    disk, fly = ShardedDataset(folder), GeneratedDataset(g, 8)
    assert all(_equal(disk[i], fly[i]) for i in range(8))
    with pytest.raises(DataError, match="already holds another dataset"):
        write_dataset(folder, g, num=9, seed=0, split="train", shard_size=2)


def test_cache_dir_generates_once_and_reads_back(tmp_path):
    ds = open_dataset("gridworld", "test", num=5, seed=4, cache_dir=tmp_path)
    assert isinstance(ds, ShardedDataset)
    (folder,) = list(tmp_path.iterdir())
    assert folder.name.startswith("gridworld-")
    stamp = os.stat(folder / "meta.json").st_mtime_ns
    again = open_dataset("gridworld", "test", num=5, seed=4, cache_dir=tmp_path, params={"size": 5})
    assert again.folder == folder and os.stat(folder / "meta.json").st_mtime_ns == stamp
    fly = open_dataset("gridworld", "test", num=5, seed=4)
    assert all(_equal(ds[i], fly[i]) for i in range(5))
    open_dataset("gridworld", "val", num=5, seed=4, cache_dir=tmp_path)
    assert len(list(tmp_path.iterdir())) == 2


def test_default_sizes():
    assert len(open_dataset("bouncing-balls", "val")) == 128


@pytest.mark.parametrize("kwargs, match", [
    ({"name": "nope"}, r"unknown dataset 'nope'; known datasets are \[.*'gridworld'"),
    ({"params": {"sise": 4}}, r"unknown gridworld param 'sise'; known params are \[.*'size'"),
    ({"num": 0}, r"num must be in \[1, inf\]"),
    ({"split": "training"}, r"split must be one of \['train', 'val', 'test'\]"),
    ({"seed": -1}, r"seed must be in \[0, inf\]"),
])
def test_bad_arguments_raise_config_errors(kwargs, match):
    args = {"name": "gridworld", "split": "train", "num": 3, **kwargs}
    with pytest.raises(ConfigError, match=match):
        open_dataset(args.pop("name"), args.pop("split"), **args)


def test_not_a_dataset_folder(tmp_path):
    with pytest.raises(DataError, match="meta.json is missing"):
        ShardedDataset(tmp_path)
    np.save(tmp_path / "x.npy", np.zeros(2))
    (tmp_path / "meta.json").write_text("{not json")
    with pytest.raises(DataError, match="not valid JSON"):
        ShardedDataset(tmp_path)
