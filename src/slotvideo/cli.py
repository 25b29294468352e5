"""The ``slotvideo`` command line: one verb per module in :mod:`slotvideo.commands`.

Each verb module defines ``HELP`` (one line), ``add_arguments(parser)`` and ``run(args) -> int``.
Errors meant for the user (:class:`~slotvideo.errors.SlotvideoError`) are printed as one line and
exit with status 2; nothing else is caught.
"""
from __future__ import annotations

import argparse
import importlib
import sys

from .errors import SlotvideoError

VERBS = ("train", "evaluate", "segment", "rollout", "answer", "data", "quickstart", "bench")


def _verb_module(verb: str):
    return importlib.import_module(f"slotvideo.commands.{verb}")


def build_parser(verbs: tuple[str, ...] = VERBS) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="slotvideo", description="Object-centric video learning.")
    sub = parser.add_subparsers(dest="verb", metavar="VERB")
    for verb in verbs:
        try:
            module = _verb_module(verb)
        except ModuleNotFoundError as e:  # a verb whose module is not part of this install
            if e.name != f"slotvideo.commands.{verb}":
                raise
            continue
        p = sub.add_parser(verb, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # Build only the verb asked for when possible, so `slotvideo data ...` does not import torch models.
    verbs = (argv[0],) if argv and argv[0] in VERBS else VERBS
    parser = build_parser(verbs)
    # `train cfg a=1 --no-progress b=2`: key=value overrides may stand on either side of options
    args, extra = parser.parse_known_args(argv)
    stray = [a for a in extra if a.startswith("-") or "=" not in a]
    if extra and (stray or not hasattr(args, "overrides")):
        parser.error(f"unrecognized arguments: {' '.join(stray or extra)}")
    if extra:
        args.overrides = list(args.overrides) + extra
    if getattr(args, "_run", None) is None:
        parser.print_help()
        return 1
    try:
        return int(args._run(args) or 0)
    except SlotvideoError as e:
        print(f"slotvideo {args.verb}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"slotvideo {args.verb}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
