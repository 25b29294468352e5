"""``slotvideo data ACTION``: make and look at datasets.

Actions are sub-commands; each is a pair ``_add_<action>(parser)`` / ``_run_<action>(args)`` listed in
:data:`ACTIONS`, so adding one (``inspect``, ``download``) is a new pair and one line in the table.

    slotvideo data generate bouncing-balls --num 1000 --seed 0 --out data/bb --param radius=2.5
    slotvideo data show data/bb --out bb.gif --index 3 --scale 8
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError, DataError
from ._params import parse_params
from .data_real import ACTIONS as REAL_DATASET_ACTIONS

HELP = "generate synthetic datasets and look at them"


def _add_generator_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--seed", type=int, default=0, help="dataset seed (default 0)")
    p.add_argument("--split", default="train", choices=("train", "val", "test"),
                   help="seed stream to draw from (default train)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="generator parameter, repeatable (e.g. --param radius=2.5)")


# --------------------------------------------------------------------------- generate


def _add_generate(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", help="generator name (gridworld, bouncing-balls, random-walk, ...)")
    p.add_argument("--num", type=int, required=True, help="number of videos")
    p.add_argument("--out", required=True, help="output folder (meta.json + .npz shards); a rerun resumes")
    p.add_argument("--shard-size", type=int, default=256, help="videos per shard (default 256)")
    p.add_argument("--workers", type=int, default=2,
                   help="processes for generators that write an official layout (clevrer-mini, cater-mini)")
    _add_generator_options(p)


def _run_generate(args: argparse.Namespace) -> int:
    from ..data.generated import check_split, generator_for
    from ..data.reasoning import LAYOUT_GENERATORS, generate_layout
    from ..data.shards import write_dataset
    from ..errors import check_range

    if args.name in LAYOUT_GENERATORS:  # reasoning datasets write the official CLEVRER/CATER layout
        stats = generate_layout(args.name, args.out, args.num, args.seed, workers=args.workers,
                                params=parse_params(args.param))
        print(f"wrote {args.num} {args.name} videos (seed {args.seed}) to {args.out}: {stats}")
        return 0
    generator = generator_for(args.name, parse_params(args.param))
    check_range(args.num, "--num", 1, integer=True)
    check_range(args.seed, "--seed", 0, integer=True)
    check_range(args.shard_size, "--shard-size", 1, integer=True)
    check_split(args.split)
    out = write_dataset(args.out, generator, num=args.num, seed=args.seed, split=args.split,
                        shard_size=args.shard_size, progress=True)
    print(f"wrote {args.num} {args.name} videos ({args.split}, seed {args.seed}) to {out}")
    return 0


# --------------------------------------------------------------------------- show


def _add_show(p: argparse.ArgumentParser) -> None:
    p.add_argument("source", metavar="DIR_OR_NAME",
                   help="a folder written by `data generate`, or a generator name to sample on the fly")
    p.add_argument("--out", required=True, help="output file (.gif, .mp4 or .avi)")
    p.add_argument("--index", type=int, default=0, help="which video (default 0)")
    p.add_argument("--scale", type=int, default=8, help="nearest-neighbour upscaling factor (default 8)")
    p.add_argument("--fps", type=float, default=4.0, help="frames per second (default 4)")
    p.add_argument("--alpha", type=float, default=0.5, help="mask opacity in the overlay panel (default 0.5)")
    _add_generator_options(p)


def _load_raw(args: argparse.Namespace) -> dict[str, np.ndarray]:
    from ..data.generated import GeneratedDataset, generator_for
    from ..data.shards import META, ShardedDataset
    from ..registry import names

    path = Path(args.source)
    if (path / META).is_file():
        if args.param:
            raise ConfigError("--param only applies when DIR_OR_NAME is a generator name, not a dataset folder")
        dataset: Any = ShardedDataset(path)
    elif args.source in names("generator"):
        dataset = GeneratedDataset(generator_for(args.source, parse_params(args.param)), args.index + 1,
                                   args.seed, args.split)
    else:
        raise DataError(f"{args.source!r} is neither a generated dataset folder (no {path / META}) nor a "
                        f"generator name; generators are {names('generator')}")
    if not 0 <= args.index < len(dataset):
        raise ConfigError(f"--index must be in [0, {len(dataset) - 1}], got {args.index}")
    return dataset.raw(args.index)


def _run_show(args: argparse.Namespace) -> int:
    from ..data.video_io import write_video
    from ..viz.overlay import colorize_segmentation, overlay, side_by_side, upscale

    raw = _load_raw(args)
    video, seg = raw["video"], raw["segmentation"]
    panels = side_by_side(video, colorize_segmentation(seg), overlay(video, seg, args.alpha))
    frames = upscale(panels, args.scale)
    out = write_video(args.out, frames, fps=args.fps)
    print(f"wrote {len(frames)} frames ({frames.shape[2]}x{frames.shape[1]}: video | masks | overlay) to {out}")
    return 0


# --------------------------------------------------------------------------- dispatch

ACTIONS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "generate": ("write a synthetic dataset to a folder of .npz shards", _add_generate, _run_generate),
    "show": ("write a GIF of a video, its ground-truth masks and their overlay", _add_show, _run_show),
}
ACTIONS.update(REAL_DATASET_ACTIONS)  # inspect, download


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    for action, (help_text, add, _) in ACTIONS.items():
        p = sub.add_parser(action, help=help_text, description=help_text)
        add(p)
        p.set_defaults(_action=action)


def run(args: argparse.Namespace) -> int:
    action = getattr(args, "_action", None)
    if action is None:
        raise ConfigError(f"slotvideo data needs an action: one of {list(ACTIONS)}")
    return ACTIONS[action][2](args)
