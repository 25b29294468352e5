"""``clevrer-mini``: CLEVRER-style videos with questions, written in the official CLEVRER layout.

    python -m slotvideo.data.reasoning.clevrer_mini --out data/clevrer-mini --num 1000 --seed 0
    generate_clevrer_mini("data/clevrer-mini", 1000, seed=0, workers=2, size=64, num_frames=32)

Per video: sample a scene (:mod:`.scene`), simulate it (:mod:`.physics`) for the shown frames plus
``future_frames`` unseen ones, re-simulate without each object (counterfactuals), record events and
write the annotation (:mod:`.events`), ask questions (:mod:`.questions`), render (:mod:`.render`) and
write video, annotation and proposals (:mod:`.clevrer_layout`). Video ``i`` depends only on
``(seed, i, params)``, so the same seed gives the same bytes and an interrupted run resumes.
"""
from __future__ import annotations

import argparse
import math
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from ...errors import ConfigError, check_range
from ...registry import register
from ..video_io import write_video
from .clevrer_layout import (annotation_path, proposal_path, proposals, split_indices, split_of, video_path,
                             write_json, write_question_files)
from .events import build_annotation
from .facts import facts_from_annotation
from .physics import SimParams, simulate
from .questions import QuestionParams, generate_questions
from .render import Camera, Renderer, render_video
from .runner import LayoutGenerator, LayoutParams, pin_params, run_all

NAME = "clevrer-mini"


@dataclass(frozen=True)
class ClevrerMiniParams(LayoutParams):
    """Everything that shapes the dataset (recorded in ``.clevrer-mini/params.json``)."""

    generator_name: ClassVar[str] = NAME
    size: int = 64
    num_frames: int = 32
    future_frames: int = 16
    fps: float = 8.0
    tilt: float = 35.0
    min_objects: int = 3
    max_objects: int = 5
    max_entering: int = 2
    descriptive: int = 6
    explanatory: int = 1
    predictive: int = 1
    counterfactual: int = 1
    train_fraction: float = 0.5
    val_fraction: float = 0.25

    def validate(self) -> None:
        check_range(self.size, "size", 16, 1024, integer=True)
        check_range(self.num_frames, "num_frames", 4, 1000, integer=True)
        check_range(self.future_frames, "future_frames", 0, 1000, integer=True)
        check_range(self.min_objects, "min_objects", 2, 6, integer=True)
        check_range(self.max_objects, "max_objects", self.min_objects, 6, integer=True)
        check_range(self.max_entering, "max_entering", 0, 3, integer=True)
        check_range(self.tilt, "tilt", 0, 60)
        check_range(self.fps, "fps", 1, 120)
        for k in ("descriptive", "explanatory", "predictive", "counterfactual"):
            check_range(getattr(self, k), k, 0, 50, integer=True)
        check_range(self.train_fraction, "train_fraction", 0, 1)
        check_range(self.val_fraction, "val_fraction", 0, 1 - self.train_fraction)

    def sim(self) -> SimParams:
        return SimParams(num_frames=self.num_frames, future_frames=self.future_frames)


def scene_rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng([seed, 0xC1E, index])


def make_video(index: int, out: Path, params: dict[str, Any]) -> dict[str, Any]:
    """Simulate, annotate, question, render and write scene ``index``; returns its record."""
    from .scene import SceneParams, sample_scene

    p = ClevrerMiniParams(**{k: v for k, v in params.items() if not k.startswith("_")})
    rng = scene_rng(params["_seed"], index)
    sim = p.sim()
    specs, result = sample_scene(rng, sim, SceneParams(p.min_objects, p.max_objects, p.max_entering))
    counterfactual = {k: simulate(specs, sim, removed=k, frames=sim.num_frames) for k in range(len(specs))}
    annotation = build_annotation(index, specs, result, sim, counterfactual)
    questions = generate_questions(facts_from_annotation(annotation), rng,
                                   QuestionParams(p.descriptive, p.explanatory, p.predictive, p.counterfactual))
    renderer = Renderer(Camera(size=p.size, view_half=sim.view_half, tilt=p.tilt))
    t = sim.num_frames
    frames, labels = render_video(renderer, [s.shape for s in specs], [s.color for s in specs],
                                  [s.material for s in specs], result.position[:t], result.angle[:t],
                                  result.present[:t])
    write_video(video_path(out, index), frames, fps=p.fps)
    write_json(proposal_path(out, index), proposals(index, labels, annotation["object_property"]))
    if split_of(index) != "test":
        write_json(annotation_path(out, index), annotation)
    return {"index": index, "objects": len(specs), "entering": sum(s.enter_frame > 0 for s in specs),
            "collisions": len(annotation["collision"]), "questions": questions}


def generate_clevrer_mini(out_dir: str | Path, num_videos: int, seed: int = 0, workers: int = 2,
                          progress: bool = True, **params: Any) -> dict[str, Any]:
    """Write ``num_videos`` CLEVRER-style videos with questions under ``out_dir``; returns dataset stats.

    ``params`` are :class:`ClevrerMiniParams` fields (strings are converted, as from ``--param k=v``).
    Re-running with the same arguments resumes (finished videos are kept).
    """
    check_range(num_videos, "num_videos", 1, 20_000, integer=True)
    check_range(seed, "seed", 0, integer=True)
    p = ClevrerMiniParams.from_dict(params)
    out = Path(out_dir)
    fractions = (p.train_fraction, p.val_fraction, 1 - p.train_fraction - p.val_fraction)
    splits = split_indices(num_videos, fractions)
    record = {**asdict(p), "_name": NAME, "_seed": seed}
    pin_params(out, NAME, record)
    indices = [i for s in ("train", "val", "test") for i in splits[s]]
    records = run_all(make_video, indices, out, record, workers, progress)
    write_question_files(out, {i: r["questions"] for i, r in records.items()})
    stats = clevrer_stats(records)
    write_json(out / f".{NAME}" / "stats.json", stats)
    return stats


def clevrer_stats(records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Objects, collisions, questions per type and answer balance over a set of video records."""
    per_type: Counter[str] = Counter()
    answers: dict[str, Counter[str]] = {}
    choice_answers: Counter[str] = Counter()
    for r in records.values():
        for q in r["questions"]:
            per_type[q["question_type"]] += 1
            if "choices" in q:
                choice_answers.update(c["answer"] for c in q["choices"])
            else:
                answers.setdefault(q["question_subtype"], Counter())[q["answer"]] += 1
    n = max(1, len(records))
    balance = {sub: {"n": sum(c.values()), "distinct": len(c), "max_share": round(max(c.values()) / sum(c.values()), 3),
                     "entropy_ratio": round(_entropy(c), 3)} for sub, c in sorted(answers.items())}
    return {
        "videos": len(records),
        "objects_per_video": round(sum(r["objects"] for r in records.values()) / n, 2),
        "entering_per_video": round(sum(r["entering"] for r in records.values()) / n, 2),
        "collisions_per_video": round(sum(r["collisions"] for r in records.values()) / n, 2),
        "questions_per_type": dict(sorted(per_type.items())),
        "descriptive_answer_balance": balance,
        "choice_answers": dict(choice_answers),
    }


def _entropy(c: Counter[str]) -> float:
    """Answer entropy divided by its maximum (1 = perfectly balanced over the answers seen)."""
    total = sum(c.values())
    if len(c) < 2:
        return 0.0
    h = -sum(v / total * math.log(v / total) for v in c.values())
    return h / math.log(len(c))


class ClevrerMini(LayoutGenerator):
    """Registry entry for ``clevrer-mini``."""

    name = NAME
    params_class = ClevrerMiniParams
    generate = staticmethod(generate_clevrer_mini)


if __name__ != "__main__":  # run as a script, the package import below registers the class once
    register("generator", NAME)(ClevrerMini)


def parse_params(items: list[str] | None) -> dict[str, str]:
    params = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--param must look like key=value, got {item!r}")
        params[key.strip()] = value.strip()
    return params


def main(argv: list[str] | None = None, generate: Any = None, name: str = NAME) -> int:
    parser = argparse.ArgumentParser(prog=f"python -m slotvideo.data.reasoning.{name.replace('-', '_')}",
                                     description=f"write a {name} dataset in its official layout")
    parser.add_argument("--out", required=True)
    parser.add_argument("--num", type=int, required=True)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--param", action="append", metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    stats = (generate or generate_clevrer_mini)(args.out, args.num, args.seed, args.workers, True,
                                                **parse_params(args.param))
    print(f"wrote {args.num} {name} videos to {args.out}: {stats}")
    return 0


if __name__ == "__main__":
    from slotvideo.data.reasoning.clevrer_mini import main as _main

    raise SystemExit(_main())
