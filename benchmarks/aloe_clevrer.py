"""Aloe on generated CLEVRER-style data: MONet front-end, then Aloe and its ablations (issue experiments 1-3, 6).

    python benchmarks/aloe_clevrer.py --videos 240 --monet-steps 150 --aloe-steps 150 \\
        --variants aloe no_aux hierarchical mlp resnet

Pipeline: write ``clevrer-mini`` (32x32, 16 frames) under ``--work`` if absent; train MONet on its frames
(``configs/monet/clevrer_mini.yaml``); train each Aloe variant on the multiple-choice questions with the
frozen MONet (``configs/aloe/clevrer_mini.yaml`` + the variant's switches); score per-question and
per-option accuracy per question type on the val split (the official grouping, ClevrerPredictions); draw
the CLS attention over objects for one val video (``docs/aloe_attention.png``). Results go to the
``aloe`` section of ``docs/results.md``. Every budget is a flag: CPU runs are far shorter than the paper's.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from benchmarks._results import command, git_commit, machine, write_section  # noqa: E402

VARIANTS = {
    "aloe": [],
    "no_aux": ["model.aux_weight=0.0"],
    "hierarchical": ["model.encoder=hierarchical"],
    "mlp": ["model.encoder=mlp", "model.num_frames=16", "model.ablation_mlp_hidden=[256,256,256,256]"],
    "resnet": ["model.frontend=resnet", "model.frontend_checkpoint=", "model.resolution=32"],
    "contrastive": ["model.aux_loss=contrastive"],
}


def train_run(config: str, name: str, work: Path, overrides: list[str]) -> Path:
    from slotvideo.train.config import load_config
    from slotvideo.train.run import train

    run_dir = work / "runs" / name
    if (run_dir / "checkpoints" / "last.ckpt").exists():
        return run_dir
    cfg = load_config(config, [f"run.dir={work / 'runs'}", f"run.name={name}", f"data.cache_dir={work / 'cache'}",
                               "train.eval_every=0", "train.media_every=0", *overrides])
    train(cfg, progress=False)
    return run_dir


def score(run_dir: Path, work: Path) -> dict:
    """Per-question / per-option accuracy per type on the val split, grouped by question."""
    from slotvideo.data import open_dataset
    from slotvideo.data.batch import collate
    from slotvideo.data.clevrer import ClevrerPredictions
    from slotvideo.train.checkpoint import load_model, read_checkpoint
    from slotvideo.train.config import config_from_yaml

    cfg = config_from_yaml(read_checkpoint(run_dir)["config_yaml"])
    model = load_model(run_dir)
    ds = open_dataset("clevrer", "val", params=dict(cfg.data.params), cache_dir=cfg.data.cache_dir)
    preds = ClevrerPredictions()
    with torch.no_grad():
        for start in range(0, len(ds), 32):
            batch = collate([ds[i] for i in range(start, min(start + 32, len(ds)))])
            preds.add(batch, model.task_logits(batch))
    return preds.accuracy.compute()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=".cache/aloe_bench")
    p.add_argument("--videos", type=int, default=240)
    p.add_argument("--monet-steps", type=int, default=150)
    p.add_argument("--aloe-steps", type=int, default=150)
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--label-fractions", nargs="*", type=float, default=[])
    args = p.parse_args()
    work = Path(args.work).resolve()
    root = work / "clevrer-mini"
    from slotvideo.data.reasoning import generate_layout

    if not (root / "questions").is_dir():
        generate_layout("clevrer-mini", root, args.videos, seed=0, workers=2, progress=False,
                        params={"size": 32, "num_frames": 16, "future_frames": 8})
    data = [f"data.params.root={root}"]
    t0 = time.time()
    monet = train_run("configs/monet/clevrer_mini.yaml", "monet", work, data + [f"train.steps={args.monet_steps}",
                                                                             f"train.ckpt_every={args.monet_steps}"])
    monet_s = time.time() - t0
    frozen = [f"model.frontend_checkpoint={monet}", "model.monet={}", "model.monet_pretrain_steps=0"]
    rows = {}
    runs = [(v, VARIANTS[v], 1.0) for v in args.variants]
    runs += [(f"{v}_labels{int(f * 100)}", VARIANTS[v], f) for f in args.label_fractions for v in ("aloe", "no_aux")]
    for name, switches, fraction in runs:
        t = time.time()
        run = train_run("configs/aloe/clevrer_mini.yaml", name, work,
                        data + frozen + [f"train.steps={args.aloe_steps}", f"train.ckpt_every={args.aloe_steps}",
                                         f"model.label_fraction={fraction}", *switches])
        rows[name] = {**score(run, work), "seconds": round(time.time() - t, 1)}
        print(name, json.dumps(rows[name]), flush=True)
    (work / "results.json").write_text(json.dumps(rows, indent=1))
    keys = ["explanatory_per_option", "explanatory_per_question", "predictive_per_option", "predictive_per_question",
            "counterfactual_per_option", "counterfactual_per_question", "multiple_choice_per_question"]
    header = "| variant | " + " | ".join(k.replace("_", " ") for k in keys) + " | s |\n|---|" + "---|" * (len(keys) + 1)
    lines = [f"| {n} | " + " | ".join(f"{r.get(k, float('nan')):.3f}" if isinstance(r.get(k), float) else "-"
                                      for k in keys) + f" | {r['seconds']} |" for n, r in rows.items()]
    md = (f"### Aloe on clevrer-mini (multiple-choice questions)\n\n{machine()}; commit {git_commit()}\n\n"
          f"`{command()}`\n\nMONet {args.monet_steps} steps ({monet_s:.0f} s), each Aloe variant {args.aloe_steps} "
          f"steps, {args.videos} generated videos (32x32, 16 frames). Val split, official per-option / "
          f"per-question grouping.\n\n{header}\n" + "\n".join(lines) + "\n")
    write_section("aloe", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
