"""``slotvideo rollout RUN VIDEO --steps N --out DIR [--context C] [--samples S]``: predict future frames."""
from __future__ import annotations

import argparse

HELP = "Predict N future frames of a video with a trained run (models with rollout); writes frames.npy, masks.npy and a GIF."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (or name under runs/) or a .ckpt file")
    parser.add_argument("video", help="video file (.mp4, .avi, .gif, ...), folder of frames, or .npy uint8 [T, H, W, 3]")
    parser.add_argument("--steps", type=int, required=True, help="number of frames to predict")
    parser.add_argument("--out", required=True, help="output folder")
    parser.add_argument("--context", type=int, default=None, help="use the first C frames as context (default: all)")
    parser.add_argument("--samples", type=int, default=1, help="number of sampled futures, shown side by side")
    parser.add_argument("--seed", type=int, default=0, help="seed of the first sample (sample i uses seed + i)")
    parser.add_argument("--fps", type=float, default=6.0, help="frame rate of the GIF (default 6)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..eval.evaluate import find_run
    from ..eval.rollout import rollout_file
    from ..train.checkpoint import load_model

    source = Path(args.run) if Path(args.run).is_file() else find_run(args.run)
    model = load_model(source, device=args.device)
    r = rollout_file(model, args.video, args.out, args.steps, context=args.context, samples=args.samples,
                     fps=args.fps, seed=args.seed, device=args.device)
    print(f"predicted {r.steps} frames after {r.context} context frames of {args.video} ({r.samples} sample(s))")
    print(f"  frames  {r.frames}  (uint8 [samples, steps, H, W, 3])")
    if r.masks is not None:
        print(f"  masks   {r.masks}  (int32 [samples, steps, H, W] slot ids)")
    print(f"  gif     {r.gif}")
    return 0
