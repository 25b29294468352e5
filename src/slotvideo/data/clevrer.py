"""CLEVRER in its official layout: videos, annotations, question files and derender-proposal masks.

Facts (reference/dataset-formats.md section 1):

* splits are video index ranges: train 0-9999, val 10000-14999, test 15000-19999; videos are 128 frames
  of 480x320 at 25 fps;
* files are found by name anywhere under the root (``video_%05d.mp4``, ``annotation_%05d.json``,
  ``proposal_%05d.json``, ``questions/{train,validation,test}.json``), so ``val`` vs ``validation``
  folders, per-1000 subfolders and an extra archive root folder all work;
* question files are a list of scenes ``{scene_index, video_filename, questions: [...]}``; a question has
  ``question_id``, ``question``, ``question_type`` (descriptive / explanatory / predictive /
  counterfactual, suffixes tolerated), optional ``question_subtype`` and ``program``, an ``answer``
  (descriptive) or ``choices`` with ``answer`` "correct"/"wrong" (multiple choice); test has no answers;
* proposals hold per-frame COCO-RLE object masks; the segmentation is background 0 then objects
  1..K in proposal order, the first object winning where masks overlap (SlotFormer's argmax). Object
  ids are detector outputs and are not guaranteed to stay the same object across frames.

Tasks (param ``task``): ``video`` (one sample per video), ``descriptive`` (one per descriptive question),
``multiple_choice`` (one per (question, choice) pair; :class:`ClevrerPredictions` groups them back
per question for per-question accuracy and the test-server submission) and ``mixed`` (one per question of
either kind, every choice of a multiple-choice question in its sample, padded to a fixed count so that
both kinds stack into one batch: Aloe's training batches mix them, appendix A.3).
"""
from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor
from torch.utils.data import Dataset

from ..errors import ConfigError, DataError
from ..metrics.clevrer import QUESTION_TYPES, ClevrerAccuracy
from ..registry import register
from .segmentation import clip_segmentation, json_field as _get
from .kinetics import CLIP_SPEC, ClipReader, check_split, dataset_root, index_files, parse_params, report_skips, subset
from .vocab import (CHOICE_ANSWERS, MAX_CHOICE_LENGTH, MAX_QUESTION_LENGTH, ClevrerVocab, Vocabulary, answer_id,
                    answer_word)

SPLIT_RANGES = {"train": range(0, 10_000), "val": range(10_000, 15_000), "test": range(15_000, 20_000)}
QUESTION_FILES = {"train": ("train.json",), "val": ("validation.json", "val.json"), "test": ("test.json",)}
TASKS = ("video", "descriptive", "multiple_choice", "mixed")
VOCAB_FILE = "clevrer_vocab.json"
# Aloe: 25 of 128 frames at 64x64, picked as divmod(128, 25) -> stride 5, last 3 frames dropped
# ("uniform" sampling implements exactly that rule). Slot Transformer: 64 frames at 64x64.
PRESETS = {"aloe": {"num_frames": 25, "size": (64, 64), "sampling": "uniform"},
           "slot_transformer": {"num_frames": 64, "size": (64, 64), "sampling": "uniform"}}
CLEVRER_SPEC = {"root": ("str?", None), "task": ("str", "video"), "masks": ("str", "auto"), "vocab": ("str?", None),
                "max_question_length": ("int", MAX_QUESTION_LENGTH), "max_choice_length": ("int", MAX_CHOICE_LENGTH),
                "max_choices": ("int?", None), **CLIP_SPEC}
_FILE_RX = r"((video_\d{5}\.mp4)|(annotation_\d{5}\.json)|(proposal_\d{5}\.json)|(?:train|validation|val|test)\.json)"


def split_of(scene_index: int) -> str:
    for split, r in SPLIT_RANGES.items():
        if scene_index in r:
            return split
    raise DataError(f"CLEVRER scene index {scene_index} is outside 0-19999")


# --------------------------------------------------------------------------- files


@dataclass
class ClevrerFiles:
    """Where each file of a CLEVRER root is; indices are scene indices (the 5 digits of the file names)."""

    root: Path
    videos: dict[int, Path] = field(default_factory=dict)
    annotations: dict[int, Path] = field(default_factory=dict)
    proposals: dict[int, Path] = field(default_factory=dict)
    questions: dict[str, Path] = field(default_factory=dict)

    @classmethod
    def scan(cls, root: Path) -> "ClevrerFiles":
        files = cls(root)
        found = index_files(root, _FILE_RX)
        candidates: dict[str, list[Path]] = {}
        for name, paths in found.items():
            kind = name.split("_")[0]
            if kind in ("video", "annotation", "proposal"):
                if len(paths) > 1:
                    raise DataError(f"CLEVRER: {name} appears {len(paths)} times under {root}: "
                                    f"{', '.join(map(str, paths))}; keep one copy")
                target = {"video": files.videos, "annotation": files.annotations, "proposal": files.proposals}[kind]
                target[int(re.findall(r"\d{5}", name)[0])] = paths[0]
                continue
            split = next(s for s, names in QUESTION_FILES.items() if name in names)
            candidates.setdefault(split, []).extend(paths)
        for split, paths in candidates.items():
            # A train.json outside questions/ (an unrelated file) only counts when it is the only one.
            preferred = [p for p in paths if p.parent.name == "questions"] or paths
            if len(preferred) > 1:
                raise DataError(f"CLEVRER: several question files for split {split!r}: "
                                f"{', '.join(map(str, preferred))}")
            files.questions[split] = preferred[0]
        return files


# --------------------------------------------------------------------------- questions


@dataclass(frozen=True)
class Choice:
    choice_id: int
    text: str
    program: tuple[str, ...] | None
    correct: int | None  # 1 correct, 0 wrong, None in the test split


@dataclass(frozen=True)
class Question:
    scene_index: int
    question_id: int
    type: int  # index into QUESTION_TYPES
    text: str
    subtype: str | None
    program: tuple[str, ...] | None
    answer: int | None  # descriptive answer id (1..21); None for multiple choice and the test split
    choices: tuple[Choice, ...] = ()

    @property
    def type_name(self) -> str:
        return QUESTION_TYPES[self.type]


def _program(obj: Mapping, where: str) -> tuple[str, ...] | None:
    prog = _get(obj, "program", list, where, optional=True)
    return None if prog is None else tuple(str(p) for p in prog)


def question_type(name: str, where: str) -> int:
    """Index into QUESTION_TYPES by prefix (``explanatory_xxx`` is explanatory), as the official code."""
    for i, t in enumerate(QUESTION_TYPES):
        if name.startswith(t):
            return i
    raise DataError(f"{where}: unknown question_type {name!r}; expected one of {list(QUESTION_TYPES)}")


def read_questions(path: Path) -> list[Question]:
    """Parse and validate one official question file; malformed entries raise :class:`DataError` naming it."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read CLEVRER question file {path}: {e}") from None
    if not isinstance(data, list):
        raise DataError(f"{path}: expected a list of scenes, got {type(data).__name__}")
    out: list[Question] = []
    for i, scene in enumerate(data):
        where = f"{path} entry {i}"
        scene_index = _get(scene, "scene_index", int, where)
        where = f"{path} scene {scene_index}"
        for j, q in enumerate(_get(scene, "questions", list, where)):
            qid = _get(q, "question_id", int, f"{where} question #{j}")
            qwhere = f"{where} question {qid}"
            qtype = question_type(_get(q, "question_type", str, qwhere), qwhere)
            text = _get(q, "question", str, qwhere)
            answer, choices = None, ()
            if qtype == 0:
                raw = _get(q, "answer", (str, int), qwhere, optional=True)
                answer = None if raw is None else answer_id(str(raw), qwhere)
            else:
                items = _get(q, "choices", list, qwhere)
                if not items:
                    raise DataError(f"{qwhere}: multiple-choice question without choices")
                parsed = []
                for k, c in enumerate(items):
                    cwhere = f"{qwhere} choice #{k}"
                    raw = _get(c, "answer", str, cwhere, optional=True)
                    if raw is not None and raw not in CHOICE_ANSWERS:
                        raise DataError(f"{cwhere}: answer must be 'correct' or 'wrong', got {raw!r}")
                    parsed.append(Choice(_get(c, "choice_id", int, cwhere), _get(c, "choice", str, cwhere),
                                         _program(c, cwhere), None if raw is None else CHOICE_ANSWERS[raw]))
                choices = tuple(parsed)
            out.append(Question(scene_index, qid, qtype, text, _get(q, "question_subtype", str, qwhere, optional=True),
                                _program(q, qwhere), answer, choices))
    return out


def build_vocab(questions: Iterable[Question]) -> ClevrerVocab:
    questions = list(questions)
    return ClevrerVocab(Vocabulary.build(q.text for q in questions),
                        Vocabulary.build(c.text for q in questions for c in q.choices))


# --------------------------------------------------------------------------- annotations and masks


@dataclass
class ClevrerAnnotation:
    """One annotation file: object properties, trajectories ``[T, N, 3]`` (NaN when absent) and collisions."""

    scene_index: int
    objects: list[dict[str, Any]]  # object_id, color, material, shape, in object_id order
    location: np.ndarray
    velocity: np.ndarray
    inside_camera_view: np.ndarray  # bool [T, N]
    collisions: list[tuple[int, tuple[int, ...]]]  # (frame_id, object_ids)


def read_annotation(path: Path) -> ClevrerAnnotation:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError) as e:
        raise DataError(f"cannot read CLEVRER annotation {path}: {e}") from None
    where = str(path)
    objects = sorted((dict(o) for o in _get(data, "object_property", list, where)),
                     key=lambda o: _get(o, "object_id", int, f"{where} object_property"))
    column = {o["object_id"]: k for k, o in enumerate(objects)}
    frames = _get(data, "motion_trajectory", list, where)
    t, n = len(frames), len(objects)
    location = np.full((t, n, 3), np.nan, np.float32)
    velocity = np.full((t, n, 3), np.nan, np.float32)
    inside = np.zeros((t, n), bool)
    for f, frame in enumerate(frames):
        fwhere = f"{where} motion_trajectory[{f}]"
        for obj in _get(frame, "objects", list, fwhere):
            oid = _get(obj, "object_id", int, fwhere)
            if oid not in column:
                raise DataError(f"{fwhere}: object_id {oid} is not in object_property")
            try:
                location[f, column[oid]] = np.asarray(obj["location"], np.float32)[:3]
                velocity[f, column[oid]] = np.asarray(obj.get("velocity", [np.nan] * 3), np.float32)[:3]
            except (KeyError, ValueError, TypeError):
                raise DataError(f"{fwhere} object {oid}: 'location'/'velocity' must be 3-vectors") from None
            inside[f, column[oid]] = bool(obj.get("inside_camera_view", True))
    collisions = [(_get(c, "frame_id", int, f"{where} collision"),
                   tuple(int(i) for i in _get(c, "object_ids", list, f"{where} collision")))
                  for c in _get(data, "collision", list, where, optional=True) or []]
    return ClevrerAnnotation(_get(data, "scene_index", int, where), objects, location, velocity, inside, collisions)


# --------------------------------------------------------------------------- dataset


class Clevrer(Dataset):
    """One CLEVRER split as videos, descriptive questions, (question, choice) pairs or questions of both
    kinds; see the module doc.

    Keys: ``video`` ``[T, 3, H, W]``; ``segmentation`` ``[T, H, W]`` when proposal masks are used;
    ``scene_index`` ``[]``; question tasks add ``question`` ``[Lq]``, ``question_type`` ``[]`` (index into
    QUESTION_TYPES), ``question_key`` ``[2]`` = (scene_index, question_id) and, except on test,
    ``answer`` (``[]`` id 1..21 for descriptive, ``[1]`` correct flag for a choice); multiple choice
    adds ``choices`` ``[1, Lc]`` and ``choice_id`` ``[]``.

    Task ``mixed`` gives every question, of either kind, the same keys and dtypes (C = param
    ``max_choices``, by default the most choices of a question in the split's question file):

    * ``choices`` int64 ``[C, Lc]``: the question's choices, then all-zero (padding) rows; all zero for a
      descriptive question;
    * ``choice_mask`` bool ``[C]``: True for the real choices, all False for a descriptive question (so
      ``choice_mask.any(-1)`` tells the kinds apart);
    * except on test, ``answer`` int64 ``[]``: the descriptive answer id 1..21, 0 (the padding id, never an
      answer) for a multiple-choice question; and ``choice_answers`` int64 ``[C]``: 1 correct / 0 wrong per
      choice, 0 at padding and for descriptive questions. The two label spaces live in separate keys, so a
      descriptive answer id never reads as a choice flag.

    A split whose questions are only partly answered is refused for ``mixed`` (its samples could not share
    their keys).
    """

    def __init__(self, root: str | os.PathLike, split: str = "train", *, task: str = "video", masks: str = "auto",
                 vocab: str | os.PathLike | None = None, reader: ClipReader | None = None,
                 max_question_length: int = MAX_QUESTION_LENGTH, max_choice_length: int = MAX_CHOICE_LENGTH,
                 max_choices: int | None = None, num: int | None = None, seed: int = 0,
                 vocab_dir: str | os.PathLike | None = None, files: ClevrerFiles | None = None):
        self.root, self.split = dataset_root("clevrer", root), check_split("clevrer", split)
        if task not in TASKS:
            raise ConfigError(f"clevrer param 'task' must be one of {list(TASKS)}, got {task!r}")
        if str(masks).lower() not in ("auto", "true", "false"):
            raise ConfigError(f"clevrer param 'masks' must be auto, true or false, got {masks!r}")
        if max_choices is not None and max_choices < 1:
            raise ConfigError(f"clevrer param 'max_choices' must be >= 1, got {max_choices}")
        self.task, self.reader = task, reader or ClipReader()
        self.lengths = (max_question_length, max_choice_length)
        self.max_choices = max_choices
        self.files = files or ClevrerFiles.scan(self.root)
        self.skipped: dict[str, int] = {}
        videos = sorted(i for i in self.files.videos if i in SPLIT_RANGES[split])
        self.questions: list[Question] = []
        if task == "video":
            items: list[Any] = videos
            if not items:
                raise DataError(f"clevrer {split}: no video_XXXXX.mp4 with index in "
                                f"{SPLIT_RANGES[split].start}-{SPLIT_RANGES[split].stop - 1} under {self.root}")
        else:
            items = self._question_items(vocab, vocab_dir)
        self.items = [items[i] for i in subset(len(items), num, seed)]
        self.masks = self._use_masks(str(masks).lower())
        listed = len(videos) if task == "video" else sum(self._wanted(q) for q in self.questions)
        report_skips("clevrer", split, self.skipped, listed)

    # ------------------------------------------------------------------ construction

    def _question_file(self, split: str) -> Path:
        path = self.files.questions.get(split)
        if path is None:
            raise DataError(f"clevrer: no question file for split {split!r} ({' or '.join(QUESTION_FILES[split])}) "
                            f"under {self.root}")
        return path

    def _wanted(self, q: Question) -> bool:
        return self.task == "mixed" or (q.type == 0) == (self.task == "descriptive")

    def _question_items(self, vocab: str | os.PathLike | None, vocab_dir: str | os.PathLike | None) -> list[Any]:
        """``(question, tokens, choice, choice tokens)`` per sample; task ``mixed`` keeps every choice of a
        question in one item (choice ``None``, choice tokens ``[n, Lc]``)."""
        self.question_file = self._question_file(self.split)
        self.questions = read_questions(self.question_file)
        self.vocab = self._vocab(vocab, vocab_dir)
        if self.task == "mixed":
            self.max_choices = self._choice_count()
        items: list[Any] = []
        without_video = 0
        truncated = 0
        lq, lc = self.lengths
        for q in self.questions:
            if not self._wanted(q):
                continue
            if q.scene_index not in self.files.videos:
                without_video += 1
                continue
            tokens, cut = self.vocab.question.encode(q.text, lq)
            truncated += cut
            encoded = [self.vocab.choice.encode(c.text, lc) for c in q.choices]
            truncated += sum(ccut for _, ccut in encoded)
            if self.task == "mixed":
                ctokens = torch.stack([t for t, _ in encoded]) if encoded else torch.zeros(0, lc, dtype=torch.long)
                items.append((q, tokens, None, ctokens))
            elif q.type == 0:
                items.append((q, tokens, None, None))
            else:
                items.extend((q, tokens, c, ctokens) for c, (ctokens, _) in zip(q.choices, encoded))
        self.skipped["questions whose video is missing"] = without_video
        self.skipped["texts truncated (kept)"] = truncated
        if not items:
            raise DataError(f"clevrer {self.split}: no {self.task} questions with a video in {self.question_file}")
        if self.task == "mixed":
            answered = {_answered(item[0]) for item in items}
            if len(answered) > 1:
                first = next(item[0] for item in items if not _answered(item[0]))
                raise DataError(f"clevrer {self.split}: task 'mixed' needs every question answered or none; "
                                f"question {first.question_id} of scene {first.scene_index} in "
                                f"{self.question_file} has no answer while others do")
        return items

    def _choice_count(self) -> int:
        """C of task ``mixed``: param ``max_choices``, or the most choices of a question in the file."""
        most = max((len(q.choices) for q in self.questions), default=0)
        if self.max_choices is None:
            return max(most, 1)
        if most > self.max_choices:
            q = next(q for q in self.questions if len(q.choices) == most)
            raise DataError(f"clevrer param 'max_choices' is {self.max_choices}, but question {q.question_id} of "
                            f"scene {q.scene_index} in {self.question_file} has {most} choices")
        return self.max_choices

    def _vocab(self, path: str | os.PathLike | None, vocab_dir: str | os.PathLike | None) -> ClevrerVocab:
        """Load the saved vocabulary, or build it from the training questions and save it."""
        target = Path(path) if path else Path(vocab_dir or self.root) / VOCAB_FILE
        if target.is_file():
            return ClevrerVocab.load(target)
        train = self.questions if self.split == "train" else read_questions(self._question_file("train"))
        vocab = build_vocab(train)
        try:
            vocab.save(target)
        except OSError:
            pass  # a read-only dataset folder: the vocabulary is rebuilt identically next time
        return vocab

    def _use_masks(self, masks: str) -> bool:
        if masks == "false":
            return False
        scenes = {self._scene(i) for i in range(len(self.items))}
        without = sorted(s for s in scenes if s not in self.files.proposals)
        if masks == "auto" and len(without) == len(scenes):
            return False
        if masks == "true" and without:
            raise DataError(f"clevrer: masks=true but {len(without)} of {len(scenes)} videos have no derender "
                            f"proposals, e.g. proposal_{without[0]:05d}.json under {self.root}")
        self.skipped["videos without proposals (segmentation -1)"] = len(without)
        return True

    # ------------------------------------------------------------------ access

    def _scene(self, index: int) -> int:
        item = self.items[index]
        return item if isinstance(item, int) else item[0].scene_index

    def __len__(self) -> int:
        return len(self.items)

    def balance_groups(self) -> list[int]:
        """Per sample, 0 descriptive / 1 multiple choice: the groups ``data.balance`` draws equally per batch
        (appendix A.3's 4 + 4 supervised sub-batch); only a ``task: mixed`` loader has both."""
        if self.task != "mixed":
            raise ConfigError(f"data.balance: clevrer task {self.task!r} has one kind of sample; balancing "
                              "descriptive and multiple-choice questions needs data.params.task: mixed")
        return [int(item[0].type != 0) for item in self.items]

    def __getitem__(self, index: int) -> dict[str, Tensor]:
        scene = self._scene(index)
        path = self.files.videos[scene]
        seed = self.reader.draw_seed()
        video = self.reader.read(path, seed)
        sample = {"video": video, "scene_index": torch.tensor(scene, dtype=torch.long)}
        if self.masks:
            sample["segmentation"] = self._segmentation(scene, path, seed, tuple(video.shape[-2:]), video.shape[0])
        if self.task == "video":
            return sample
        q, tokens, choice, ctokens = self.items[index]
        sample.update(question=tokens, question_type=torch.tensor(q.type, dtype=torch.long),
                      question_key=torch.tensor([q.scene_index, q.question_id], dtype=torch.long))
        if self.task == "mixed":
            sample.update(mixed_fields(q, ctokens, self.max_choices))
        elif choice is None:
            if q.answer is not None:
                sample["answer"] = torch.tensor(q.answer, dtype=torch.long)
        else:
            sample.update(choices=ctokens[None], choice_id=torch.tensor(choice.choice_id, dtype=torch.long))
            if choice.correct is not None:
                sample["answer"] = torch.tensor([choice.correct], dtype=torch.long)
        return sample

    def _segmentation(self, scene: int, path: Path, seed: int | None, size: tuple[int, int], frames: int) -> Tensor:
        proposals = self.files.proposals.get(scene)
        if proposals is None:
            return torch.full((frames, *size), -1, dtype=torch.long)
        return clip_segmentation(proposals, self.reader, path, seed, size)

    def annotation(self, scene_index: int) -> ClevrerAnnotation:
        """The parsed annotation of a scene (train and val only); :class:`DataError` naming the missing file."""
        path = self.files.annotations.get(scene_index)
        if path is None:
            raise DataError(f"clevrer: annotation_{scene_index:05d}.json not found under {self.root}"
                            + (" (the test split has no annotations)" if scene_index in SPLIT_RANGES["test"] else ""))
        return read_annotation(path)

    def summary(self) -> dict[str, Any]:
        videos = [i for i in self.files.videos if i in SPLIT_RANGES[self.split]]
        out: dict[str, Any] = {"videos": len(videos), "samples": len(self),
                               "annotations": sum(i in SPLIT_RANGES[self.split] for i in self.files.annotations),
                               "proposals": sum(i in SPLIT_RANGES[self.split] for i in self.files.proposals),
                               "skipped": {k: v for k, v in self.skipped.items() if v}}
        if self.split != "test":
            out["videos_without_annotation"] = sum(i not in self.files.annotations for i in videos)
        return out


def _answered(q: Question) -> bool:
    return q.answer is not None if q.type == 0 else all(c.correct is not None for c in q.choices)


def mixed_fields(q: Question, choice_tokens: Tensor, num_choices: int) -> dict[str, Tensor]:
    """The choice keys of a task ``mixed`` sample (layout in :class:`Clevrer`); ``choice_tokens`` ``[n, Lc]``."""
    n = len(q.choices)
    choices = choice_tokens.new_zeros(num_choices, choice_tokens.shape[-1])
    choices[:n] = choice_tokens
    out = {"choices": choices, "choice_mask": torch.arange(num_choices) < n}
    if _answered(q):
        flags = torch.zeros(num_choices, dtype=torch.long)
        flags[:n] = torch.tensor([c.correct for c in q.choices], dtype=torch.long)
        out.update(answer=torch.tensor(q.answer if q.type == 0 else 0, dtype=torch.long), choice_answers=flags)
    return out


def question_counts(questions: Iterable[Question], videos: Mapping[int, Path]) -> dict[str, Any]:
    """Questions per type (and choices), and how many refer to a missing video."""
    counts = {t: 0 for t in QUESTION_TYPES}
    choices, missing_videos = 0, set()
    for q in questions:
        counts[q.type_name] += 1
        choices += len(q.choices)
        if q.scene_index not in videos:
            missing_videos.add(q.scene_index)
    return {"per_type": counts, "choices": choices, "missing_videos": len(missing_videos)}


# --------------------------------------------------------------------------- evaluation


class ClevrerPredictions:
    """Collects model outputs per question: official accuracies and the test-server submission.

    ``add(batch, logits)`` takes a descriptive batch with ``logits`` ``[B, A]`` (argmax is the answer id) or
    a multiple-choice batch with ``logits`` ``[B]`` / ``[B, 1]`` (``> 0`` means "correct", as SlotFormer).
    """

    def __init__(self) -> None:
        self.descriptive: dict[tuple[int, int], int] = {}
        self.options: dict[tuple[int, int, int], bool] = {}
        self.accuracy = ClevrerAccuracy()

    def add(self, batch: Mapping[str, Any], logits: Tensor) -> None:
        keys = batch["question_key"].long().cpu()
        logits = logits.detach().cpu()
        if "choice_id" in batch:
            flags = (logits.reshape(len(keys)) > 0)
            for (s, q), c, f in zip(keys.tolist(), batch["choice_id"].tolist(), flags.tolist()):
                self.options[(s, q, c)] = f
            if "answer" in batch:
                self.accuracy.update_options(keys, batch["question_type"], flags, batch["answer"].reshape(-1).cpu())
        else:
            pred = logits.argmax(dim=-1)
            for (s, q), a in zip(keys.tolist(), pred.tolist()):
                self.descriptive[(s, q)] = a
            if "answer" in batch:
                self.accuracy.update_descriptive(pred, batch["answer"].cpu())

    def submission(self, questions: Iterable[Question], strict: bool = True) -> list[dict[str, Any]]:
        """Entries in the official format (reference 1.7), in question-file order.

        ``strict`` raises :class:`DataError` when any question or choice has no prediction (the server
        rejects incomplete files); otherwise such questions are left out.
        """
        scenes: dict[int, list[dict[str, Any]]] = {}
        missing = []
        for q in questions:
            if q.type == 0:
                pred = self.descriptive.get((q.scene_index, q.question_id))
                if pred is None or not 1 <= pred <= 21:
                    missing.append((q.scene_index, q.question_id))
                    continue
                entry: dict[str, Any] = {"question_id": q.question_id, "answer": answer_word(pred)}
            else:
                flags = [self.options.get((q.scene_index, q.question_id, c.choice_id)) for c in q.choices]
                if any(f is None for f in flags):
                    missing.append((q.scene_index, q.question_id))
                    continue
                entry = {"question_id": q.question_id,
                         "choices": [{"choice_id": c.choice_id, "answer": "correct" if f else "wrong"}
                                     for c, f in zip(q.choices, flags)]}
            scenes.setdefault(q.scene_index, []).append(entry)
        if strict and missing:
            raise DataError(f"submission: {len(missing)} questions have no (complete) prediction, first "
                            f"(scene_index, question_id) = {missing[0]}")
        return [{"scene_index": s, "questions": qs} for s, qs in scenes.items()]


def write_submission(path: str | os.PathLike, entries: list[dict[str, Any]]) -> Path:
    """Write a submission JSON atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
    tmp.write_text(json.dumps(entries))
    os.replace(tmp, path)
    return path


@register("dataset", "clevrer")
def open_clevrer(split: str, *, num: int | None = None, seed: int = 0, params: Mapping[str, Any] | None = None,
                 cache_dir: str | os.PathLike | None = None) -> Clevrer:
    """``open_dataset("clevrer", split, params={"root": ..., "task": "descriptive", "preset": "aloe"})``.

    ``task: mixed`` pads choices to ``max_choices`` (default: the most choices of a question in the split;
    set it to give train and val batches the same ``C``; other tasks ignore it, so a mixed run's config
    evaluates on one task by overriding ``task`` alone). The vocabulary is read from / saved to
    ``params.vocab`` or ``<cache_dir or root>/clevrer_vocab.json``.
    """
    p = parse_params("clevrer", params, CLEVRER_SPEC, PRESETS)
    reader = ClipReader(p["num_frames"], p["stride"], p["sampling"], p["size"],
                        None if cache_dir is None else str(cache_dir))
    return Clevrer(p["root"], split, task=p["task"], masks=p["masks"], vocab=p["vocab"], reader=reader,
                   max_question_length=p["max_question_length"], max_choice_length=p["max_choice_length"],
                   max_choices=p["max_choices"], num=num, seed=seed, vocab_dir=cache_dir)
