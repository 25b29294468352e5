"""Aloe on generated CATER-style data: snitch localization, static and moving camera (experiment 4, Table 2).

    python benchmarks/aloe_cater.py --work .cache/aloe_bench --videos 600 --monet-steps 1000 --aloe-steps 1000 \\
        --variants aloe no_aux l1 cnn_lstm
    python benchmarks/aloe_cater.py --work .cache/aloe_bench --videos 600 --frontend slots --slots-steps 6000 \\
        --aloe-steps 1000 --variants aloe no_aux
    python benchmarks/aloe_cater.py --work .cache/aloe_bench --videos 600 --frontend slots --slots-steps 14000 \\
        --variants                      # the front-end alone (trained on, or scored), and the section redrawn

Pipeline: generate ``cater-mini`` (32x32, 16 frames, static and moving camera) into ``--work``/cache on first
use; train the object front-end on the frames of both variants and freeze it: MONet (``--frontend monet``, the
paper's; ``configs/monet/cater_mini.yaml`` as ``<work>/runs/monet-cater``) or the slot-attention video model
(``--frontend slots``; ``configs/slot_attention_video/cater_mini.yaml`` as ``<work>/runs/sa-cater``); train each
Aloe variant (``configs/aloe/cater_mini.yaml``) on its tokens, on both cameras together, every batch half static,
half moving (``data.balance``, appendix A.3), as the paper trains; score top-1, top-5 and the grid L1 distance on
each camera's val split. The variants are the rows of Table 2: Aloe with its self-supervised masked-object loss,
without it ("no auxiliary"), and with the L1 grid-distance loss added; ``cnn_lstm`` is the non-object reference.
Rows on the slot front-end are named ``variant@slots``. A stopped run resumes; rows are kept in
``<work>/cater.json`` and the ``aloe-cater`` section of docs/results.md is drawn from them, with each trained
front-end's object coverage (FG-ARI, snitch IoU) on the val videos.
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
from slotvideo.train.checkpoint import load_run  # noqa: E402
from benchmarks._clevrer import (GROUND_TRUTH_OBJECTS, check_dataset, reads_frozen_frontend,  # noqa: E402
                                save_row, single_task, split_means, train_run)
from benchmarks._results import stamp, fmt, provenance, write_section  # noqa: E402
from benchmarks.workbench_run import finished_steps  # noqa: E402

ALOE, CNN_LSTM = "configs/aloe/cater_mini.yaml", "configs/cnn_lstm/cater_mini.yaml"
#: front-end name -> (config, run name): MONet (the paper's) or the slot-attention video model (its slots are
#: tracked across frames; the issue's "Aloe on the slots of any other slotvideo model")
FRONTENDS = {"monet": ("configs/monet/cater_mini.yaml", "monet-cater"),
             "slots": ("configs/slot_attention_video/cater_mini.yaml", "sa-cater")}
CAMERAS = ("static", "moving")
#: name -> (config, switches): Table 2's rows; the Aloe rows run on a frozen front-end (``--frontend``)
VARIANTS = {
    "aloe": (ALOE, []),
    # without the auxiliary loss the whole batch is supervised: halve it so that every variant sees the same
    # 4 labelled videos per step
    "no_aux": (ALOE, ["model.aux_weight=0.0", "data.batch_size=4"]),
    "l1": (ALOE, ["model.l1_weight=1.0"]),
    # Table 1's ResNet hyper-pixel ablation: the tokens come from a ResNet trained with the model, no front-end
    "resnet": (ALOE, ["model.frontend=resnet", "model.monet={}", "model.monet_pretrain_steps=0", "model.resolution=32"]),
    # the non-object reference (no front-end, no auxiliary loss), with the same 4 labelled videos per step
    "cnn_lstm": (CNN_LSTM, ["data.batch_size=4"]),
}
CLAIMS = [  # (paper claim, better, worse)
    ("the self-supervised loss helps (Ours vs Ours (no auxiliary))", "aloe", "no_aux"),
    ("the L1 loss helps (Ours (with L1 loss) vs Ours)", "l1", "aloe"),
]


def on_frontend(name: str) -> bool:
    """Whether the variant reads a frozen front-end's object tokens (not CNN+LSTM, not ResNet hyper-pixels)."""
    config, switches = VARIANTS[name]
    return config == ALOE and reads_frozen_frontend(switches)


def variant_of(key: str) -> str:
    """The variant of a row key ``variant[@frontend][#seedN]``."""
    return key.split("#")[0].split("@")[0]


def row_key(name: str, frontend: str) -> str:
    """Rows on MONet (and rows without a front-end) keep the variant's name; rows on another front-end are
    ``name@frontend``."""
    return name if frontend == "monet" or not on_frontend(name) else f"{name}@{frontend}"


def frontend_of(key: str) -> str | None:
    """The front-end a row reads (``None`` for rows without one)."""
    if not on_frontend(variant_of(key)):
        return None
    return key.split("#")[0].partition("@")[2] or "monet"


def run_name(key: str) -> str:
    """The run directory name of a row."""
    return "cater-" + key.replace("@", "-").replace("#", "-")


def data(videos: int) -> list[str]:
    """cater-mini with both cameras (the static variant is the Slot Transformer benchmark's CATER data)."""
    return [f"data.params.generate.{k}={v}" for k, v in {"num_videos": videos, "size": 32, "num_frames": 16}.items()]


def score(run_dir: Path, num: int | None) -> tuple[dict[str, dict[str, float]], dict[str, float]]:
    """top1 / top5 / l1 on each camera's val split, and on ``num`` (default 180) static-camera train videos, which
    tells a row that learned the task from one that memorised its training videos."""
    cfg, model, _ = load_run(run_dir)
    return ({cam: split_means(cfg, model, "val", num, camera=cam) for cam in CAMERAS},
            split_means(cfg, model, "train", num or 180, camera="static"))


def frontend_objects(run_dir: Path, num: int | None) -> dict[str, dict[str, float]]:
    """Per camera, how a frozen front-end's masks (MONet's attention masks, or a slot model's) cover the objects of the val videos (cater-mini's
    instance masks): FG-ARI and mean best overlap per frame, the snitch's best IoU with any slot over the frames
    where it is visible, and the share of those frames where one slot covers it with IoU >= 0.5."""
    from slotvideo.data.batch import collate
    from slotvideo.data.cater import SNITCH_ID
    from slotvideo.metrics.ari import fg_ari
    from slotvideo.metrics.matching import mean_best_overlap

    cfg, model, _ = load_run(run_dir)  # in eval mode
    out = {}
    for cam in CAMERAS:
        ds = single_task(cfg, "val", "localize", num, camera=cam, masks=True)
        parts: dict[str, list[torch.Tensor]] = {"fg_ari": [], "mbo": [], "snitch_iou": []}
        for start in range(0, len(ds), 16):
            batch = collate([ds[i] for i in range(start, min(start + 16, len(ds)))])
            seg = batch.segmentation
            with torch.no_grad():
                masks = model.segment(batch.video)
            snitch = torch.where(seg == SNITCH_ID, 1, torch.where(seg < 0, seg, 0))  # the snitch alone
            for key, value in (("fg_ari", fg_ari(seg, masks)), ("mbo", mean_best_overlap(seg, masks)),
                               ("snitch_iou", mean_best_overlap(snitch, masks))):
                parts[key].append(value.flatten())
        scores = {k: torch.cat(v) for k, v in parts.items()}
        snitch = scores["snitch_iou"][~scores["snitch_iou"].isnan()]
        out[cam] = {**{k: float(v[~v.isnan()].mean()) for k, v in scores.items()},
                    "snitch_found": float((snitch >= 0.5).double().mean()), "snitch_frames": int(snitch.numel()),
                    "videos": len(ds)}
    return out


def snitch_pixels(cfg, split: str, camera: str, num: int | None) -> tuple[torch.Tensor, torch.Tensor]:
    """The snitch's mask centroid (row, col) in the last frame where it is visible, and the answer cell, for
    the ``split`` videos of ``camera`` in which it is ever visible (cater-mini's instance masks)."""
    from slotvideo.data.cater import SNITCH_ID
    from slotvideo.metrics.centroids import mask_centroids

    ds = single_task(cfg, split, "localize", num, camera=camera, masks=True)
    points, labels = [], []
    for i in range(len(ds)):
        sample = ds[i]
        snitch = (sample["segmentation"] == SNITCH_ID).float()           # [T, H, W]
        visible = snitch.flatten(1).sum(1).nonzero().flatten()
        if len(visible):
            points.append(mask_centroids(snitch[visible[-1]][None])[0])
            labels.append(int(sample["label"]))
    return torch.stack(points), torch.tensor(labels)


def position_oracle(cfg, train_videos: int = 1500, k: int = 5) -> dict[str, float]:
    """Per camera, val top-1 of a k-nearest-neighbour vote from the snitch's last visible image position
    (ground-truth masks, ``train_videos`` train videos as the neighbours) to the answer cell: what perfect
    snitch perception in the image, without any tracking under cones, gives; it shows that the labels are
    readable from the pixels. ``cfg``: a config reading the benchmark's data (no model is needed)."""
    out = {}
    for cam in CAMERAS:
        train_xy, train_cell = snitch_pixels(cfg, "train", cam, train_videos)
        val_xy, val_cell = snitch_pixels(cfg, "val", cam, None)
        nearest = torch.cdist(val_xy, train_xy).topk(k, largest=False).indices             # [V, k]
        votes = torch.nn.functional.one_hot(train_cell[nearest], 36).sum(1)
        out[cam] = float((votes.argmax(-1) == val_cell).float().mean())
    return out


def last_visible(work: Path, videos: int) -> dict[str, float]:
    """Per camera, the share of all generated videos whose answer is the snitch's last visible cell (from the
    generator's ground truth: an oracle, not a model), as the generator's stats record it."""
    from slotvideo.data.reasoning.datasets import layout_root

    root = layout_root("cater-mini", dict(zip(("size", "num_frames", "num_videos"), (32, 16, videos))), 0,
                       work / "cache")
    out = {}
    for cam, variant in zip(CAMERAS, ("all_actions", "all_actions_cameramotion")):
        stats = root / f".cater-mini-{variant}" / "stats.json"
        if stats.exists():
            out[cam] = json.loads(stats.read_text())["last_visible_accuracy_all"]
    return out


def describe_frontend(name: str, run_dir: Path, objects: dict[str, dict[str, float]] | None, used: bool) -> list[str]:
    """A paragraph: how the front-end was trained, whether a row reads it, how its masks cover the objects."""
    steps, seconds, _ = finished_steps(run_dir)
    loss = [json.loads(x)["loss"] for x in (run_dir / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    what = {"monet": "MONet", "slots": "The slot-attention video model"}[name]
    text = (f"{what} (`{FRONTENDS[name][0]}`, front-end `{name}`): {steps} steps ({seconds / 60:.0f} min; loss "
            f"{loss[0]:.4g} -> {loss[-1]:.4g}) on the frames of the generated videos of both cameras"
            + (", then frozen." if used else "; no Aloe row reads it."))
    if objects:
        text += (" Its masks on the val videos' instance masks (`data.params.masks=true`; static / moving): FG-ARI "
                 + " / ".join(f"{objects[c]['fg_ari']:.3f}" for c in CAMERAS)
                 + ", mean best overlap " + " / ".join(f"{objects[c]['mbo']:.3f}" for c in CAMERAS)
                 + "; the snitch's best IoU with any slot " + " / ".join(f"{objects[c]['snitch_iou']:.3f}" for c in CAMERAS)
                 + ", and a slot covers it with IoU >= 0.5 in " + " / ".join(f"{objects[c]['snitch_found']:.1%}" for c in CAMERAS)
                 + " of the " + " / ".join(str(objects[c]['snitch_frames']) for c in CAMERAS)
                 + " frames where it is visible.")
    return [text, ""]


def claims(rows: dict[str, dict]) -> list[str]:
    """Per front-end and seed: met when the better row has the higher top-1 on both cameras (the L1 distance
    beside)."""
    out = []
    seeds = sorted({k.partition("#")[2] for k in rows})
    for frontend in (*FRONTENDS, "masks"):
        for seed in seeds:
            key = {n: row_key(n, frontend) + (f"#{seed}" if seed else "") for n in VARIANTS}
            where = f"on `{frontend}`" + (f", {seed.replace('seed', 'seed ')}" if seed else "")
            for text, better, worse in CLAIMS:
                if key[better] not in rows or key[worse] not in rows:
                    continue
                a, b = rows[key[better]]["val"], rows[key[worse]]["val"]
                met = all(a[c]["top1"] > b[c]["top1"] for c in CAMERAS)
                out.append(f"* {text}, {where}: {'met' if met else 'missed'} (" + "; ".join(
                    f"{c} top-1 {a[c]['top1']:.3f} vs {b[c]['top1']:.3f}, L1 {a[c]['l1']:.2f} vs {b[c]['l1']:.2f}"
                    for c in CAMERAS) + ").")
            if key["aloe"] in rows:
                v = rows[key["aloe"]]["val"]
                out.append(f"* the moving camera is harder (Aloe top-1), {where}: "
                           f"{'met' if v['static']['top1'] > v['moving']['top1'] else 'missed'} "
                           f"(static {v['static']['top1']:.3f}, moving {v['moving']['top1']:.3f}).")
    return out


def render(rows: dict[str, dict], frontends: dict[str, Path], oracle: dict[str, float],
           objects: dict[str, dict[str, dict[str, float]]], videos: int, position: dict[str, float]) -> str:
    train, val = round(videos * 0.7), videos - round(videos * 0.7)
    lines = [f"## Aloe on cater-mini, {videos} videos per camera (`benchmarks/aloe_cater.py`)", "",
             *provenance(rows.values()),
             "Each Aloe row (`configs/aloe/cater_mini.yaml`: width 64, 4 layers, 16 frames of 32x32) reads the "
             "object tokens of a frozen front-end (`name@front-end`; no suffix: MONet), of a ResNet trained with it "
             "(`resnet`), or of the ground-truth instance masks (`@masks`: a diagnostic beyond the paper, perfect "
             "perception, `models/mask_objects.py`, tokens shuffled every batch) and trains on the static and the moving camera together, every "
             "batch half each; val split of each camera; chance top-1 1/36 = 0.028, top-5 0.139. The paper "
             "(Table 2) trains 80 frames at 64x64 to convergence: Ours 70.6 / 56.6 top-1 (static / moving), no "
             f"auxiliary 60.5 / 46.8, with L1 loss 74.0 / 59.7. {train} train and {val} val videos per camera "
             "(CATER: 3,850 / 1,650). The snitch's last visible cell (generator ground "
             "truth, an oracle) is the answer in "
             + " / ".join(f"{oracle[c]:.1%}" for c in CAMERAS if c in oracle) + " of these 16-frame videos "
             "(static / moving): a model that sees and follows the snitch can nearly solve them. The labels are "
             "readable from the image: a 5-nearest-neighbour vote from the snitch's last visible pixel position "
             "(ground-truth masks, 1,500 train videos) gets val top-1 "
             + " / ".join(f"{position[c]:.3f}" for c in CAMERAS) + ". cater-mini's two "
             "variants render the same scenes (only the camera differs), so a row with equal static and moving "
             "columns predicted the same cells from both views. `cnn_lstm` (`configs/cnn_lstm/cater_mini.yaml`) "
             "is the non-object reference: a per-frame CNN average-pooled over space, an LSTM over frames.", ""]
    for name, run_dir in frontends.items():
        lines += describe_frontend(name, run_dir, objects.get(name), any(frontend_of(k) == name for k in rows))
    lines += ["`train top1` scores 180 static-camera train videos (rows scored before it was kept show -): far "
              "above the val columns, the row memorised its training videos.", "",
              "| row | switches | steps | train min | train top1 | static top1 | static top5 | static L1 | moving top1 | "
              "moving top5 | moving L1 |", "|---" * 11 + "|"]
    for n, r in rows.items():
        v = r["val"]
        lines.append(f"| {n} | {' '.join(r.get('switches', VARIANTS[variant_of(n)][1])) or '-'} | {r['steps']} | "
                     f"{r['train_s'] / 60:.0f} | {fmt(r.get('train_static', {}).get('top1'))} | "
                     + " | ".join(fmt(v[c][k]) for c in CAMERAS for k in ("top1", "top5", "l1")) + " |")
    lines += ["", "Claims (seed 0 unless named):", "", *(claims(rows) or ["* (no pair of rows to compare yet)"])]
    return "\n".join(lines) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=".cache/aloe_bench")
    p.add_argument("--videos", type=int, default=600, help="generated cater-mini videos per camera (all splits)")
    p.add_argument("--frontend", default="monet", choices=[*FRONTENDS, "masks"],
                   help="the Aloe rows' object front-end (masks: ground-truth objects, a diagnostic)")
    p.add_argument("--monet-steps", type=int, default=1000)
    p.add_argument("--monet-frames", type=int, default=2, help="frames per video in each MONet batch")
    p.add_argument("--slots-steps", type=int, default=6000, help="training steps of the slot-attention front-end")
    p.add_argument("--aloe-steps", type=int, default=1000)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS),
                   help="rows to train and score; none (a bare --variants): only the front-end, and redraw the section")
    p.add_argument("--val-samples", type=int, default=None, help="val videos scored per camera (default: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--seed", type=int, default=0, help="the rows' seed; rows of another seed than 0 are named "
                   "key#seedN, shown in the table, and left out of the claims")
    p.add_argument("--section", default=None, help="the docs/results.md section to redraw (default: aloe-cater, "
                   "or aloe-cater-N for N videos other than 600); name a new one for rows kept in another --work")
    args = p.parse_args()
    from slotvideo.train.config import load_config

    torch.set_num_threads(args.threads)
    work = Path(args.work).resolve()
    check_dataset(work / "cater.json", {"videos": args.videos})
    frozen = GROUND_TRUTH_OBJECTS if args.frontend == "masks" else []
    # no --variants: train (or go on training) the front-end alone, then redraw the section
    if args.frontend != "masks" and (not args.variants or any(on_frontend(n) for n in args.variants)):
        config, front_run = FRONTENDS[args.frontend]
        steps = {"monet": args.monet_steps, "slots": args.slots_steps}[args.frontend]
        extra = [f"model.frames_per_video={args.monet_frames}"] if args.frontend == "monet" else []
        front = train_run(config, front_run, work, steps,
                          data(args.videos) + [f"train.ckpt_every={min(250, steps)}", *extra])
        frozen = [f"model.frontend={args.frontend}", f"model.frontend_checkpoint={front}", "model.monet={}",
                  "model.monet_pretrain_steps=0"]
    results = work / "cater.json"
    for name in args.variants:
        config, switches = VARIANTS[name]
        key = row_key(name, args.frontend) + (f"#seed{args.seed}" if args.seed else "")
        run = train_run(config, run_name(key), work, args.aloe_steps,
                        [*data(args.videos), "data.params.camera=both", "data.balance=true",
                         f"train.ckpt_every={min(200, args.aloe_steps)}", *(frozen if on_frontend(name) else []),
                         *switches, f"seed={args.seed}"])
        t = time.time()
        steps, train_s, _ = finished_steps(run)
        val, train = score(run, args.val_samples)
        row = {"val": val, "train_static": train, "steps": steps, "train_s": round(train_s, 1),
               "score_s": round(time.time() - t, 1), **stamp()}
        save_row(results, key, row)
        print(key, json.dumps(row), flush=True)
    kept = json.loads(results.read_text()) if results.exists() else {}
    rows = {k: kept[k] for k in sorted(kept, key=lambda k: (k.partition("@")[2] != "", k)) if variant_of(k) in VARIANTS}
    frontends = {n: work / "runs" / r for n, (_, r) in FRONTENDS.items() if (work / "runs" / r / "metrics.jsonl").exists()}
    if rows:
        # scored once per front-end checkpoint and once per dataset, kept beside the rows
        objects = {}
        for name, run_dir in frontends.items():
            steps = finished_steps(run_dir)[0]
            cached = kept.get(f"frontend:{name}")
            if not cached or cached["steps"] != steps or cached["val_samples"] != args.val_samples:
                cached = {"steps": steps, "val_samples": args.val_samples,
                          "objects": frontend_objects(run_dir, args.val_samples)}
                save_row(results, f"frontend:{name}", cached)
            objects[name] = cached["objects"]
        print("front-ends", json.dumps(objects), flush=True)
        if "position_oracle" not in kept:
            cfg = load_config(ALOE, [f"data.cache_dir={work / 'cache'}", *data(args.videos), "data.params.camera=both"])
            save_row(results, "position_oracle", position_oracle(cfg))
        position = json.loads(results.read_text())["position_oracle"]
        print("position oracle", json.dumps(position), flush=True)
        # the 600-video rows keep their section; a run on more (or fewer) videos gets its own
        section = args.section or ("aloe-cater" if args.videos == 600 else f"aloe-cater-{args.videos}")
        write_section(section, render(rows, frontends, last_visible(work, args.videos), objects, args.videos, position))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
