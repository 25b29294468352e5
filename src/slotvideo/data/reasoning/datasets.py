"""``clevrer-mini`` and ``cater-mini`` as datasets: generated into the cache on first use, then read
by the official-layout loaders, so a config naming them trains with no preparation step.

    data:
      name: clevrer-mini
      cache_dir: .cache/slotvideo
      params:
        generate: {num_videos: 200, size: 32, num_frames: 16}   # generator parameters (optional)
        task: descriptive                                        # everything else goes to the loader
        size: 32

The layout is written to ``<cache_dir>/<name>-<hash of the generator parameters and data seed>/``;
generation is resumable, and a finished folder (its ``stats.json`` written last) is reused as is.
Processes that open the same layout at once (two runs started together) take turns: generation holds an
exclusive lock on ``<folder>/.generate.lock``, so one process writes it and the others then read it.

cater-mini's camera: the loader's ``camera`` (``static``, ``moving`` or ``both``) says which variants
are generated when ``generate.camera`` is not given (``both`` writes the static and the moving variant into
the same folder); a ``generate.camera`` alone is also what the loader reads. The two may not disagree.
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import register
from ..cater import CAMERA_CHOICES, open_cater
from ..clevrer import open_clevrer
from . import generate_layout
from .cater_mini import CaterMiniParams

#: videos generated when ``params.generate.num_videos`` is not given
DEFAULT_NUM_VIDEOS = 200


def layout_root(name: str, generate: Mapping[str, Any], seed: int, cache_dir: str | os.PathLike) -> Path:
    """Where the generated layout of ``name`` with these generator parameters lives."""
    key = json.dumps({"name": name, "generate": dict(generate), "seed": seed}, sort_keys=True, default=str)
    return Path(cache_dir) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


@contextmanager
def generation_lock(root: Path) -> Iterator[None]:
    """An exclusive lock on ``<root>/.generate.lock``, held while the layout is written."""
    try:
        import fcntl
    except ImportError:  # not POSIX: generation runs unlocked
        yield
        return
    root.mkdir(parents=True, exist_ok=True)
    with open(root / ".generate.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _open(name: str, loader: Callable[..., Dataset], split: str, num: int | None, seed: int,
          params: Mapping[str, Any] | None, cache_dir: str | os.PathLike | None) -> Dataset:
    params = dict(params or {})
    generate = dict(params.pop("generate", None) or {})
    if "root" in params:
        raise ConfigError(f"data.params.root: {name} is generated into data.cache_dir; to read a folder you "
                          f"generated yourself, use data.name={name.split('-')[0]} with data.params.root")
    if cache_dir is None:
        raise ConfigError(f"data.cache_dir: {name} is generated into a folder on first use; set a cache_dir")
    num_videos = int(generate.pop("num_videos", DEFAULT_NUM_VIDEOS))
    workers = int(generate.pop("workers", 2))
    root = layout_root(name, {**generate, "num_videos": num_videos}, seed, cache_dir)
    layouts = [(generate, name)]
    if name == "cater-mini":
        layouts, params = _cater_layouts(generate, params)
    for gen, record in layouts:
        if not (root / f".{record}" / "stats.json").exists():
            with generation_lock(root):
                if not (root / f".{record}" / "stats.json").exists():  # another process may have written it
                    generate_layout(name, root, num_videos, seed, workers=workers, params=gen)
    return loader(split, num=num, seed=seed, params={**params, "root": str(root)}, cache_dir=cache_dir)


def _cater_layouts(generate: dict[str, Any], params: dict[str, Any]
                   ) -> tuple[list[tuple[dict[str, Any], str]], dict[str, Any]]:
    """(generator params, record folder name) of each cater-mini variant the loader reads, and the loader
    params with ``camera`` filled in from ``generate.camera`` when only that is given."""
    loader_camera, gen_camera = params.get("camera"), generate.get("camera")
    if loader_camera is not None and gen_camera is not None and loader_camera != gen_camera:
        raise ConfigError(f"data.params.camera={loader_camera!r} but data.params.generate.camera={gen_camera!r}: "
                          "remove generate.camera (the loader's camera decides which variants are generated)")
    camera = loader_camera or gen_camera or "static"
    if camera not in CAMERA_CHOICES:
        raise ConfigError(f"data.params.camera must be one of {list(CAMERA_CHOICES)}, got {camera!r}")
    cameras = ("static", "moving") if camera == "both" else (camera,)
    # generate_cater_mini keeps each variant's records (and stats.json) in .cater-mini-<variant>/
    layouts = [(gen, f"cater-mini-{CaterMiniParams.from_dict(gen).variant}")
               for gen in ({**generate, "camera": c} for c in cameras)]
    return layouts, {**params, "camera": camera}


@register("dataset", "clevrer-mini")
def open_clevrer_mini(split: str, *, num: int | None = None, seed: int = 0, params: Mapping[str, Any] | None = None,
                      cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Generated CLEVRER-style videos and questions, read by the CLEVRER loader (its params apply)."""
    return _open("clevrer-mini", open_clevrer, split, num, seed, params, cache_dir)


@register("dataset", "cater-mini")
def open_cater_mini(split: str, *, num: int | None = None, seed: int = 0, params: Mapping[str, Any] | None = None,
                    cache_dir: str | os.PathLike | None = None) -> Dataset:
    """Generated CATER-style videos and lists, read by the CATER loader (its params apply)."""
    return _open("cater-mini", open_cater, split, num, seed, params, cache_dir)
