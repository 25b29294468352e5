"""``slotvideo train CONFIG [key=value ...]``: train (or resume) a run from a YAML config."""
from __future__ import annotations

import argparse
import math

HELP = "Train a model from a YAML config; key=value overrides (train.steps=N, run.resume=true, ...)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file, e.g. configs/<model>/<dataset>.yaml")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="config overrides: train.steps=N data.batch_size=B seed=S run.name=NAME run.resume=true")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace) -> int:
    from ..train.config import load_config
    from ..train.run import train

    cfg = load_config(args.config, args.overrides)
    result = train(cfg, progress=not args.no_progress)
    if result["rank"] == 0:
        state = "stopped" if result["stopped"] else "finished"
        loss = "" if math.isnan(result["loss"]) else f", loss {result['loss']:.4g}"
        val = "".join(f", val/{k} {v:.4g}" for k, v in result["val"].items())
        print(f"{state} {result['run_dir']} at step {result['step']}{loss}{val}")
    return 0
