"""Aloe on generated CLEVRER-style data: MONet front-end, then Aloe, its ablations and CNN+LSTM (experiments 1, 2, 6).

    python benchmarks/aloe_clevrer.py --videos 240 --monet-steps 1500 --aloe-steps 600 \\
        --variants aloe no_aux hierarchical mlp resnet cnn_lstm --label-fractions 0.25 0.5

Experiment 5 (appendix B) is the ``hard counterfactual`` column. Pipeline: generate ``clevrer-mini`` (32x32, 16 frames + 8 unseen ones) into ``--work``/cache on first
use; train MONet on its frames (``configs/monet/clevrer_mini.yaml``); train each variant on descriptive and
multiple-choice questions together (``configs/aloe/clevrer_mini_mixed.yaml`` with the frozen MONet and the
variant's switches; ``configs/cnn_lstm/clevrer_mini.yaml`` for the baseline); score per-question accuracy
per type and per-option accuracy on the val split (the official grouping, ClevrerPredictions), and the
issue's claims met or missed; draw the CLS attention over MONet's objects for one val video
(``docs/img/aloe_attention.png``, appendix C). ``--label-fractions`` adds Aloe with and without the
auxiliary loss at those label fractions (Figure 3), ``--masking-grid`` the six masking schemes x two losses
(Figure 4). A stopped run resumes (every run is step-based) and a row already scored at the same steps is
kept; several invocations with different ``--variants`` may share ``--work``: rows accumulate in
``<work>/results.json`` (under a lock) and the ``aloe`` section of ``docs/results.md`` shows them all.
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
from benchmarks._results import stamp, provenance, write_section  # noqa: E402
from slotvideo.train.checkpoint import load_run  # noqa: E402
from benchmarks._clevrer import (GROUND_TRUTH_OBJECTS, TYPES, check_dataset, reads_frozen_frontend,  # noqa: E402
                                save_row, score, single_task, train_run)
from benchmarks._clevrer import answer_priors as clevrer_priors  # noqa: E402
from benchmarks.workbench_run import finished_steps  # noqa: E402
from slotvideo.models.aloe_masking import SCHEMES  # noqa: E402

ALOE, CNN_LSTM = "configs/aloe/clevrer_mini_mixed.yaml", "configs/cnn_lstm/clevrer_mini.yaml"
#: name -> (config, switches); Aloe variants run on the frozen MONet
VARIANTS = {
    "aloe": (ALOE, []),
    # without the auxiliary loss the whole batch is supervised: halve it so that every variant sees the same
    # 8 labelled samples per step (the paper's supervised sub-batch); the same for CNN+LSTM, which has no aux loss
    "no_aux": (ALOE, ["model.aux_weight=0.0", "data.batch_size=8"]),
    "hierarchical": (ALOE, ["model.encoder=hierarchical"]),
    "mlp": (ALOE, ["model.encoder=mlp", "model.num_frames=16", "model.ablation_mlp_hidden=[256,256,256,256]"]),
    "resnet": (ALOE, ["model.frontend=resnet", "model.monet={}", "model.monet_pretrain_steps=0",
                      "model.resolution=32"]),
    "contrastive": (ALOE, ["model.aux_loss=contrastive"]),
    # the paper's batches: the supervised half holds 4 descriptive + 4 multiple-choice questions (A.3)
    "balanced": (ALOE, ["data.balance=true"]),
    "cnn_lstm": (CNN_LSTM, ["data.params.task=mixed", "data.params.max_choices=4", "data.batch_size=8"]),
    # a diagnostic beyond the paper: object tokens from the ground-truth instance masks (perfect perception,
    # models/mask_objects.py), shuffled every batch
    "masks": (ALOE, GROUND_TRUTH_OBJECTS),
}
AUX_LOSSES = ("l2", "contrastive")
KEYS = ["descriptive", "explanatory_per_question", "predictive_per_question", "counterfactual_per_question",
        "hard_counterfactual_per_question", "explanatory_per_option", "predictive_per_option",
        "counterfactual_per_option"]


def answer_priors(work: Path, data: list[str]) -> dict[str, dict[str, float]]:
    """The no-video reference rows (:func:`benchmarks._clevrer.answer_priors`) on this benchmark's data."""
    from slotvideo.train.config import load_config

    return clevrer_priors(load_config(ALOE, [f"data.cache_dir={work / 'cache'}", *data]))


def monet_scores(run_dir: Path, num: int = 64) -> dict[str, float]:
    """MONet's own held-out numbers: FG-ARI of its attention masks against the generated instance masks."""
    from slotvideo.eval.evaluate import evaluate_run

    result = evaluate_run(run_dir, ["data.params.masks=true", f"data.val.num={num}"], device="cpu", write=False)
    return {k: v for k, v in result["metrics"].items() if v is not None}


def attention_png(run_dir: Path, path: Path) -> None:
    """Appendix C: CLS attention (last layer, mean over heads) on each MONet object of one val video."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from slotvideo.data.batch import collate

    cfg, model, _ = load_run(run_dir)
    batch = collate([single_task(cfg, "val", "multiple_choice")[0]])
    with torch.no_grad():
        weights = model.cls_attention(batch)[0].mean(0)                   # [T, K]
        masks = model.frozen.segment(batch["video"])[0]                   # [T, K, H, W]
    video = batch["video"][0].permute(0, 2, 3, 1).numpy()                 # [T, H, W, 3]
    t, k = weights.shape
    frames = list(range(0, t, max(1, t // 8)))[:8]
    fig, axes = plt.subplots(k + 1, len(frames), figsize=(1.1 * len(frames), 1.15 * (k + 1)))
    top = float(weights.max())
    for c, f in enumerate(frames):
        axes[0, c].imshow(video[f])
        axes[0, c].set_title(f"frame {f}", fontsize=6)
        for j in range(k):
            a = float(weights[f, j]) / top
            axes[j + 1, c].imshow(video[f] * masks[f, j, ..., None].numpy() * (0.2 + 0.8 * a))
            axes[j + 1, c].set_title(f"{float(weights[f, j]):.3f}", fontsize=6)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("CLS attention per object (slot rows) and frame", fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)


def mc_mean(row: dict) -> float:
    """Mean per-question accuracy over the three multiple-choice types."""
    return sum(row[f"{t}_per_question"] for t in TYPES[1:]) / 3


def claims(rows: dict[str, dict]) -> list[str]:
    """The issue's claims on these rows, met / missed (per-question accuracy; one seed)."""
    out = []
    if "aloe" in rows:
        aloe = rows["aloe"]
        for other in ("no_aux", "hierarchical", "mlp", "resnet", "cnn_lstm"):
            if other in rows:
                wins = [f"{t} {aloe[f'{t}_per_question']:.3f} vs {rows[other][f'{t}_per_question']:.3f}"
                        for t in TYPES[1:]]
                met = all(aloe[f"{t}_per_question"] > rows[other][f"{t}_per_question"] for t in TYPES[1:])
                out.append(f"* Aloe beats {other} on explanatory, predictive and counterfactual questions: "
                           f"{'met' if met else 'missed'} ({'; '.join(wins)}).")
    if "aloe" in rows and "hierarchical" in rows:
        a, h = mc_mean(rows["aloe"]), mc_mean(rows["hierarchical"])
        out.append(f"* global attention beats hierarchical (mean of the three multiple-choice types): "
                   f"{'met' if a > h else 'missed'} ({a:.3f} vs {h:.3f}).")
    pairs = {100: ("aloe", "no_aux")} if "aloe" in rows and "no_aux" in rows else {}
    for name in rows:
        if name.startswith("aloe_labels") and "no_aux" + name[4:] in rows:
            pairs[int(name.rsplit("labels", 1)[1])] = (name, "no_aux" + name[4:])
    if len(pairs) > 1:
        gains = {what: {f: fn(rows[a]) - fn(rows[b]) for f, (a, b) in pairs.items()}
                 for what, fn in (("descriptive", lambda r: r["descriptive"]), ("multiple-choice mean", mc_mean))}
        low = min(pairs)
        met = all(g[low] > 0 and g[low] >= max(g.values()) for g in gains.values())
        out.append("* the auxiliary loss helps most at low label fractions (Figure 3; accuracy with minus without, "
                   f"per label fraction): {'met' if met else 'missed'} ("
                   + "; ".join(f"{what} " + ", ".join(f"{f}%: {v:+.3f}" for f, v in sorted(g.items()))
                               for what, g in gains.items()) + ").")
    return out


def masking_table(rows: dict[str, dict], fraction: float | None) -> str:
    """Figure 4: per-question accuracy per type for each masking scheme x auxiliary loss, and the paper's two
    findings (L2 beats contrastive on every question type; one object per frame is the best scheme)."""
    grid = {(scheme, loss): rows[f"mask_{scheme}_{loss}"] for loss in AUX_LOSSES for scheme in SCHEMES
            if f"mask_{scheme}_{loss}" in rows}
    if not grid:
        return ""
    cols = ["descriptive", *(f"{t}_per_question" for t in TYPES[1:])]
    label = f"{fraction:.0%}" if fraction is not None else "the grid's"
    out = [f"\n### Masking schemes x auxiliary losses (Figure 4), {label} of the labels\n",
           "| scheme | loss | steps | descriptive | explanatory | predictive | counterfactual | mean of 4 |",
           "|---" * 8 + "|"]
    mean4 = {k: sum(r[c] for c in cols) / 4 for k, r in grid.items()}
    for (scheme, loss), r in grid.items():
        out.append(f"| {scheme} | {loss} | {r['steps']} | " + " | ".join(f"{r[c]:.3f}" for c in cols)
                   + f" | {mean4[scheme, loss]:.3f} |")
    out += ["", "Claims (one seed):", ""]
    paired = [s for s in SCHEMES if (s, "l2") in grid and (s, "contrastive") in grid]
    if paired:
        per_type = {c: (sum(grid[s, "l2"][c] for s in paired) / len(paired),
                        sum(grid[s, "contrastive"][c] for s in paired) / len(paired)) for c in cols}
        met = all(a > b for a, b in per_type.values())
        out.append(f"* an L2 loss beats a contrastive loss on every question type (mean over {len(paired)} schemes): "
                   f"{'met' if met else 'missed'} (" + "; ".join(f"{c.split('_')[0]} {a:.3f} vs {b:.3f}"
                                                             for c, (a, b) in per_type.items()) + ").")
    l2 = {s: mean4[s, "l2"] for s in SCHEMES if (s, "l2") in grid}
    if "one_per_frame" in l2 and len(l2) > 1:
        best = max(l2, key=l2.get)
        out.append(f"* masking one object per frame is the best scheme (L2, mean of 4 types): "
                   f"{'met' if best == 'one_per_frame' else 'missed'} (" +
                   ", ".join(f"{s} {v:.3f}" for s, v in sorted(l2.items(), key=lambda kv: -kv[1])) + ").")
    return "\n".join(out) + "\n"


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--work", default=".cache/aloe_bench")
    p.add_argument("--videos", type=int, default=240)
    p.add_argument("--monet-videos", type=int, default=None, help="videos MONet trains on (default: --videos)")
    p.add_argument("--monet-steps", type=int, default=1500)
    p.add_argument("--monet-frames", type=int, default=2, help="frames per video in each MONet batch")
    p.add_argument("--aloe-steps", type=int, default=600)
    p.add_argument("--variants", nargs="*", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--label-fractions", nargs="*", type=float, default=[])
    p.add_argument("--masking-grid", type=float, default=None, metavar="FRACTION",
                   help="also train the six masking schemes x {L2, contrastive} at this label fraction (Figure 4)")
    p.add_argument("--masking-losses", nargs="+", default=list(AUX_LOSSES), choices=AUX_LOSSES,
                   help="the grid's losses (to split it over two invocations)")
    args = p.parse_args()
    work = Path(args.work).resolve()
    # clevrer-mini is generated into <work>/cache on first use (32x32, 16 frames + 8 unseen ones)
    def data_for(videos: int) -> list[str]:
        return [f"data.params.generate.{k}={v}" for k, v in
                {"num_videos": videos, "size": 32, "num_frames": 16, "future_frames": 8}.items()]

    data = data_for(args.videos)
    monet_videos = args.monet_videos or args.videos
    results = work / "results.json"
    check_dataset(results, {"videos": args.videos, "monet_videos": monet_videos})
    monet = train_run("configs/monet/clevrer_mini.yaml", "monet", work, args.monet_steps,
                      data_for(monet_videos) + [f"train.ckpt_every={min(250, args.monet_steps)}",
                              f"model.frames_per_video={args.monet_frames}"])
    frozen = [f"model.frontend_checkpoint={monet}", "model.monet={}", "model.monet_pretrain_steps=0"]
    runs = [(v, *VARIANTS[v], 1.0) for v in args.variants]
    runs += [(f"{v}_labels{int(f * 100)}", *VARIANTS[v], f) for f in args.label_fractions for v in ("aloe", "no_aux")]
    if args.masking_grid is not None:  # Figure 4: every scheme x loss at one label fraction
        runs += [(f"mask_{scheme}_{loss}", ALOE, [f"model.masking={scheme}", f"model.aux_loss={loss}"],
                  args.masking_grid) for loss in args.masking_losses for scheme in SCHEMES]
    for name, config, switches, fraction in runs:
        kept = json.loads(results.read_text()).get(name) if results.exists() else None
        if kept and kept["steps"] == args.aloe_steps and finished_steps(work / "runs" / name)[0] >= args.aloe_steps:
            print(name, "already trained and scored: kept", flush=True)
            continue
        extra = [f"model.label_fraction={fraction}"] if config == ALOE else []
        if config == ALOE and reads_frozen_frontend(switches):
            extra += frozen
        run = train_run(config, name, work, args.aloe_steps,
                        data + [f"train.ckpt_every={min(200, args.aloe_steps)}", *extra, *switches])
        t = time.time()
        row = {**score(run), "steps": args.aloe_steps, "train_s": round(finished_steps(run)[1], 1),
               "score_s": round(time.time() - t, 1), **stamp()}
        save_row(results, name, row)
        print(name, json.dumps(row), flush=True)
        if name == "aloe":
            attention_png(run, ROOT / "docs" / "img" / "aloe_attention.png")
    rows = {k: v for k, v in json.loads(results.read_text()).items() if k != "dataset"}
    monet_eval = monet_scores(monet)
    priors = answer_priors(work, data)
    monet_steps, monet_s, _ = finished_steps(monet)
    monet_loss = [json.loads(x) for x in (monet / "metrics.jsonl").read_text().splitlines() if '"loss"' in x]
    header = ("| variant | steps | " + " | ".join(k.replace("_", " ") for k in KEYS) + " | train s |\n|---|---|"
              + "---|" * (len(KEYS) + 1))
    lines = [f"| {n} | {r['steps']} | " + " | ".join(f"{r[k]:.3f}" if isinstance(r.get(k), float) else "-" for k in KEYS)
             + f" | {r['train_s']:.0f} |" for n, r in rows.items() if not n.startswith("mask_")]
    lines += [f"| {name} | - | " + " | ".join(f"{row[k]:.3f}" if k in row else "-" for k in KEYS) + " | - |"
              for name, row in priors.items()]
    n_hard = next(iter(rows.values())).get("hard_counterfactual_questions", "?")
    md = ("## Aloe on clevrer-mini (`benchmarks/aloe_clevrer.py`)\n\n" + "\n".join(provenance(rows.values())) + "\n"
          f"MONet: {monet_steps} steps ({monet_s / 60:.0f} min; loss {monet_loss[0]['loss']:.0f} -> "
          f"{monet_loss[-1]['loss']:.0f}) on the frames of {monet_videos} generated videos, then frozen; on 64 val "
          "videos: " + ", ".join(f"{k} {v:.3f}" for k, v in sorted(monet_eval.items())) + ". Each variant trains on descriptive and multiple-choice "
          f"questions together (task: mixed) from {args.videos} generated videos (32x32, 16 frames); "
          "accuracies on the val split, per question (all options right) and per option, as the official "
          f"evaluation groups them; hard counterfactual = counterfactual questions whose removed object collides with "
          f"another (appendix B; {n_hard} val questions). The paper trains for ~500k steps; these are CPU budgets.\n\n"
          f"{header}\n" + "\n".join(lines) + "\n\nClaims (one seed; differences of a few points are noise "
          "at this size; a per-option accuracy equal to the majority row's means the head gave every option the "
          "same answer):\n\n" + "\n".join(claims(rows) or ["* (no pair of rows to compare yet)"])
          + "\n\nCLS attention over MONet's objects for one val video: `docs/img/aloe_attention.png`.\n"
          + masking_table(rows, args.masking_grid))
    write_section("aloe", md)
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
