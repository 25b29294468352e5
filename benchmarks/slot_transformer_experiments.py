"""Slot Transformer experiments of sections 4-5 at CPU scale, on generated CLEVRER-/CATER-style data.

    python -m slotvideo.data.reasoning.cater_mini --out data/cater-mini --num 160 --param size=32 --param num_frames=16
    python -m slotvideo.data.reasoning.clevrer_mini --out data/clevrer-mini --num 160 \
        --param size=32 --param num_frames=16 --param future_frames=8
    OMP_NUM_THREADS=1 python benchmarks/slot_transformer_experiments.py --run cater-it1 cater-it2 --steps 150

Each run builds the model from ``configs/slot_transformer/<dataset>_mini.yaml`` plus the run's overrides (the
ablation switches of :class:`SlotTransformer.Config`), loads the whole split into memory once, trains with
LAMB for ``--steps`` steps and scores the train split and the held-out split with ``evaluate_batch``. Results
are kept per run in ``runs/slot_transformer_bench/<run>.json`` and the ``slot-transformer`` section of
docs/results.md is redrawn from all kept runs, so runs can be done in separate invocations.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch
from pytorch_optimizer import Lamb

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _results import command, machine, write_section  # noqa: E402

from slotvideo.data import open_dataset  # noqa: E402
from slotvideo.data.batch import Batch, collate  # noqa: E402
from slotvideo.train.config import build_model, load_config  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "runs" / "slot_transformer_bench"
SMALL = ["model.resolution=16", "data.params.size=[16,16]", "model.slot_dim=32", "model.num_slots=5"]
RUNS = {
    # experiment 2 / 3: CATER-style localization, iterations 1, 2, 4
    "cater-it1": ("cater", ["model.iterations=1"]),
    "cater-it2": ("cater", ["model.iterations=2"]),
    "cater-it4": ("cater", ["model.iterations=4"]),
    # the QA loss weighted up against the ELBO (every run above predicts one class at 200 steps)
    "cater-qa": ("cater", ["model.iterations=2", "model.gen_weight=1e-4", "model.object_weight=0.01"]),
    # experiment 4: generative vs deterministic (z = mu, no KL)
    "cater-det": ("cater", ["model.iterations=2", "model.generative=false"]),
    # experiment 5: auxiliary losses (CLEVRER-style descriptive questions)
    "clevrer-both": ("clevrer", []),
    "clevrer-none": ("clevrer", ["model.object_prediction=false", "model.question_prediction=false"]),
    "clevrer-question": ("clevrer", ["model.object_prediction=false"]),
    "clevrer-object": ("clevrer", ["model.question_prediction=false"]),
    # experiment 6: context transformer vs a 4-layer LSTM; one slot vs K slots at equal capacity
    "cater-lstm": ("cater", ["model.iterations=2", "model.context_model=lstm", "model.lstm_hidden=64"]),
    "cater-1slot": ("cater", ["model.iterations=2", "model.num_slots=1", "model.slot_dim=160",
                              "model.object_slot_counts=[1]", "model.context_attention_dim=160",
                              "model.query_mlp=[160,160]"]),
    # experiment 8: classification head on the Kinetics-format fixtures
    "kinetics-fixture": ("kinetics600", []),
}
ROOTS = {"cater": "data/cater-mini", "clevrer": "data/clevrer-mini", "kinetics600": "data/kinetics-fixture"}
CONFIGS = {"cater": "cater_mini", "clevrer": "clevrer_mini", "kinetics600": "kinetics600"}


def load_split(cfg, split: str) -> list[Batch]:
    ds = open_dataset(cfg.data.name, split, seed=cfg.data.seed, params=dict(cfg.data.params), cache_dir=None)
    samples = [ds[i] for i in range(len(ds))]
    bs = cfg.data.batch_size
    return [collate(samples[i:i + bs]) for i in range(0, len(samples), bs)]


@torch.no_grad()
def score(model, batches: list[Batch]) -> dict[str, float]:
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for i, b in enumerate(batches):
        torch.manual_seed(1000 + i)
        for k, v in model.evaluate_batch(b).items():
            sums[k] = sums.get(k, 0.0) + float(v.float().sum())
        n += b.size
    model.train()
    return {k: v / n for k, v in sums.items()}


def run(name: str, steps: int, roots: dict[str, str]) -> dict:
    dataset, overrides = RUNS[name]
    cfg = load_config(ROOT / "configs" / "slot_transformer" / f"{CONFIGS[dataset]}.yaml",
                      [f"data.params.root={roots[dataset]}", *SMALL, *overrides])
    torch.manual_seed(cfg.seed)
    model = build_model(cfg)
    train, val = load_split(cfg, "train"), load_split(cfg, "val")
    opt = Lamb(model.parameters(), lr=cfg.optim.main.lr, weight_decay=cfg.optim.main.weight_decay,
               betas=(0.9, 0.999), eps=1e-6)
    start, losses = time.time(), []
    for step in range(steps):
        batch = train[step % len(train)]
        out = model(batch)
        opt.zero_grad()
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 5.0)
        opt.step()
        losses.append(float(out.loss.detach()))
    seconds = time.time() - start
    result = {"run": name, "dataset": dataset, "overrides": overrides, "steps": steps,
              "seconds_per_step": seconds / steps, "first_loss": sum(losses[:10]) / 10,
              "last_loss": sum(losses[-10:]) / 10, "train": score(model, train), "val": score(model, val),
              "train_size": sum(b.size for b in train), "val_size": sum(b.size for b in val)}
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / f"{name}.json").write_text(json.dumps(result, indent=1))
    print(json.dumps(result))
    return result


def render() -> str:
    rows = [json.loads(p.read_text()) for p in sorted(OUT.glob("*.json"))]
    keys = ("accuracy", "top1", "top5", "l1", "mse", "fg_ari")
    lines = ["## Slot Transformer (CPU scale)", "",
             f"Rows come from separate invocations of this script; the last was `{command()}`, on {machine()}; "
             "16x16 frames, 8 frames per clip, 5 slots of 32, 2-layer transformers, LAMB, batch 8. One seed per "
             "run: differences of a few points are noise at these sizes.", "",
             "| run | switches | steps | s/step | loss first->last | " +
             " | ".join(f"train {k} | val {k}" for k in keys) + " |",
             "|---" * (5 + 2 * len(keys)) + "|"]
    for r in rows:
        cells = []
        for k in keys:
            for part in ("train", "val"):
                v = r[part].get(k)
                cells.append("" if v is None else f"{v:.3f}")
        lines.append(f"| {r['run']} | {' '.join(r['overrides']) or '-'} | {r['steps']} | {r['seconds_per_step']:.2f} | "
                     f"{r['first_loss']:.1f}->{r['last_loss']:.1f} | " + " | ".join(cells) + " |")
    lines += ["", *claims({r["run"]: r for r in rows})]
    return "\n".join(lines)


CLAIMS = [  # (paper claim, better run, worse run, metric)
    ("more iterations generalise better (5, Figure 5)", "cater-it2", "cater-it1", "top1"),
    ("4 iterations beat 2 (5, Figure 5)", "cater-it4", "cater-it2", "top1"),
    ("generative beats deterministic (5)", "cater-it2", "cater-det", "top1"),
    ("both auxiliary losses beat none (5)", "clevrer-both", "clevrer-none", "accuracy"),
    ("question prediction alone beats none (5)", "clevrer-question", "clevrer-none", "accuracy"),
    ("object prediction alone beats none (5)", "clevrer-object", "clevrer-none", "accuracy"),
    ("context transformer beats a 4-layer LSTM (C.1)", "cater-it2", "cater-lstm", "top1"),
    ("K slots beat one slot of equal capacity (5)", "cater-it2", "cater-1slot", "top1"),
]


def claims(by_run: dict[str, dict]) -> list[str]:
    """Met / missed / not run for each claim, on held-out accuracy; 'not shown' when both runs predict one class."""
    out = ["Claims (held-out metric of the better run vs the worse run):", ""]
    for text, better, worse, metric in CLAIMS:
        if better not in by_run or worse not in by_run:
            out.append(f"* {text}: not run ({better} / {worse}).")
            continue
        a, b = by_run[better]["val"].get(metric), by_run[worse]["val"].get(metric)
        same_train = by_run[better]["train"].get(metric) == by_run[worse]["train"].get(metric)
        if a == b and same_train:
            verdict = "not shown: identical scores (the head gives one prediction for every sample)"
        else:
            verdict = "met" if a > b else "missed"
        out.append(f"* {text}: {verdict} ({metric} {a:.3f} vs {b:.3f}).")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", nargs="+", choices=sorted(RUNS), default=["cater-it1", "cater-it2"])
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--root", action="append", default=[], metavar="DATASET=PATH",
                        help="data folder per dataset (cater, clevrer, kinetics600)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    roots = dict(ROOTS, **dict(item.split("=", 1) for item in args.root))
    for name in args.run:
        run(name, args.steps, roots)
    write_section("slot-transformer", render())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
