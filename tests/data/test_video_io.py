"""Video IO: round trips, the frames each sampling mode returns, resizing, and errors naming the file.

Frames carry their own index as brightness (frame t is grey level 8 * t + 4), so a decoded clip,
even from lossy mp4, tells which frames came back.
"""
import numpy as np
import pytest
import torch
from PIL import Image

from slotvideo.data.video_io import (frame_indices, read_video, resize_frames, to_tensor, to_uint8,
                                     video_info, write_video)
from slotvideo.errors import ConfigError, DataError

T, H, W = 24, 16, 24


def counter_frames(t=T, h=H, w=W):
    frames = np.empty((t, h, w, 3), np.uint8)
    frames[:] = (8 * np.arange(t) + 4).astype(np.uint8)[:, None, None, None]
    return frames


def decoded_index(frames):
    return np.rint((frames.reshape(len(frames), -1).mean(1) - 4) / 8).astype(int).tolist()


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    root = tmp_path_factory.mktemp("videos")
    frames = counter_frames()
    out = {ext: write_video(root / f"clip.{ext}", frames, fps=8) for ext in ("gif", "mp4", "avi")}
    np.save(root / "clip.npy", frames)
    out["npy"] = root / "clip.npy"
    folder = root / "frames"
    folder.mkdir()
    for t, f in enumerate(frames):  # 1-based names, as ffmpeg extracts them: 2.png must precede 10.png
        Image.fromarray(f).save(folder / f"{t + 1}.png")
    out["folder"] = folder
    return out


def test_gif_round_trip_is_exact_and_loops(files):
    back = read_video(files["gif"])
    assert back.dtype == np.uint8 and back.shape == (T, H, W, 3)
    np.testing.assert_array_equal(back, counter_frames())
    with Image.open(files["gif"]) as im:
        assert im.info.get("loop") == 0


def test_gif_keeps_identical_frames(tmp_path):
    frames = np.zeros((5, 8, 8, 3), np.uint8)
    frames[3:] = (200, 30, 60)
    write_video(tmp_path / "still.gif", frames)
    np.testing.assert_array_equal(read_video(tmp_path / "still.gif"), frames)


@pytest.mark.parametrize("ext", ["mp4", "avi"])
def test_lossy_round_trip_is_close(files, ext):
    back = read_video(files[ext])
    assert back.shape == (T, H, W, 3)
    assert np.abs(back.astype(int) - counter_frames()).mean() < 3
    assert decoded_index(back) == list(range(T))


def test_mp4_pads_odd_sizes_and_accepts_torch(tmp_path):
    frames = torch.from_numpy(counter_frames(6, 7, 9))
    back = read_video(write_video(tmp_path / "odd.mp4", frames))
    assert back.shape == (6, 8, 10, 3)
    assert decoded_index(back[:, :7, :9]) == list(range(6))


def test_write_is_atomic_and_leaves_no_temp(tmp_path):
    write_video(tmp_path / "a.mp4", counter_frames(4))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.mp4"]


@pytest.mark.parametrize("source", ["gif", "mp4", "avi", "npy", "folder"])
def test_sampling_modes_pick_the_right_frames(files, source):
    path = files[source]
    assert decoded_index(read_video(path)) == list(range(T))
    assert decoded_index(read_video(path, start=5, num_frames=3)) == [5, 6, 7]
    assert decoded_index(read_video(path, sampling="stride", stride=5)) == [0, 5, 10, 15, 20]
    assert decoded_index(read_video(path, sampling="stride", stride=3, start=2, num_frames=4)) == [2, 5, 8, 11]
    assert decoded_index(read_video(path, sampling="uniform", num_frames=5)) == [0, 4, 8, 12, 16]
    clip = decoded_index(read_video(path, sampling="random", num_frames=4, stride=2, rng=3))
    assert np.all(np.diff(clip) == 2) and 0 <= clip[0] <= T - 7
    assert clip == frame_indices(T, sampling="random", num_frames=4, stride=2, rng=3).tolist()


def test_frame_indices_matches_aloe_and_covers_every_random_start():
    # Aloe: 25 of CLEVRER's 128 frames with stride, rem = divmod(128, 25); frames[:-rem:stride].
    assert frame_indices(128, sampling="uniform", num_frames=25).tolist() == list(range(128))[:-3:5]
    rng = np.random.default_rng(0)
    starts = {int(frame_indices(10, sampling="random", num_frames=3, stride=3, rng=rng)[0]) for _ in range(200)}
    assert starts == {0, 1, 2, 3}


@pytest.mark.parametrize("kwargs,error", [
    (dict(sampling="uniform"), ConfigError),
    (dict(sampling="all", stride=2), ConfigError),
    (dict(sampling="nearest"), ConfigError),
    (dict(stride=0, sampling="stride"), ConfigError),
    (dict(sampling="random", num_frames=9, stride=3), DataError),
    (dict(sampling="stride", num_frames=30), DataError),
    (dict(start=24), DataError),
])
def test_impossible_sampling_raises(files, kwargs, error):
    with pytest.raises(error):
        read_video(files["npy"], **kwargs)


@pytest.mark.parametrize("source", ["mp4", "npy", "folder"])
def test_too_short_video_names_file(files, source):
    with pytest.raises(DataError, match=files[source].name):
        read_video(files[source], sampling="stride", stride=2, num_frames=13)
    with pytest.raises(DataError, match=files[source].name):
        read_video(files[source], start=30)
    with pytest.raises(DataError, match=files[source].name):
        read_video(files[source], sampling="uniform", num_frames=25)


@pytest.mark.parametrize("source", ["mp4", "npy", "folder"])
def test_resize(files, source):
    out = read_video(files[source], size=(8, 12), num_frames=3)
    assert out.shape == (3, 8, 12, 3) and out.dtype == np.uint8
    assert decoded_index(out) == [0, 1, 2]


def test_resize_is_antialiased():
    stripes = np.zeros((1, 8, 8, 3), np.uint8)
    stripes[:, :, ::2] = 255  # one-pixel stripes: point sampling would give all 0 or all 255
    small = resize_frames(stripes, (4, 4))
    assert np.all(np.abs(small.astype(int) - 128) <= 20)  # edges see a renormalised, lopsided filter


def test_video_info(files):
    assert video_info(files["mp4"]) == (T, 8.0, H, W)
    assert video_info(files["gif"])[0::2] == (T, H)
    assert video_info(files["npy"]) == (T, None, H, W)
    assert video_info(files["folder"]) == (T, None, H, W)


def test_truncated_video_raises_data_error_naming_file(files, tmp_path):
    data = files["mp4"].read_bytes()
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(data[: len(data) // 2])
    with pytest.raises(DataError, match="broken.mp4"):
        read_video(bad)
    with pytest.raises(DataError, match="broken.mp4"):
        video_info(bad)


def test_bad_inputs_raise_data_error(tmp_path):
    with pytest.raises(DataError, match="missing.mp4"):
        read_video(tmp_path / "missing.mp4")
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="empty"):
        read_video(tmp_path / "empty")
    np.save(tmp_path / "float.npy", np.zeros((2, 4, 4, 3), np.float32))
    with pytest.raises(DataError, match="float.npy.*uint8"):
        read_video(tmp_path / "float.npy")
    (tmp_path / "empty.mp4").write_bytes(b"")
    with pytest.raises(DataError, match="empty.mp4"):
        read_video(tmp_path / "empty.mp4")
    with pytest.raises(DataError, match="extension"):
        write_video(tmp_path / "clip.webp", counter_frames(2))
    with pytest.raises(DataError, match="uint8"):
        write_video(tmp_path / "clip.gif", counter_frames(2).astype(np.float32))
    with pytest.raises(DataError, match=r"\[T, H, W, 3\]"):
        write_video(tmp_path / "clip.gif", counter_frames(2)[..., :2])


def test_tensor_conversions_round_trip():
    frames = counter_frames(3)
    video = to_tensor(frames)
    assert video.shape == (3, 3, H, W) and video.dtype == torch.float32
    assert 0 <= video.min() and video.max() <= 1
    np.testing.assert_array_equal(to_uint8(video), frames)
    with pytest.raises(DataError):
        to_tensor(frames.astype(np.float32))
    with pytest.raises(DataError):
        to_uint8(video.permute(0, 2, 3, 1))


def test_mp4_bytes_are_the_same_every_time(tmp_path):
    # A rendered clevrer-mini scene: with x264's macroblock-tree rate control its frames encoded to different
    # bytes from one call to the next, so that generated datasets were not byte-identical for a seed.
    from slotvideo.data.reasoning import clevrer_mini as cm
    from slotvideo.data.reasoning.scene import SceneParams, sample_scene

    p = cm.ClevrerMiniParams(size=32, num_frames=16, future_frames=8)
    sim, t = p.sim(), p.num_frames
    specs, result = sample_scene(cm.scene_rng(5, 1), sim, SceneParams(p.min_objects, p.max_objects, p.max_entering))
    renderer = cm.Renderer(cm.Camera(size=p.size, view_half=sim.view_half, tilt=p.tilt))
    frames, _ = cm.render_video(renderer, [s.shape for s in specs], [s.color for s in specs],
                                [s.material for s in specs], result.position[:t], result.angle[:t], result.present[:t])
    first = write_video(tmp_path / "a.mp4", frames).read_bytes()
    assert all(write_video(tmp_path / f"{k}.mp4", frames).read_bytes() == first for k in range(40))
