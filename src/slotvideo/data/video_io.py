"""Reading and writing videos as uint8 ``[T, H, W, 3]`` arrays, with PyAV as the codec layer.

Sources :func:`read_video` understands:

* video files (``.mp4``, ``.avi``, ``.gif``, ``.mov``, ``.mkv``, ``.webm``), decoded with PyAV;
* a folder of frames (``.png``/``.jpg``/``.jpeg``/``.bmp``), in natural order (``2.png`` before ``10.png``),
  as DCL/NS-DR/SlotFormer extract CLEVRER frames;
* a ``.npy`` array of shape ``[T, H, W, 3]`` and dtype uint8.

Frame sampling (see :func:`frame_indices`) is decided before decoding, so frames that are dropped are
decoded (a codec cannot skip them) but never converted to RGB or resized, and decoding stops after the
last frame needed. Simplification: we do not seek, so a clip late in a long video still decodes the
frames before it; the frame cache (:mod:`slotvideo.data.frame_cache`) is the answer for repeated reads.

Writing (:func:`write_video`) picks the format from the extension: ``.gif`` (per-frame adaptive
palette, loops forever), ``.mp4`` (H.264 ``libx264`` at crf 17 without macroblock-tree rate control, so that the
same frames always give the same bytes; else MPEG-4 Part 2; yuv420p) or ``.avi``
(MPEG-4 Part 2, as CATER ships). yuv420p needs even sizes, so an odd height or width is padded by
repeating the last row/column: such a video decodes one pixel taller/wider than it was written.
Files are written to a temporary name in the same folder and renamed, so a crash never leaves a
half-written video under the final name.
"""
from __future__ import annotations

import os
import re
import uuid
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import av
import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import ConfigError, DataError, check_range

VIDEO_EXTS = (".mp4", ".avi", ".gif", ".mov", ".mkv", ".webm")
IMAGE_EXTS = (".png", ".jpg", ".jpeg", ".bmp")
WRITE_EXTS = (".gif", ".mp4", ".avi")
SAMPLING = ("all", "stride", "uniform", "random")

# PyAV raises FFmpegError subclasses for corrupt data; some container problems surface as these.
_DECODE_ERRORS = (av.error.FFmpegError, OSError, EOFError, ValueError, IndexError)


class VideoInfo(NamedTuple):
    """What :func:`video_info` reports; ``fps`` is None for frame folders and ``.npy`` arrays."""

    frames: int
    fps: float | None
    height: int
    width: int


# --------------------------------------------------------------------------- tensors


def to_tensor(frames: np.ndarray | torch.Tensor) -> torch.Tensor:
    """uint8 ``[..., H, W, 3]`` -> float32 ``[..., 3, H, W]`` in [0, 1] (the video contract of DESIGN.md)."""
    x = torch.from_numpy(np.ascontiguousarray(frames)) if isinstance(frames, np.ndarray) else frames
    if not isinstance(x, torch.Tensor) or x.dtype != torch.uint8 or x.dim() < 3 or x.shape[-1] != 3:
        raise DataError(f"frames must be uint8 [..., H, W, 3], got {_describe(frames)}")
    return x.movedim(-1, -3).float().div_(255.0)


def to_uint8(video: torch.Tensor | np.ndarray) -> np.ndarray:
    """float ``[..., 3, H, W]`` in [0, 1] -> uint8 ``[..., H, W, 3]`` numpy (values outside [0, 1] are clipped)."""
    x = torch.as_tensor(video)
    if not x.is_floating_point() or x.dim() < 3 or x.shape[-3] != 3:
        raise DataError(f"video must be float [..., 3, H, W], got {_describe(video)}")
    return x.detach().float().clamp(0, 1).mul(255).round().to(torch.uint8).movedim(-3, -1).cpu().numpy()


def _describe(x: Any) -> str:
    if hasattr(x, "shape") and hasattr(x, "dtype"):
        return f"{type(x).__name__} of shape {list(x.shape)} and dtype {x.dtype}"
    return type(x).__name__


# --------------------------------------------------------------------------- writing


def write_video(path: str | os.PathLike, frames: np.ndarray | torch.Tensor, fps: float = 8) -> Path:
    """Write uint8 ``[T, H, W, 3]`` frames to ``path`` (``.gif``, ``.mp4`` or ``.avi``), atomically.

    Returns the path written. See the module docstring for codecs and odd-size padding.
    """
    path = Path(path)
    ext = path.suffix.lower()
    if ext not in WRITE_EXTS:
        raise DataError(f"cannot write video {path}: extension {ext or '(none)'!r} is not one of {list(WRITE_EXTS)}")
    if isinstance(frames, torch.Tensor):
        frames = frames.detach().cpu().numpy()
    if not isinstance(frames, np.ndarray) or frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
        raise DataError(f"frames for {path} must be uint8 [T, H, W, 3] (use to_uint8 on float video), "
                        f"got {_describe(frames)}")
    if min(frames.shape[:3]) < 1:
        raise DataError(f"frames for {path} must have T, H, W >= 1, got shape {list(frames.shape)}")
    if not (isinstance(fps, (int, float, Fraction)) and fps > 0):
        raise ConfigError(f"fps must be a positive number, got {fps!r}")
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique hidden name beside the target, keeping the extension (so a glob for *.mp4 never sees
    # it as a finished video), with the usual umask permissions (mkstemp would make it 0600).
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        if ext == ".gif":
            _write_gif(tmp, frames, fps)
        else:
            _write_yuv420(tmp, frames, fps, ext)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _write_gif(path: Path, frames: np.ndarray, fps: float) -> None:
    # FFmpeg's gif encoder keeps every frame (Pillow merges identical consecutive frames, which
    # would change T); Pillow only supplies the per-frame adaptive palette (FFmpeg's rgb8 is 3-3-2 bits).
    with av.open(str(path), "w", format="gif") as container:
        stream = container.add_stream("gif", rate=Fraction(fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "pal8"
        for frame in frames:
            image = Image.fromarray(frame).quantize(256)
            palette = np.zeros((256, 4), np.uint8)  # ARGB, as PyAV's pal8 expects
            rgb = np.asarray(image.getpalette(), np.uint8).reshape(-1, 3)[:256]
            palette[: len(rgb), 1:] = rgb
            palette[:, 0] = 255
            packet_frame = av.VideoFrame.from_ndarray((np.asarray(image), palette), format="pal8")
            container.mux(stream.encode(packet_frame))
        container.mux(stream.encode())


def _encoder(name: str) -> bool:
    try:
        av.codec.Codec(name, "w")
        return True
    except (av.error.FFmpegError, ValueError):
        return False


def _write_yuv420(path: Path, frames: np.ndarray, fps: float, ext: str) -> None:
    _, h, w, _ = frames.shape
    if h % 2 or w % 2:
        frames = np.pad(frames, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="edge")
    fmt = "mp4" if ext == ".mp4" else "avi"
    use_x264 = ext == ".mp4" and _encoder("libx264")
    with av.open(str(path), "w", format=fmt) as container:
        rate = Fraction(fps).limit_denominator(1001)
        if use_x264:
            # crf 17 is visually lossless; tests and fixtures want decoded frames close to the input.
            # No macroblock-tree rate control: with it, x264 was seen to encode the same frames to different
            # bytes from call to call, and a generated dataset must be byte-identical for a seed.
            stream = container.add_stream("libx264", rate=rate, options={"crf": "17", "preset": "medium",
                                                                         "x264-params": "mbtree=0"})
        else:
            stream = container.add_stream("mpeg4", rate=rate)
            stream.bit_rate = 20_000_000  # high enough that mpeg4's default quantiser does not smear
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


# --------------------------------------------------------------------------- sampling


def check_sampling(*, num_frames: int | None, stride: int, start: int, sampling: str) -> None:
    """Raise :class:`ConfigError` for sampling parameters that make no sense, whatever the video."""
    if sampling not in SAMPLING:
        raise ConfigError(f"sampling must be one of {list(SAMPLING)}, got {sampling!r}")
    check_range(stride, "stride", low=1, integer=True)
    check_range(start, "start", low=0, integer=True)
    if num_frames is not None:
        check_range(num_frames, "num_frames", low=1, integer=True)
    if sampling in ("uniform", "random") and num_frames is None:
        raise ConfigError(f"sampling={sampling!r} needs num_frames")
    if sampling in ("all", "uniform") and stride != 1:
        raise ConfigError(f"stride={stride} has no effect with sampling={sampling!r}; "
                          "use sampling='stride' or 'random'")


def frame_indices(num_total: int, *, num_frames: int | None = None, stride: int = 1, start: int = 0,
                  sampling: str = "all", rng: np.random.Generator | int | None = None) -> np.ndarray:
    """The frame indices a sampling mode picks from a video of ``num_total`` frames (int64 ``[T]``).

    * ``"all"``: every frame from ``start`` (the first ``num_frames`` of them if given).
    * ``"stride"``: every ``stride``-th frame from ``start`` (the first ``num_frames`` if given).
    * ``"uniform"``: ``num_frames`` frames evenly spaced over ``[start, num_total)`` the way Aloe picks 25
      of CLEVRER's 128 frames: ``step, rem = divmod(length, num_frames)``, take ``start + step * i``
      (so the last ``rem`` frames are never chosen; 25 of 128 gives 0, 5, ..., 120).
    * ``"random"``: ``num_frames`` frames ``stride`` apart, starting at a random frame in ``[start, ...]``
      (training clips, as OCLF's random strided window and SlotFormer's random ``start_idx``).

    A video too short for the request raises :class:`DataError` rather than returning a shorter clip,
    which would only fail later when the batch is collated.
    """
    check_sampling(num_frames=num_frames, stride=stride, start=start, sampling=sampling)
    length = num_total - start
    if length < 1:
        raise DataError(f"start={start} is past the end of a video with {num_total} frames")
    if sampling in ("all", "stride"):
        idx = np.arange(start, num_total, stride, dtype=np.int64)
        if num_frames is not None:
            if len(idx) < num_frames:
                raise DataError(f"asked for {num_frames} frames at stride {stride} from frame {start}, "
                                f"but the video has only {num_total} frames")
            idx = idx[:num_frames]
        return idx
    if sampling == "uniform":
        step = length // num_frames
        if step < 1:
            raise DataError(f"asked for {num_frames} evenly spaced frames from frame {start}, "
                            f"but the video has only {num_total} frames")
        return start + step * np.arange(num_frames, dtype=np.int64)
    span = (num_frames - 1) * stride + 1
    if span > length:
        raise DataError(f"a random clip of {num_frames} frames at stride {stride} spans {span} frames, "
                        f"but the video has only {length} frames from frame {start}")
    gen = rng if isinstance(rng, np.random.Generator) else np.random.default_rng(rng)
    first = start + int(gen.integers(0, length - span + 1))
    return first + stride * np.arange(num_frames, dtype=np.int64)


# --------------------------------------------------------------------------- reading


def _natural_key(name: str) -> list[Any]:
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def _frame_files(folder: Path) -> list[Path]:
    files = [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_EXTS]
    if not files:
        raise DataError(f"frame folder {folder} holds no images ({', '.join(IMAGE_EXTS)})")
    return sorted(files, key=lambda p: _natural_key(p.name))


def _source_kind(path: Path) -> str:
    if not path.exists():
        raise DataError(f"video {path} does not exist")
    if path.is_dir():
        return "folder"
    ext = path.suffix.lower()
    if ext == ".npy":
        return "npy"
    if ext in VIDEO_EXTS:
        return "video"
    raise DataError(f"cannot read {path}: expected a video ({', '.join(VIDEO_EXTS)}), "
                    "a .npy array or a folder of frames")


def _load_npy(path: Path) -> np.ndarray:
    try:
        arr = np.load(path, mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError, EOFError) as e:
        raise DataError(f"cannot read frame array {path}: {e}") from None
    if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != 3 or arr.shape[0] < 1:
        raise DataError(f"frame array {path} must be uint8 [T, H, W, 3] with T >= 1, "
                        f"got shape {list(arr.shape)} and dtype {arr.dtype}")
    return arr


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize uint8 ``[T, H, W, 3]`` to ``size = (H, W)`` with antialiased bilinear filtering."""
    h, w = size
    if frames.shape[1:3] == (h, w):
        return np.ascontiguousarray(frames)
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).float()
    x = F.interpolate(x, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
    return x.round_().clamp_(0, 255).to(torch.uint8).permute(0, 2, 3, 1).contiguous().numpy()


def _check_size(size: Any) -> tuple[int, int] | None:
    if size is None:
        return None
    if (not isinstance(size, (tuple, list)) or len(size) != 2
            or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 1 for s in size)):
        raise ConfigError(f"size must be (height, width) with positive integers, got {size!r}")
    return int(size[0]), int(size[1])


def _open(path: Path) -> av.container.InputContainer:
    try:
        container = av.open(str(path), "r")
    except _DECODE_ERRORS as e:
        raise DataError(f"cannot open video {path}: {e}") from None
    if not container.streams.video:
        container.close()
        raise DataError(f"video {path} has no video stream")
    return container


def _count_frames(container: av.container.InputContainer, path: Path) -> int:
    """Frames in the first video stream: the container's count, else demux packets (no decoding)."""
    stream = container.streams.video[0]
    if stream.frames > 0:
        return int(stream.frames)
    try:
        n = sum(1 for p in container.demux(stream) if p.size)
        container.seek(0)
    except _DECODE_ERRORS as e:
        raise DataError(f"cannot read video {path}: {e}") from None
    return n


def read_video(path: str | os.PathLike, *, num_frames: int | None = None, stride: int = 1, start: int = 0,
               size: tuple[int, int] | None = None, sampling: str = "all",
               rng: np.random.Generator | int | None = None) -> np.ndarray:
    """Decode (a sample of) the frames of ``path`` as uint8 ``[T, H, W, 3]``.

    ``num_frames``/``stride``/``start``/``sampling``/``rng`` pick frames as in :func:`frame_indices`;
    ``size = (H, W)`` resizes with antialiasing. Missing, unreadable, truncated or empty inputs raise
    :class:`DataError` naming the file.
    """
    path = Path(path)
    size = _check_size(size)
    kind = _source_kind(path)
    sample = dict(num_frames=num_frames, stride=stride, start=start, sampling=sampling, rng=rng)
    try:
        return _read(path, kind, sample, size)
    except DataError as e:
        if str(path) in str(e):
            raise
        raise DataError(f"{path}: {e}") from None  # a too-short video: say which one


def _read(path: Path, kind: str, sample: dict[str, Any], size: tuple[int, int] | None) -> np.ndarray:
    if kind == "npy":
        arr = _load_npy(path)
        return _finish(arr[frame_indices(arr.shape[0], **sample)], size)
    if kind == "folder":
        files = _frame_files(path)
        return _finish(_read_images([files[i] for i in frame_indices(len(files), **sample)], path), size)
    return _read_with_av(path, sample, size)


def _finish(frames: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    return resize_frames(frames, size) if size is not None else np.ascontiguousarray(frames)


def _read_images(files: list[Path], folder: Path) -> np.ndarray:
    frames = []
    for f in files:
        try:
            with Image.open(f) as im:
                frames.append(np.asarray(im.convert("RGB")))
        except OSError as e:
            raise DataError(f"cannot read frame {f}: {e}") from None
    shapes = {a.shape for a in frames}
    if len(shapes) > 1:
        raise DataError(f"frames in {folder} have different sizes {sorted(shapes)}")
    return np.stack(frames)


def _read_with_av(path: Path, sample: dict[str, Any], size: tuple[int, int] | None) -> np.ndarray:
    container = _open(path)
    try:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        if sample["sampling"] in ("uniform", "random"):
            total = _count_frames(container, path)
            if total == 0:
                raise DataError(f"video {path} has no frames")
            wanted = frame_indices(total, **sample)
        else:
            # Known without counting: read from `start` at `stride` until num_frames or the end.
            total = None
            check_sampling(**{k: v for k, v in sample.items() if k != "rng"})
            wanted = None
        frames, decoded = _decode(container, stream, path, wanted, sample, size)
    finally:
        container.close()
    if not frames and decoded > 0:
        raise DataError(f"start={sample['start']} is past the end of video {path}, which has {decoded} frames")
    if not frames:
        raise DataError(f"video {path} has no decodable frames")
    if wanted is not None and len(frames) < len(wanted):
        raise DataError(f"video {path} is truncated: it declares {total} frames but only "
                        f"{decoded} could be decoded")
    if wanted is None and sample["num_frames"] is not None and len(frames) < sample["num_frames"]:
        raise DataError(f"asked for {sample['num_frames']} frames at stride {sample['stride']} from frame "
                        f"{sample['start']}, but video {path} has only {decoded} frames")
    return np.stack(frames)


def _decode(container: av.container.InputContainer, stream: Any, path: Path, wanted: np.ndarray | None,
            sample: dict[str, Any], size: tuple[int, int] | None) -> tuple[list[np.ndarray], int]:
    """The RGB frames to keep, and how many frames were decoded (for error messages)."""
    if wanted is not None:
        keep = set(wanted.tolist())
        last = int(wanted[-1])
    frames: list[np.ndarray] = []
    i = -1
    try:
        for i, frame in enumerate(container.decode(stream)):
            if wanted is not None:
                take, done = i in keep, i >= last
            else:
                offset = i - sample["start"]
                take = offset >= 0 and offset % sample["stride"] == 0
                done = sample["num_frames"] is not None and take and len(frames) + 1 >= sample["num_frames"]
            if take:
                rgb = frame.to_ndarray(format="rgb24")
                frames.append(resize_frames(rgb[None], size)[0] if size is not None else rgb)
            if done:
                break
    except _DECODE_ERRORS as e:
        raise DataError(f"cannot decode video {path} at frame {i + 1}: {e}") from None
    return frames, i + 1


def video_info(path: str | os.PathLike) -> VideoInfo:
    """Frame count, fps, height and width of a video, frame folder or ``.npy`` array.

    Cheap: reads container headers (counting packets only when the container does not say), one
    image header, or the ``.npy`` header.
    """
    path = Path(path)
    kind = _source_kind(path)
    if kind == "npy":
        t, h, w, _ = _load_npy(path).shape
        return VideoInfo(int(t), None, int(h), int(w))
    if kind == "folder":
        files = _frame_files(path)
        try:
            with Image.open(files[0]) as im:
                w, h = im.size
        except OSError as e:
            raise DataError(f"cannot read frame {files[0]}: {e}") from None
        return VideoInfo(len(files), None, h, w)
    container = _open(path)
    try:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        h, w = stream.codec_context.height, stream.codec_context.width
        n = _count_frames(container, path)
    finally:
        container.close()
    if n == 0:
        raise DataError(f"video {path} has no frames")
    return VideoInfo(n, float(rate) if rate else None, int(h), int(w))
