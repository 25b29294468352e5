"""Frame cache: hits skip decoding, keys follow the decode parameters and the file, builds resume."""
import os

import numpy as np
import pytest

import slotvideo.data.frame_cache as frame_cache
from slotvideo.data.frame_cache import FrameCache
from slotvideo.data.video_io import read_video, write_video
from slotvideo.errors import DataError

T = 12


def counter_frames(t=T, h=8, w=8):
    frames = np.empty((t, h, w, 3), np.uint8)
    frames[:] = (16 * np.arange(t) + 8).astype(np.uint8)[:, None, None, None]
    return frames


def decoded_index(frames):
    return np.rint((np.asarray(frames).reshape(len(frames), -1).mean(1) - 8) / 16).astype(int).tolist()


@pytest.fixture
def decodes(monkeypatch):
    calls = []

    def counting_read_video(path, **kwargs):
        calls.append((str(path), kwargs))
        return read_video(path, **kwargs)

    monkeypatch.setattr(frame_cache, "read_video", counting_read_video)
    return calls


@pytest.fixture
def videos(tmp_path):
    return [write_video(tmp_path / f"v{i}.gif", np.roll(counter_frames(), i, axis=0)) for i in range(3)]


def test_hit_does_not_decode_again(tmp_path, videos, decodes):
    cache = FrameCache(tmp_path / "cache")
    first = cache.get(videos[0], size=(4, 4))
    second = cache.get(videos[0], size=(4, 4))
    assert len(decodes) == 1
    assert isinstance(second, np.memmap) and second.shape == (T, 4, 4, 3)
    np.testing.assert_array_equal(first, read_video(videos[0], size=(4, 4)))
    np.testing.assert_array_equal(second, first)


def test_key_changes_with_sampling_size_and_file(tmp_path, videos, decodes):
    cache = FrameCache(tmp_path / "cache")
    entries = {cache.entry_path(videos[0], **kw) for kw in (
        {}, dict(size=(4, 4)), dict(sampling="stride", stride=2), dict(sampling="uniform", num_frames=4),
        dict(num_frames=3), dict(start=1))}
    assert len(entries) == 6
    assert cache.entry_path(videos[1]) not in entries
    uniform = cache.get(videos[0], sampling="uniform", num_frames=4)
    assert decoded_index(uniform) == [0, 3, 6, 9]
    before = cache.entry_path(videos[0], sampling="uniform", num_frames=4)
    write_video(videos[0], counter_frames()[::-1])  # rewritten file: new size/mtime, new entry
    os.utime(videos[0], ns=(1, 1))
    assert cache.entry_path(videos[0], sampling="uniform", num_frames=4) != before
    assert decoded_index(cache.get(videos[0], sampling="uniform", num_frames=4)) == [11, 8, 5, 2]
    assert len(decodes) == 2


def test_random_clips_come_from_one_cached_full_video(tmp_path, videos, decodes):
    cache = FrameCache(tmp_path / "cache")
    rng = np.random.default_rng(0)
    starts = set()
    for _ in range(30):
        clip = cache.get(videos[0], sampling="random", num_frames=3, stride=2, rng=rng)
        idx = decoded_index(clip)
        assert clip.shape == (3, 8, 8, 3) and np.all(np.diff(idx) == 2)
        starts.add(idx[0])
    assert len(decodes) == 1 and decodes[0][1]["sampling"] == "all"
    assert starts == set(range(T - 4))
    assert cache.entry_path(videos[0], sampling="random", num_frames=3, stride=2) == cache.entry_path(videos[0])


def test_build_resumes_and_never_trusts_partial_files(tmp_path, videos, decodes):
    cache = FrameCache(tmp_path / "cache")
    assert cache.build(videos[:1], workers=0, progress=False, size=(4, 4)) == (1, 0)
    # A killed writer leaves only a .partial file, which must not count as an entry.
    entry = cache.entry_path(videos[1], size=(4, 4))
    entry.parent.mkdir(parents=True, exist_ok=True)
    entry.with_name(entry.stem + ".123.deadbeef.partial").write_bytes(b"\x93NUMPY half")
    assert cache.build(videos, workers=0, progress=False, size=(4, 4)) == (2, 1)
    assert len(decodes) == 3
    assert cache.build(videos, workers=0, progress=False, size=(4, 4)) == (0, 3)
    assert len(decodes) == 3


def test_corrupt_entry_is_rebuilt(tmp_path, videos, decodes):
    FrameCache(tmp_path / "cache").get(videos[0])
    cache = FrameCache(tmp_path / "cache")  # a later run; the first one's open maps are gone
    cache.entry_path(videos[0]).write_bytes(b"garbage")
    np.testing.assert_array_equal(cache.get(videos[0]), read_video(videos[0]))
    assert len(decodes) == 2


def test_build_with_worker_processes_and_failures(tmp_path, videos):
    cache = FrameCache(tmp_path / "cache")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video")
    with pytest.raises(DataError, match="bad.mp4"):
        cache.build([*videos, bad], workers=2, progress=False)
    assert all(cache.entry_path(v).exists() for v in videos)
    assert cache.build(videos, workers=2, progress=False) == (0, 3)


def test_pickles_without_open_maps(tmp_path, videos):
    import pickle

    cache = FrameCache(tmp_path / "cache", max_open=2)
    for v in videos:
        cache.get(v)
    assert len(cache._maps) == 2
    copy = pickle.loads(pickle.dumps(cache))
    assert copy.root == cache.root and not copy._maps
    np.testing.assert_array_equal(copy.get(videos[0]), cache.get(videos[0]))


def test_missing_file_raises(tmp_path):
    with pytest.raises(DataError, match="nope.mp4"):
        FrameCache(tmp_path).get(tmp_path / "nope.mp4")
