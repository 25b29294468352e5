"""``slotvideo evaluate RUN [key=value ...] [--submission PATH]``: score a run's checkpoint on a whole split
-> eval.json; with ``--submission`` also write the CLEVRER test-server answers of a question-answering run."""
from __future__ import annotations

import argparse

HELP = "Evaluate a trained run on a whole split and write runs/<name>/eval.json (data.split=NAME, data.val.num=N)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (or name under runs/) or a .ckpt file")
    parser.add_argument("overrides", nargs="*", metavar="key=value",
                        help="overrides of the run's config, e.g. data.split=test data.val.num=512 data.batch_size=16")
    parser.add_argument("--device", default=None, help="torch device (default: cuda when available, else cpu)")
    parser.add_argument("--no-write", action="store_true", help="print only; do not write eval.json")
    parser.add_argument("--submission", default=None, metavar="PATH",
                        help="also write the CLEVRER test-server submission JSON of a question-answering run "
                             "(aloe, cnn_lstm), e.g. data.split=test; run once with data.params.task=descriptive and "
                             "once with multiple_choice into the same PATH (answers of the other task are kept)")


def run(args: argparse.Namespace) -> int:
    from ..eval.evaluate import evaluate_run

    result = evaluate_run(args.run, args.overrides, device=args.device, write=not args.no_write,
                          submission=args.submission)
    print(f"{result['run']}  step {result['step']}  split {result['split']}  {result['num_samples']} samples")
    width = max((len(k) for k in result["metrics"]), default=0)
    for name, value in result["metrics"].items():
        shown = "nan" if value is None else f"{value:.6g}"
        print(f"  {name:<{width}}  {shown}")
    sub = result.get("submission")
    if sub is not None:
        note = f", {sub['left_out']} incomplete questions left out" if sub["left_out"] else ""
        print(f"submission {sub['path']}: {sub['questions']} {sub['task']} questions{note}, "
              f"{sub['kept_from_file']} kept from the file")
    return 0
