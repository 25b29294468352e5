"""clevrer-mini / cater-mini as datasets: generated into the cache on first use, read by the real loaders."""
import pytest

from slotvideo.data import open_dataset
from slotvideo.errors import ConfigError

GEN = {"num_videos": 4, "size": 32, "num_frames": 8, "future_frames": 4, "workers": 1}


def test_clevrer_mini_generates_once_and_loads(tmp_path):
    params = {"generate": GEN, "task": "descriptive", "num_frames": 4, "sampling": "uniform", "size": 16}
    ds = open_dataset("clevrer-mini", "train", params=params, cache_dir=tmp_path)
    assert len(ds) > 0
    sample = ds[0]
    assert sample["video"].shape == (4, 3, 16, 16) and sample["question"].dim() == 1
    (root,) = [p for p in tmp_path.iterdir() if p.name.startswith("clevrer-mini-")]
    stats = root / ".clevrer-mini" / "stats.json"
    before = stats.stat().st_mtime_ns
    again = open_dataset("clevrer-mini", "val", params=params, cache_dir=tmp_path)
    assert stats.stat().st_mtime_ns == before  # reused, not regenerated
    assert len(again) > 0


def test_cater_mini_localize(tmp_path):
    params = {"generate": {"num_videos": 4, "workers": 1}, "task": "localize", "num_frames": 4,
              "sampling": "uniform", "size": 16}
    ds = open_dataset("cater-mini", "train", params=params, cache_dir=tmp_path)
    sample = ds[0]
    assert sample["video"].shape[1:] == (3, 16, 16) and 0 <= int(sample["label"]) < 36


def test_layout_dataset_needs_a_cache_dir():
    with pytest.raises(ConfigError, match="data.cache_dir"):
        open_dataset("clevrer-mini", "train", params={"generate": GEN}, cache_dir=None)


def test_runs_started_together_generate_a_layout_once(tmp_path, monkeypatch):
    """Two openers of the same uncached layout at once: one generates it, the other waits and reuses it."""
    import threading
    import time

    import slotvideo.data.reasoning.datasets as datasets
    from slotvideo.data.reasoning import generate_layout

    calls = []

    def slow_generate(*args, **kwargs):
        calls.append(threading.get_ident())
        time.sleep(0.3)  # long enough for the other thread to find no stats.json and ask for the lock
        return generate_layout(*args, **kwargs)

    monkeypatch.setattr(datasets, "generate_layout", slow_generate)
    params = {"generate": GEN, "task": "descriptive", "num_frames": 4, "sampling": "uniform", "size": 16}
    sizes, errors = [], []

    def open_once():
        try:
            sizes.append(len(open_dataset("clevrer-mini", "train", params=params, cache_dir=tmp_path)))
        except Exception as e:  # surfaced below
            errors.append(e)

    threads = [threading.Thread(target=open_once) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(calls) == 1 and len(sizes) == 2 and sizes[0] == sizes[1] > 0
