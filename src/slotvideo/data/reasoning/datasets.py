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
"""
from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from torch.utils.data import Dataset

from ...errors import ConfigError
from ...registry import register
from ..cater import open_cater
from ..clevrer import open_clevrer
from . import generate_layout

#: videos generated when ``params.generate.num_videos`` is not given
DEFAULT_NUM_VIDEOS = 200


def layout_root(name: str, generate: Mapping[str, Any], seed: int, cache_dir: str | os.PathLike) -> Path:
    """Where the generated layout of ``name`` with these generator parameters lives."""
    key = json.dumps({"name": name, "generate": dict(generate), "seed": seed}, sort_keys=True, default=str)
    return Path(cache_dir) / f"{name}-{hashlib.sha1(key.encode()).hexdigest()[:10]}"


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
    if not (root / f".{name}" / "stats.json").exists():
        generate_layout(name, root, num_videos, seed, workers=workers, params=generate)
    return loader(split, num=num, seed=seed, params={**params, "root": str(root)}, cache_dir=cache_dir)


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
