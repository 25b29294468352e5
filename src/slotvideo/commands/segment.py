"""``slotvideo segment RUN VIDEO --out DIR [--frames N]``: slot masks and an overlay video for any video."""
from __future__ import annotations

import argparse

HELP = "Segment a video (mp4/avi/gif, frame folder or uint8 [T,H,W,3] .npy) with a trained run: masks.npy + overlay GIF/MP4."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (or name under runs/) or a .ckpt file")
    parser.add_argument("video", help="video file (.mp4, .avi, .gif, ...), folder of frames, or .npy uint8 [T, H, W, 3]")
    parser.add_argument("--out", required=True, help="output folder for masks.npy, overlay.gif and overlay.mp4")
    parser.add_argument("--frames", type=int, default=None, help="use only the first N frames")
    parser.add_argument("--fps", type=float, default=8.0, help="frame rate of the overlay videos (default 8)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from ..eval.evaluate import find_run
    from ..eval.segment import segment_file
    from ..train.checkpoint import load_model

    model = load_model(_run_path(args.run, find_run), device=args.device)
    result = segment_file(model, args.video, args.out, frames=args.frames, fps=args.fps, device=args.device)
    h, w = result.input_size
    mh, mw = result.model_size
    print(f"segmented {result.num_frames} frames of {args.video} ({h}x{w}, model at {mh}x{mw}) into "
          f"{result.num_slots} slots")
    print(f"  masks    {result.masks}  (int32 [T, H, W] slot ids)")
    print(f"  overlay  {result.gif}")
    print(f"  overlay  {result.mp4}")
    return 0


def _run_path(run: str, find_run):
    """A .ckpt file as is; otherwise a run directory, also found by name under runs/."""
    from pathlib import Path

    return Path(run) if Path(run).is_file() else find_run(run)
