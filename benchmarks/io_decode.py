"""Clips per second: decoding mp4 on every read vs reading the memory-mapped frame cache.

Writes CLEVRER-like mp4 files (moving coloured squares on a gradient; 480x320 at 25 fps in the full
run), then feeds random training clips (OCLF's SAVi/CLEVRER window: 6 frames at stride 2, resized to
64x64) through a DataLoader with 2 workers, once decoding with PyAV per clip and once from a
:class:`FrameCache` built beforehand (build time reported separately).

    python benchmarks/io_decode.py --quick   # ~1 minute on 2 CPU cores
    python benchmarks/io_decode.py           # CLEVRER-sized videos
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import command, git_commit, machine, publish  # noqa: E402
from slotvideo.data.frame_cache import FrameCache  # noqa: E402
from slotvideo.data.video_io import read_video, write_video  # noqa: E402

CLIP = dict(sampling="random", num_frames=6, stride=2, size=(64, 64))


def synthetic_video(seed: int, t: int, h: int, w: int, objects: int = 5) -> np.ndarray:
    """Squares bouncing over a smooth background: compressible like a rendered scene, unlike noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:h, :w]
    background = np.stack([96 + 64 * yy / h, 96 + 64 * xx / w, np.full((h, w), 128.0)], -1).astype(np.uint8)
    frames = np.broadcast_to(background, (t, h, w, 3)).copy()
    side = max(4, min(h, w) // 8)
    pos = rng.uniform([0, 0], [h - side, w - side], (objects, 2))
    vel = rng.uniform(-3, 3, (objects, 2)) * min(h, w) / 100
    times = np.arange(t)[:, None, None]
    span = np.array([h - side, w - side])
    path = np.abs((pos + vel * times) % (2 * span) - span)  # reflect off the walls: [T, objects, 2]
    path = (span - path).astype(int)
    colours = rng.integers(30, 255, (objects, 3)).astype(np.uint8)
    for (i, k), (y, x) in zip(np.ndindex(t, objects), path.reshape(-1, 2)):
        frames[i, y:y + side, x:x + side] = colours[k]  # painting data, not a model: a loop is clearest
    return frames


class Clips(Dataset):
    def __init__(self, paths: list[Path], length: int, cache: FrameCache | None):
        self.paths, self.length, self.cache = paths, length, cache

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> torch.Tensor:
        path = self.paths[i % len(self.paths)]
        frames = self.cache.get(path, **CLIP) if self.cache else read_video(path, **CLIP)
        return torch.from_numpy(np.ascontiguousarray(frames))


def clips_per_second(dataset: Dataset, workers: int, batch_size: int) -> float:
    loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, shuffle=True,
                        persistent_workers=False)
    it = iter(loader)
    next(it)  # worker start-up and first fill are not throughput
    n, start = 0, time.perf_counter()
    for batch in it:
        n += len(batch)
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small videos, few clips")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/results.md")
    args = parser.parse_args()
    videos, (t, h, w), clips = (4, (64, 160, 240), 256) if args.quick else (8, (128, 320, 480), 512)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        paths = [write_video(root / f"video_{i:05d}.mp4", synthetic_video(i, t, h, w), fps=25) for i in range(videos)]
        write_s = time.perf_counter() - start
        cache = FrameCache(root / "cache")
        start = time.perf_counter()
        cache.build(paths, workers=args.workers, progress=False, **CLIP)
        build_s = time.perf_counter() - start
        cache_mb = sum(p.stat().st_size for p in (root / "cache").rglob("*.npy")) / 2**20
        mp4_mb = sum(p.stat().st_size for p in paths) / 2**20
        rates = {name: clips_per_second(Clips(paths, clips, c), args.workers, batch_size=8)
                 for name, c in (("mp4 (PyAV decode per clip)", None), ("frame cache (memmap)", cache))}
    base = rates["mp4 (PyAV decode per clip)"]
    table = "\n".join(f"| {name} | {r:.1f} | {1000 / r:.2f} | {r / base:.1f}x |" for name, r in rates.items())
    md = f"""## Video IO: decode vs frame cache

`{command()}` (commit {git_commit()}; {machine()})

{videos} synthetic mp4 videos of {t} frames at {w}x{h}, 25 fps (libx264, {mp4_mb:.1f} MiB in all);
random clips of {CLIP['num_frames']} frames at stride {CLIP['stride']} resized to {CLIP['size'][0]}x{CLIP['size'][1]},
{clips} clips, DataLoader with {args.workers} workers, batch 8, first batch excluded.

| source | clips/s | ms/clip | speed-up |
|---|---|---|---|
{table}

Writing the videos took {write_s:.1f} s; building the cache (full videos resized to 64x64,
{args.workers} worker processes) took {build_s:.1f} s and {cache_mb:.1f} MiB of disk.
"""
    publish("io", md, write=not args.no_write)


if __name__ == "__main__":
    main()
