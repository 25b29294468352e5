"""Do the slots hold the answer? A fresh task head trained on a finished run's frozen slots.

    python benchmarks/slot_transformer_probe.py --work .cache/st_balls_nf --runs locate-h0-872-noframes \
        locate-h0-872-noframes-it1 ...

On Bouncing Balls' task ``locate`` (``slot_transformer_balls.py``) one inference iteration answers worse on
held-out clips than two (section 5's claim, met there), and its masks segment worse. That leaves open where the
run with fewer iterations loses: do its slots hold less of the answer, or did its head, trained jointly with
them, learn worse? This benchmark takes a run that ``slot_transformer_balls.py`` trained (``<work>/runs/
st-balls-<run>``), freezes all of it, and computes the latents ``z_k`` and masks of every iteration ``k`` on the
run's training clips and on ``--test-samples`` clips of the test split. On each iteration's ``z_k`` it trains a
fresh task head: the run's own head architecture, newly initialised from the run's seed, with the run's
optimiser, learning-rate schedule, batch size, gradient clip and number of steps, on the same training clips. The
head's held-out top-1 then measures what the frozen slots hold for the question; next to the run's own
(jointly trained) head, it separates the slots from the head. Probing ``z_1`` of a two-iteration run asks what
the second iteration adds. A diagnostic of ours, not an experiment of the paper.

Rows are kept in ``<work>/st_probe/<run>-z<k>.json``; the ``slot-transformer-balls-probe`` section of
docs/results.md is redrawn from all of them.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._clevrer import row_parser, run_all  # noqa: E402
from benchmarks._results import fmt, mean_se, provenance, stamp  # noqa: E402
from benchmarks.slot_transformer_balls import RUNS, batches, open_clips, seed_families  # noqa: E402

SECTION = "slot-transformer-balls-probe"


@torch.no_grad()
def frozen_inputs(model, ds) -> tuple[list[dict[str, torch.Tensor]], torch.Tensor]:
    """The head's inputs from each iteration of the frozen ``model`` on every clip of ``ds`` and the labels:
    ``([{z, masks, first, last} per iteration], labels)``; the frame embeddings are one tensor for all iterations."""
    model.eval()
    torch.manual_seed(0)  # a generative model samples z
    per_iteration: list[dict[str, list[torch.Tensor]]] = []
    frames: dict[str, list[torch.Tensor]] = {"first": [], "last": []}
    labels = []
    for batch in batches(ds, 64):
        out = model.infer(batch["video"])
        frames["first"].append(out["features"][:, 0])
        frames["last"].append(out["features"][:, -1])
        for k, it in enumerate(out["iterations"]):
            if k == len(per_iteration):
                per_iteration.append({"z": [], "masks": []})
            per_iteration[k]["z"].append(it.z)
            per_iteration[k]["masks"].append(it.decoded.masks)
        labels.append(batch["label"])
    shared = {key: torch.cat(v) for key, v in frames.items()}
    return [{**shared, **{key: torch.cat(v) for key, v in inputs.items()}} for inputs in per_iteration], torch.cat(labels)


def head_logits(head, inputs: dict[str, torch.Tensor], rows: torch.Tensor | slice) -> torch.Tensor:
    return head(inputs["z"][rows], inputs["masks"][rows], inputs["first"][rows], inputs["last"][rows], "classes")


def train_head(model, cfg, inputs: dict[str, torch.Tensor], labels: torch.Tensor, steps: int) -> torch.nn.Module:
    """A new head of ``model``'s architecture (initialised from the run's seed) trained on frozen ``inputs`` as
    the run trained its whole model: ``optim.main`` and its schedule, ``data.batch_size``, ``train.grad_clip``."""
    from slotvideo.registry import lookup
    from slotvideo.train.optim import effective_lr, lr_lambda

    torch.manual_seed(int(cfg.seed))
    head = type(model)(model.cfg).head      # the run's head, freshly initialised
    opt_cfg, size = cfg.optim.main, int(cfg.data.batch_size)
    lr = effective_lr(opt_cfg, size)
    optimizer = lookup("optimizer", opt_cfg.name)([{"params": list(head.parameters()), "lr": lr}], opt_cfg,
                                                  key="optim.main")
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(opt_cfg.schedule, steps, lr))
    order = torch.Generator().manual_seed(int(cfg.seed))
    perm, at = torch.randperm(len(labels), generator=order), 0
    head.train()
    for _ in range(steps):
        if at + size > len(perm):              # epochs of shuffled clips; the last partial batch is dropped
            perm, at = torch.randperm(len(labels), generator=order), 0
        rows = perm[at:at + size]
        at += size
        loss = model.qa_loss("classes", head_logits(head, inputs, rows), labels[rows]).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if cfg.train.grad_clip:
            torch.nn.utils.clip_grad_norm_(head.parameters(), float(cfg.train.grad_clip))
        optimizer.step()
        schedule.step()
    return head.eval()


@torch.no_grad()
def head_scores(model, head, inputs: dict[str, torch.Tensor], labels: torch.Tensor) -> dict[str, float]:
    """Mean top-1, top-5 and grid L1 of ``head`` on ``inputs`` (the run's own ``accuracy``)."""
    logits = torch.cat([head_logits(head, inputs, slice(s, s + 256)) for s in range(0, len(labels), 256)])
    return {k: float(v.float().mean()) for k, v in model.accuracy("classes", logits, labels).items()}


def run(name: str, args: argparse.Namespace, work: Path) -> list[dict]:
    from slotvideo.train.checkpoint import load_run

    run_dir = work / "runs" / f"st-balls-{name}"
    if not (run_dir / "checkpoints" / "last.ckpt").exists():
        raise SystemExit(f"{run_dir}: no trained run; train it first: python benchmarks/slot_transformer_balls.py "
                         f"--work {args.work} --runs {name}")
    cfg, model, step = load_run(run_dir)
    model.requires_grad_(False)
    t = time.time()
    train_inputs, train_labels = frozen_inputs(model, open_clips(cfg, "train", cfg.data.train.num))
    test_inputs, test_labels = frozen_inputs(model, open_clips(cfg, "test", args.test_samples))
    joint_path = work / "st_balls" / f"{name}.json"
    joint = json.loads(joint_path.read_text())["test"]["top1"] if joint_path.exists() else None
    out = work / "st_probe"
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    steps = args.steps or step
    for k, (tr, te) in enumerate(zip(train_inputs, test_inputs), start=1):
        head = train_head(model, cfg, tr, train_labels, steps)
        row = {"run": name, "iteration": k, "iterations": len(train_inputs), "run_steps": step, "steps": steps,
               "train_clips": len(train_labels), "test_samples": len(test_labels), "joint_test_top1": joint,
               "train": head_scores(model, head, tr, train_labels), "test": head_scores(model, head, te, test_labels),
               "probe_s": round(time.time() - t, 1), **stamp()}
        (out / f"{name}-z{k}.json").write_text(json.dumps(row, indent=1))
        print(f"{name} z{k}", json.dumps({s: row[s] for s in ("train", "test")}), flush=True)
        rows.append(row)
        t = time.time()
    return rows


def render(work: Path) -> str:
    found = {p.stem: json.loads(p.read_text()) for p in sorted((work / "st_probe").glob("*.json"))}
    order = {n: i for i, n in enumerate(RUNS)}
    rows = dict(sorted(found.items(), key=lambda kv: (order.get(kv[1]["run"], len(order)), kv[1]["run"],
                                                       kv[1]["iteration"])))
    lines = ["## Slot Transformer: do the frozen slots hold the answer? (Bouncing Balls, task `locate`)", "",
             *provenance(rows.values()),
             "`benchmarks/slot_transformer_probe.py`: each row freezes a run of `slot_transformer_balls.py` and "
             "trains a fresh task head (the run's architecture, optimiser, schedule, batch size, gradient clip and "
             "steps, initialised from the run's seed) on the latents `z_k` and masks of iteration k, on the run's "
             "training clips; scored on them and on held-out test clips. *Run's head*: the run's own head, "
             "trained with its slots, on the same test clips.", "",
             "| run | iterations | probed | steps | probe train top-1 | probe test top-1 | probe test top-5 | "
             "probe test L1 | run's head test top-1 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in rows.values():
        lines.append(f"| {r['run']} | {r['iterations']} | z_{r['iteration']} | {r['steps']} | {fmt(r['train']['top1'])} | "
                     f"{fmt(r['test']['top1'])} | {fmt(r['test']['top5'])} | {fmt(r['test']['l1'])} | "
                     f"{fmt(r['joint_test_top1'])} |")
    means = []
    for k in sorted({r["iteration"] for r in rows.values()}):
        by_run = {r["run"]: r for r in rows.values() if r["iteration"] == k}
        for n, seeds in seed_families(by_run).items():
            joint = [r["joint_test_top1"] for r in seeds if r["joint_test_top1"] is not None]
            means.append((order.get(n, len(order)), k,
                          f"| {n}, {len(seeds)} seeds: mean ± s.e. | {seeds[0]['iterations']} | z_{k} | | "
                          f"{mean_se(r['train']['top1'] for r in seeds)} | {mean_se(r['test']['top1'] for r in seeds)} | "
                          f"{mean_se(r['test']['top5'] for r in seeds)} | {mean_se(r['test']['l1'] for r in seeds)} | "
                          f"{mean_se(joint) if len(joint) == len(seeds) else '-'} |"))
    lines += [line for *_, line in sorted(means)]
    if rows:
        n = next(iter(rows.values()))["test_samples"]
        lines += ["", f"One standard error of a top-1 near 0.5 on {n} clips: {0.5 / np.sqrt(n):.3f}."]
    return "\n".join(lines)


def main() -> int:
    parser = row_parser(__doc__, ".cache/st_balls", RUNS, ["locate-h0-872-noframes"], 0, SECTION,
                        steps_help="the probe's steps (0: as many as the run trained)")
    parser.add_argument("--test-samples", type=int, default=1000, help="test-split clips scored")
    args = parser.parse_args()
    return run_all(args, run, render, args.section)


if __name__ == "__main__":
    raise SystemExit(main())
