"""``slotvideo quickstart [--minutes M] [--out DIR]``: the main job, from nothing to a segmented video."""
from __future__ import annotations

import argparse

HELP = ("Generate Bouncing Balls, train the slot-attention baseline on CPU for a few minutes, report "
        "held-out FG-ARI and write an overlay GIF and training curves (no download).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--minutes", type=float, default=15.0, help="wall-clock budget of the whole job (default 15)")
    parser.add_argument("--threads", type=int, default=1,
                        help="torch CPU threads (default 1: the run of benchmarks/baseline_bouncing_balls.py, step for step)")
    parser.add_argument("--out", default="runs/quickstart", help="run directory (default runs/quickstart)")
    parser.add_argument("--steps", type=int, default=None, help="train exactly N steps instead of a time budget")
    parser.add_argument("--overwrite", action="store_true", help="replace a run already in --out")
    parser.add_argument("--cache-dir", default=None, help="where generated data is cached (default .cache/slotvideo)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides, e.g. data.batch_size=8 optim.main.lr=1e-3")


def run(args: argparse.Namespace) -> int:
    import torch

    from ..errors import check_range
    from ..train.quickstart import quickstart

    check_range(args.threads, "--threads", 1, integer=True)
    torch.set_num_threads(args.threads)

    r = quickstart(args.minutes, args.out, steps=args.steps, overrides=args.overrides, overwrite=args.overwrite,
                   cache_dir=args.cache_dir, progress=not args.no_progress)
    m = r["metrics"]

    def show(key: str) -> str:
        return "n/a" if m.get(key) is None else f"{m[key]:.3f}"

    state = "stopped by the time limit" if r["stopped"] else "done"
    print(f"\nquickstart {state}: {r['steps']} steps in {r['train_seconds'] / 60:.1f} min "
          f"({r['seconds'] / 60:.1f} min in all)")
    print(f"held-out FG-ARI {show('fg_ari')} per video, {show('fg_ari_frame')} per frame; "
          f"MSE {show('mse')} ({r['num_eval']} videos)")
    print(f"  run          {r['run_dir']}")
    print(f"  overlay      {r['gif']}")
    if r["curves"] is not None:
        print(f"  curves       {r['curves']}")
    print(f"  metrics      {r['eval_json']}")
    print(f"next: slotvideo segment {r['run_dir']} VIDEO --out DIR   (any mp4/gif/frame folder/.npy)")
    return 0
