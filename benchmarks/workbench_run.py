"""Train one config through the workbench, score it on held-out data, write a section of docs/results.md.

    python benchmarks/workbench_run.py configs/parts/bouncing_balls.yaml --name parts-bb-learned \
        --section parts_bb_learned --target fg_ari=0.85 -- train.steps=3000 model.initial_posterior=learned

Runs ``slotvideo train CONFIG run.name=NAME OVERRIDES`` (skipped when ``runs/NAME`` already finished its
``train.steps``; an interrupted run resumes), then ``slotvideo evaluate`` on the run's ``data.val`` split
(``--eval`` adds evaluation overrides, e.g. ``data.val.split=test data.val.num=256``), and writes the
metrics, the training curve at every evaluation, the steps, wall time, load and command. ``--target
NAME=VALUE`` (higher is better; ``NAME<=VALUE`` for lower is better) is reported as met or missed.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import command, git_commit, machine, publish  # noqa: E402


def finished_steps(run: Path) -> tuple[int, float, list[dict]]:
    """Last logged step, training wall time (s, summed over resumed segments) and the periodic ``val/`` records of ``run/metrics.jsonl``."""
    path = run / "metrics.jsonl"
    if not path.exists():
        return 0, 0.0, []
    records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    steps = max((r.get("step", 0) for r in records), default=0)
    # "time" restarts at 0 when a run resumes: add up the last time of every segment
    times = [r["time"] for r in records if "time" in r]
    wall = sum(a for a, b in zip(times, times[1:] + [0.0]) if b < a)
    return steps, wall, [r for r in records if any(k.startswith("val/") for k in r)]


def parse_target(text: str) -> tuple[str, float, bool]:
    """``fg_ari=0.85`` (at least) or ``mse<=0.01`` (at most) -> (metric, bound, higher_is_better)."""
    if "<=" in text:
        name, value = text.split("<=", 1)
        return name, float(value), False
    name, value = text.split("=", 1)
    return name, float(value), True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--name", required=True, help="run name under --run-dir")
    parser.add_argument("--section", required=True, help="section of docs/results.md to (re)write")
    parser.add_argument("--run-dir", type=Path, default=Path("runs"))
    parser.add_argument("--eval", nargs="*", default=[], metavar="key=value", help="evaluation overrides")
    parser.add_argument("--target", action="append", default=[], help="NAME=VALUE or NAME<=VALUE")
    parser.add_argument("--no-write", action="store_true")
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.overrides = argv[split + 1:]  # training overrides: everything after --

    from slotvideo.train.config import load_config

    cfg = load_config(args.config, args.overrides)
    run = args.run_dir / args.name
    if finished_steps(run)[0] < cfg.train.steps:
        cmd = ["slotvideo", "train", str(args.config), f"run.dir={args.run_dir}", f"run.name={args.name}",
               *args.overrides, "--no-progress"]
        if (run / "checkpoints" / "last.ckpt").exists():
            cmd.append("run.resume=true")
        subprocess.run(cmd, check=True)
    steps, wall, curve = finished_steps(run)

    from slotvideo.eval.evaluate import evaluate_run

    result = evaluate_run(run, args.eval, write=True)
    metrics = {k: v for k, v in result["metrics"].items() if v is not None}
    lines = ["| metric | value |", "|---|---|", *[f"| {k} | {v:.4f} |" for k, v in sorted(metrics.items())]]
    keys = sorted({k for r in curve for k in r if k.startswith("val/") and k != "val/samples"})
    curve_lines = ["| step | " + " | ".join(k[4:] for k in keys) + " |", "|---" * (len(keys) + 1) + "|",
                   *[f"| {r['step']} | " + " | ".join(f"{r.get(k, float('nan')):.4f}" for k in keys) + " |"
                     for r in curve]]
    verdicts = []
    for target in args.target:
        name, bound, higher = parse_target(target)
        value = metrics.get(name)
        met = value is not None and (value >= bound if higher else value <= bound)
        shown = "n/a" if value is None else f"{value:.4f}"
        verdicts.append(f"- {name} {'>=' if higher else '<='} {bound}: {shown} -> **{'met' if met else 'missed'}**")
    text = "\n".join([
        f"## {args.name}: `{args.config}`",
        "",
        f"`{command()}` (commit {git_commit()}; {machine()}; 1-minute load average {os.getloadavg()[0]:.1f} at "
        "the end).",
        "",
        f"Training: {steps} steps in {wall / 60:.1f} min, seed {cfg.seed}, batch {cfg.data.batch_size}; overrides "
        f"`{' '.join(args.overrides) or '(none)'}`. Scored by `slotvideo evaluate` on {result['num_samples']} "
        f"held-out samples of split `{result['split']}`"
        + (f" (overrides `{' '.join(args.eval)}`)" if args.eval else "") + ".",
        "",
        *lines,
        "",
        "Periodic validation during training (a few batches each):",
        "",
        *curve_lines,
        *([""] + verdicts if verdicts else []),
    ])
    publish(args.section, text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
