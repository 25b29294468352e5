"""Slot Transformer experiments of sections 4-5 at CPU scale, on generated CLEVRER- and CATER-style data.

    python benchmarks/slot_transformer_experiments.py --work .cache/aloe_bench --videos 1000 --steps 1000 \\
        --runs clevrer clevrer-it1 clevrer-it4 clevrer-det clevrer-none clevrer-question clevrer-object

Each run trains ``configs/slot_transformer/<dataset>_mini.yaml`` plus the run's switches (the ablations of
:class:`SlotTransformer.Config`) through the workbench as ``<work>/runs/st-<run>`` (a stopped run resumes),
at 16x16 frames (``cater-32``: 32x32, with ``--cater-videos`` videos). The data are generated into
``<work>/cache`` on first use with the generator settings of ``benchmarks/aloe_clevrer.py`` (clevrer-mini: 32x32, 16 frames + 8 unseen ones), so with the same ``--work``
and ``--videos`` both benchmarks read the same videos and questions and the Aloe rows of
``<work>/results.json`` are shown beside the Slot Transformer's (experiment 1). CLEVRER runs train on
descriptive and multiple-choice questions together (``task: mixed``, batch 8) and are scored on the val
split per question type as the official evaluation groups them (``benchmarks/_clevrer.py``), and on
``--train-samples`` training questions vs as many val questions for the train / held-out gap of the
iterations claim. CATER runs (snitch localization, static or moving camera) give top-1, top-5 and L1.
Results are kept per run in ``<work>/slot_transformer/<run>.json`` (so several invocations may run at once)
and the ``slot-transformer`` section of docs/results.md is redrawn from all of them.
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
from benchmarks._clevrer import (TYPES, answer_priors, row_parser, run_all, score, single_task,  # noqa: E402
                                 split_means, train_run)
from benchmarks._results import fmt, mean_se, provenance, stamp  # noqa: E402
from benchmarks.slot_transformer_segmentation import ADAM, DET, LEARNED, OBJ_UP, STRIDE1  # noqa: E402
from benchmarks.workbench_run import finished_steps  # noqa: E402

SMALL = ["model.resolution=16", "data.params.size=[16,16]"]
CLEVRER = ["data.params.task=mixed", "data.params.max_choices=4"]
# what the Slot Transformer needs to segment Bouncing Balls (benchmarks/slot_transformer_segmentation.py, row
# det-base-r1, less its NO_OBJ: the object loss segments too): deterministic, K learned initial slots (not in the
# paper), Adam lr 2e-3 (not in the paper); the auxiliary losses of the config stay on
RECIPE = [*DET, *LEARNED, *ADAM]
AT32 = ["model.resolution=32", "data.params.size=[32,32]"]   # the data's 32x32 instead of SMALL's 16x16
ATOMIC = ["data.params.task=actions_present", "model.num_classes=14"]  # CATER's Task 1: the 14 atomic actions


def from_video_run(run: str) -> str:
    """``train.init_from`` a video-only clevrer-mini run of slot_transformer_segmentation.py, made by
    ``slot_transformer_segmentation.py --dataset clevrer-mini --work .cache/st_clevrer --runs <run>``."""
    return f"train.init_from=.cache/st_clevrer/runs/st-clevrer-{run}"


# Task 1 on the clevrer-mini recipe at 32x32
ATOMIC_UP = [*ATOMIC, *OBJ_UP, *AT32]
# the recipe (RECIPE = OBJ_UP less the decoder) at 32x32 with slot attention's upsampling decoder, started from
# the video-only run det-obj-up
UP_INIT = [*OBJ_UP, *AT32, from_video_run("det-obj-up")]

#: run -> (dataset, switches)
RUNS = {
    # experiments 1 and 5 (both auxiliary losses, 2 iterations, generative: the configs' default)
    "clevrer": ("clevrer", []),
    # half descriptive, half multiple-choice questions in every batch (data.balance, as Aloe's A.3)
    "clevrer-balanced": ("clevrer", ["data.balance=true"]),
    # the same for longer (run with a larger --steps)
    "clevrer-balanced-long": ("clevrer", ["data.balance=true"]),
    # experiment 3: iterations
    "clevrer-it1": ("clevrer", ["model.iterations=1"]),
    "clevrer-it4": ("clevrer", ["model.iterations=4"]),
    # experiment 4: deterministic mode (z = mu, no KL)
    "clevrer-det": ("clevrer", ["model.generative=false"]),
    # experiment 5: auxiliary losses
    "clevrer-none": ("clevrer", ["model.object_prediction=false", "model.question_prediction=false"]),
    "clevrer-question": ("clevrer", ["model.object_prediction=false"]),
    "clevrer-object": ("clevrer", ["model.question_prediction=false"]),
    # experiment 6: context transformer vs a 4-layer LSTM; one slot of K times the size
    "clevrer-lstm": ("clevrer", ["model.context_model=lstm", "model.lstm_hidden=64"]),
    "clevrer-1slot": ("clevrer", ["model.num_slots=1", "model.slot_dim=160", "model.object_slot_counts=[1]",
                                  "model.context_attention_dim=160", "model.query_mlp=[160,160]"]),
    # the same experiments on the recipe: does a model whose slots segment answer better?
    "clevrer-recipe": ("clevrer", RECIPE),
    # experiment 4 on the recipe: generative again (learned slots and Adam kept)
    "clevrer-recipe-gen": ("clevrer", [*LEARNED, *ADAM]),
    # the recipe at the data's 32x32, where an object covers about 4x4 pixels instead of 2x2
    "clevrer-recipe-32": ("clevrer", [*RECIPE, *AT32]),
    # the same, started from the recipe trained on the same videos without questions (not in the paper, which
    # trains everything at once; from_video_run): det-base-obj, 12,000 steps
    "clevrer-recipe-32-init": ("clevrer", [*RECIPE, *AT32, from_video_run("det-base-obj")]),
    # with slot attention's upsampling decoder, started from the video-only run with that decoder (det-obj-up,
    # 10,000 steps); seeds 1-3 of the same (the heads' initialisation and the data order; the start is shared);
    # and from the run on full-resolution features (det-obj-up-s1)
    "clevrer-recipe-32-up-init": ("clevrer", UP_INIT),
    **{f"clevrer-recipe-32-up-init-seed{seed}": ("clevrer", [f"seed={seed}", *UP_INIT]) for seed in (1, 2, 3)},
    "clevrer-recipe-32-up-s1-init": ("clevrer", [*OBJ_UP, *AT32, *STRIDE1, from_video_run("det-obj-up-s1")]),
    # experiment 2: CATER-style snitch localization, static and moving camera
    "cater": ("cater", []),
    "cater-moving": ("cater", ["data.params.generate.camera=moving", "data.params.camera=moving"]),
    # the same at the data's 32x32: at 16x16 the snitch covers about 1.6 pixels, at 32x32 about 6
    "cater-32": ("cater", AT32),
    # experiment 8: the classification head on cater-mini's compositional actions (the Kinetics-600 stand-in)
    "actions": ("actions", []),
    # CATER's Task 1 (the 14 atomic actions, multi-label) on the clevrer-mini recipe at 32x32 (OBJ_UP:
    # deterministic, learned slots, Adam lr 2e-3, slot attention's upsampling decoder; none in the paper)
    "actions-atomic-32": ("actions", ATOMIC_UP),
    # the same trained twice as long (its cosine schedule spread over the longer run); and Task 1 on the config's
    # own model and optimiser (the paper's generative model, SGD with warm-up and cosine decay) at 32x32
    "actions-atomic-32-long": ("actions", ATOMIC_UP),
    "actions-atomic-32-paper": ("actions", [*ATOMIC, *AT32]),
}
CONFIGS = {"clevrer": "configs/slot_transformer/clevrer_mini.yaml", "cater": "configs/slot_transformer/cater_mini.yaml",
           "actions": "configs/slot_transformer/cater_mini_actions.yaml"}


def data_overrides(dataset: str, videos: int) -> list[str]:
    """Generator settings: clevrer-mini exactly as benchmarks/aloe_clevrer.py (same cache key, same videos)."""
    generate = {"num_videos": videos, "size": 32, "num_frames": 16}
    if dataset == "clevrer":
        generate["future_frames"] = 8
    if dataset == "actions":
        generate["actions"] = "max2action"
    return [f"data.params.generate.{k}={v}" for k, v in generate.items()] + (CLEVRER if dataset == "clevrer" else [])


def frequency_baseline(cfg, num: int | None) -> dict[str, float]:
    """Action recognition without the video: every val video's classes ranked by their frequency in the train
    labels (the same scores for every video), scored as the model is (mAP, top-1, top-5)."""
    from slotvideo.metrics.average_precision import mean_average_precision

    def labels(split: str, n: int | None) -> torch.Tensor:  # from the lists: no video is decoded
        ds = single_task(cfg, split, cfg.data.params.task, n)
        return torch.stack([ds.label(v) for v in range(len(ds.videos))]).float()

    freq = labels("train", None).mean(0)
    val = labels("val", num)
    labelled = val[val.bool().any(-1)]          # as the model's top-k: a video without a true class is skipped
    return {"map": mean_average_precision(freq.expand_as(val).contiguous(), val),
            **{f"top{k}": float(labelled[:, freq.topk(k).indices].bool().any(-1).float().mean()) for k in (1, 5)}}


def overall(row: dict) -> float:
    """Mean per-question accuracy over the four CLEVRER question types."""
    return sum(row[k if k == "descriptive" else f"{k}_per_question"] for k in TYPES) / 4


def run(name: str, args: argparse.Namespace, work: Path) -> dict:
    dataset, switches = RUNS[name]
    videos = args.videos if dataset == "clevrer" else args.cater_videos
    run_dir = train_run(CONFIGS[dataset], f"st-{name}", work, args.steps,
                        [*data_overrides(dataset, videos), *SMALL, f"train.ckpt_every={min(250, args.steps)}",
                         *switches])
    steps, train_s, _ = finished_steps(run_dir)
    t = time.time()
    loaded = load_run(run_dir)[:2]  # (config, model), once for the three scorings below
    row = {"run": name, "dataset": dataset, "switches": switches, "videos": videos, "steps": steps,
           "train_s": round(train_s, 1),
           **stamp(),
           "train": split_means(*loaded, "train", args.train_samples),
           "heldout": split_means(*loaded, "val", args.train_samples)}
    if dataset == "clevrer":
        row["val"] = score(run_dir, "val", loaded=loaded)
        row["val"]["overall"] = overall(row["val"])
    if dataset == "actions":
        row["frequency"] = frequency_baseline(loaded[0], args.train_samples)
    row["score_s"] = round(time.time() - t, 1)
    out = work / "slot_transformer"
    out.mkdir(parents=True, exist_ok=True)
    (out / f"{name}.json").write_text(json.dumps(row, indent=1))
    print(name, json.dumps(row), flush=True)
    return row


def gap_metric(dataset: str) -> str:
    return "accuracy" if dataset == "clevrer" else "top1"


CLAIMS = [  # (paper claim, better run, worse run)
    ("generative beats deterministic on held-out questions (5)", "clevrer", "clevrer-det"),
    ("both auxiliary losses beat none (5)", "clevrer", "clevrer-none"),
    ("both auxiliary losses beat question prediction alone (5)", "clevrer", "clevrer-question"),
    ("both auxiliary losses beat object prediction alone (5)", "clevrer", "clevrer-object"),
    ("question prediction alone beats none (5)", "clevrer-question", "clevrer-none"),
    ("object prediction alone beats none (5)", "clevrer-object", "clevrer-none"),
    ("the context transformer beats a 4-layer LSTM (C.1)", "clevrer", "clevrer-lstm"),
    ("K slots beat one slot of equal capacity (5)", "clevrer", "clevrer-1slot"),
    ("generative beats deterministic on the recipe (learned slots, Adam) (5)", "clevrer-recipe-gen", "clevrer-recipe"),
]


def claims(rows: dict[str, dict]) -> list[str]:
    """Met / missed on held-out accuracy: descriptive accuracy for the claims the paper makes on CLEVRER-
    descriptive, the mean over the four types next to it; the iterations claim on the train / held-out gap."""
    out = []
    for text, better, worse in CLAIMS:
        if better not in rows and worse not in rows:      # a claim of another section's rows
            continue
        if better not in rows or worse not in rows:
            out.append(f"* {text}: not run ({better} / {worse}).")
            continue
        a, b = rows[better]["val"], rows[worse]["val"]
        out.append(f"* {text}: {'met' if a['descriptive'] > b['descriptive'] else 'missed'} (descriptive "
                   f"{a['descriptive']:.3f} vs {b['descriptive']:.3f}; all four types {a['overall']:.3f} vs "
                   f"{b['overall']:.3f}).")
    its = [r for r in ("clevrer-it1", "clevrer", "clevrer-it4") if r in rows]
    if len(its) > 1:
        gap = {r: rows[r]["train"]["accuracy"] - rows[r]["heldout"]["accuracy"] for r in its}
        held = {r: rows[r]["val"]["descriptive"] for r in its}
        less_overfit = all(gap[a] > gap[b] for a, b in zip(its, its[1:]))
        better = all(held[a] < held[b] for a, b in zip(its, its[1:]))
        out.append("* more iterations overfit less (smaller train - held-out gap in descriptive accuracy; Figure 5): "
                   f"{'met' if less_overfit else 'missed'} (" + ", ".join(f"{r} {gap[r]:+.3f}" for r in its) + ").")
        out.append("* more iterations generalise better (held-out descriptive accuracy): "
                   f"{'met' if better else 'missed'} (" + ", ".join(f"{r} {held[r]:.3f}" for r in its) + ").")
    return out


def seed_groups(rows: dict[str, dict]) -> dict[str, list[dict]]:
    """Runs kept with more than one seed: ``<run>`` and its ``<run>-seed<N>`` rows, under ``<run>``."""
    groups = {n: [r] + [rows[m] for m in rows if m.startswith(f"{n}-seed")] for n, r in rows.items()
              if "-seed" not in n}
    return {n: g for n, g in groups.items() if len(g) > 1}


def split_table(intro: str, rows: dict[str, dict], train_key: str, held_keys: tuple[str, ...]) -> list[str]:
    """A table of runs scored by :func:`split_means`: one train metric, then the held-out (val) ones."""
    head = ["run", "switches", "videos", "steps", "train min", f"train {train_key}", *(f"val {k}" for k in held_keys)]
    lines = ["", intro, "", "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for n, r in rows.items():
        # rows from before the count was kept all used the default --cater-videos 600
        lines.append(f"| {n} | {' '.join(r['switches']) or '-'} | {r.get('videos', 600)} | {r['steps']} | "
                     f"{r['train_s'] / 60:.0f} | " + " | ".join(fmt(v) for v in (r["train"].get(train_key), *(r["heldout"].get(k) for k in held_keys)))
                     + " |")
    return lines


def render(work: Path, args: argparse.Namespace) -> str:
    kept = {p.stem: json.loads(p.read_text()) for p in (work / "slot_transformer").glob("*.json")}
    rows = {name: kept[name] for name in RUNS if name in kept}  # in the order of RUNS
    clevrer = {n: r for n, r in rows.items() if r["dataset"] == "clevrer"}
    cater = {n: r for n, r in rows.items() if r["dataset"] == "cater"}
    actions = {n: r for n, r in rows.items() if r["dataset"] == "actions"}
    named = "" if args.section == "slot-transformer" else f", section `{args.section}`"
    lines = [f"## Slot Transformer (CPU scale, `benchmarks/slot_transformer_experiments.py`{named})", "",
             *provenance(rows.values()),
             "Every run: the `configs/slot_transformer/*_mini.yaml` model (5 slots of 32, 2 iterations, 2-layer "
             "transformers, LAMB lr 1e-3 unless the switches say otherwise) on 16x16 frames (the data's 32x32 where the switches set `model.resolution=32`), 8 frames per clip, batch 8, "
             "trained with the run's "
             "switches for the steps shown. The paper trains 64x64 videos for up to 500k steps; these are CPU budgets "
             "and one seed, so differences of a few points are noise."]
    if clevrer:
        aloe = {}
        results = work / "results.json"
        if results.exists():
            aloe = {n: r for n, r in json.loads(results.read_text()).items() if n in ("aloe", "cnn_lstm")}
        lines += ["", "**CLEVRER-style questions** (generated clevrer-mini, descriptive and multiple-choice questions "
                  "trained together). Val split, per-question accuracy per type (a multiple-choice question counts "
                  "when all its options are right), as the official evaluation groups them; `train`/`held-out` are "
                  f"descriptive accuracy on {args.train_samples} train and val questions (for the overfitting "
                  "claim); `held-out FG-ARI` scores the last iteration's masks on the same val clips against the "
                  "generator's object masks (- where not kept). The two no-video rows are references: a model at the language prior (the most common train "
                  "answer of the same question text) has learned nothing from the video. Aloe and CNN+LSTM rows: `benchmarks/aloe_clevrer.py` on the same videos and questions "
                  "(32x32 MONet objects, 1000 steps of 8 labelled questions + 8 unlabelled).", "",
                  "| run | switches | steps | train min | descriptive | explanatory | predictive | counterfactual | "
                  "mean of 4 | train desc. | held-out desc. | held-out FG-ARI |", "|---" * 12 + "|"]
        for n, r in clevrer.items():
            v = r["val"]
            lines.append(f"| {n} | {' '.join(r['switches']) or '-'} | {r['steps']} | {r['train_s'] / 60:.0f} | "
                         + " | ".join(fmt(v[k if k == 'descriptive' else f'{k}_per_question']) for k in TYPES)
                         + f" | {fmt(v['overall'])} | {fmt(r['train'].get('accuracy'))} | "
                         f"{fmt(r['heldout'].get('accuracy'))} | {fmt(r['heldout'].get('fg_ari'))} |")
        from slotvideo.train.config import load_config

        data = load_config(CONFIGS["clevrer"], [f"data.cache_dir={work / 'cache'}",
                                                *data_overrides("clevrer", args.videos)])
        for n, v in answer_priors(data).items():
            lines.append(f"| {n} | - | - | - | " + " | ".join(fmt(v[k if k == 'descriptive' else f'{k}_per_question'])
                                                          for k in TYPES) + f" | {fmt(overall(v))} | - | - | - |")
        for n, seeds in seed_groups(clevrer).items():
            lines.append(f"| {n}, mean ± s.e. over its {len(seeds)} seeds | - | - | - | "
                         + " | ".join(mean_se([r["val"][k if k == 'descriptive' else f'{k}_per_question']
                                               for r in seeds]) for k in TYPES)
                         + f" | {mean_se([r['val']['overall'] for r in seeds])} | - | - | - |")
        for n, v in aloe.items():
            lines.append(f"| {n} (aloe_clevrer.py) | - | {v['steps']} | {v['train_s'] / 60:.0f} | "
                         + " | ".join(fmt(v[k if k == 'descriptive' else f'{k}_per_question']) for k in TYPES)
                         + f" | {fmt(overall(v))} | - | - | - |")
        lines += ["", "Claims (held-out, one seed):", "", *claims(clevrer)]
    if cater:
        lines += split_table("**CATER-style snitch localization** (generated cater-mini, 6x6 grid; chance top-1 0.028):",
                             cater, "top1", ("top1", "top5", "l1"))
    if actions:
        lines += split_table(
            "**Action recognition** (the Kinetics-600 stand-in, experiment 8): the classification head on "
            "cater-mini's max2action videos (`cater_mini_actions.yaml`: SGD, warm-up and cosine decay, unless "
            "the switches say otherwise). The config's task is CATER's Task 2, compositional actions "
            "(`actions_order_uniq`, 301 multi-hot classes); rows with `data.params.task=actions_present` do "
            "Task 1, the 14 atomic actions (multi-hot). `map` is CATER's score (AP per class over the split, "
            "averaged over the classes that occur); top-k is a hit when a true class is among the k highest "
            "logits. Each *class frequency* row ranks every val video's classes by their train frequency, "
            "without the video, on the named row's task and videos.",
            actions, "map", ("map", "top1", "top5"))
        baselines: dict[tuple, list[str]] = {}   # one row per distinct baseline, naming the runs it is for
        for name, r in actions.items():
            if "frequency" in r:
                key = (r.get("videos", 600), *(fmt(r["frequency"].get(k)) for k in ("map", "top1", "top5")))
                baselines.setdefault(key, []).append(name)
        for (videos, *cells), names in baselines.items():
            lines.append(f"| class frequency, no video ({', '.join(names)}) | - | {videos} | - | - | - | "
                         + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = row_parser(__doc__, ".cache/aloe_bench", RUNS, ["clevrer"], 1000, "slot-transformer")
    parser.add_argument("--videos", type=int, default=1000, help="generated clevrer-mini videos (all splits)")
    parser.add_argument("--cater-videos", type=int, default=600, help="generated cater-mini videos (all splits)")
    parser.add_argument("--train-samples", type=int, default=512, help="questions scored for the train/held-out gap")
    args = parser.parse_args()
    return run_all(args, run, lambda work: render(work, args), args.section)


if __name__ == "__main__":
    raise SystemExit(main())
