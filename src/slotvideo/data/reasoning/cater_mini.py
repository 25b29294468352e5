"""``cater-mini``: CATER-style snitch videos in the CATER release layout (see :mod:`.cater_layout`).

    python -m slotvideo.data.reasoning.cater_mini --out data/cater-mini --num 1000 --seed 0 --param camera=moving
    generate_cater_mini("data/cater-mini", 1000, seed=0, workers=2, camera="static", actions="all_actions")

Per video: sample objects and actions (:mod:`.cater_sim`), a static or orbiting camera, render
(:mod:`.cater_render`) and write video, scene JSON and masks; labels go to the record, and the lists are
written from all records at the end. Besides the labels, each record keeps whether the snitch ends hidden
under a cone and the class of its last *visible* position (the "last visible position" baseline).

A video's random stream depends on the seed and its index, not on the camera: the static and the moving
variant of one seed render the same scenes (objects, actions, snitch path) and differ only in the camera, so
their scores are a paired measure of what the moving camera costs, and ``camera: both`` shows each scene from
two views. The official CATER renders different scenes for its two variants; generate the moving variant
with another ``seed`` for that.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError, check_range
from ...registry import register
from ..video_io import write_video
from .cater_layout import action_labels, localize_label, masks_json, scene_json, video_name, write_lists
from .cater_render import camera_path, render_cater
from .cater_sim import sample_cater_scene
from .clevrer_layout import write_json
from .runner import LayoutGenerator, LayoutParams, pin_params, run_all

NAME = "cater-mini"
ACTIONS = {"all_actions": 99, "max2action": 2}


@dataclass(frozen=True)
class CaterMiniParams(LayoutParams):
    generator_name: ClassVar[str] = NAME
    size: int = 64
    num_frames: int = 32
    fps: float = 12.0
    min_objects: int = 5
    max_objects: int = 8
    actions: str = "all_actions"
    camera: str = "static"
    contain_prob: float = 0.6
    train_fraction: float = 0.7

    def validate(self) -> None:
        check_range(self.size, "size", 16, 1024, integer=True)
        check_range(self.num_frames, "num_frames", 12, 2000, integer=True)
        check_range(self.min_objects, "min_objects", 3, 10, integer=True)
        check_range(self.max_objects, "max_objects", self.min_objects, 10, integer=True)
        check_range(self.fps, "fps", 1, 120)
        check_range(self.contain_prob, "contain_prob", 0, 1)
        check_range(self.train_fraction, "train_fraction", 0, 1)
        if self.actions not in ACTIONS:
            raise ConfigError(f"{NAME} param 'actions' must be one of {list(ACTIONS)}, got {self.actions!r}")
        if self.camera not in ("static", "moving"):
            raise ConfigError(f"{NAME} param 'camera' must be 'static' or 'moving', got {self.camera!r}")

    @property
    def variant(self) -> str:
        return self.actions + ("_cameramotion" if self.camera == "moving" else "")


def make_video(index: int, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    p = CaterMiniParams(**{k: v for k, v in params.items() if not k.startswith("_")})
    rng = np.random.default_rng([params["_seed"], 0xCA7E, index])
    scene = sample_cater_scene(rng, p.num_frames, p.min_objects, p.max_objects, ACTIONS[p.actions],
                               contain_prob=p.contain_prob)
    eyes = camera_path(p.num_frames, p.camera == "moving", rng)
    frames, labels = render_cater(scene, p.size, eyes)
    variant = out / p.variant
    write_video(variant / "videos" / video_name(index), frames, fps=p.fps)
    split = "train" if index < params["_n_train"] else "val"
    scene_dict = scene_json(index, scene, eyes, split)
    write_json(variant / "masks" / video_name(index).replace(".avi", ".json"), masks_json(index, labels, scene))
    write_json(variant / "scenes" / video_name(index).replace(".avi", ".json"), scene_dict)
    snitch = scene_dict["objects"][0]
    final = snitch["locations"][str(len(snitch["locations"]) - 1)]
    seen = np.nonzero((labels == 1).any(axis=(1, 2)))[0]
    last_seen = int(seen[-1]) if len(seen) else 0
    present, order = action_labels(scene_dict)
    return {"index": index, "objects": len(scene.objects), "hidden_end": bool(scene.container[-1, 0] >= 0),
            "last_visible_class": localize_label(scene.position[last_seen, 0]),
            "labels": {"localize": localize_label(final), "localize_4x4": localize_label(final, 2),
                       "localize_8x8": localize_label(final, 4), "actions_present": present,
                       "actions_order_uniq": order},
            "contains": sum(m[0] == "_contain" for ms in scene.movements.values() for m in ms)}


def generate_cater_mini(out_dir: str | Path, num_videos: int, seed: int = 0, workers: int = 2,
                        progress: bool = True, **params: Any) -> dict[str, Any]:
    """Write ``num_videos`` CATER-style videos, scenes, masks and lists under ``out_dir/<variant>``; returns stats."""
    check_range(num_videos, "num_videos", 1, 999_999, integer=True)
    check_range(seed, "seed", 0, integer=True)
    p = CaterMiniParams.from_dict(params)
    out = Path(out_dir)
    n_train = int(round(num_videos * p.train_fraction))
    record = {**asdict(p), "_name": f"{NAME}-{p.variant}", "_seed": seed, "_n_train": n_train}
    pin_params(out, record["_name"], record)
    records = run_all(make_video, list(range(num_videos)), out, record, workers, progress)
    write_lists(out / p.variant, records, p.train_fraction)
    stats = cater_stats(records)
    write_json(out / f".{record['_name']}" / "stats.json", stats)
    return stats


def cater_stats(records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Objects, contains, hidden-snitch share and the last-visible-position baseline on hidden endings."""
    rs = list(records.values())
    hidden = [r for r in rs if r["hidden_end"]]
    hit = [r["last_visible_class"] == r["labels"]["localize"] for r in hidden]
    all_hit = [r["last_visible_class"] == r["labels"]["localize"] for r in rs]
    n = max(1, len(rs))
    return {
        "videos": len(rs),
        "objects_per_video": round(sum(r["objects"] for r in rs) / n, 2),
        "contains_per_video": round(sum(r["contains"] for r in rs) / n, 2),
        "hidden_snitch_share": round(len(hidden) / n, 3),
        "last_visible_accuracy_hidden": round(sum(hit) / max(1, len(hit)), 3),
        "last_visible_accuracy_all": round(sum(all_hit) / n, 3),
        "label_classes_used": len({r["labels"]["localize"] for r in rs}),
    }


class CaterMini(LayoutGenerator):
    """Registry entry for ``cater-mini``."""

    name = NAME
    params_class = CaterMiniParams
    generate = staticmethod(generate_cater_mini)


if __name__ != "__main__":  # run as a script, the package import registers the class once
    register("generator", NAME)(CaterMini)

if __name__ == "__main__":
    from slotvideo.data.reasoning.cater_mini import generate_cater_mini as _generate
    from slotvideo.data.reasoning.clevrer_mini import main as _main

    raise SystemExit(_main(generate=_generate, name=NAME))
