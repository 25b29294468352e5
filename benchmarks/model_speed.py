"""Training speed and memory of every model's CPU configs: ``slotvideo bench`` on each, one process per config.

    python benchmarks/model_speed.py --work .cache/speed [--steps 20] [--warmup 5] [--threads 1]

Each config runs in a fresh Python process (so its peak resident memory is its own) through
``slotvideo.train.bench.benchmark``: the real training loop (data loading, logging, optimizer steps; no
checkpoints, evaluation or media), ``--warmup`` untimed steps, then ``--steps`` timed ones. The generated
datasets are written into ``<work>/cache`` on first use, before the timing. Aloe is timed in its joint phase
(``model.monet_pretrain_steps=0``: MONet and the transformer both train), not MONet's pre-training phase. Writes
the ``model-speed`` section of docs/results.md; ``--configs`` times a subset.

Budget: at one thread the paper-sized SetCon Bouncing Balls config (batch 128 of 12 frames at 32x32, decoded
at full resolution) takes about 71 s a step (measured 2026-12-02), so the default 5 + 20 steps take half an
hour for that config alone; fewer ``--steps`` give a rougher number sooner.
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

from benchmarks._results import machine, publish, stamp  # noqa: E402

SECTION = "model-speed"
#: config -> its overrides (a config of this repository, at the settings its own docs train it with)
CONFIGS = {
    "slot_attention_video/bouncing_balls": [],
    "setcon/bouncing_balls": [],
    "setcon/gridworld": [],
    "parts/bouncing_balls": [],
    "parts/camera_balls": [],
    "vim/random_walk": [],
    "monet/clevrer_mini": [],
    "aloe/clevrer_mini": ["model.monet_pretrain_steps=0"],
    "aloe/cater_mini": ["model.monet_pretrain_steps=0"],
    "cnn_lstm/clevrer_mini": [],
    "slot_transformer/bouncing_balls_locate": [],
    "slot_transformer/clevrer_mini": [],
    "slot_transformer/cater_mini": [],
    "slot_transformer/kinetics600": [],
}

MEASURE = """
import json, sys, torch
torch.set_num_threads({threads})
from slotvideo.train.bench import benchmark
from slotvideo.train.config import load_config
cfg = load_config({config!r}, {overrides!r})
print("RESULT " + json.dumps(benchmark(cfg, steps={steps}, warmup={warmup})))
"""


def measure(name: str, args: argparse.Namespace, work: Path) -> dict:
    """``benchmark`` of ``configs/<name>.yaml`` in a fresh process with ``args.threads`` torch threads."""
    overrides = [f"data.cache_dir={work / 'cache'}", f"run.name={name.replace('/', '-')}", *CONFIGS[name]]
    code = MEASURE.format(threads=args.threads, config=str(ROOT / "configs" / f"{name}.yaml"), overrides=overrides,
                          steps=args.steps, warmup=args.warmup)
    env = {**os.environ, "OMP_NUM_THREADS": str(args.threads), "MKL_NUM_THREADS": str(args.threads)}
    done = subprocess.run([sys.executable, "-c", code], cwd=work, env=env, capture_output=True, text=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        raise SystemExit(f"{name}: bench failed (exit {done.returncode}):\n{done.stderr[-3000:]}")
    return {**json.loads(lines[-1][len("RESULT "):]), "config": name, "overrides": CONFIGS[name]}


def render(rows: list[dict], args: argparse.Namespace) -> str:
    lines = ["## Training speed and memory of every model (`benchmarks/model_speed.py`)", "",
             f"{machine()}; commit {stamp()['commit']}; {args.threads} torch thread(s), one process per config, "
             f"{args.warmup} untimed steps then {args.steps} timed ones. Command: `{stamp()['command']}`.", "",
             "*Step* is the wall time of a training step; *model* the forward, backward, clipping and optimizer "
             "part of it; *outside* the rest (data, logging). *Peak memory* is the process's maximum resident set "
             "size, everything Python loaded included.", "",
             "| config | overrides | model | batch | steps/s | frames/s | step ms | model ms | outside | peak memory MiB |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| `configs/{r['config']}.yaml` | {' '.join(r['overrides']) or '-'} | {r['model']} | "
                     f"{r['batch_size']} | {r['steps_per_s']:.2f} | {r['frames_per_s']:.0f} | {r['step_ms']:.0f} | "
                     f"{r['model_ms']:.0f} | {100 * r['outside_share']:.1f}% | {r['peak_memory_mib']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=".cache/speed", help="generated datasets and temporary runs")
    parser.add_argument("--configs", nargs="*", choices=list(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--no-write", action="store_true", help="print the section without writing results.md")
    args = parser.parse_args()
    work = Path(args.work).resolve()
    work.mkdir(parents=True, exist_ok=True)
    rows = []
    for name in args.configs:
        rows.append(measure(name, args, work))
        print(json.dumps(rows[-1]), flush=True)
    publish(SECTION, render(rows, args), write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
