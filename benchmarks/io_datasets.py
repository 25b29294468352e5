"""Clips per second of the real-dataset loaders: decoding mp4 per sample vs the frame cache.

Writes fixture-layout CLEVRER and Kinetics-600 folders (:mod:`slotvideo.data.fixtures`; CLEVRER videos
are 128 frames like the real ones), opens them with :func:`open_dataset` as training does, and reads
samples through a DataLoader with 2 workers, once with ``cache_dir=None`` (PyAV decode per sample)
and once from a warm frame cache (the first pass that fills it is timed separately).

    python benchmarks/io_datasets.py --quick   # ~1-2 minutes on 2 CPU cores
    python benchmarks/io_datasets.py           # CLEVRER at its real 480x320
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

from torch.utils.data import DataLoader, Dataset

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import command, git_commit, machine, publish  # noqa: E402
from slotvideo.data import cater, clevrer, kinetics  # noqa: E402,F401  (importing registers the datasets)
from slotvideo.data.fixtures import write_clevrer, write_kinetics  # noqa: E402
from slotvideo.data.generated import open_dataset  # noqa: E402


class Repeat(Dataset):
    """``length`` samples cycling over ``dataset`` (a few fixture videos stand for many)."""

    def __init__(self, dataset: Dataset, length: int):
        self.dataset, self.length = dataset, length

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, i: int) -> Any:
        return self.dataset[i % len(self.dataset)]


def clips_per_second(dataset: Dataset, workers: int, batch_size: int, clips: int) -> float:
    # torch's default collate (dicts of stacked tensors): a Batch cannot yet be pickled back from workers.
    loader = DataLoader(Repeat(dataset, clips), batch_size=batch_size, num_workers=workers, shuffle=True)
    it = iter(loader)
    next(it)  # worker start-up and the first fill are not throughput
    n, start = 0, time.perf_counter()
    for batch in it:
        n += len(batch["video"])
    return n / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller CLEVRER frames, fewer clips")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--no-write", action="store_true", help="print only, do not update docs/results.md")
    args = parser.parse_args()
    size, clips = ((160, 240), 192) if args.quick else ((320, 480), 384)
    setups = [
        ("clevrer", "CLEVRER video, Aloe preset (25 of 128 frames, 64x64)", {"preset": "aloe", "masks": "false"}),
        ("clevrer", "CLEVRER video + proposal masks, Aloe preset", {"preset": "aloe", "masks": "true"}),
        ("clevrer", "CLEVRER descriptive QA, random 6 frames at stride 2, 64x64",
         {"task": "descriptive", "num_frames": 6, "stride": 2, "sampling": "random", "size": 64, "masks": "false"}),
        ("kinetics600", "Kinetics-600, 16 uniform frames, 128x128", {}),
    ]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        start = time.perf_counter()
        clevrer_root = write_clevrer(root / "CLEVRER", train=range(8), val=(), test=(), size=size)
        kinetics_root = write_kinetics(root / "k600", train_per_class=3, frames=250, size=(180, 320), missing=0)
        write_s = time.perf_counter() - start
        for name, label, params in setups:
            params = {**params, "root": str(clevrer_root if name == "clevrer" else kinetics_root)}
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                plain = open_dataset(name, "train", params=params)
                cached = open_dataset(name, "train", params=params, cache_dir=root / f"cache-{len(rows)}")
            start = time.perf_counter()
            for i in range(len(cached)):  # fill the cache once (what `FrameCache.build` would do)
                cached[i]
            fill_s = time.perf_counter() - start
            mp4 = clips_per_second(plain, args.workers, 8, clips)
            cache = clips_per_second(cached, args.workers, 8, clips)
            rows.append(f"| {label} | {len(plain)} | {mp4:.1f} | {cache:.1f} | {cache / mp4:.1f}x | {fill_s:.1f} |")
            print(rows[-1], flush=True)
    h, w = size
    md = f"""## Real-dataset loaders: mp4 vs frame cache

`{command()}` (commit {git_commit()}; {machine()})

Fixture-layout data (`slotvideo.data.fixtures`): 8 CLEVRER videos of 128 frames at {w}x{h} (25 fps,
libx264) with derender-proposal masks; 9 Kinetics-600 clips of 250 frames at 320x180. Samples come
from `open_dataset(...)` through a DataLoader with {args.workers} workers, batch 8, shuffled,
{clips} samples, first batch excluded. "fill" is the single pass that writes the cache.

| dataset / sampling | items | mp4 samples/s | cache samples/s | speed-up | fill (s) |
|---|---|---|---|---|---|
{chr(10).join(rows)}

Writing the fixtures took {write_s:.1f} s. Without a cache, proposal masks are parsed from JSON and
RLE-decoded on every read; with `cache_dir` the whole video's segmentation is stored once (int16,
memory-mapped) and clips index into it. Random clips cache the full resized video, hence the longer fill.
"""
    publish("io-datasets", md, write=not args.no_write)


if __name__ == "__main__":
    main()
