"""``slotvideo bench CONFIG [key=value ...] [--steps N] [--warmup W]``: training speed and memory."""
from __future__ import annotations

import argparse

HELP = "Time training steps of a config: steps/s, frames/s, peak memory, share of time outside the model."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", help="YAML config file")
    parser.add_argument("overrides", nargs="*", metavar="key=value", help="config overrides")
    parser.add_argument("--steps", type=int, default=20, help="timed steps (default 20)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed steps first (default 5)")


def run(args: argparse.Namespace) -> int:
    from ..train.bench import benchmark, format_table
    from ..train.config import load_config

    cfg = load_config(args.config, args.overrides)
    numbers = benchmark(cfg, steps=args.steps, warmup=args.warmup)
    if numbers["rank"] == 0:
        print(format_table(numbers))
    return 0
