"""Run logs: one JSON line per log step in ``metrics.jsonl`` and the same scalars in TensorBoard.

Only rank 0 writes (other ranks get a logger with ``enabled=False``). A line looks like::

    {"step": 100, "loss": 0.0123, "terms": {"recon": 0.0123}, "lr": {"main": 0.0004},
     "steps_per_s": 12.5, "time": 8.01}

and an evaluation line ``{"step": 1000, "val/loss": ..., "val/ari": ...}``. On resume the file is
cut back to the checkpoint's step so that it never holds two lines for one step.
"""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any


class RunLogger:
    def __init__(self, run_dir: str | Path, enabled: bool = True, resume_step: int | None = None,
                 tensorboard: bool = True):
        self.enabled = enabled
        self.path = Path(run_dir) / "metrics.jsonl"
        self._file = None
        self._tb = None
        if not enabled:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if resume_step is None:
            self.path.write_text("")
        else:
            self._truncate(resume_step)
        self._file = open(self.path, "a", buffering=1)
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self._tb = SummaryWriter(str(Path(run_dir) / "tb"), purge_step=resume_step)

    def _truncate(self, step: int) -> None:
        if not self.path.exists():
            return
        keep = []
        for line in self.path.read_text().splitlines():
            try:
                if json.loads(line).get("step", 0) <= step:
                    keep.append(line)
            except json.JSONDecodeError:  # a line cut short by a crash
                continue
        self.path.write_text("".join(k + "\n" for k in keep))

    def log(self, step: int, values: dict[str, Any]) -> None:
        if not self.enabled:
            return
        record = {"step": step, **values}
        self._file.write(json.dumps(record, default=_plain) + "\n")
        if self._tb is not None:
            for key, value in _flatten(values).items():
                if isinstance(value, (int, float)) and math.isfinite(value):
                    self._tb.add_scalar(key, value, step)

    def flush(self) -> None:
        if self._tb is not None:
            self._tb.flush()
        if self._file is not None:
            self._file.flush()

    def close(self) -> None:
        if self._tb is not None:
            self._tb.close()
            self._tb = None
        if self._file is not None:
            self._file.close()
            self._file = None


def _flatten(values: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(_flatten(value, f"{name}/"))
        elif key != "time":
            out[name] = value
    return out


def _plain(value: Any) -> Any:
    if hasattr(value, "item"):
        return value.item()
    return str(value)
