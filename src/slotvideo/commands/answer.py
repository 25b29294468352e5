"""``slotvideo answer RUN VIDEO ["question"] [--choices ...]``: ask a trained run with a task head about a video file."""
from __future__ import annotations

import argparse

HELP = ("Answer a question about a video (descriptive answer, correct/wrong per choice, the localization cell "
        "or the best classes).")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run", help="run directory (or name under runs/) or a .ckpt file of a run with a task head")
    parser.add_argument("video", help="video file (.mp4, .avi, .gif, ...), folder of frames, or .npy uint8 [T, H, W, 3]")
    parser.add_argument("question", nargs="?", default=None, help="the question (CLEVRER runs; localization and classification runs need none)")
    parser.add_argument("--choices", nargs="+", default=(), metavar="CHOICE",
                        help="multiple-choice options; each is judged correct or wrong on its own")
    parser.add_argument("--vocab", default=None, help="clevrer_vocab.json to tokenise with (default: the run's)")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from ..eval.answer import answer_file, format_answer
    from ..eval.evaluate import find_run

    path = Path(args.run) if Path(args.run).is_file() else find_run(args.run)
    result = answer_file(path, args.video, args.question, args.choices, vocab=args.vocab, device=args.device)
    print(format_answer(result))
    return 0
