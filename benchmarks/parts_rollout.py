"""PARTS experiments 4-5 at CPU scale: roll-outs of PARTS vs OP3 (4.2, Figure 6) and latent traversals (5.3).

    python benchmarks/parts_rollout.py                  # the budget run written to docs/results.md
    python benchmarks/parts_rollout.py --budget 120     # seconds of training per model
    python benchmarks/parts_rollout.py --quick          # smoke run: a few steps, nothing written
    python benchmarks/parts_rollout.py --budget 1e9 --max-steps 2000 --threads 1 \
        --set model.initial_posterior=learned             # step-budget run, as in docs/results.md

Both models train on ``configs/parts/camera_balls_rollout.yaml`` (4 burn-in frames then 12 predicted,
actions given) and are scored on held-out 19-frame clips: 4 observed frames, then 15 roll-out steps with
the predictor and the recorded actions alone; MSE per roll-out step. Also written: a GIF of PARTS's
predicted frames and masks (``docs/img/parts_rollout.gif``) and a latent traversal grid
(``docs/img/parts_traversal.png``: one latent dimension of one slot of the last inferred frame moved from
-2 to 2 around its posterior mean, decoded, one row per dimension).
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import command, git_commit, machine, write_section  # noqa: E402
from benchmarks.parts_segmentation import add_budget_args, budget_text, loader, train_row  # noqa: E402
from slotvideo.data.video_io import write_video  # noqa: E402
from slotvideo.viz.overlay import colorize_segmentation  # noqa: E402

IMG = ROOT / "docs" / "img"
OUT = ROOT / "benchmarks" / "out"
ROWS = [("PARTS", []), ("OP3", ["model.name=op3", "model.refinement=iodine", "model.prior=predictive",
                                "model.predictor=lstm"])]
BURN_IN = 4


@torch.no_grad()
def rollout_mse(model: Any, cfg: Any, num: int) -> tuple[list[float], Any, Any]:
    model.eval()
    errors, first = [], None
    for batch in loader(cfg, "val", num, False, 0):
        video, actions = batch["video"], batch["actions"]
        steps = video.shape[1] - BURN_IN
        torch.manual_seed(0)
        out = model.rollout(video[:, :BURN_IN], steps, actions=actions)
        errors.append((out.recon - video[:, BURN_IN:]).square().mean(dim=(2, 3, 4)))
        if first is None:
            first = (video[0], out)
    return torch.cat(errors).mean(0).tolist(), first[0], first[1]


@torch.no_grad()
def traversal(model: Any, cfg: Any, slot: int = 0, dims: int = 6, values: int = 7) -> np.ndarray:
    """Rows: latent dims; columns: offsets in [-2, 2] added to the posterior mean of one slot (5.3)."""
    model.eval()
    batch = next(iter(loader(cfg, "val", 1, False, 0)))
    torch.manual_seed(0)
    out = model.unroll(batch["video"][:, :BURN_IN], batch["actions"], observe=BURN_IN)
    mean = out["slots"][0, -1]                                          # [K, D]
    offsets = torch.linspace(-2, 2, values)
    z = mean.expand(dims, values, *mean.shape).clone()                  # [dims, values, K, D]
    for d in range(min(dims, mean.shape[-1])):
        z[d, :, slot, d] += offsets
    recon = model.decoder(z).recon.clamp(0, 1)                          # [dims, values, 3, H, W]
    grid = recon.permute(0, 3, 1, 4, 2).reshape(dims * recon.shape[-2], values * recon.shape[-1], 3)
    return (grid.numpy() * 255).astype(np.uint8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_budget_args(parser, eval_num=32)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.quick:
        args.budget, args.eval_num = 5.0, 8

    curves, steps, media = {}, {}, None
    for name, overrides in ROWS:
        model, info = train_row("camera_balls_rollout", [*args.set, *overrides], args.budget,
                                args.max_steps if not args.quick else 2, args.seed)
        curves[name], video, out = rollout_mse(model, info["cfg"], args.eval_num)
        steps[name] = info["steps"]
        print(json.dumps({"name": name, "steps": info["steps"], "mse": curves[name]}), flush=True)
        if name == "PARTS":
            media = (video, out, traversal(model, info["cfg"]))
    if args.quick:
        return
    video, out, grid = media
    IMG.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    scale = 4
    Image.fromarray(grid).resize((grid.shape[1] * scale, grid.shape[0] * scale), Image.NEAREST).save(
        IMG / "parts_traversal.png")
    truth = (video[BURN_IN:].permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    pred = (out.recon[0].clamp(0, 1).permute(0, 2, 3, 1).numpy() * 255).astype(np.uint8)
    masks = colorize_segmentation(out.masks[0].argmax(1).numpy())
    frames = np.concatenate([truth, pred, masks], axis=2).repeat(scale, 1).repeat(scale, 2)
    write_video(IMG / "parts_rollout.gif", frames, fps=4)
    OUT.mkdir(parents=True, exist_ok=True)
    (OUT / "parts_rollout.json").write_text(json.dumps({"mse": curves, "steps": steps}, indent=1))
    lines = ["## PARTS: roll-outs (4.2) and latent traversals (5.3)", "",
             f"`{command()}` (commit {git_commit()}; {machine()})", "",
             f"Trained on Camera Balls, 4 burn-in + 12 predicted frames, {budget_text(args)} (PARTS "
             f"{steps['PARTS']} steps, OP3 {steps['OP3']} steps); scored on {args.eval_num} held-out clips, "
             "4 observed frames then 15 roll-out steps with the recorded actions. MSE per roll-out step:", "",
             "| model | " + " | ".join(str(i + 1) for i in range(len(curves["PARTS"]))) + " |",
             "|---|" + "---|" * len(curves["PARTS"])]
    for name, c in curves.items():
        lines.append(f"| {name} | " + " | ".join(f"{v:.4f}" for v in c) + " |")
    lines += ["", "`docs/img/parts_rollout.gif`: truth | PARTS prediction | predicted masks. "
              "`docs/img/parts_traversal.png`: slot 0, latent dims 0-5 (rows), offsets -2..2 (columns)."]
    write_section("parts_rollout", "\n".join(lines))


if __name__ == "__main__":
    main()
