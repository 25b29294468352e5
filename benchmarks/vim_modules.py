"""VIM Figure 3: the number of modules (1, 2, 4, 5) at an equal transition parameter count.

    python benchmarks/vim_modules.py                  # train (or reuse) vim1, vim2eq, vim4, vim5eq; score; write docs
    python benchmarks/vim_modules.py --run-dir runs/vim_bench --num 256
    python benchmarks/vim_modules.py --recipe bal --run-dir runs/vim_fig3 --steps 9000   # vim1bal .. vim5bal

``--recipe first`` trains the plain configuration (sections 3.1-3.3 as written); ``--recipe bal`` the
recipe under which the modules learn the four moves (``vim4bal``: bounded selection logits, keys from the
candidate states, a load-balancing term; Experiment 1). Every model has 4 slots; the module banks hold 51.4k (1 module of width 144), 50.2k (2 of 96), 50.6k
(4 of 64) and 50.8k (5 of 56) parameters (``RUNS`` in ``benchmarks/vim_common.py``). Scored on 10-frame
held-out Random Walk sequences through the inference model (posterior, hard module selections): the
reconstruction MSE of every frame and the KL of every transition (Gaussian + module KL), i.e. Figure 3's
two curves over 10 steps. Bar: the 1-module model is clearly worse, i.e. its mean MSE over the 10 steps
exceeds that of every multi-module model by more than two standard errors. Writes the ``vim_modules``
section of docs/results.md and ``docs/img/vim_num_modules.png``.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import command, machine, publish  # noqa: E402
from benchmarks.vim_common import DATA_PARAMS, IMG, STEPS, load, test_batches, train_run  # noqa: E402

#: recipe -> run of ``RUNS`` -> row label; the first run of each recipe is the 1-module model
RECIPES = {"first": {"vim1": "1 module", "vim2eq": "2 modules", "vim4": "4 modules", "vim5eq": "5 modules"},
           "bal": {"vim1bal": "1 module", "vim2bal": "2 modules", "vim4bal": "4 modules", "vim5bal": "5 modules"}}
FRAMES = 10


@torch.no_grad()
def curves(model, num: int) -> tuple[np.ndarray, np.ndarray]:
    """Per video: MSE of each of the 10 frames ``[N, 10]`` and KL of each of the 9 transitions ``[N, 9]``."""
    errors, kls = [], []
    for batch in test_batches("random-walk", {**DATA_PARAMS, "num_frames": FRAMES}, num, 32):
        out = model.infer(batch.video)
        recon = model.decode(out["slots"]).recon.clamp(0, 1)
        errors.append((recon - batch.video).square().mean((2, 3, 4)))
        kls.append(out["kl_z"] + out["kl_r"])
    return torch.cat(errors).numpy(), torch.cat(kls).numpy()


def mean_and_se(values: np.ndarray) -> tuple[float, float]:
    """Mean over videos and its standard error."""
    return float(values.mean()), float(values.std() / len(values) ** 0.5)


def clearly_worst(scores: dict[str, tuple[float, float]], single: str) -> bool:
    """Whether ``single``'s score (lower is better) exceeds every other's by more than two standard errors."""
    one, one_se = scores[single]
    return all(one - m > 2 * np.hypot(one_se, s) for n, (m, s) in scores.items() if n != single)


def figure(results: dict[str, tuple[np.ndarray, np.ndarray]], rows: dict[str, str], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (left, right) = plt.subplots(1, 2, figsize=(8, 3))
    for name, (err, kl) in results.items():
        left.plot(range(FRAMES), 1e3 * err.mean(0), marker="o", label=rows[name])
        right.plot(range(1, FRAMES), kl.mean(0), marker="o", label=rows[name])
    left.set(xlabel="frame", ylabel="MSE x 1e-3", title="reconstruction")
    right.set(xlabel="transition", ylabel="nats", title="KL (Gaussian + module)")
    left.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/vim_bench"))
    parser.add_argument("--num", type=int, default=256, help="test videos scored")
    parser.add_argument("--steps", type=int, default=STEPS, help="training steps per model")
    parser.add_argument("--recipe", choices=sorted(RECIPES), default="first", help="which runs (see above)")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()

    torch.manual_seed(0)
    rows = RECIPES[args.recipe]
    results = {name: curves(load(train_run(name, args.run_dir, args.steps))[0], args.num) for name in rows}
    mse = {n: mean_and_se(err.mean(1)) for n, (err, _) in results.items()}
    kl = {n: mean_and_se(k.sum(1)) for n, (_, k) in results.items()}
    lines = [f"| {rows[n]} (`{n}`) | {1e3 * m:.2f} +- {1e3 * s:.2f} | {kl[n][0]:.1f} +- {kl[n][1]:.1f} | "
             + " ".join(f"{1e3 * e:.1f}" for e in results[n][0].mean(0)) + " |" for n, (m, s) in mse.items()]
    single = next(iter(rows))
    met, met_kl = clearly_worst(mse, single), clearly_worst(kl, single)
    suffix = "" if args.recipe == "first" else f"_{args.recipe}"   # the first recipe keeps the original names
    section, image = f"vim_modules{suffix}", f"vim_num_modules{suffix}.png"
    text = "\n".join([
        f"## VIM: number of modules (Figure 3), recipe `{args.recipe}`",
        "",
        f"`{command()}` on {machine()}.",
        "",
        f"Random Walk at half scale (16x16, 3 balls), 4 slots, {args.steps} training steps per model (recipe and budget in "
        "`benchmarks/vim_common.py`), module banks of equal size (~50k parameters). Inference model on "
        f"{args.num} held-out {FRAMES}-frame sequences: mean MSE over the frames (mean +- standard error over "
        f"videos), KL summed over the 9 transitions (the same), and the MSE of each frame; plot in `docs/img/{image}`.",
        "",
        "| modules | MSE (x1e-3) | KL (nats) | MSE per frame 0..9 (x1e-3) |",
        "|---|---|---|---|",
        *lines,
        "",
        "Bar (the 1-module model clearly worse than 2, 4 and 5 modules, i.e. above each of them by more than two "
        f"standard errors): in MSE **{'met' if met else 'missed'}**; in KL **{'met' if met_kl else 'missed'}**.",
    ])
    publish(section, text, write=not args.no_write)
    if not args.no_write:
        figure(results, rows, IMG / image)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
