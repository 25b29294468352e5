"""VIM Experiment 1 (section 5.1, Figure 2): do the modules discover the four Random Walk rules?

    python benchmarks/vim_rules.py                      # train (or reuse) vim4 and vim5, score, write docs
    python benchmarks/vim_rules.py --run-dir runs/vim_long --runs vim4kl vim4   # other trained runs

Trains VIM with 4 and with 5 modules (K = 4 slots, 3 balls; budget in ``vim_common.CPU_OVERRIDES``),
runs the inference model at its posterior mode (most probable module, mean z) on held-out test videos
(and, for comparison, with sampled selections), matches each ball to a slot
by the centroid of what each slot draws (mask x colour brightness, ``object_centroids``) on the first
frame, and counts which module the ball's slot selected for every ground-
truth move. Target (the issue's bar): each direction explained by one module in >= 90% of its transitions,
and with 5 modules one module (almost) never selected. Writes the ``vim_rules`` section of
docs/results.md, ``docs/img/vim_rules_hist.png`` and ``docs/img/vim_modules.png`` (each module applied
repeatedly to one ball's slot).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import command, machine, publish  # noqa: E402
from benchmarks.vim_common import (DATA_PARAMS, IMG, MOVE_NAMES, STEPS, VIM_RUNS, direction_scores, load,  # noqa: E402
                                   gather_slots, match_slots, match_slots_to_balls, module_histogram, test_batches, train_run)
from slotvideo.models.vim import object_centroids  # noqa: E402
from slotvideo.nn.distributions import DiagonalGaussian  # noqa: E402
from slotvideo.nn.module_bank import select  # noqa: E402


#: the largest selection share that counts as "(almost) never selected" for a module no direction is given to
IDLE = 0.05


@torch.no_grad()
def apply_module_to_one_slot(model, frame: torch.Tensor, slot: int, module: int, steps: int) -> torch.Tensor:
    """Frames ``[steps + 1, 3, H, W]``: ``module`` applied ``steps`` times to ``slot``, other slots left alone."""
    h, _ = model.discover(frame[None])
    frames = [model.decode(h).recon[0]]
    for _ in range(steps):
        s, _ = model.candidates(h)
        f = select(s, F.one_hot(torch.full(h.shape[:2], module), model.cfg.num_modules).to(h.dtype))
        z = DiagonalGaussian.from_params(model.prior_net(f), min_std=model.cfg.min_std).mean
        moved = model.update(h, f, z)
        h = h.clone()
        h[:, slot] = moved[:, slot]
        frames.append(model.decode(h).recon[0])
    return torch.stack(frames).clamp(0, 1)


@torch.no_grad()
def module_displacements(model, batches) -> np.ndarray:
    """``[M, 2]``: mean (row, col) shift, in pixels, of a ball's slot when module m is applied once to every
    slot of frame 0 (prior-mean update), over all balls. A module that learned a rule moves balls 2 px one way."""
    total, count = np.zeros((model.cfg.num_modules, 2)), 0
    for batch in batches:
        b, k = batch.video.shape[0], model.cfg.num_slots
        for m in range(model.cfg.num_modules):
            replay = model.replay(batch.video[:, 0], torch.full((b, 1, 1, k), m))
            centroids = object_centroids(replay.extra["decoded"])                        # [B, 2, K, 2]
            centroids = gather_slots(centroids, match_slots_to_balls(centroids[:, 0], batch.positions[:, 0]))
            total[m] += (centroids[:, 1] - centroids[:, 0]).sum((0, 1)).numpy()
        count += b * batch.positions.shape[2]
    return total / max(count, 1)


def module_grid(model, batch, steps: int = 5, scale: int = 4) -> np.ndarray:
    """Rows: modules; columns: 0..steps applications to the slot of ball 0 of the first test video."""
    out = model.infer(batch.video[:1], iterations=1)
    slot = int(match_slots(model, out["slots"][:, 0], batch.positions[:1, 0])[0, 0])
    rows = [apply_module_to_one_slot(model, batch.video[0, 0], slot, m, steps) for m in range(model.cfg.num_modules)]
    grid = torch.stack(rows)                                              # [M, S+1, 3, H, W]
    grid = F.pad(grid, (1, 1, 1, 1), value=1.0)
    m, s, c, h, w = grid.shape
    img = grid.permute(0, 3, 1, 4, 2).reshape(m * h, s * w, c).numpy()
    return np.kron(img, np.ones((scale, scale, 1)))


def plot_histograms(hists: dict[str, np.ndarray], path: Path) -> None:
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(1, len(hists), figsize=(4.2 * len(hists), 3.4))
    for ax, (name, hist) in zip(np.atleast_1d(axes), hists.items()):
        share = hist / hist.sum(1, keepdims=True).clip(min=1)
        ax.imshow(share, vmin=0, vmax=1, cmap="viridis")
        ax.set_xticks(range(hist.shape[1]), [f"m{m}" for m in range(hist.shape[1])])
        ax.set_yticks(range(len(MOVE_NAMES)), MOVE_NAMES)
        for (i, j), v in np.ndenumerate(share):
            ax.text(j, i, f"{v:.2f}", ha="center", va="center", color="w" if v < 0.5 else "k", fontsize=8)
        ax.set_title(f"{name}: module chosen per GT move")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/vim_bench"))
    parser.add_argument("--num", type=int, default=256, help="test videos scored")
    parser.add_argument("--runs", nargs="+", default=["vim4", "vim5"], choices=VIM_RUNS,
                        help="VIM runs to score (the paper's: 4 and 5 modules); the first draws vim_modules.png")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()

    hists, lines = {}, []
    for name in args.runs:
        run = train_run(name, args.run_dir)
        model, step = load(run)
        hist, sampled = (module_histogram(model, test_batches("random-walk", DATA_PARAMS, args.num, 32),
                                          model.cfg.num_modules, sample=sample) for sample in (False, True))
        hists[f"{name}: {model.cfg.num_modules} modules"] = hist
        best, share = direction_scores(hist)
        usage = hist.sum(0) / hist.sum()
        # four different modules, >= 90% each, and the spare modules (if any) (almost) never selected
        met = (min(share) >= 0.9 and len(set(best)) == 4
               and all(usage[m] <= IDLE for m in range(model.cfg.num_modules) if m not in best))
        shift = module_displacements(model, test_batches("random-walk", DATA_PARAMS, min(args.num, 64), 32))
        lines.append(f"| `{name}` | {model.cfg.num_modules} | {step} | "
                     + "; ".join(f"{MOVE_NAMES[d]}: m{best[d]} {share[d]:.1%}" for d in range(4)) + " | "
                     + " ".join(f"{sampled[d, best[d]] / max(sampled[d].sum(), 1):.1%}" for d in range(4))
                     + f" | {' '.join(f'{u:.0%}' for u in usage)} | "
                     + " ".join(f"m{m} ({r:+.1f}, {c:+.1f})" for m, (r, c) in enumerate(shift))
                     + f" | {'met' if met else 'missed'} |")
        if name == args.runs[0] and not args.no_write:
            batch = next(iter(test_batches("random-walk", DATA_PARAMS, 1, 1)))
            from PIL import Image
            Image.fromarray((module_grid(model, batch) * 255).astype(np.uint8)).save(IMG / "vim_modules.png")
        print(name, hist.tolist())
    if not args.no_write:
        plot_histograms(hists, IMG / "vim_rules_hist.png")
    text = "\n".join([
        "## VIM: rule discovery (Experiment 1, Figure 2)",
        "",
        f"`{command()}` on {machine()}.",
        "",
        f"Random Walk at half scale (16x16, 3 balls), K = 4 slots, at least {STEPS} training steps on 2 CPU cores "
        "(budget and runs in `benchmarks/vim_common.py`; the paper trains for hundreds of epochs). Each ball of "
        f"{args.num} test videos (10 frames) is matched to a slot on frame 0 by the centroid of what the slot draws (mask x colour "
        "brightness: the plain mask centroid counts the black background each slot owns). The inference model "
        "runs at its posterior mode (the most probable module, no Gumbel noise, and the mean of q(z)); the table "
        "gives, for every ground-truth direction, the module its slot selected most often and that module's share "
        f"(bar: >= 90% each, four different modules; with more than 4 modules, every other module selected in at most {IDLE:.0%} "
        "of the transitions), then the same module's share when selections and z are "
        "sampled from the posterior as in training (hard Gumbel samples, seed 0), then how often each module is "
        "selected (mode), then the mean "
        "(row, col) shift in pixels of a ball's slot when each module is applied once to frame 0's slots "
        "(a learned rule moves a ball 2 px up, down, left or right).",
        "",
        "| run | modules | steps | best module per direction (share, mode) | same, sampled | module usage | "
        "shift per module (px) | bar (mode) |",
        "|---|---|---|---|---|---|---|---|",
        *lines,
        "",
        "![module histograms](img/vim_rules_hist.png) ![modules applied to one slot](img/vim_modules.png)",
    ])
    publish("vim_rules", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
