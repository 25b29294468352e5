"""Parallel, resumable generation of per-video work items, shared by both reasoning generators.

Every video is a pure function of ``(seed, scene index, params)`` and writes its own files; the last file a
video writes is its small *record* under ``<out>/.<name>/`` (stats, and for CLEVRER its questions), so a
record marks a finished video and an interrupted run resumes by skipping indices that have one. The
dataset-level files (question files, lists) are rebuilt from the records at the end. ``<out>/.<name>/
params.json`` pins the generator params and seed: resuming with different ones is refused instead of
mixing two datasets.
"""
from __future__ import annotations

import json
import multiprocessing as mp
from collections.abc import Callable
from dataclasses import fields
from pathlib import Path
from typing import Any, ClassVar

from tqdm import tqdm

from ...errors import ConfigError, check_range
from .clevrer_layout import write_json


def record_dir(out: Path, name: str) -> Path:
    return out / f".{name}"


def record_path(out: Path, name: str, index: int) -> Path:
    return record_dir(out, name) / f"{index:05d}.json"


def pin_params(out: Path, name: str, params: dict[str, Any]) -> None:
    """Write ``params.json`` or check that an earlier run used the same params."""
    path = record_dir(out, name) / "params.json"
    if path.exists():
        old = json.loads(path.read_text())
        if old != params:
            diff = sorted(k for k in set(old) | set(params) if old.get(k) != params.get(k))
            raise ConfigError(f"{out} holds a {name} dataset made with other params ({', '.join(diff)}); "
                              "use another --out folder or the same params to resume")
        return
    write_json(path, params)


def _run_one(job: tuple[Callable[..., dict[str, Any]], int, str, dict[str, Any]]) -> int:
    fn, index, out, params = job
    record = fn(index, Path(out), params)
    write_json(record_path(Path(out), params["_name"], index), record)
    return index


def run_all(fn: Callable[[int, Path, dict[str, Any]], dict[str, Any]], indices: list[int], out: Path,
            params: dict[str, Any], workers: int, progress: bool) -> dict[int, dict[str, Any]]:
    """Run ``fn(index, out, params)`` for every index without a record; return all records by index."""
    check_range(workers, "workers", 1, integer=True)
    name = params["_name"]
    todo = [i for i in indices if not record_path(out, name, i).exists()]
    jobs = [(fn, i, str(out), params) for i in todo]
    bar = tqdm(total=len(indices), initial=len(indices) - len(todo), desc=name, unit="video", disable=not progress)
    try:
        if workers == 1 or len(jobs) <= 1:
            for job in jobs:
                _run_one(job)
                bar.update()
        else:
            # fork keeps worker start-up cheap (no re-import); each job is independent, so order is free.
            ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
            with ctx.Pool(workers) as pool:
                for _ in pool.imap_unordered(_run_one, jobs, chunksize=4):
                    bar.update()
    finally:
        bar.close()
    return {i: json.loads(record_path(out, name, i).read_text()) for i in indices}


class LayoutParams:
    """Base of the frozen parameter dataclasses of layout generators: built from a dict whose values may
    be strings (``--param k=v``), converted to each field's type and validated."""

    generator_name: ClassVar[str] = "generator"

    def validate(self) -> None:
        """Raise ConfigError naming a parameter that is out of range."""

    @classmethod
    def from_dict(cls, params: dict[str, Any]) -> Any:
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(params) - known)
        if unknown:
            raise ConfigError(f"{cls.generator_name}: unknown params {unknown}; known params are {sorted(known)}")
        typed = {}
        for k, v in params.items():
            default = getattr(cls, k)
            try:
                typed[k] = v if isinstance(v, type(default)) else type(default)(v)
            except (TypeError, ValueError):
                raise ConfigError(f"{cls.generator_name} param {k!r} must be a {type(default).__name__}, "
                                  f"got {v!r}") from None
        out = cls(**typed)
        out.validate()
        return out


class LayoutGenerator:
    """Registry entry of a generator that writes a whole dataset layout (not frame shards).

    Subclasses name their parameter dataclass (``params_class``, with ``from_dict``) and the function
    that writes the layout (``generate(out_dir, num, seed, workers, progress, **params)``).
    ``writes_layout`` tells ``slotvideo data generate`` to call :meth:`write` instead of the shard writer.
    """

    name: str
    writes_layout = True
    params_class: Any
    generate: Callable[..., dict[str, Any]]

    def __init__(self, params: dict[str, Any] | None = None) -> None:
        self.params = dict(params or {})
        self.params_class.from_dict(self.params)  # validate now: bad params fail when the entry is built

    @classmethod
    def from_params(cls, params: dict[str, Any] | None = None) -> "LayoutGenerator":
        return cls(params)

    def write(self, out_dir: str | Path, num: int, seed: int = 0, workers: int = 2,
              progress: bool = True) -> dict[str, Any]:
        return type(self).generate(out_dir, num, seed, workers, progress, **self.params)

