"""SetCon: can a fresh evaluation decoder read a trained model's frozen slots?

    slotvideo train configs/setcon/bouncing_balls.yaml run.dir=runs/setcon_diag run.name=lr2e-4 optim.main.lr=2e-4 ...
    python benchmarks/setcon_decoder_probe.py runs/setcon_diag/lr2e-4 --steps 3000

The evaluation protocol of the paper trains the spatial broadcast decoder on stop-gradient slots at the same
time as the model, so a decoder that lags behind a moving representation could explain poor Table 1 scores.
This script loads a SetCon run's last checkpoint, freezes everything but the evaluation decoder, and trains
the decoder alone (Adam, ``--lr``, batch 32, 2 random frames per sequence per step, as the budget runs of
``setcon_table1.py``) on the run's training split, printing the held-out MSE and FG-ARI of ``s_t`` and
``p_t`` every ``--every`` steps, and the FG-ARI of the model's own Slot Attention masks (fixed: the model
is frozen), which says whether the slots bind to objects whatever a decoder reads from them; first, which
slot's attention wins on each ground-truth object's pixels. Prints only:
the numbers are quoted in docs/setcon.md with the command.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.setcon_table1 import nanmean, open_data, val_batches  # noqa: E402


def held_out(model, val_set) -> dict[str, float]:
    scores: dict[str, list[torch.Tensor]] = {}
    for batch in val_batches(val_set):
        for key, value in model.evaluate_batch(batch).items():
            scores.setdefault(key, []).append(value)
    return {k: nanmean(torch.cat(scores[k])) for k in ("mse_slots", "fg_ari_slots", "mse_pred", "fg_ari_pred",
                                                        "fg_ari_attention") if k in scores}


@torch.no_grad()
def attention_owners(model, val_set) -> dict[int, list[float]]:
    """For each ground-truth object id (0 = background) the share of its pixels, over the held-out videos,
    whose Slot Attention argmax is slot k = 0..K-1: which slot takes which ball."""
    counts: dict[int, torch.Tensor] = {}
    for batch in val_batches(val_set):
        _, attention = model.encode(batch.video)                 # [B, T, K, H, W]
        owner = attention.argmax(2)                               # [B, T, H, W]
        for obj in batch.segmentation.unique().tolist():
            hits = torch.bincount(owner[batch.segmentation == obj], minlength=attention.shape[2])
            counts[obj] = counts.get(obj, 0) + hits
    return {obj: (c / c.sum()).tolist() for obj, c in sorted(counts.items())}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a SetCon run directory (its checkpoints/last.ckpt) or .ckpt file")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--every", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    import slotvideo.models.setcon  # noqa: F401  (registers the model)
    from slotvideo.data.batch import collate
    from slotvideo.train.checkpoint import load_run

    torch.set_num_threads(1)
    torch.manual_seed(args.seed)
    cfg, model, _ = load_run(args.run)
    if getattr(model, "name", None) != "setcon":
        parser.error(f"{args.run}: not a SetCon run (model {getattr(model, 'name', '?')!r})")
    train_set, val_set = open_data(cfg, "train"), open_data(cfg, "val")
    model.requires_grad_(False)  # load_run gives the model in eval mode; only its decoder trains below
    model.decoder.requires_grad_(True)
    if model.cfg.encoder == "slot_attention":
        for obj, share in attention_owners(model, val_set).items():
            print(f"object {obj}: attention argmax share per slot", " ".join(f"{v:.2f}" for v in share))
    optimizer = torch.optim.Adam(model.decoder.parameters(), lr=args.lr)
    rng, start = np.random.default_rng(args.seed), time.time()
    for step in range(args.steps + 1):
        if step % args.every == 0 or step == args.steps:
            print(f"step {step} ({time.time() - start:.0f}s):",
                  " ".join(f"{k} {v:.4f}" for k, v in held_out(model, val_set).items()), flush=True)
        if step == args.steps:
            break
        video = collate([train_set[int(i)] for i in rng.integers(0, len(train_set), 32)]).video
        with torch.no_grad():
            slots, _ = model.encode(video)
        frames = torch.randperm(video.shape[1])[:2]
        loss = (model.decode(slots[:, frames]).recon - (video[:, frames] * 2 - 1)).square().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
