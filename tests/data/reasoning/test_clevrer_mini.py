"""clevrer-mini: official layout read by the real loader, executor 100%, question-only baseline, bytes, resume."""
from __future__ import annotations

import json
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np
import pytest

from slotvideo.data.clevrer import Clevrer
from slotvideo.data.reasoning import generate_clevrer_mini, generate_layout
from slotvideo.data.reasoning.clevrer_layout import annotation_path, split_indices
from slotvideo.data.reasoning.events import build_annotation
from slotvideo.data.reasoning.executor import Executor
from slotvideo.data.reasoning.facts import facts_from_annotation
from slotvideo.data.reasoning.physics import SimParams, simulate
from slotvideo.data.reasoning.questions import QuestionParams, generate_questions
from slotvideo.data.reasoning.scene import SceneParams, sample_scene
from slotvideo.data.reasoning.vocab import ANSWER_VOCAB
from slotvideo.errors import ConfigError
from slotvideo.registry import lookup

SMALL = {"size": 32, "num_frames": 16, "future_frames": 8}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict]:
    out = tmp_path_factory.mktemp("clevrer_mini")
    stats = generate_clevrer_mini(out, 8, seed=3, workers=2, progress=False, **SMALL)
    return out, stats


def _scenes(n: int, seed: int = 0) -> list[tuple[dict, list[dict]]]:
    """Annotations + questions without rendering (the simulation and question pipeline only)."""
    sim = SimParams()
    out = []
    for i in range(n):
        rng = np.random.default_rng([seed, i])
        specs, result = sample_scene(rng, sim, SceneParams())
        cf = {k: simulate(specs, sim, removed=k, frames=sim.num_frames) for k in range(len(specs))}
        ann = build_annotation(i, specs, result, sim, cf)
        out.append((ann, generate_questions(facts_from_annotation(ann), rng, QuestionParams())))
    return out


def test_official_layout_is_read_by_the_loader(dataset: tuple[Path, dict]) -> None:
    out, stats = dataset
    assert (out / "videos/train/video_00000-01000/video_00000.mp4").is_file()
    assert (out / "videos/val/video_10000-11000/video_10000.mp4").is_file()
    assert (out / "annotations/train/annotation_00000-01000/annotation_00000.json").is_file()
    assert not (out / "annotations/test").exists()  # as released: no test annotations
    assert (out / "derender_proposals/proposal_15000.json").is_file()
    for split in ("train", "val", "test"):
        videos = Clevrer(out, split, task="video")
        sample = videos[0]
        assert tuple(sample["video"].shape) == (16, 3, 32, 32)
        assert tuple(sample["segmentation"].shape) == (16, 32, 32)
        assert int(sample["segmentation"].max()) >= 1
    desc = Clevrer(out, "train", task="descriptive")
    mc = Clevrer(out, "val", task="multiple_choice")
    assert len(desc) > 0 and len(mc) > 0 and "answer" in desc[0]
    test_q = json.loads((out / "questions/test.json").read_text())
    assert all("answer" not in q for s in test_q for q in s["questions"])
    assert stats["videos"] == 8 and set(stats["questions_per_type"]) >= {"descriptive", "counterfactual"}


def test_masks_match_rendered_objects(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    from slotvideo.data.rle import decode

    ann = json.loads(annotation_path(out, 0).read_text())
    prop = json.loads((out / "derender_proposals/proposal_00000.json").read_text())
    assert len(prop["frames"]) == len(ann["motion_trajectory"]) == 16
    for frame in prop["frames"]:
        masks = [decode(o["mask"]) for o in frame["objects"]]
        assert all(m.shape == (32, 32) and m.any() for m in masks)
        if masks:  # instance masks never overlap
            assert np.stack(masks).sum(0).max() == 1


def test_executor_answers_every_question() -> None:
    total = 0
    for ann, questions in _scenes(25):
        ex = Executor(ann)
        for q in questions:
            want = q["answer"] if "choices" not in q else [c["answer"] for c in q["choices"]]
            assert ex.answer(q) == want, q
            total += 1
    assert total > 150


def test_question_types_programs_and_choices(dataset: tuple[Path, dict]) -> None:
    out, _ = dataset
    types: Counter[str] = Counter()
    for split in ("train", "validation"):
        for scene in json.loads((out / "questions" / f"{split}.json").read_text()):
            ann = json.loads(annotation_path(out, scene["scene_index"]).read_text())
            ex = Executor(ann)
            for q in scene["questions"]:
                types[q["question_type"]] += 1
                if "choices" in q:
                    assert 2 <= len(q["choices"]) <= 4
                    assert [c["answer"] for c in q["choices"]] == ex.answer(q)
                else:
                    assert q["answer"] in ANSWER_VOCAB and ex.answer(q) == q["answer"]
    assert set(types) <= {"descriptive", "explanatory", "predictive", "counterfactual"}
    assert types["descriptive"] > 0


def test_question_only_baseline_stays_near_chance() -> None:
    """Predict from the question text alone (majority answer of the same text in train, else of its type)."""
    scenes = _scenes(90, seed=1)
    train, val = scenes[:60], scenes[60:]
    by_text: dict[str, Counter[str]] = defaultdict(Counter)
    by_kind: dict[str, Counter[str]] = defaultdict(Counter)

    def items(qs: list[dict]) -> list[tuple[str, str, str]]:
        out = []
        for q in qs:
            if "choices" in q:
                out += [(q["question_type"], q["question"] + " | " + c["choice"], c["answer"]) for c in q["choices"]]
            else:
                out.append((q["question_subtype"], q["question"], q["answer"]))
        return out

    for _, qs in train:
        for kind, text, answer in items(qs):
            by_text[text][answer] += 1
            by_kind[kind][answer] += 1
    hits: dict[str, list[bool]] = defaultdict(list)
    for _, qs in val:
        for kind, text, answer in items(qs):
            pred = (by_text[text] or by_kind[kind]).most_common(1)[0][0]
            hits[kind].append(pred == answer)
    mc = [h for k in ("explanatory", "predictive", "counterfactual") for h in hits[k]]
    assert np.mean(mc) < 0.65  # per-option yes/no chance is 0.5
    assert np.mean(hits["exist"]) < 0.7
    for kind in ("query_color", "query_shape", "query_material"):
        if len(hits[kind]) >= 5:
            assert np.mean(hits[kind]) < 0.7


def test_same_seed_same_bytes_and_resume(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    generate_clevrer_mini(a, 3, seed=5, workers=2, progress=False, **SMALL)
    generate_clevrer_mini(b, 3, seed=5, workers=1, progress=False, **SMALL)
    files = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    assert files and files == sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    for f in files:
        assert (a / f).read_bytes() == (b / f).read_bytes(), f
    # Interrupt: drop one finished video; the rerun makes only that one, identically.
    video = a / "videos/train/video_00000-01000/video_00001.mp4"
    (a / ".clevrer-mini/00001.json").unlink()
    video.unlink()
    kept = (a / "videos/train/video_00000-01000/video_00000.mp4").stat().st_mtime_ns
    generate_layout("clevrer-mini", a, 3, seed=5, workers=1, params=SMALL, progress=False)
    assert video.read_bytes() == (b / video.relative_to(a)).read_bytes()
    assert (a / "videos/train/video_00000-01000/video_00000.mp4").stat().st_mtime_ns == kept
    with pytest.raises(ConfigError, match="other params"):
        generate_clevrer_mini(a, 3, seed=6, workers=1, progress=False, **SMALL)


def test_bad_params_and_registry() -> None:
    with pytest.raises(ConfigError, match="unknown params"):
        generate_clevrer_mini("/nonexistent", 2, colour="red")
    with pytest.raises(ConfigError, match="size"):
        generate_clevrer_mini("/nonexistent", 2, size=4)
    assert split_indices(8) == {"train": [0, 1, 2, 3], "val": [10000, 10001], "test": [15000, 15001]}
    assert lookup("generator", "clevrer-mini").writes_layout


def test_removed_object_and_hard_counterfactuals() -> None:
    from slotvideo.data.reasoning.executor import ProgramError, hard_counterfactual

    kinds: Counter[bool] = Counter()
    for ann, questions in _scenes(25):
        ex = Executor(ann)
        for q in questions:
            if q["question_type"] != "counterfactual":
                continue
            program = q["program"]
            obj = ex.removed_object(program)
            # brute force: the one object with every attribute the prefix filters on
            prefix = program[:program.index("get_counterfact")]
            names = {t for t in prefix if t not in ex.modules}
            match = [o["object_id"] for o in ann["object_property"]
                     if names <= {o["color"], o["material"], o["shape"]}]
            assert match == [obj], (program, match)
            collides = any(obj in c["object_ids"] for c in ann["collision"])
            assert hard_counterfactual(ann, program) is collides
            kinds[collides] += 1
    assert kinds[True] > 0 and kinds[False] > 0
    with pytest.raises(ProgramError, match="not a counterfactual"):
        Executor(_scenes(1)[0][0]).removed_object(["objects", "unique"])
