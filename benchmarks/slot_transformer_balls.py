"""Where will the ball be? The Slot Transformer's localization head on balls its slots segment.

    python benchmarks/slot_transformer_balls.py --work .cache/st_balls --steps 4000 --runs locate locate-h0
    python benchmarks/slot_transformer_balls.py --work .cache/st_balls_h0 --section slot-transformer-balls-h0 \
        --steps 4000 --runs locate-h0-872 locate-h0-872-it1 locate-h0-872-it4 locate-h0-872-gen ...

Every reasoning head of the CLEVRER- and CATER-style benchmarks (``slot_transformer_experiments.py``) stays at
its no-video baseline because the slots do not find those scenes' small objects at CPU budgets. This benchmark
asks the head a CATER-style question on Bouncing Balls, where the model's slots do segment
(``configs/slot_transformer/bouncing_balls_segment.yaml``): the cell of a 6x6 grid (CATER's 36 classes, head and
metrics) that holds the ball of the first colour ``horizon`` frames after the last of the 8 frames shown
(Bouncing Balls' task ``locate``; not in the paper). With the head learning from video, the paper's section-5
ablations (iterations, generative vs deterministic, auxiliary loss, context transformer vs LSTM, K slots vs one)
can be compared on held-out accuracy at all: against ``locate`` (horizon 4) and against ``locate-h0-872`` (where
the ball is in the last frame shown, on 872 training clips), where the head learns from the video and overfits.

Each run trains ``configs/slot_transformer/bouncing_balls_locate.yaml`` plus its switches as
``<work>/runs/st-balls-<run>`` (a stopped run resumes) and is scored on its training clips (at most
``--train-samples``) and on
``--test-samples`` clips of the test split (never seen in training): top-1, top-5, grid L1, and the FG-ARI of
its masks. Baselines on the same test clips, from the generator's ground truth, no model: the most frequent
train cells; the target's cell in the last frame shown; and its position carried on in a straight line at its
last velocity, bouncing off the walls but not the other balls. Rows are kept in ``<work>/st_balls/<run>.json``
and the ``slot-transformer-balls`` section of docs/results.md is redrawn from all of them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Subset

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._clevrer import row_parser, run_all, train_run  # noqa: E402
from benchmarks._results import fmt, mean_se, provenance, stamp  # noqa: E402
from benchmarks.slot_transformer_segmentation import GEN_SEP, seeded, warm  # noqa: E402
from benchmarks.workbench_run import finished_steps  # noqa: E402

CONFIG = "configs/slot_transformer/bouncing_balls_locate.yaml"
SECTION = "slot-transformer-balls"
# the paper's settings where the config departs from them to segment: generative, one N(0, 1) sample of initial
# slots, LAMB lr 1e-3 (as configs/slot_transformer/bouncing_balls.yaml, whose slots do not segment)
PAPER = ["model.generative=true", "model.initial_context=sampled", "optim.main.name=lamb", "optim.main.lr=1e-3",
         "optim.main.weight_decay=1e-4"]
# one slot with the capacity of K = 4 (section 5), as the CLEVRER row clevrer-1slot
ONE_SLOT = ["model.num_slots=1", "model.slot_dim=128", "model.object_slot_counts=[1]",
            "model.context_attention_dim=128", "model.query_mlp=[128,128]"]

# section 5 on the task: iterations; generative mode (with what lets it segment Bouncing Balls: the narrow start
# and the prior's own head, a 2,000-step KL warm-up); no auxiliary loss (the object-prediction loss off; there are
# no questions to predict); a 4-layer LSTM for the context transformer (C.1); one slot
ABLATIONS = {
    "it1": ["model.iterations=1"],
    "it4": ["model.iterations=4"],
    "gen": ["model.generative=true", *GEN_SEP, *warm(2000)],
    "none": ["model.object_prediction=false"],
    "lstm": ["model.context_model=lstm", "model.lstm_hidden=64"],
    "1slot": ONE_SLOT,
    # not a claim of the paper: the head without the first/last frame tokens (model.head_frames=false) sees the
    # video only through the slots, so it shows whether the head reads them
    "noframes": ["model.head_frames=false"],
}
H0_872 = ["data.params.horizon=0", "data.train.num=872"]

#: run -> switches
RUNS = {
    "locate": [],                                       # 4 frames past the clip
    "locate-h0": ["data.params.horizon=0"],             # where the ball is in the last frame shown
    # on SetCon's 872 training clips instead of 20,000
    "locate-872": ["data.train.num=872"],
    "locate-h0-872": H0_872,
    "locate-h0-noframes": ["data.params.horizon=0", *ABLATIONS["noframes"]],
    **{f"locate-seed{s}": seeded(s, []) for s in (1, 2)},
    # the head on slots that do not segment: the paper's generative model, sampled initial slots and LAMB
    "locate-paper": PAPER,
}
# the runs that the ablations change: the task at horizon 4; at horizon 0 on 872 clips, where the head learns from
# the video and overfits (train top-1 0.96, held-out 0.36 at 4,000 steps), so that "overfits less" can be measured;
# and that with the head that sees the slots only, which reads them (held-out 0.845 where the paper's head, with
# frame tokens, gets 0.360 and answers as well with slots that do not segment)
BASES = ("locate", "locate-h0-872", "locate-h0-872-noframes")
for _base in BASES:   # in order: each base is a run of RUNS by the time its ablations are added
    RUNS.update({f"{_base}-{a}": [*RUNS[_base], *s] for a, s in ABLATIONS.items() if not _base.endswith("-" + a)})
# seeds 1-2 of each base's rows whose verdicts one seed cannot settle (section 5's claims differ by ~0.04 of
# held-out top-1): the iteration rows of both horizon-0 bases; every ablation of the noframes base
SEEDED = {"locate-h0-872": ("", "-it1", "-it4"),
          "locate-h0-872-noframes": ("", "-it1", "-none", "-it4", "-gen", "-lstm", "-1slot")}
RUNS.update({f"{b}{a}-seed{s}": seeded(s, RUNS[b + a]) for b, suffixes in SEEDED.items() for a in suffixes
             for s in (1, 2)})

CLAIMS = [  # (paper claim, better run's suffix, worse run's suffix), on held-out top-1
    ("generative beats deterministic (5)", "-gen", ""),
    ("the object-prediction loss beats none (5)", "", "-none"),
    ("the context transformer beats a 4-layer LSTM (C.1)", "", "-lstm"),
    ("K slots beat one slot of equal capacity (5)", "", "-1slot"),
]
ITERATIONS = ("-it1", "", "-it4")


def open_clips(cfg, split: str, num: int | None):
    """``num`` clips of ``split`` with the run's data params (``None``: the config's count)."""
    from slotvideo.data.generated import open_dataset
    from slotvideo.train.config import plain

    return open_dataset(cfg.data.name, split, num=num, seed=cfg.data.seed, params=plain(cfg.data.params),
                        cache_dir=cfg.data.cache_dir)


def batches(ds, size: int = 32):
    from slotvideo.data.batch import collate

    return (collate([ds[i] for i in range(s, min(s + size, len(ds)))]) for s in range(0, len(ds), size))


def first(ds, num: int):
    return Subset(ds, range(min(num, len(ds))))


def model_scores(model, ds) -> dict[str, float]:
    """The model's ``evaluate_batch`` means over ``ds`` (top1, top5, l1, fg_ari, mse, ...)."""
    from slotvideo.eval.evaluate import average_metrics

    model.eval()
    torch.manual_seed(0)  # a generative model samples z
    means, _, _ = average_metrics(model.evaluate_batch, batches(ds)).reduce()
    return {k: float(v) for k, v in means.items()}


def ranked_scores(scores: np.ndarray, labels: np.ndarray, grid: int) -> dict[str, float]:
    """top-1, top-5 and grid L1 of class scores ``[N, C]`` (the model's metrics) for labels ``[N]``."""
    from slotvideo.metrics.cater import grid_l1_distance, top_k_accuracy

    s, y = torch.from_numpy(scores).double(), torch.from_numpy(labels)
    return {"top1": float(top_k_accuracy(s, y, 1).float().mean()), "top5": float(top_k_accuracy(s, y, 5).float().mean()),
            "l1": float(grid_l1_distance(s, y, grid=grid).mean())}


def baselines(cfg, test) -> dict[str, dict[str, float]]:
    """No-model references on the test clips ``test``: the train cells' frequency ranking, the target's last
    seen cell, and its straight-line path at its last velocity with wall bounces (no ball collisions)."""
    from slotvideo.data.generated import generator_for
    from slotvideo.data.synthetic.bouncing_balls import simulate
    from slotvideo.train.config import plain

    p = generator_for(cfg.data.name, plain(cfg.data.params))    # the params with the generator's defaults
    res, grid, r, target, horizon = p.resolution, p.grid, p.radius, p.target, p.horizon
    classes = grid * grid
    train = open_clips(cfg, "train", cfg.data.train.num)
    freq = np.bincount([int(train.raw(i)["label"]) for i in range(len(train))], minlength=classes).astype(float)
    freq -= np.arange(classes) * 1e-6          # ties go to the lower class id, so the ranking is one ranking
    raws = [test.raw(i) for i in range(len(test))]
    labels = np.array([int(s["label"]) for s in raws])
    last = np.stack([s["positions"][-1, target] for s in raws]).astype(np.float64)
    velocity = last - np.stack([s["positions"][-2, target] for s in raws])
    moved = np.stack([simulate(q[None], v[None], horizon + 1, r - 0.5, res - 0.5 - r, r)[-1, 0]
                      for q, v in zip(last, velocity)])

    centres = (np.stack(np.divmod(np.arange(classes), grid), -1) + 0.5) * res / grid - 0.5    # [C, 2] (y, x)

    def nearest(points: np.ndarray) -> np.ndarray:
        # cells ranked by the distance of their centres to the point: first the cell holding it (a square
        # grid's cells are its centres' Voronoi cells), then its neighbours, for top-5
        return -np.linalg.norm(points[:, None] - centres[None], axis=-1)

    return {"frequency": ranked_scores(np.broadcast_to(freq, (len(labels), classes)).copy(), labels, grid),
            "last seen cell": ranked_scores(nearest(last), labels, grid),
            "straight line, walls": ranked_scores(nearest(moved), labels, grid),
            "chance": {"top1": 1 / classes, "top5": 5 / classes}}


def run(name: str, args: argparse.Namespace, work: Path) -> dict:
    from slotvideo.train.checkpoint import load_run

    run_dir = train_run(CONFIG, f"st-balls-{name}", work, args.steps, RUNS[name])
    _, train_s, _ = finished_steps(run_dir)
    t = time.time()
    cfg, model, step = load_run(run_dir)
    test = open_clips(cfg, "test", args.test_samples)
    row = {"run": name, "switches": RUNS[name], "steps": step, "train_s": round(train_s, 1), **stamp(),
           "horizon": int(cfg.data.params.get("horizon", 0)), "test_samples": len(test),
           "train_clips": int(cfg.data.train.num),
           "train": model_scores(model, first(open_clips(cfg, "train", cfg.data.train.num), args.train_samples)),
           "test": model_scores(model, test), "baselines": baselines(cfg, test)}
    row["score_s"] = round(time.time() - t, 1)
    out = work / "st_balls"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(row, indent=1))
    print(name, json.dumps({k: row[k] for k in ("train", "test")}), flush=True)
    return row


def claims(rows: dict[str, dict], base: str = "locate") -> list[str]:
    """Section 5's claims judged on ``base`` and its ablation rows ``base-<ablation>`` found in ``rows``."""
    out = []
    for text, better, worse in CLAIMS:
        better, worse = base + better, base + worse
        if better not in rows or worse not in rows:
            continue
        a, b = rows[better]["test"]["top1"], rows[worse]["test"]["top1"]
        out.append(f"* {text}: {'met' if a > b else 'missed'} (held-out top-1 {a:.3f} vs {b:.3f}).")
    its = [base + r for r in ITERATIONS if base + r in rows]
    if len(its) > 1:
        gap = {r: rows[r]["train"]["top1"] - rows[r]["test"]["top1"] for r in its}
        held = {r: rows[r]["test"]["top1"] for r in its}
        out.append("* more iterations overfit less (smaller train - held-out top-1 gap): "
                   f"{'met' if all(gap[a] > gap[b] for a, b in zip(its, its[1:])) else 'missed'} ("
                   + ", ".join(f"{r} {gap[r]:+.3f}" for r in its) + ").")
        out.append("* more iterations generalise better (held-out top-1): "
                   f"{'met' if all(held[a] < held[b] for a, b in zip(its, its[1:])) else 'missed'} ("
                   + ", ".join(f"{r} {held[r]:.3f}" for r in its) + ").")
    return out


def seed_families(rows: dict[str, dict]) -> dict[str, list[dict]]:
    """Each run of ``rows`` that has seed rows ``<run>-seedN`` too -> its rows, seed 0 first."""
    out = {}
    for n, r in rows.items():
        if "-seed" in n:
            continue
        seeds = [rows[m] for m in rows if m.startswith(n + "-seed") and m[len(n) + 5:].isdigit()]
        if seeds:
            out[n] = [r, *seeds]
    return out


def render(work: Path) -> str:
    rows = {p.stem: json.loads(p.read_text()) for p in sorted((work / "st_balls").glob("*.json"))}
    rows = {n: rows[n] for n in [*RUNS, *sorted(set(rows) - set(RUNS))] if n in rows}
    lines = ["## Slot Transformer: where will the ball be? (Bouncing Balls, task `locate`)", "",
             *provenance(rows.values()),
             "`benchmarks/slot_transformer_balls.py`: `configs/slot_transformer/bouncing_balls_locate.yaml` (the "
             "model that segments Bouncing Balls, with CATER's localization head) plus each row's switches. The "
             "question: the 6x6-grid cell of the ball of the first colour `horizon` frames after the last of the "
             "8 frames shown (16x16, 3 balls). Scored on the first 872 training clips (train top-1) and on the test "
             "split's clips (never trained on); the references are computed from the generator's ground truth on the same test clips.",
             ""]
    for horizon in sorted({r["horizon"] for r in rows.values()}, reverse=True):
        group = {n: r for n, r in rows.items() if r["horizon"] == horizon}
        first = next(iter(group.values()))
        lines += [f"Horizon {horizon} ({first['test_samples']} test clips):", "",
                  "| run | switches | train clips | steps | train min | train top-1 | test top-1 | test top-5 | test L1 | test FG-ARI |",
                  "|---|---|---|---|---|---|---|---|---|---|"]
        for n, r in group.items():
            tr, te = r["train"], r["test"]
            lines.append(f"| {n} | {' '.join(r['switches']) or '-'} | {r['train_clips']} | {r['steps']} | {r['train_s'] / 60:.0f} | "
                         f"{fmt(tr['top1'])} | {fmt(te['top1'])} | {fmt(te['top5'])} | {fmt(te['l1'])} | "
                         f"{fmt(te.get('fg_ari'))} |")
        for n, seeds in seed_families(group).items():
            lines.append(f"| {n}, {len(seeds)} seeds: mean ± s.e. | | | | | {mean_se(r['train']['top1'] for r in seeds)} | "
                         f"{mean_se(r['test']['top1'] for r in seeds)} | {mean_se(r['test']['top5'] for r in seeds)} | "
                         f"{mean_se(r['test']['l1'] for r in seeds)} | {mean_se(r['test']['fg_ari'] for r in seeds)} |")
        for name, b in first["baselines"].items():
            lines.append(f"| *{name}* (no model) | | | | | | {fmt(b['top1'])} | {fmt(b['top5'])} | {fmt(b.get('l1'))} | |")
        n = first["test_samples"]
        lines += ["", f"One standard error of a top-1 near 0.5 on {n} clips: {0.5 / n ** 0.5:.3f}.", ""]
    means = {n: {split: {"top1": float(np.mean([r[split]["top1"] for r in seeds]))} for split in ("train", "test")}
             for n, seeds in seed_families(rows).items()}
    for base in BASES:
        found = claims(rows, base)
        if found:
            lines += [f"Section 5's claims on this task, against `{base}` (seed 0 of each row):", "", *found, ""]
        found = claims(means, base)
        if found:
            lines += [f"The same claims on the means over seeds, against `{base}` (only rows with more than one seed):",
                      "", *found, ""]
    return "\n".join(lines)


def main() -> int:
    parser = row_parser(__doc__, ".cache/st_balls", RUNS, ["locate"], 4000, SECTION)
    parser.add_argument("--test-samples", type=int, default=1000, help="test-split clips scored")
    parser.add_argument("--train-samples", type=int, default=872, help="training clips scored (the first ones)")
    args = parser.parse_args()
    return run_all(args, run, render, args.section)


if __name__ == "__main__":
    raise SystemExit(main())
