"""VIM: does the inference model follow the balls? Per-frame reconstruction and segmentation of test videos.

    python benchmarks/vim_common.py vim4 vim4kl --steps 8000 --run-dir runs/vim_long   # train (resumable)
    python benchmarks/vim_tracking.py --run-dir runs/vim_long --runs vim4 vim4kl

Every VIM experiment reads the posterior states ``h_t`` of the inference model (the discovery slots
``h_0`` of frame 0, then one select-and-update step per frame). This check says whether those states
still describe the frame: for each frame of ``--num`` 10-frame test videos, the MSE of the decoded
reconstruction and the FG-ARI of the decoded masks, beside two references that need no dynamics model:
an all-background frame (a model that has lost the balls) and ``h_0`` copied to every frame (a model
that keeps the balls where they were: with balls of radius 1.5 stepping 2 px this doubles their error,
so it is worse than the blank frame). A model that tracks has frames 1..9 well below both. Writes the
``vim_tracking`` section of docs/results.md.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks._results import command, machine, publish  # noqa: E402
from benchmarks.vim_common import DATA_PARAMS, load, test_batches  # noqa: E402
from slotvideo.metrics.ari import fg_ari  # noqa: E402


@torch.no_grad()
def per_frame(model, num: int, sample: bool = True) -> dict[str, torch.Tensor]:
    """``mse``, ``copy_mse``, ``blank_mse`` and ``fg_ari`` per frame ``[T]``, means over ``num`` test videos
    (``sample``: posterior samples, seed 0; otherwise the posterior's mode, see ``VIM.infer``)."""
    sums: dict[str, torch.Tensor] = {}
    torch.manual_seed(0)
    for batch in test_batches("random-walk", DATA_PARAMS, num, 32):
        video = batch.video
        slots = model.infer(video, sample=sample)["slots"]
        decoded = model.decode(slots)
        copied = model.decode(slots[:, :1].expand_as(slots)).recon.clamp(0, 1)
        scores = {"mse": (decoded.recon.clamp(0, 1) - video).square().mean((2, 3, 4)),
                  "copy_mse": (copied - video).square().mean((2, 3, 4)),
                  "blank_mse": video.square().mean((2, 3, 4)),   # Random Walk's background is black
                  "fg_ari": fg_ari(batch.segmentation, decoded.masks, per="frame")}
        for key, value in scores.items():
            sums[key] = sums.get(key, 0) + value.double().nan_to_num().sum(0)
    return {k: v / num for k, v in sums.items()}


def render(rows: dict[str, dict[str, list[float]]], steps: dict[str, int], num: int,
           forced: frozenset[str] = frozenset()) -> str:
    """``forced``: the teacher-forced runs (RIM, SCOFF), whose state at frame t has read frame t-1 only."""
    frames = len(next(iter(rows.values()))["mse"])
    head = "| | " + " | ".join(f"t={t}" for t in range(frames)) + " |"
    lines = ["## VIM: does the inference model track? (`benchmarks/vim_tracking.py`)", "",
             f"`{command()}` on {machine()}.", "",
             f"Per-frame means over {num} held-out 10-frame Random Walk videos (16x16, 3 balls of radius 1.5 stepping "
             "2 px); frame 0 is decoded from the discovery slots h_0, frame t from the posterior state h_t. References: "
             "an all-background frame, and h_0 decoded at every frame (balls left where they started). Rows marked "
             "(mode) run the posterior at its mode (most probable module, mean of q(z)); the others sample it (seed 0).",
             "",
             "MSE (x1e-3):", "", head, "|---" * (frames + 1) + "|"]
    first = next(iter(rows.values()))
    lines.append("| all-background frame | " + " | ".join(f"{x * 1e3:.1f}" for x in first["blank_mse"]) + " |")
    for name, r in rows.items():
        if not name.endswith("(mode)"):   # h_0 is the same with and without sampling
            lines.append(f"| h_0 copied ({name}) | " + " | ".join(f"{x * 1e3:.1f}" for x in r["copy_mse"]) + " |")
        lines.append(f"| **{name}** ({steps[name]} steps) | " + " | ".join(f"{x * 1e3:.1f}" for x in r["mse"]) + " |")
    lines += ["", "FG-ARI of the decoded masks:", "", head, "|---" * (frames + 1) + "|"]
    for name, r in rows.items():
        lines.append(f"| {name} | " + " | ".join(f"{x:.2f}" for x in r["fg_ari"]) + " |")
    verdicts = []
    for name, r in rows.items():
        later = sum(r["mse"][1:]) / (frames - 1)
        blank = sum(first["blank_mse"][1:]) / (frames - 1)
        note = " (teacher forcing: its state at frame t has read frame t-1, so it predicts the move)" if name in forced else ""
        verdicts.append(f"* {name}{note}: frames 1-{frames - 1} MSE {later * 1e3:.1f}e-3 against {blank * 1e3:.1f}e-3 for the "
                        f"blank frame: {'tracks' if later < 0.5 * blank else 'does not track yet'}.")
    lines += ["", "Verdict (tracking = later frames below half the blank frame's error):", "", *verdicts]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run-dir", type=Path, default=Path("runs/vim_bench"))
    parser.add_argument("--runs", nargs="+", default=["vim4"], help="trained runs under --run-dir")
    parser.add_argument("--num", type=int, default=256, help="test videos scored")
    parser.add_argument("--mode", nargs="*", default=[], help="runs also scored at the posterior mode")
    parser.add_argument("--no-write", action="store_true", help="print, do not touch docs/")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows, steps, forced = {}, {}, set()
    for name in args.runs:
        run = args.run_dir / name
        if not (run / "checkpoints" / "last.ckpt").exists():
            parser.error(f"{run} holds no checkpoint: train it with benchmarks/vim_common.py first")
        model, step = load(run)
        if model.cfg.teacher_forcing:
            forced.add(name)
        for label, sample in [(name, True)] + [(f"{name} (mode)", False)] * (name in args.mode):
            rows[label] = {k: v.tolist() for k, v in per_frame(model, args.num, sample).items()}
            steps[label] = step
            print(label, {k: [round(x, 4) for x in v] for k, v in rows[label].items()}, flush=True)
    text = render(rows, steps, args.num, frozenset(forced))
    publish("vim_tracking", text, write=not args.no_write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
