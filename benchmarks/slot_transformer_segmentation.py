"""Do the Slot Transformer's slots segment objects? Bouncing Balls or clevrer-mini, no task head.

    python benchmarks/slot_transformer_segmentation.py --work .cache/st_bb --steps 5000 --runs det adam
    python benchmarks/slot_transformer_segmentation.py --dataset clevrer-mini --work .cache/st_clevrer --runs det-base-obj

Each run trains ``configs/slot_transformer/bouncing_balls.yaml`` (16x16, 8 frames, 4 slots, ``task: none``:
the ELBO and the object-prediction loss only) plus the run's switches as ``<work>/runs/st-bb-<run>`` (a
stopped run resumes), with a val evaluation every 500 steps. ``--dataset clevrer-mini`` trains
``configs/slot_transformer/clevrer_mini.yaml`` on whole videos instead (no questions, 32x32, 5 slots; the
1000 generated videos of ``benchmarks/aloe_clevrer.py``) as ``<work>/runs/st-clevrer-<run>``. A run is
then scored on the val split (128 videos): FG-ARI of the last iteration's masks against the generator's
object masks, the reconstruction's MSE (the mask-weighted mean), the mixture's negative log-likelihood per
pixel and the masks' confidence (mean over pixels of the largest slot weight; 1/K = 0.25 for uniform masks),
the same for the first iteration's readout attention over the encoded pixels, and how much the posterior
mean ``mu`` of a slot moves over the clip against how much it differs between videos (std over time / over
the videos of a batch; a slot that follows a moving ball must change over time). Two references without a
model: the MSE of an all-black frame and of the mean val frame. Rows are kept per run in
``<work>/st_bb/<run>.json`` (``st_clevrer`` for clevrer-mini); the ``--section`` of docs/results.md (default
``slot-transformer-bb`` / ``slot-transformer-clevrer``) is redrawn from all of them, so a new ``--work`` folder
goes with a new section.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from benchmarks._clevrer import run_all, train_run  # noqa: E402
from benchmarks._results import fmt, provenance, stamp  # noqa: E402
from benchmarks.workbench_run import finished_steps  # noqa: E402

CONFIG = "configs/slot_transformer/bouncing_balls.yaml"


def _columns(uniform: str, perfect: str = "") -> str:
    """What the confidence and NLL columns mean (the same for both datasets but for these two numbers)."""
    return (f" *confidence*: mean over pixels of the largest slot weight ({uniform} for uniform masks). *nll / px*: "
            f"the mixture's negative log-likelihood per pixel (3 channels, sigma 0.1{perfect}).")


#: dataset -> (short name, config, the switches that make it a video-only run, what the table says of it)
DATASETS = {
    "bouncing-balls": ("bb", CONFIG, [],
                       "`configs/slot_transformer/bouncing_balls.yaml`: no task head (`task: none`), 16x16 frames, 8 "
                       "frames per clip, 3 balls, 4 slots, 2 iterations, batch 8. Scored on the 128 val videos, last "
                       "iteration." + _columns("0.25", "; about -4.1 for a perfect fit")),
    # the generated CLEVRER-style videos of benchmarks/aloe_clevrer.py (same generator settings, so the same
    # cache), whole clips without questions, at the data's 32x32 (at 16x16 an object is about 2x2 pixels)
    "clevrer-mini": ("clevrer", "configs/slot_transformer/clevrer_mini.yaml",
                     ["model.task=none", "data.params.task=video", "data.params.generate.num_videos=1000",
                      "data.val.num=128", "train.eval_batches=16"],
                     "`configs/slot_transformer/clevrer_mini.yaml` on whole clips: no task head (`model.task=none "
                     "data.params.task=video`), 32x32 frames, 8 frames per clip, 5 slots, 2 iterations, batch 8; the "
                     "1000 generated videos of `benchmarks/aloe_clevrer.py`, whose objects are about 4x4 pixels on a "
                     "grey floor (about 10% of the pixels). Scored on 128 val videos against the generator's object "
                     "masks, last iteration." + _columns("0.2")),
}
DET = ["model.generative=false"]                      # section 5's deterministic mode: z = mu, no KL
ADAM = ["optim.main.name=adam", "optim.main.lr=2e-3", "optim.main.weight_decay=0"]  # the baseline's optimiser
# not in the paper: slot attention's learned Gaussian init / K learned slots, 3 readout steps per iteration
GAUSS, LEARNED, READ3 = ["model.initial_context=gaussian"], ["model.initial_context=learned"], ["model.readout_steps=3"]
NO_OBJ, STRIDE1 = ["model.object_weight=0"], ["model.encoder_strides=[1,1]"]
# not in the paper: slot attention's upsampling decoder (broadcast 8x8, two stride-2 transposed convs) at the
# full-resolution decoder's cost
UPSAMPLE = ["model.decoder_broadcast_resolution=8", "model.decoder_channels=[32,16]"]
# the recipe that segments: deterministic, K learned initial slots, Adam, the ELBO alone
RECIPE = [*DET, *LEARNED, *ADAM, *NO_OBJ]
# clevrer-mini's recipe: det-base-obj (the recipe with the object loss kept) with slot attention's upsampling decoder
OBJ_UP = [*DET, *LEARNED, *ADAM, *UPSAMPLE]
# the recipe in generative mode (row base-gen)
BASE_GEN = [*LEARNED, *ADAM, *NO_OBJ]
# not in the paper: a narrow initial posterior (sigma ~0.05); the prior's own linear head; a KL warm-up of N steps
SIGMA, SEP = ["model.log_sigma_bias=-3"], ["model.prior_head=separate"]


def warm(steps: int) -> list[str]:
    return [f"model.kl_warmup_steps={steps}"]


# what lets the generative model segment: the narrow start and the prior's own head, with a warm-up set per row
GEN_SEP = [*SIGMA, *SEP]
# the generative recipe of configs/slot_transformer/bouncing_balls_generative.yaml: with a 6,000-step warm-up
GEN_RECIPE = [*BASE_GEN, *GEN_SEP, *warm(6000)]


def seeded(seed: int, switches: list[str]) -> list[str]:
    """A row's switches with model seed ``seed`` put first (seed 0, the config's, adds nothing)."""
    return [f"seed={seed}", *switches] if seed else list(switches)
#: run -> switches
RUNS = {
    "lamb": [],                                        # the config as it is: generative, LAMB lr 1e-3
    "det": DET,
    "noobj": NO_OBJ,                                   # the ELBO alone
    "adam": ["optim.main.name=adam", "optim.main.lr=4e-4", "optim.main.weight_decay=0"],
    "it4": ["model.iterations=4"],                     # the paper's CLEVRER / CATER iterations (Table 5)
    "det-it4": [*DET, "model.iterations=4"],
    "sa": [*GAUSS, *READ3],
    "det-sa": [*DET, *GAUSS, *READ3],
    "learned": LEARNED,
    # as close to the slot-attention baseline (configs/slot_attention_video/bouncing_balls.yaml) as switches go:
    # learned slots, 3 readout steps, 16x16 features (no stride), Adam lr 2e-3, no object loss, deterministic
    "det-base": [*RECIPE, *READ3, *STRIDE1],
    # det-base less one change each: which of them does the segmenting need?
    "det-base-s2": [*RECIPE, *READ3],
    "det-base-lamb": [*DET, *LEARNED, *NO_OBJ, *READ3, *STRIDE1],
    # det-base-s2 (the paper's stride-2 encoder) less one more change each
    "det-base-gauss": [*DET, *GAUSS, *ADAM, *NO_OBJ, *READ3],
    "det-base-r1": RECIPE,
    # the recipe with the paper's N(0, 1) initial context; and the recipe's second seed
    "det-base-sampled": [*DET, *ADAM, *NO_OBJ],
    **{f"det-base-r1-seed{n}": seeded(n, RECIPE) for n in (1, 2)},
    # the deterministic recipe's weakest seed trained on to 16,000 steps as well (copied, then resumed)
    "det-base-r1-seed2-16k": seeded(2, RECIPE),
    # the recipe less one more change each: generative (also with KL warm-up or a narrow initial posterior);
    # the object loss back
    "base-gen": BASE_GEN,
    "base-gen-warm": [*BASE_GEN, *warm(2000)],
    "base-gen-sigma": [*BASE_GEN, *SIGMA],
    # both: a narrow posterior while the KL weight is still near 0, so that early training is almost the
    # deterministic recipe (which segments by step 1,000) and the prior is fitted once the slots hold objects
    "base-gen-warm-sigma": [*BASE_GEN, *warm(2000), *SIGMA],
    # a diagnostic: the narrow posterior with the KL weight kept near 0 (under 0.004 over 4,000 steps): is it the
    # sampling or the KL that stops the generative model from segmenting?
    "base-gen-sigma-nokl": [*BASE_GEN, *warm(1000000), *SIGMA],
    # base-gen-warm-sigma with the prior's parameters through a linear map of their own (model.prior_head)
    "base-gen-warm-sigma-sep": [*BASE_GEN, *warm(2000), *GEN_SEP],
    # base-gen-warm-sigma-sep with a longer warm-up: the model segments before the KL weighs much (as in
    # base-gen-sigma-nokl by step 1,000); does it keep its slots when the full KL arrives? And its second seed
    # seeds 0-2, and the same three trained on to 16,000 steps (each run folder copied from its 8,000-step row's,
    # then resumed exactly: the same runs, twice as long)
    **{f"base-gen-warm6k-sigma-sep{f'-seed{n}' if n else ''}{longer}": seeded(n, GEN_RECIPE)
       for n in (0, 1, 2) for longer in ("", "-16k")},
    # the prior predicts the last 4 of the 8 steps from the first 4 (the config: the last 2 from the first 6)
    "base-gen-warm6k-sigma-sep-p4": [*GEN_RECIPE, "model.prior_steps=4"],
    # base-gen with only the separate prior head: is the head enough without the warm-up and the narrow start?
    "base-gen-sep": [*BASE_GEN, *SEP],
    # base-gen-warm-sigma with a narrower likelihood (sigma_x 0.05, the paper gives none; the config's is 0.1):
    # the reconstruction weighs 4 times more against the KL
    "base-gen-warm-sigma-x05": [*BASE_GEN, *warm(2000), *SIGMA, "model.sigma_x=0.05"],
    "det-base-obj": [*DET, *LEARNED, *ADAM],
    # clevrer-mini: det-base-obj with the upsampling decoder; and with 3 readout steps and wider slots as well
    "det-obj-up": OBJ_UP,
    "det-obj-up-wide": [*OBJ_UP, *READ3, "model.slot_dim=64", "model.query_mlp=[64,64]"],
    # det-obj-up on full-resolution features (32x32, as the slot-attention baseline), not the 8x8 of two strides
    "det-obj-up-s1": [*OBJ_UP, *STRIDE1],
    # det-obj-up's second seed (its val curve peaked at 5,000 steps: run it that long to compare)
    "det-obj-up-seed1": ["seed=1", *OBJ_UP],
    # det-obj-up in generative mode with the prior's own head (base-gen-warm6k-sigma-sep's fix; a 3,000-step warm-up)
    "gen-obj-up-sep": [*LEARNED, *ADAM, *UPSAMPLE, *GEN_SEP, *warm(3000)],
    # det-sa on balls whose colours change from video to video (a slot cannot stand for one fixed colour)
    "det-sa-colors": [*DET, *GAUSS, *READ3, "data.params.fixed_colors=false"],
}


def attention_masks(attention: torch.Tensor, resolution: int) -> torch.Tensor:
    """Readout attention ``[B, T, K, h*w]`` as masks ``[B, T, K, H, W]`` (nearest upsampling of the feature grid)."""
    b, t, k, n = attention.shape
    side = int(round(n ** 0.5))
    grid = attention.reshape(b * t, k, side, side)
    return torch.nn.functional.interpolate(grid, size=resolution, mode="nearest").reshape(b, t, k, resolution,
                                                                                            resolution)


@torch.no_grad()
def score(run_dir: Path, batch_size: int = 16) -> dict:
    """Val-split FG-ARI, MSE, NLL per pixel and mask confidence of the final iteration; reference MSEs; and the
    scored checkpoint's ``step`` (a stopped run saves on exit)."""
    from slotvideo.metrics.ari import fg_ari
    from slotvideo.train.checkpoint import load_run
    from slotvideo.train.run import open_split

    cfg, model, step = load_run(run_dir)  # in eval mode
    ds = open_split(cfg, "val")
    torch.manual_seed(0)  # the initial context and z are sampled
    sums = {"fg_ari": 0.0, "mse": 0.0, "nll_per_pixel": 0.0, "confidence": 0.0, "black_mse": 0.0,
            "mu_std_time": 0.0, "mu_std_videos": 0.0, "attention": 0.0, "attention_fg_ari": 0.0}
    videos = []
    for start in range(0, len(ds), batch_size):
        items = [ds[i] for i in range(start, min(start + batch_size, len(ds)))]
        batch = {k: torch.stack([it[k] for it in items]) for k in ("video", "segmentation")}
        iterations = model.infer(batch["video"])["iterations"]   # one pass: every metric reads the same sample
        last = iterations[-1]
        pixels = batch["video"].shape[1] * batch["video"].shape[-1] * batch["video"].shape[-2]
        n = len(items)
        # as the model's evaluate_batch scores them (FG-ARI per video, MSE of the mask-weighted mean)
        sums["fg_ari"] += float(fg_ari(batch["segmentation"], last.decoded.masks, per="video").sum())
        sums["mse"] += float((last.decoded.recon - batch["video"]).square().mean(dim=(1, 2, 3, 4)).sum())
        sums["nll_per_pixel"] += float(last.nll.sum()) / pixels
        sums["confidence"] += float(last.decoded.masks.amax(dim=2).mean()) * n
        sums["attention"] += float(iterations[0].attention.amax(dim=2).mean()) * n   # [B, T, K, N]: max over K
        sums["attention_fg_ari"] += float(fg_ari(batch["segmentation"], attention_masks(iterations[0].attention,
                                                                                        batch["video"].shape[-1]),
                                                 per="video").sum())
        sums["black_mse"] += float(batch["video"].square().mean(dim=(1, 2, 3, 4)).sum())
        mu = last.lam[..., :model.cfg.slot_dim]                                          # [B, T, K, Z]
        sums["mu_std_time"] += float(mu.std(dim=1).mean()) * n
        sums["mu_std_videos"] += float(mu.std(dim=0).mean()) * n if n > 1 else 0.0
        videos.append(batch["video"])
    total = len(ds)
    out = {k: v / total for k, v in sums.items()}
    allv = torch.cat(videos)
    out["mean_frame_mse"] = float((allv - allv.mean(dim=(0, 1), keepdim=True)).square().mean())
    out["videos"] = total
    out["step"] = step
    return out


def run(name: str, args: argparse.Namespace, work: Path) -> dict:
    short, config, video_only, _ = DATASETS[args.dataset]
    run_dir = train_run(config, f"st-{short}-{name}", work, args.steps,
                        [f"data.cache_dir={work / 'cache'}", "train.eval_every=500", *video_only, *RUNS[name]])
    _, train_s, evals = finished_steps(run_dir)
    t = time.time()
    val = score(run_dir)
    row = {"run": name, "dataset": args.dataset, "switches": RUNS[name], "steps": val.pop("step"),
           "train_s": round(train_s, 1), **stamp(), "val": val,
           "curve": [(r["step"], r["val/fg_ari"], r["val/mse"]) for r in evals if "val/fg_ari" in r]}
    row["score_s"] = round(time.time() - t, 1)
    path = work / f"st_{short}" / f"{name}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(row, indent=1))
    print(name, json.dumps(row["val"]), flush=True)
    return row


@torch.no_grad()
def figure(run_dir: Path, path: Path, clip: int = 0) -> Path:
    """One val clip as the workbench's media draw it (input, reconstruction, then each slot's mask times its
    RGB; ``viz.grids.media_grid`` of the model's ``media``), enlarged 4x, as a PNG."""
    from slotvideo.data.batch import collate
    from slotvideo.train.checkpoint import load_run
    from slotvideo.train.run import open_split
    from slotvideo.viz.grids import media_grid, save_png

    cfg, model, _ = load_run(run_dir)
    torch.manual_seed(0)
    grid = media_grid(model.media(collate([open_split(cfg, "val")[clip]])))
    return save_png(path, grid.repeat(4, axis=0).repeat(4, axis=1))


def render(work: Path, section: str | None = None, dataset: str = "bouncing-balls") -> str:
    short, _, _, about = DATASETS[dataset]
    section = section or f"slot-transformer-{short}"
    rows = {p.stem: json.loads(p.read_text()) for p in sorted((work / f"st_{short}").glob("*.json"))}
    named = "" if section == f"slot-transformer-{short}" else f", section `{section}`"
    title = "Bouncing Balls" if short == "bb" else "clevrer-mini clips"
    lines = [f"## Slot Transformer without a task head on {title} (`benchmarks/slot_transformer_segmentation.py`"
             f"{named})",
             "", *provenance(rows.values()),
             about + " *attention*: the same for the first iteration's readout attention over the encoded pixels (a "
             "quarter of the frame's side after the two stride-2 stages; the full frame with "
             "`model.encoder_strides=[1,1]`), and its FG-ARI "
             "(the attention upsampled to the frame; '-' for rows scored before this column). "
             "*mu std time / videos*: std of the slots' posterior means over the 8 frames of a clip / over the videos "
             "of a batch of 16.",
             "",
             "| run | switches | steps | train min | FG-ARI | MSE | nll / px | confidence | attention (FG-ARI) | "
             "mu std time / videos | val FG-ARI during training |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    ref = None
    for name, r in rows.items():
        v = r["val"]
        curve = ", ".join(f"{s}: {a:.2f}" for s, a, _ in r["curve"])
        lines.append(f"| {name} | {' '.join(r['switches']) or '-'} | {r['steps']} | {r['train_s'] / 60:.0f} | "
                     f"{fmt(v['fg_ari'])} | {v['mse']:.4f} | {v['nll_per_pixel']:.2f} | {fmt(v['confidence'])} | "
                     f"{fmt(v.get('attention'))} ({fmt(v.get('attention_fg_ari'))}) | "
                     f"{v['mu_std_time']:.3f} / {v['mu_std_videos']:.3f} | {curve} |")
        ref = v
    if ref is not None:
        lines.append(f"| all-black frame (no model) | - | - | - | - | {ref['black_mse']:.4f} | - | - | - | - | - |")
        lines.append(f"| mean val frame (no model) | - | - | - | - | {ref['mean_frame_mse']:.4f} | - | - | - | - | - |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", default=".cache/st_bb", help="runs, generated data and results")
    parser.add_argument("--steps", type=int, default=5000)
    parser.add_argument("--runs", nargs="*", choices=sorted(RUNS), default=["lamb"])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--dataset", choices=sorted(DATASETS), default="bouncing-balls")
    parser.add_argument("--figure", action="store_true",
                        help="only draw docs/img/slot_transformer_<dataset>_<run>.png for --runs (a val clip)")
    parser.add_argument("--section", help="docs/results.md section to redraw from every row of --dataset kept under "
                                          "--work (default slot-transformer-bb / slot-transformer-clevrer)")
    args = parser.parse_args()
    section = args.section or f"slot-transformer-{DATASETS[args.dataset][0]}"
    if args.figure:   # draws only: the runs must have been trained by an earlier invocation
        short = DATASETS[args.dataset][0]
        for name in args.runs:
            out = figure(Path(args.work).resolve() / "runs" / f"st-{short}-{name}",
                         ROOT / "docs" / "img" / f"slot_transformer_{short}_{name.replace('-', '_')}.png")
            print(f"wrote {out.relative_to(ROOT)}")
        return 0
    return run_all(args, run, lambda work: render(work, section, args.dataset), section)


if __name__ == "__main__":
    raise SystemExit(main())
