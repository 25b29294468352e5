"""Slot Transformer experiment 7 (Figure 7) measured: roll-outs from the conditional prior on Bouncing Balls.

    python benchmarks/slot_transformer_rollout.py --work .cache/st_bb_sa \
        --runs base-gen-warm6k-sigma-sep-seed1-16k --gif base-gen-warm6k-sigma-sep-seed1-16k

Scores runs trained by ``benchmarks/slot_transformer_segmentation.py`` (their folders under ``--work/runs``)
on held-out Bouncing Balls clips of 16 frames, generated with the run's own data settings but twice as long
(the runs trained on 8-frame clips). The model sees the first ``--context`` frames (6: the prior's observed
steps in training, ``T - model.prior_steps``) and samples the conditional prior for the rest (3.3, 3.6): the
prior transformer reads the observed steps, its autoregressive model predicts the slots' latents step by
step, and the decoder draws them. Nothing of the unseen frames reaches the model.

Per predicted step it writes: the roll-out's MSE (mean over ``--samples`` sampled futures, and the best of
them), the FG-ARI of the roll-out's masks against the generator's ball masks (do the predicted slots stay on
the balls?), and two references without a model: the last context frame held still, and the mean val frame.
Steps 1-2 are the horizon the prior was trained on; later steps extrapolate. ``--gif RUN`` also writes
``docs/img/slot_transformer_bb_rollout.gif``: one val clip drawn as ``slotvideo rollout`` draws it, the true
frames and the generator's masks first, then three samples with their predicted slot masks.

A deterministic run (``model.generative=false``) has no trained prior (the KL is its only loss), so only
generative runs are scored.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from benchmarks._results import fmt, provenance, stamp, write_section  # noqa: E402

SECTION = "slot-transformer-rollout"
FRAMES = 16


def val_clips(cfg: Any, frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The run's val split regenerated with ``frames`` frames per clip: video ``[N, F, 3, H, W]`` and the
    generator's segmentation ``[N, F, H, W]`` (0: background)."""
    from omegaconf import OmegaConf

    from slotvideo.train.run import open_split

    cfg = OmegaConf.merge(cfg, {"data": {"params": {"num_frames": frames}}})
    ds = open_split(cfg, "val")
    items = [ds[i] for i in range(len(ds))]
    return torch.stack([it["video"] for it in items]), torch.stack([it["segmentation"] for it in items])


class Loaded(NamedTuple):
    """A run read once for scoring and drawing: its model and step, and its val clips at ``FRAMES`` frames."""

    model: Any
    step: int
    video: torch.Tensor   # [N, FRAMES, 3, H, W]
    seg: torch.Tensor     # [N, FRAMES, H, W]


def load(run_dir: Path) -> Loaded:
    from slotvideo.train.checkpoint import load_run

    cfg, model, step = load_run(run_dir)
    if not model.cfg.generative:
        raise SystemExit(f"{run_dir}: a deterministic run has no trained prior to roll out")
    return Loaded(model, step, *val_clips(cfg, FRAMES))


@torch.no_grad()
def score(run: Loaded, context: int, samples: int, batch_size: int = 16) -> dict:
    """Per-step roll-out metrics of one run on the 16-frame val clips (see the module docstring)."""
    from slotvideo.metrics.ari import fg_ari

    video, seg = run.video, run.seg
    future = FRAMES - context
    truth = video[:, context:]
    # samples 0..S-1 (seeds 0..S-1), then the path through the prior's means
    mse = torch.zeros(samples + 1, len(video), future)
    ari = torch.zeros(samples + 1, len(video), future)
    for s in range(samples + 1):
        torch.manual_seed(s)
        for a in range(0, len(video), batch_size):
            out = run.model.rollout(video[a:a + batch_size, :context], future, sample=s < samples)
            b = slice(a, a + out.recon.shape[0])
            mse[s, b] = (out.recon.clamp(0, 1) - truth[b]).square().mean(dim=(2, 3, 4))
            ari[s, b] = fg_ari(seg[b, context:], out.masks, per="frame")     # each predicted frame on its own
    (mse, mean_mse), (ari, mean_ari) = (mse[:-1], mse[-1]), (ari[:-1], ari[-1])
    hold = (video[:, context - 1:context] - truth).square().mean(dim=(2, 3, 4))          # [N, F]
    mean_frame = video.mean(dim=(0, 1), keepdim=True)
    return {"step": run.step, "context": context, "samples": samples, "videos": len(video),
            "mse": mse.mean(dim=(0, 1)).tolist(), "best_mse": mse.amin(dim=0).mean(0).tolist(),
            "fg_ari": ari.flatten(0, 1).nanmean(dim=0).tolist(), "mean_path_mse": mean_mse.mean(0).tolist(),
            "mean_path_fg_ari": mean_ari.nanmean(dim=0).tolist(), "hold_mse": hold.mean(0).tolist(),
            "mean_frame_mse": (mean_frame - truth).square().mean(dim=(0, 2, 3, 4)).tolist()}


def gif(run: Loaded, context: int, path: Path, clip: int = 0, samples: int = 3) -> Path:
    """One val clip as ``slotvideo rollout`` draws it (``eval.rollout.rollout_panel``: the seen frames, then the
    predicted ones above their slot masks, panels side by side), with the true frames and the generator's masks
    as the first panel and ``samples`` roll-outs after it."""
    from slotvideo.data.video_io import to_uint8, write_video
    from slotvideo.eval.rollout import rollout_panel, rollout_samples

    frames, masks = rollout_samples(run.model, run.video[clip:clip + 1, :context], FRAMES - context, samples,
                                    seed=0)
    truth = to_uint8(run.video[clip])                                                   # [F, H, W, 3]
    shown = np.concatenate([truth[None, context:], to_uint8(frames)])                 # [1 + S, future, H, W, 3]
    ids = np.concatenate([run.seg[None, clip, context:].numpy(), masks.argmax(dim=2).numpy()])
    return write_video(path, rollout_panel(truth[:context], shown, ids), fps=4)


def render(rows: dict[str, dict]) -> str:
    lines = ["## Slot Transformer roll-outs from the conditional prior on Bouncing Balls "
             "(`benchmarks/slot_transformer_rollout.py`, experiment 7)", "", *provenance(rows.values()),
             f"Runs of section `slot-transformer-bb-sa` (16x16, 3 balls, 4 slots, trained on 8-frame clips). "
             f"Scored on the 128 val clips regenerated at {FRAMES} frames: the model sees the first frames "
             f"(*context*) and samples the conditional prior for the rest; nothing of the unseen frames reaches "
             f"it. *MSE*: mean over the sampled futures (*best*: the best sample per clip); *means' path*: the prior's mean fed back at every step instead of a sample (`rollout(..., sample=False)`). *FG-ARI*: the "
             f"roll-out's masks against the generator's ball masks, per predicted frame. References without a "
             f"model: the last context frame held still, and the mean val frame. Steps 1-2 are the horizon "
             f"the prior was trained on.", "",
             "| run | steps | context | samples | predicted step | MSE: samples (best) / means' path | "
             "FG-ARI: samples / means' path | last frame held MSE | mean frame MSE |",
             "|---|---|---|---|---|---|---|---|---|"]
    for name, r in rows.items():
        for f in (0, 1, 3, 5, 9):
            if f >= len(r["mse"]):
                continue
            lines.append(f"| {name} | {r['step']} | {r['context']} | {r['samples']} | {f + 1} | "
                         f"{r['mse'][f]:.4f} ({r['best_mse'][f]:.4f}) / {r['mean_path_mse'][f]:.4f} | "
                         f"{fmt(r['fg_ari'][f])} / {fmt(r['mean_path_fg_ari'][f])} | "
                         f"{r['hold_mse'][f]:.4f} | {r['mean_frame_mse'][f]:.4f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=".cache/st_bb_sa", help="the segmentation benchmark's --work")
    parser.add_argument("--runs", nargs="+", required=True, help="row names of slot_transformer_segmentation.py")
    parser.add_argument("--context", type=int, default=6)
    parser.add_argument("--samples", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--gif", help="a row name: draw docs/img/slot_transformer_bb_rollout.gif from its run")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    work = Path(args.work).resolve()
    out = work / "st_rollout"
    out.mkdir(parents=True, exist_ok=True)
    loaded = {}
    for name in args.runs:
        loaded[name] = load(work / "runs" / f"st-bb-{name}")
        row = {"run": name, **score(loaded[name], args.context, args.samples), **stamp()}
        (out / f"{name}.json").write_text(json.dumps(row, indent=1))
        print(name, json.dumps({k: row[k] for k in ("mse", "fg_ari", "hold_mse")}), flush=True)
    if args.gif:
        run = loaded.get(args.gif) or load(work / "runs" / f"st-bb-{args.gif}")
        path = gif(run, args.context, ROOT / "docs" / "img" / "slot_transformer_bb_rollout.gif")
        print(f"wrote {path.relative_to(ROOT)}")
    rows = {p.stem: json.loads(p.read_text()) for p in sorted(out.glob("*.json"))}
    write_section(SECTION, render(rows))
    print(render(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
