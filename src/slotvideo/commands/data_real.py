"""``slotvideo data inspect|download``: the real datasets (CLEVRER, CATER, Kinetics-600) on disk.

    slotvideo data download clevrer --root data/CLEVRER              # resumable, idempotent
    slotvideo data download cater --root data/CATER --parts all_actions
    slotvideo data inspect clevrer --root data/CLEVRER --param preset=aloe

:data:`ACTIONS` is merged into the action table of ``commands/data.py``.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Callable


from ._params import parse_params

DATASETS = ("clevrer", "cater", "kinetics600")


def add_inspect(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=DATASETS, help="dataset")
    p.add_argument("--root", required=True, help="dataset folder (official layout, see docs/datasets.md)")
    p.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="dataset option as training would pass it (task, preset, num_frames, size, camera, ...)")
    p.add_argument("--no-decode", action="store_true", help="do not decode a sample video")
    p.add_argument("--out", help="also write the JSON summary to this file")


def run_inspect(args: argparse.Namespace) -> int:
    from ..data.inspect import inspect_dataset

    summary = inspect_dataset(args.name, args.root, parse_params(args.param), decode=not args.no_decode)
    text = json.dumps(summary, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    return 0


def add_download(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", choices=DATASETS, help="dataset")
    p.add_argument("--root", required=True, help="folder to download and unpack into")
    p.add_argument("--base-url", help="fetch <base-url>/<archive name> instead of the official hosts "
                                      "(a mirror; also $SLOTVIDEO_DOWNLOAD_BASE_URL)")
    p.add_argument("--parts", help="comma-separated parts (clevrer: videos,annotations,questions,proposals; "
                                   "cater: all_actions,all_actions_cameramotion,max2action,max2action_cameramotion)")
    p.add_argument("--keep-archives", action="store_true", help="keep the downloaded archives after unpacking")
    p.add_argument("--retries", type=int, default=5, help="reconnections per archive before giving up (default 5)")


def run_download(args: argparse.Namespace) -> int:
    from ..data.download import download_dataset

    parts = [p.strip() for p in args.parts.split(",") if p.strip()] if args.parts else None
    report = download_dataset(args.name, args.root, base_url=args.base_url, parts=parts,
                              keep_archives=args.keep_archives, retries=args.retries,
                              log=lambda line: print(line, file=sys.stderr))
    print(f"{args.name}: {len(report.fetched)} archives fetched, {len(report.skipped)} already done, in {report.root}")
    if report.note:
        print(report.note)
    return 0


ACTIONS: dict[str, tuple[str, Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]] = {
    "inspect": ("summarize a CLEVRER / CATER / Kinetics-600 folder as training loads it (JSON)", add_inspect,
                run_inspect),
    "download": ("download and unpack CLEVRER / CATER / Kinetics-600 (annotations only) archives", add_download,
                 run_download),
}

