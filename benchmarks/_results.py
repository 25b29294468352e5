"""Write a benchmark's section of ``docs/results.md`` between markers, leaving other sections alone.

    write_section("blocks", markdown_text)

replaces the text between ``<!-- begin:blocks -->`` and ``<!-- end:blocks -->`` (appending the
section at the end the first time).
"""
from __future__ import annotations

import math
import os
import platform
import subprocess
import sys
from collections.abc import Iterable
from datetime import date
from pathlib import Path

RESULTS = Path(__file__).resolve().parent.parent / "docs" / "results.md"
HEADER = "# Results\n\nEvery number here was produced by the script and command shown with it.\n"


def machine() -> str:
    """One line describing where a benchmark ran."""
    import torch

    dev = torch.cuda.get_device_name(0) if torch.cuda.is_available() else f"CPU ({os.cpu_count()} cores)"
    return f"{dev}, torch {torch.__version__}, Python {platform.python_version()}, {date.today().isoformat()}"


def command() -> str:
    """The command line that ran this script."""
    return "python " + " ".join([os.path.relpath(sys.argv[0])] + sys.argv[1:])


def git_commit() -> str:
    try:
        return subprocess.check_output(["git", "rev-parse", "--short", "HEAD"], text=True,
                                       stderr=subprocess.DEVNULL, cwd=RESULTS.parent).strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def stamp() -> dict:
    """What a cached row keeps of where it came from: the command and the commit that scored it."""
    return {"command": command(), "commit": git_commit()}


def provenance(rows: Iterable[dict]) -> list[str]:
    """The lines under a section's title when its rows ran at different times: the machine, the commits that
    scored the rows (rows cached before commits were kept say so) and the commit that drew the section, and
    every distinct command that produced a row (each row keeps its :func:`stamp`), then a blank line."""
    rows = list(rows)
    commits = sorted({r["commit"] for r in rows if "commit" in r})
    unknown = sum("commit" not in r for r in rows)
    scored = ", ".join(commits + ([f"not recorded for {unknown}"] if unknown else []))
    return [f"{machine()}; rows scored at commit {scored}; drawn at commit {git_commit()}; 1 torch thread per run, "
            "seed 0 unless a row names another (`seed=N`, `-seedN`). The rows come from:", "",
            *(f"    {c}" for c in sorted({r.get("command", "?") for r in rows})), ""]


def write_section(name: str, markdown: str, path: Path = RESULTS) -> None:
    begin, end = f"<!-- begin:{name} -->", f"<!-- end:{name} -->"
    text = path.read_text() if path.exists() else HEADER
    block = f"{begin}\n{markdown.strip()}\n{end}"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + block + tail
    else:
        text = text.rstrip() + "\n\n" + block + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text)
    tmp.replace(path)


def publish(name: str, markdown: str, write: bool = True) -> None:
    """Print a benchmark's section and, unless ``write`` is false (``--no-write``), put it in results.md."""
    print(markdown)
    if write:
        write_section(name, markdown)


def mean_se(values: Iterable[float], scale: float = 1.0) -> str:
    """``mean ± standard error`` of a few seeds' values times ``scale``, 3 decimals; NaNs are left out, one
    value prints alone (no error), none prints ``n/a``."""
    v = [x * scale for x in values if not math.isnan(x)]
    if not v:
        return "n/a"
    if len(v) == 1:
        return f"{v[0]:.3f}"
    mean = sum(v) / len(v)
    se = math.sqrt(sum((x - mean) ** 2 for x in v) / (len(v) - 1) / len(v))
    return f"{mean:.3f} ± {se:.3f}"


def fmt(v) -> str:
    """A table cell: 3 decimals, ``-`` for a missing or NaN value."""
    return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:.3f}"
