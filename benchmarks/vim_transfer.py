"""VIM Experiment 3 (section 5.3, Figure 7): transfer the dynamics of unseen objects to known balls.

    python benchmarks/vim_transfer.py                   # reuse/train vim4, score, write docs

The inference model of ``vim4`` (trained on coloured balls) reads Random Walk OOD videos (squares,
triangles, crosses, diamonds of other sizes and colours, same atomic dynamics) and its module selections
are recorded (the posterior's mode: the most probable module of every transition). A context frame with training-like balls at the OOD objects' first positions is rendered,
slots are discovered in it, each ball's slot gets the selections of the slot that tracked the same object
in the OOD video (both matched on frame 0 by the centroid of what each slot draws), and the selections are replayed with the
prior's mean update (``VIM.replay``). Scored: position error (pixels) of the transferred balls against
the OOD objects' true trajectory, per step, next to the error of "no transfer" (balls left where they
started). Writes the ``vim_transfer`` section of docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import command, machine, publish  # noqa: E402
from benchmarks.vim_common import (DATA_PARAMS, VIM_RUNS, gather_slots, load, match_slots,  # noqa: E402
                                   test_batches, train_run)
from slotvideo.data.generated import composite, coverage  # noqa: E402
from slotvideo.data.synthetic.colors import shared_colors  # noqa: E402
from slotvideo.data.synthetic.random_walk import shape_sdf  # noqa: E402
from slotvideo.models.vim import object_centroids  # noqa: E402

OOD = {"resolution": DATA_PARAMS["resolution"], "num_frames": 6, "num_objects": 3, "step": DATA_PARAMS["step"],
       "radius_min": 1.0, "radius_max": 2.5}


def known_balls(positions0: torch.Tensor) -> torch.Tensor:
    """Context frames ``[B, 3, H, W]``: training-style balls (radius, palette) at ``positions0 [B, N, 2]``."""
    res, n = DATA_PARAMS["resolution"], positions0.shape[1]
    frames = []
    for pos in positions0.numpy():  # the renderer draws one scene at a time
        alpha = coverage(shape_sdf(np.zeros(n, dtype=np.int64), pos[None], np.full(n, DATA_PARAMS["radius"]), res, res), True)
        video, _, _ = composite(alpha, shared_colors(0, n), np.arange(n))
        frames.append(torch.from_numpy(video[0]).permute(2, 0, 1).float() / 255)
    return torch.stack(frames)


@torch.no_grad()
def transfer_errors(model, num: int) -> tuple[np.ndarray, np.ndarray]:
    transferred, static = [], []
    for batch in test_batches("random-walk-ood", OOD, num, 32):
        out = model.infer(batch.video, iterations=1, sample=False)   # the posterior's most probable selections
        ood_slot = match_slots(model, out["slots"][:, 0], batch.positions[:, 0])
        chosen = gather_slots(out["selection"][:, :, 0].argmax(-1), ood_slot)        # [B, T-1, N] per object
        context = known_balls(batch.positions[:, 0])
        h0, _ = model.discover(context)
        ball_slot = match_slots(model, h0, batch.positions[:, 0])  # [B, N]
        modules = torch.zeros(*chosen.shape[:2], model.cfg.num_slots, dtype=torch.long)  # unmatched slots: module 0
        modules.scatter_(2, torch.as_tensor(ball_slot)[:, None].expand(-1, chosen.shape[1], -1), chosen)
        replay = model.replay(context, modules[:, :, None])
        centroids = gather_slots(object_centroids(replay.extra["decoded"]), ball_slot)   # [B, T, N, 2]
        transferred.append((centroids - batch.positions).norm(dim=-1).mean(2))
        static.append((batch.positions[:, :1] - batch.positions).norm(dim=-1).mean(2))
    return torch.cat(transferred).mean(0).numpy(), torch.cat(static).mean(0).numpy()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/vim_bench"))
    parser.add_argument("--num", type=int, default=128)
    parser.add_argument("--vim", default="vim4", choices=VIM_RUNS,
                        help="the VIM run whose module selections are transferred")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args()
    torch.manual_seed(0)
    run = train_run(args.vim, args.run_dir)
    model, step = load(run)
    moved, still = transfer_errors(model, args.num)
    steps = len(moved)
    text = "\n".join([
        "## VIM: dynamics transfer from OOD objects (Experiment 3, Figure 7)",
        "",
        f"`{command()}` on {machine()}.",
        "",
        f"`{args.vim}` ({step} CPU steps on half-scale balls) reads {args.num} Random Walk OOD videos; its module "
        "selections (the posterior's most probable module per transition) are replayed on training-like balls placed at the OOD objects' first positions. Position "
        "error in pixels (centroid of what each ball's slot draws) against the OOD trajectory, per frame "
        "(frame 0 = context):",
        "",
        "| | " + " | ".join(f"t={t}" for t in range(steps)) + " |",
        "|---" * (steps + 1) + "|",
        "| transferred | " + " | ".join(f"{e:.2f}" for e in moved) + " |",
        "| no motion | " + " | ".join(f"{e:.2f}" for e in still) + " |",
    ])
    publish("vim_transfer", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
