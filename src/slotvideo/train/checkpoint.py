"""Checkpoints: atomic, ``weights_only``-loadable, complete enough for a bit-exact resume.

A checkpoint is one ``torch.save`` file holding only tensors and plain containers of
str/int/float/bool/None, so ``torch.load(path, weights_only=True)`` reads it (no pickled code)::

    format            "slotvideo-checkpoint"       format_version  1
    slotvideo_version "0.1.0"                      model_name      registry name of the model
    config_yaml       the resolved run config      step            optimizer steps taken
    world_size        processes that trained it
    model             model state_dict (trained weights)
    ema               None | {"decay", "num_updates", "shadow": {param name: tensor}}
    optimizers        {optimizer name: optimizer.state_dict()}
    schedulers        {optimizer name: LambdaLR.state_dict()}
    sampler           {"epoch", "batch", "seed", "num_samples", "batch_size"}
    rng               [per rank: {"torch": uint8 tensor, "cuda": [uint8 tensor] , "numpy": {...},
                                  "python": [version, [ints], gauss_next]}]

Files are written to a temp file in the same folder, fsynced and ``os.replace``-d into place, so a
crash never leaves a half-written file under a real name. ``checkpoints/last.ckpt`` is always the
newest complete checkpoint (a hard link to the newest ``step_XXXXXXX.ckpt``, or a copy where links
are not supported); only the newest ``train.keep_checkpoints`` numbered files are kept.
"""
from __future__ import annotations

import os
import pickle
import random
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from ..errors import CheckpointError, SlotvideoError
from .config import build_model, config_from_yaml
from .optim import ema_weights

FORMAT = "slotvideo-checkpoint"
FORMAT_VERSION = 1
REQUIRED = ("format", "model_name", "config_yaml", "step", "model")


# ------------------------------------------------------------------------------------------- RNG

def rng_state() -> dict[str, Any]:
    """All RNG states of this process as tensors and lists (``weights_only``-safe)."""
    version, keys, gauss = random.getstate()
    name, np_keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": {"name": str(name), "keys": torch.from_numpy(np_keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached_gaussian": float(cached)},
        "python": [int(version), [int(k) for k in keys], gauss],
    }


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])
    n = state["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    version, keys, gauss = state["python"]
    random.setstate((version, tuple(keys), gauss))


# ----------------------------------------------------------------------------------------- files

def _atomic_write(path: str | os.PathLike, mode: str, write: Callable[[Any], Any]) -> None:
    """Write through a temp file in the target folder + fsync + ``os.replace``: the file is whole or absent."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, mode) as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def atomic_save(obj: Any, path: str | os.PathLike) -> None:
    """``torch.save`` written atomically."""
    _atomic_write(path, "wb", lambda f: torch.save(obj, f))


def atomic_write_text(text: str, path: str | os.PathLike) -> None:
    """A text file written atomically."""
    _atomic_write(path, "w", lambda f: f.write(text))


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


class CheckpointManager:
    """Writes ``step_XXXXXXX.ckpt`` + ``last.ckpt`` in ``folder`` and keeps the newest ``keep``."""

    def __init__(self, folder: str | os.PathLike, keep: int):
        self.folder = Path(folder)
        self.keep = keep

    @property
    def last(self) -> Path:
        return self.folder / "last.ckpt"

    def save(self, state: dict[str, Any]) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        numbered = self.folder / f"step_{int(state['step']):07d}.ckpt"
        atomic_save(state, numbered)
        fd, tmp = tempfile.mkstemp(prefix=".last.ckpt.", suffix=".tmp", dir=self.folder)
        os.close(fd)
        os.unlink(tmp)
        try:
            os.link(numbered, tmp)
        except OSError:
            shutil.copyfile(numbered, tmp)
        os.replace(tmp, self.last)
        _fsync_dir(self.folder)
        self._prune()
        return self.last

    def _prune(self) -> None:
        numbered = sorted(self.folder.glob("step_*.ckpt"))
        for old in numbered[:max(len(numbered) - self.keep, 0)]:
            old.unlink(missing_ok=True)


# --------------------------------------------------------------------------------------- reading

def resolve_checkpoint(path: str | os.PathLike) -> Path:
    """A ``.ckpt`` file, or a run directory (its ``checkpoints/last.ckpt``)."""
    path = Path(path)
    if path.is_dir():
        last = path / "checkpoints" / "last.ckpt"
        if not last.is_file():
            raise CheckpointError(f"run directory {str(path)!r} has no checkpoint ({last} does not exist)")
        return last
    if not path.exists():
        raise CheckpointError(f"no run directory or checkpoint file at {str(path)!r}")
    return path


def read_checkpoint(path: str | os.PathLike, expect_model: str | None = None,
                    map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load and sanity-check a checkpoint; corrupt files and foreign models give a CheckpointError."""
    path = resolve_checkpoint(path)
    try:
        state = torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"{path}: not a slotvideo checkpoint (it holds objects other than tensors "
                              f"and plain data: {str(e).splitlines()[0]})") from None
    except (RuntimeError, EOFError, OSError, zipfile.BadZipFile, ValueError) as e:
        raise CheckpointError(f"{path}: corrupt or truncated checkpoint ({str(e).splitlines()[0]})") from None
    if not isinstance(state, dict) or state.get("format") != FORMAT:
        raise CheckpointError(f"{path}: not a slotvideo checkpoint (no {FORMAT!r} header)")
    missing = [k for k in REQUIRED if k not in state]
    if missing:
        raise CheckpointError(f"{path}: checkpoint lacks {missing}")
    if expect_model is not None and state["model_name"] != expect_model:
        raise CheckpointError(f"{path}: checkpoint is of model {state['model_name']!r}, "
                              f"but the config builds model {expect_model!r}")
    return state


def load_model(path: str | os.PathLike, device: str | torch.device = "cpu") -> torch.nn.Module:
    """A ready model (eval mode, EMA weights when the run kept them) from a run dir or ``.ckpt`` file.

    The model is rebuilt through the registry from the config stored in the checkpoint (the copy
    in ``runs/<name>/config.yaml`` is the same text, kept for people to read).
    """
    return load_run(path, device)[1]


def load_run(path: str | os.PathLike, device: str | torch.device = "cpu") -> tuple[Any, torch.nn.Module, int]:
    """The stored config, the ready model (as :func:`load_model`) and the step of a run dir or ``.ckpt`` file,
    from one read of the checkpoint."""
    state = read_checkpoint(path)
    cfg = config_from_yaml(state["config_yaml"], source=f"config stored in {resolve_checkpoint(path)}")
    model = build_model(cfg)
    weights = ema_weights(state["model"], state.get("ema"))
    try:
        model.load_state_dict(weights)
    except RuntimeError as e:
        raise CheckpointError(f"{resolve_checkpoint(path)}: weights do not fit model {cfg.model.name!r}: "
                              f"{str(e).splitlines()[0]}") from None
    model.to(device)
    model.eval()
    return cfg, model, int(state["step"])


def init_weights(model: torch.nn.Module, path: str | os.PathLike, expect_model: str | None = None) -> list[str]:
    """Start ``model`` from the (EMA when kept) weights of a run dir or ``.ckpt`` file (``train.init_from``):
    every tensor whose name the model shares is copied; the model's other tensors (a task head the stored run
    did not have) keep their initialisation, and their names are returned. A shared name whose shape differs,
    or no shared name at all, is a :class:`CheckpointError`: the two runs configure different models."""
    where = resolve_checkpoint(path)
    state = read_checkpoint(where, expect_model=expect_model)
    weights = ema_weights(state["model"], state.get("ema"))
    own = model.state_dict()
    misfits = [f"{k} {tuple(v.shape)} (model {tuple(own[k].shape)})" for k, v in weights.items()
               if k in own and v.shape != own[k].shape]
    if misfits:
        raise CheckpointError(f"{where}: train.init_from: {len(misfits)} weights do not fit the configured model, "
                              f"e.g. {'; '.join(misfits[:3])}")
    shared = {k: v for k, v in weights.items() if k in own}
    if not shared:
        raise CheckpointError(f"{where}: train.init_from: no weight of the checkpoint has a name of the configured "
                              "model")
    model.load_state_dict(shared, strict=False)
    return sorted(set(own) - set(shared))


def export_safetensors(run: str | os.PathLike, out: str | os.PathLike) -> Path:
    """Write the (EMA when present) weights of a run or checkpoint to a ``.safetensors`` file."""
    from safetensors.torch import save_file

    state = read_checkpoint(run)
    weights = ema_weights(state["model"], state.get("ema"))
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in weights.items()}
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_name(f".{out.name}.tmp")
    save_file(tensors, str(tmp), metadata={"model": state["model_name"], "step": str(state["step"]),
                                           "config_yaml": state["config_yaml"]})
    os.replace(tmp, out)
    return out


__all__ = ["CheckpointManager", "CheckpointError", "SlotvideoError", "atomic_save", "atomic_write_text",
           "export_safetensors", "load_model", "read_checkpoint", "resolve_checkpoint", "rng_state",
           "set_rng_state"]
