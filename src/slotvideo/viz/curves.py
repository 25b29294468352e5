"""Training curves from a run's ``metrics.jsonl``: one panel per scalar, plotted against ``step``.

The file may be read while training still appends to it, so an unparseable *last* line is a write in
progress and is skipped; an unparseable line in the middle is corruption and raises. Non-numeric fields
(strings, lists, booleans) and records without ``step`` are ignored.
"""
from __future__ import annotations

import json
import math
import os
import uuid
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ..errors import DataError

PANEL_INCHES = (4.0, 3.0)
DPI = 100
MAX_COLUMNS = 3


def _is_number(v: object) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def read_metrics(path: str | os.PathLike) -> dict[str, tuple[list[float], list[float]]]:
    """``{key: (steps, values)}`` for every numeric field of a metrics.jsonl file."""
    path = Path(path)
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        raise DataError(f"metrics file {path} does not exist") from None
    series: dict[str, tuple[list[float], list[float]]] = {}
    for n, line in enumerate(lines, 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if n == len(lines):
                break  # being written right now
            raise DataError(f"metrics file {path} line {n} is not JSON: {e}") from None
        if not isinstance(record, dict) or not _is_number(record.get("step")):
            continue
        for key, value in _flatten(record).items():
            if key != "step" and _is_number(value):
                steps, values = series.setdefault(key, ([], []))
                steps.append(record["step"])
                values.append(float(value))
    return series


def _flatten(record: dict, prefix: str = "") -> dict:
    """``{"terms": {"mse": 1}}`` -> ``{"terms/mse": 1}``, so nested loss terms and learning rates plot too."""
    flat = {}
    for key, value in record.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            flat.update(_flatten(value, f"{name}/"))
        else:
            flat[name] = value
    return flat


def plot_curves(metrics_jsonl_path: str | os.PathLike, out_png: str | os.PathLike,
                keys: list[str] | None = None) -> Path:
    """Plot ``keys`` (default: every numeric field) against step into ``out_png``, atomically.

    The picture is ``min(n, 3) * 400`` by ``ceil(n / 3) * 300`` pixels for ``n`` panels.
    """
    series = read_metrics(metrics_jsonl_path)
    if keys is None:
        keys = sorted(series)
    missing = [k for k in keys if k not in series]
    if missing:
        raise DataError(f"metrics file {metrics_jsonl_path} has no numeric {missing}; it has {sorted(series)}")
    if not keys:
        raise DataError(f"metrics file {metrics_jsonl_path} has no numeric fields with a step to plot")
    cols = min(len(keys), MAX_COLUMNS)
    rows = math.ceil(len(keys) / cols)
    fig = Figure(figsize=(PANEL_INCHES[0] * cols, PANEL_INCHES[1] * rows), dpi=DPI, layout="constrained")
    FigureCanvasAgg(fig)  # Agg canvas without touching pyplot's global backend
    for i, key in enumerate(keys):
        ax = fig.add_subplot(rows, cols, i + 1)
        steps, values = series[key]
        ax.plot(steps, values, lw=1.2, marker="." if len(steps) < 30 else None)
        ax.set_title(key, fontsize=10)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    out = Path(out_png)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.partial")
    try:
        fig.savefig(tmp, format="png", dpi=DPI)
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out
