"""CLEVRER-style question answering shared by the reasoning benchmarks (Aloe, Slot Transformer): train a
config as a resumable run, load it, and score it per question type on a split as the official evaluation does."""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

import torch

from benchmarks.workbench_run import finished_steps

TYPES = ("descriptive", "explanatory", "predictive", "counterfactual")


#: Aloe switches for object tokens from the ground-truth instance masks (``frontend: masks``, a diagnostic beyond
#: the paper: perfect perception), in a random order every batch, so that objects must be told by their looks
GROUND_TRUTH_OBJECTS = ["model.frontend=masks", "model.monet={}", "model.monet_pretrain_steps=0",
                        "data.params.masks=true", "model.shuffle_objects=true"]


def reads_frozen_frontend(switches: list[str]) -> bool:
    """Whether an Aloe run with these switches reads the benchmark's frozen front-end (it does unless the
    switches name their own: ResNet hyper-pixels or ground-truth masks)."""
    return not any(x.startswith("model.frontend=") for x in switches)


def check_dataset(results: Path, dataset: dict) -> None:
    """The runs under one ``--work`` are trained on one dataset size: the first invocation records ``dataset``
    in ``results`` (key ``dataset``), and a later one asking for another is refused, naming both: its runs
    would be taken for the old ones (they share names) and its rows would mix with theirs."""
    results.parent.mkdir(parents=True, exist_ok=True)
    kept = json.loads(results.read_text()).get("dataset") if results.exists() else None
    if kept is None:
        save_row(results, "dataset", dataset)
    elif kept != dataset:
        raise SystemExit(f"{results}: the runs there were trained on {kept}, not {dataset}; "
                         "use those sizes or another --work")


def save_row(results: Path, name: str, row: dict) -> None:
    """Add ``row`` to ``results`` under an exclusive lock, atomically: invocations running at once (e.g. the two
    halves of the masking grid) each read and rewrite the file, and must not drop each other's rows."""
    import fcntl

    with open(results.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        rows = json.loads(results.read_text()) if results.exists() else {}
        rows[name] = row
        tmp = results.with_suffix(".tmp")
        tmp.write_text(json.dumps(rows, indent=1))
        tmp.replace(results)


def train_run(config: str, name: str, work: Path, steps: int, overrides: list[str]) -> Path:
    """Train ``config`` as ``<work>/runs/<name>`` to ``steps`` (resuming a stopped run); returns the run dir."""
    from slotvideo.train.config import load_config
    from slotvideo.train.run import train

    run_dir = work / "runs" / name
    last = run_dir / "checkpoints" / "last.ckpt"
    if last.exists() and finished_steps(run_dir)[0] >= steps:
        return run_dir
    cfg = load_config(config, [f"run.dir={work / 'runs'}", f"run.name={name}", f"data.cache_dir={work / 'cache'}",
                               "train.eval_every=0", "train.media_every=0", f"train.steps={steps}",
                               f"run.resume={'true' if last.exists() else 'false'}", *overrides])
    if train(cfg, progress=False).get("stopped"):  # SIGTERM / SIGINT / time budget: do not score a half-trained run
        raise SystemExit(f"{name}: training stopped before step {steps}; run the same command again to resume")
    return run_dir


def row_parser(doc: str, work: str, runs: dict, default_runs: list[str], steps: int, section: str | None,
               steps_help: str | None = None) -> argparse.ArgumentParser:
    """The arguments of a run-per-row benchmark (``--work``, ``--steps``, ``--runs``, ``--threads``, ``--section``
    for :func:`run_all`); the script adds its own."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--work", default=work, help="runs, generated data and results")
    parser.add_argument("--steps", type=int, default=steps, help=steps_help)
    parser.add_argument("--runs", nargs="*", choices=sorted(runs), default=default_runs)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--section", default=section,
                        help="docs/results.md section to redraw from every row kept under --work")
    return parser


def run_all(args, run, render, section: str) -> int:
    """A run-per-row benchmark's main loop: set ``args.threads`` torch threads, train and score each of
    ``args.runs`` with ``run(name, args, work)`` under ``args.work``, then redraw ``section`` of
    docs/results.md from ``render(work)``."""
    from benchmarks._results import write_section

    torch.set_num_threads(args.threads)
    work = Path(args.work).resolve()
    for name in args.runs:
        run(name, args, work)
    write_section(section, render(work))
    return 0


def single_task(cfg, split: str, task: str, num: int | None = None, **params):
    """The run's data read with the loader of one task (a mixed run answers both kinds); ``num`` samples of it;
    ``params`` replace more of the run's data params."""
    from slotvideo.data import open_dataset

    # the loader ignores max_choices outside task: mixed, so overriding task alone is enough
    return open_dataset(cfg.data.name, split, params={**cfg.data.params, "task": task, **params}, cache_dir=cfg.data.cache_dir,
                        num=num)


def split_means(cfg, model, split: str, num: int | None = None, seed: int = 0, **params) -> dict[str, float]:
    """``evaluate_batch`` averaged over ``num`` samples of ``split`` read with the run's data params (``params``
    replace some: ``camera="moving"``), NaN-skipping; split-level metrics (mAP) over the whole split. Mixed
    CLEVRER batches give descriptive ``accuracy`` and multiple-choice ``question_accuracy``; CATER top1 / top5 /
    l1; action lists map / top1 / top5."""
    from slotvideo.data.batch import collate
    from slotvideo.eval.evaluate import average_metrics

    model.eval()
    torch.manual_seed(seed)
    ds = single_task(cfg, split, params.pop("task", cfg.data.params.get("task")), num, **params)
    batches = (collate([ds[i] for i in range(s, min(s + 32, len(ds)))]) for s in range(0, len(ds), 32))
    with torch.no_grad():
        means, _, _ = average_metrics(model.evaluate_batch, batches).reduce()
    return {k: v for k, v in means.items() if not math.isnan(v)}


def score(run_dir: Path, split: str = "val", seed: int = 0, loaded: tuple | None = None) -> dict:
    """Per-question / per-option accuracy per type on ``split``, grouped by question as the official evaluation;
    any model with ``task_logits`` (Aloe, CNN+LSTM, Slot Transformer). ``seed`` fixes a stochastic model's samples;
    ``loaded`` is the run's (config, model), from ``checkpoint.load_run``, when the caller has it already."""
    from slotvideo.data.batch import collate
    from slotvideo.data.clevrer import ClevrerPredictions
    from slotvideo.train.checkpoint import load_run

    cfg, model = loaded or load_run(run_dir)[:2]
    model.eval()
    torch.manual_seed(seed)
    preds = ClevrerPredictions()
    with torch.no_grad():
        for task in ("descriptive", "multiple_choice"):
            ds = single_task(cfg, split, task)
            for start in range(0, len(ds), 32):
                batch = collate([ds[i] for i in range(start, min(start + 32, len(ds)))])
                preds.add(batch, model.task_logits(batch))
    return {**preds.accuracy.compute(), **hard_counterfactual_accuracy(ds, preds)}


def hard_counterfactual_accuracy(ds, preds) -> dict[str, float]:
    """Appendix B: per-question accuracy on counterfactual questions whose removed object collides."""
    from slotvideo.data.reasoning.executor import Executor

    right = total = 0
    executors: dict[int, Executor] = {}
    for q in ds.questions:
        if q.type_name != "counterfactual" or q.scene_index not in ds.files.annotations:
            continue
        if q.scene_index not in executors:
            executors[q.scene_index] = Executor(json.loads(ds.files.annotations[q.scene_index].read_text()))
        if not executors[q.scene_index].hard_counterfactual(list(q.program)):
            continue
        flags = [preds.options.get((q.scene_index, q.question_id, c.choice_id)) for c in q.choices]
        if any(f is None for f in flags):
            continue
        total += 1
        right += all(bool(f) == bool(c.correct) for f, c in zip(flags, q.choices))
    return {"hard_counterfactual_per_question": right / total if total else float("nan"),
            "hard_counterfactual_questions": total}


def answer_priors(cfg) -> dict[str, dict[str, float]]:
    """Reference rows that never look at the video, scored on val like a model: the most common train answer
    (descriptive) and option label (per multiple-choice type); and the language prior, the most common train
    answer of a question with the same text (an option: same question and choice text), falling back to the
    former for texts never seen in training. A model at the language prior has learned nothing from the video."""
    # a split's question list holds both kinds whatever the loader's task
    train, val = (single_task(cfg, split, "descriptive").questions for split in ("train", "val"))
    return {"majority answer (no model)": prior_row(train, val, lambda q: None, lambda q, c: None),
            "same question text, most common train answer (no video)":
                prior_row(train, val, lambda q: q.text, lambda q, c: (q.text, c.text))}


def prior_row(train: list, val: list, question_key, option_key) -> dict[str, float]:
    """Accuracies of answering each val question with the most common train answer of its key."""
    from collections import Counter, defaultdict

    def table(pairs):
        counts = defaultdict(Counter)
        for key, value in pairs:
            counts[key][value] += 1
        return {k: c.most_common(1)[0][0] for k, c in counts.items()}

    desc = [q for q in train if q.type_name == "descriptive"]
    fallback = Counter(q.answer for q in desc).most_common(1)[0][0]
    answers = table((question_key(q), q.answer) for q in desc)
    val_desc = [q for q in val if q.type_name == "descriptive"]
    row = {"descriptive": sum(answers.get(question_key(q), fallback) == q.answer for q in val_desc) / len(val_desc)}
    for kind in TYPES[1:]:
        mc = [q for q in train if q.type_name == kind]
        label = Counter(c.correct for q in mc for c in q.choices).most_common(1)[0][0]
        labels = table((option_key(q, c), c.correct) for q in mc for c in q.choices)
        val_mc = [q for q in val if q.type_name == kind]
        right = [[labels.get(option_key(q, c), label) == c.correct for c in q.choices] for q in val_mc]
        row[f"{kind}_per_option"] = sum(map(sum, right)) / sum(map(len, right))
        row[f"{kind}_per_question"] = sum(map(all, right)) / len(val_mc)
    return row
