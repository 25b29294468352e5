"""PARTS experiments 1-3 at CPU scale: Table 1/2 segmentation, fixed vs predictive prior (5.1), top-down (5.2).

    python benchmarks/parts_segmentation.py                  # the budget run written to docs/results.md
    python benchmarks/parts_segmentation.py --budget 120     # seconds of training per row
    python benchmarks/parts_segmentation.py --quick          # smoke run: a few steps, nothing written
    python benchmarks/parts_segmentation.py --budget 1e9 --max-steps 5000 --threads 1 \
        --datasets camera_balls --set model.initial_posterior=learned   # step-budget rows, as in docs/results.md

Rows (each trains ``configs/parts/<dataset>.yaml`` with the switches shown, for a fixed wall-clock budget):
PARTS, S-IODINE and OP3 on Camera Balls (Table 1/2), PARTS with a predictive prior (5.1) and with
no top-down queries (5.2) on Camera Balls, and PARTS on Bouncing Balls (the issue's FG-ARI >= 0.85 bar).
Scores on the held-out split: FG-ARI of the last frame (the paper's metric) and over whole clips, MSE.
Experiment 2 then unrolls the fixed- and predictive-prior models on a static scene (the first frame
repeated 32 times, zero actions) and records per-step KL, MSE and FG-ARI; experiment 3 saves the
attention maps of both query variants over one frame (docs/img/parts_attention.png).

The loop is minimal (workbench configs, model and datasets; no Fabric or checkpoints) so that six short
runs fit on a shared two-core CPU.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import command, git_commit, machine, write_section  # noqa: E402
import slotvideo.data.synthetic.camera  # noqa: E402,F401  (registers camera-balls)
from slotvideo.data.batch import collate  # noqa: E402
from slotvideo.data.generated import open_dataset  # noqa: E402
from slotvideo.metrics.ari import fg_ari  # noqa: E402
from slotvideo.train.config import build_model, load_config  # noqa: E402

IMG = ROOT / "docs" / "img"
# Training clips per dataset: a budget run sees a few hundred batches at most, so more would never be used.
TRAIN_NUM = 256
OUT = ROOT / "benchmarks" / "out"
SWITCHES = ["model.refinement", "model.prior", "model.use_actions", "model.predictor", "model.top_down"]
ROWS: list[tuple[str, str, list[str]]] = [
    ("PARTS", "camera_balls", []),
    ("S-IODINE", "camera_balls", ["model.name=s-iodine", "model.refinement=iodine", "model.use_actions=false",
                                  "model.predictor=lstm"]),
    ("OP3", "camera_balls", ["model.name=op3", "model.refinement=iodine", "model.prior=predictive",
                             "model.predictor=lstm"]),
    ("PARTS, predictive prior", "camera_balls", ["model.prior=predictive"]),
    ("PARTS, no top-down", "camera_balls", ["model.top_down=false"]),
    ("PARTS", "bouncing_balls", []),
]


_DATA: dict[str, list] = {}


def loader(cfg: Any, split: str, num: int, shuffle: bool, seed: int) -> torch.utils.data.DataLoader:
    # Generated once per (dataset, params, split) and kept in memory: the rows share their data.
    key = json.dumps([cfg.data.name, dict(cfg.data.params), split, num, cfg.data.seed], sort_keys=True, default=str)
    if key not in _DATA:
        ds = open_dataset(cfg.data.name, split, num=num, seed=cfg.data.seed, params=dict(cfg.data.params))
        _DATA[key] = [ds[i] for i in range(len(ds))]
    ds = _DATA[key]
    return torch.utils.data.DataLoader(ds, batch_size=cfg.data.batch_size, shuffle=shuffle, collate_fn=collate,
                                       generator=torch.Generator().manual_seed(seed), drop_last=shuffle)


def train_row(dataset: str, overrides: list[str], budget: float, max_steps: int, seed: int) -> tuple[Any, dict]:
    cfg = load_config(ROOT / "configs" / "parts" / f"{dataset}.yaml", [f"seed={seed}", *overrides])
    torch.manual_seed(seed)
    model = build_model(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.optim.main.lr)
    loader(cfg, "train", TRAIN_NUM, True, seed)  # generate the data before the clock starts
    start, steps, losses = time.time(), 0, []
    model.train()
    while steps < max_steps and time.time() - start < budget:
        for batch in loader(cfg, "train", TRAIN_NUM, True, seed + steps):
            out = model(batch)
            opt.zero_grad()
            out.loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.train.grad_clip)
            opt.step()
            losses.append(float(out.loss.detach()))
            steps += 1
            if steps >= max_steps or time.time() - start >= budget:
                break
    return model, {"cfg": cfg, "steps": steps, "seconds": time.time() - start,
                   "loss_first": float(np.mean(losses[:10])), "loss_last": float(np.mean(losses[-10:]))}


@torch.no_grad()
def evaluate(model: Any, cfg: Any, num: int) -> dict[str, float]:
    model.eval()
    scores: dict[str, list[torch.Tensor]] = {}
    for batch in loader(cfg, "val", num, False, 0):
        torch.manual_seed(0)
        for key, value in model.evaluate_batch(batch).items():
            scores.setdefault(key, []).append(value)
    return {k: float(torch.nanmean(torch.cat(v))) for k, v in scores.items()}


@torch.no_grad()
def static_unroll(model: Any, cfg: Any, steps: int = 32, num: int = 16) -> dict[str, list[float]]:
    """5.1 / Figure 7: the first frame of each clip repeated ``steps`` times with zero actions."""
    model.eval()
    batch = next(iter(loader(cfg, "val", num, False, 0)))
    video = batch["video"][:, :1].expand(-1, steps, -1, -1, -1).contiguous()
    seg = batch["segmentation"][:, :1].expand(-1, steps, -1, -1)
    actions = torch.zeros(video.shape[0], steps, model.cfg.action_dim) if model.cfg.use_actions else None
    torch.manual_seed(0)
    out = model.unroll(video, actions, observe=steps)
    return {"kl": out["kl"].mean(0).tolist(),
            "mse": (out["recon"] - video).square().mean(dim=(0, 2, 3, 4)).tolist(),
            "fg_ari": torch.nanmean(fg_ari(seg, out["masks"], per="frame").float(), dim=0).tolist()}


@torch.no_grad()
def attention_maps(model: Any, cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    model.eval()
    batch = next(iter(loader(cfg, "val", 1, False, 0)))
    actions = batch["actions"] if model.cfg.use_actions else None
    torch.manual_seed(0)
    out = model.unroll(batch["video"], actions, observe=batch["video"].shape[1])
    res = model.cfg.resolution
    return batch["video"][0, -1].permute(1, 2, 0).numpy(), out["attention"][0, -1].reshape(-1, res, res).numpy()


def save_attention_png(frame: np.ndarray, maps: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    k = next(iter(maps.values())).shape[0]
    fig, axes = plt.subplots(len(maps), k + 1, figsize=(1.6 * (k + 1), 1.7 * len(maps)))
    for row, (name, att) in enumerate(maps.items()):
        axes[row, 0].imshow(frame)
        axes[row, 0].set_ylabel(name, fontsize=7)
        for j in range(k):
            a = (att[j] - att[j].min()) / (np.ptp(att[j]) + 1e-8)   # normalised to the visible range (5.2)
            axes[row, j + 1].imshow(frame * (0.25 + 0.75 * a[..., None]))
            axes[row, j + 1].set_title(f"slot {j}", fontsize=7)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)


def add_budget_args(parser: argparse.ArgumentParser, eval_num: int) -> None:
    """The training budget and scoring flags both PARTS benchmarks take."""
    parser.add_argument("--budget", type=float, default=150.0, help="training seconds per model")
    parser.add_argument("--max-steps", type=int, default=10**9, help="training steps per model")
    parser.add_argument("--eval-num", type=int, default=eval_num)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="overrides added to every model")
    parser.add_argument("--quick", action="store_true")


def budget_text(args: Any) -> str:
    """How each model was trained, for a results section."""
    steps = (f"{args.max_steps} steps" if args.budget >= 1e8 else
             f"at most {args.max_steps} steps or {args.budget:.0f} s of wall time")
    return (f"{steps} with {args.threads} torch thread(s) on a CPU shared with other training runs (the paper trains "
            f"up to 400k steps); overrides on every model: {' '.join(args.set) or 'none'}; one seed ({args.seed})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_args(parser, eval_num=64)
    parser.add_argument("--datasets", nargs="+", default=sorted({d for _, d, _ in ROWS}),
                        help="rows of these datasets only (camera_balls rows are always needed for 5.1 / 5.2)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.budget, args.max_steps, args.eval_num = 10.0, 2, 8

    results, models = [], {}
    for name, dataset, overrides in ROWS:
        if dataset not in args.datasets and dataset != "camera_balls":
            continue
        model, info = train_row(dataset, [*args.set, *overrides], args.budget, args.max_steps, args.seed)
        metrics = evaluate(model, info["cfg"], args.eval_num)
        models[(name, dataset)] = (model, info["cfg"])
        row = {"name": name, "dataset": dataset, "overrides": overrides, "steps": info["steps"],
               "seconds": round(info["seconds"], 1), "loss_first": info["loss_first"],
               "loss_last": info["loss_last"], **metrics}
        results.append(row)
        print(json.dumps(row), flush=True)

    fixed, predictive = models[("PARTS", "camera_balls")], models[("PARTS, predictive prior", "camera_balls")]
    unroll = {"fixed": static_unroll(*fixed), "predictive": static_unroll(*predictive)}
    frame, top_down = attention_maps(*fixed)
    _, no_top_down = attention_maps(*models[("PARTS, no top-down", "camera_balls")])
    if args.quick:
        print(json.dumps({k: {m: v[m][-1] for m in v} for k, v in unroll.items()}))
        return
    save_attention_png(frame, {"top-down": top_down, "no top-down": no_top_down}, IMG / "parts_attention.png")
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "parts_segmentation.json").write_text(json.dumps({"rows": results, "static_unroll": unroll}, indent=1))
    write_section("parts", report(results, unroll, args))


def report(results: list[dict], unroll: dict, args: Any) -> str:
    lines = [
        "## PARTS: segmentation (Table 1/2), fixed vs predictive prior (5.1), top-down queries (5.2)",
        "",
        f"`{command()}` (commit {git_commit()}; {machine()})",
        "",
        f"Each row trains for {budget_text(args)}; scored on {args.eval_num} held-out clips. FG-ARI last = "
        "foreground ARI of the last frame (the paper's metric); "
        "FG-ARI clip = over whole clips (slots must keep their objects).",
        "",
        "| model | data | steps | loss first -> last | FG-ARI last | FG-ARI clip | MSE |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(f"| {r['name']} | {r['dataset']} | {r['steps']} | {r['loss_first']:.0f} -> {r['loss_last']:.0f} "
                     f"| {r.get('fg_ari', float('nan')):.3f} | {r.get('fg_ari_video', float('nan')):.3f} "
                     f"| {r['mse']:.4f} |")
    lines += ["", "Static scene (first frame repeated 32 times, zero actions; 5.1 / Figure 7), steps 1, 8, 16, 32:", "",
              "| prior | KL | MSE | FG-ARI |", "|---|---|---|---|"]
    for name, curves in unroll.items():
        cells = [" / ".join(f"{curves[m][i]:.{p}f}" for i in (0, 7, 15, 31)) for m, p in
                 (("kl", 1), ("mse", 4), ("fg_ari", 3))]
        lines.append(f"| {name} | {cells[0]} | {cells[1]} | {cells[2]} |")
    lines += ["", "Attention of top-down vs no-top-down queries on one frame: `docs/img/parts_attention.png`."]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
