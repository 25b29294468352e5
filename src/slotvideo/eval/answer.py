"""Answer a question about a video file with a trained run (``slotvideo answer``).

    result = answer_file("runs/clevrer_mini", "clip.mp4", "what will happen next?", choices=[...])

Runs with a task head answer: Aloe and CNN+LSTM (``model.task`` clevrer / cater) and the Slot Transformer
(clevrer / localization / classification). The video is read the way the run's data section reads its
training videos (number of frames, sampling, size; generated datasets: their first ``num_frames`` frames at the
model's resolution), the question and choices are tokenised with the vocabulary the run trained with (the
``clevrer_vocab.json`` saved by the loader: ``data.params.vocab``, else ``<data.cache_dir or root>/``), and the
model answers: a descriptive answer word, a correct/wrong flag per choice, a cell of the localization grid
(CATER's snitch, Bouncing Balls' ``locate``), or its best classes (Kinetics, CATER's actions: class ids, in the
order of the run's class index).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.batch import Batch
from ..data.video_io import read_video, to_tensor
from ..data.vocab import MAX_CHOICE_LENGTH, MAX_QUESTION_LENGTH, ClevrerVocab, answer_word
from ..errors import ConfigError, DataError
from ..models.reasoning_task import MIXED_KEY

#: the real-format loader whose params a run's ``data.name`` reads clips with
REAL_FORMATS = {"clevrer": "clevrer", "clevrer-mini": "clevrer", "cater": "cater", "cater-mini": "cater",
                "kinetics600": "kinetics", "kinetics600-fixture": "kinetics"}
#: ``model.task`` -> what the run answers (Aloe / CNN+LSTM: clevrer, cater; Slot Transformer: clevrer,
#: localization, classification)
TASK_KINDS = {"clevrer": "clevrer", "cater": "cell", "localization": "cell", "classification": "classes"}


@dataclass
class Answer:
    kind: str                                   # descriptive | multiple_choice | cater | classes
    answer: str | None = None                   # answer word, "row r, col c" (localization) or "class i"
    choices: list[tuple[str, bool, float]] = field(default_factory=list)   # (text, correct?, logit)
    top: list[tuple[str, float]] = field(default_factory=list)             # best answers with probabilities


def vocab_path(cfg: Any) -> Path:
    params = cfg.data.get("params") or {}
    if params.get("vocab"):
        return Path(str(params["vocab"]))
    base = cfg.data.cache_dir or params.get("root")
    if not base:
        raise ConfigError("the run's data section names no vocabulary (data.params.vocab) or dataset root")
    return Path(str(base)) / "clevrer_vocab.json"


def clip_settings(cfg: Any, model: Any = None) -> dict[str, Any]:
    """``num_frames``, ``stride``, ``sampling``, ``size`` of the run's data section (presets applied).

    The real-format loaders (CLEVRER, CATER, Kinetics-600 and the datasets generated into their layouts) parse
    their params; other generated datasets give their first ``data.params.num_frames`` frames at ``model``'s
    resolution, as their training clips are consecutive frames from the start."""
    from ..data import cater, clevrer, kinetics
    from ..models.base import input_resolution

    params = dict(cfg.data.get("params") or {})
    family = REAL_FORMATS.get(str(cfg.data.name))
    if family is None:
        num_frames = params.get("num_frames")
        return {"num_frames": None if num_frames is None else int(num_frames), "stride": 1, "sampling": "all",
                "size": None if model is None else input_resolution(model)}
    params.pop("generate", None)        # the generator's params of clevrer-mini / cater-mini
    spec, presets = {"clevrer": (clevrer.CLEVRER_SPEC, clevrer.PRESETS), "cater": (cater.CATER_SPEC, cater.PRESETS),
                     "kinetics": (kinetics.KINETICS_SPEC, None)}[family]
    parsed = kinetics.parse_params(cfg.data.name, params, spec, presets)
    return {k: parsed[k] for k in ("num_frames", "stride", "sampling", "size")}


def read_clip(path: str | os.PathLike, cfg: Any, model: Any = None) -> torch.Tensor:
    """``[1, T, 3, H, W]`` float video read with the run's clip settings (evenly spaced when random)."""
    clip = clip_settings(cfg, model)
    sampling = "uniform" if clip["sampling"] == "random" else clip["sampling"]
    frames = read_video(path, num_frames=clip["num_frames"], stride=clip["stride"], sampling=sampling,
                        size=clip["size"])
    return to_tensor(frames)[None]


def answer_kind(model: Any) -> str:
    """What ``model`` answers: ``clevrer`` (questions), ``cell`` (a localization grid) or ``classes``."""
    task = getattr(getattr(model, "cfg", None), "task", None)
    kind = TASK_KINDS.get(task) if hasattr(model, "task_logits") else None
    if kind is None:
        raise ConfigError(f"this run is a {type(model).__name__}"
                          + (f" with model.task={task}" if task is not None else "")
                          + ", which does not answer questions (train a model with a task head: aloe, cnn_lstm, or "
                          "slot-transformer with model.task clevrer / localization / classification)")
    return kind


def answer_video(model: Any, cfg: Any, video: torch.Tensor, question: str | None = None,
                 choices: Sequence[str] = (), vocab: ClevrerVocab | None = None) -> Answer:
    """Answer ``question`` (and ``choices``) about ``video [1, T, 3, H, W]`` with a ``model`` that has a task head."""
    kind = answer_kind(model)
    device = next(model.parameters()).device
    video = video.to(device)
    with torch.no_grad():
        if kind == "cell":
            probs = model.task_logits(Batch({"video": video}))[0].softmax(-1)
            side = int(round(probs.numel() ** 0.5))
            best = probs.topk(min(5, probs.numel()))
            cells = [(f"row {int(i) // side}, col {int(i) % side}", float(p)) for p, i in zip(best.values, best.indices)]
            return Answer("cater", cells[0][0], top=cells)
        if kind == "classes":
            logits = model.task_logits(Batch({"video": video}))[0]
            multi_label = str((cfg.data.get("params") or {}).get("task", "")).startswith("actions")
            scores = logits.sigmoid() if multi_label else logits.softmax(-1)   # multi-hot CATER actions: BCE
            best = scores.topk(min(5, scores.numel()))
            top = [(f"class {int(i)}", float(p)) for p, i in zip(best.values, best.indices)]
            return Answer("classes", top[0][0], top=top)
        if not question:
            raise ConfigError("a CLEVRER run needs a question")
        if vocab is None:
            path = vocab_path(cfg)
            if not path.is_file():
                raise DataError(f"vocabulary {path} not found: it is written when the run's dataset is first "
                                "opened; pass --vocab")
            vocab = ClevrerVocab.load(path)
        q, _ = vocab.question.encode(question, MAX_QUESTION_LENGTH)
        batch = {"video": video, "question": q[None].to(device)}
        if not choices:
            probs = model.task_logits(Batch(batch))[0].softmax(-1)
            probs[0] = 0.0   # id 0 is padding, never an answer
            best = probs.topk(3)
            top = [(answer_word(int(i)), float(p)) for p, i in zip(best.values, best.indices)]
            return Answer("descriptive", top[0][0], top=top)
        ids = torch.stack([vocab.choice.encode(c, MAX_CHOICE_LENGTH)[0] for c in choices])
        # as one multiple-choice sample of a mixed batch, the layout every CLEVRER model scores choice by choice
        batch.update(choices=ids[None].to(device), **{MIXED_KEY: torch.ones(1, len(choices), dtype=torch.bool,
                                                                             device=device)})
        logits = model.task_logits(Batch(batch)).multiple_choice[0]
        return Answer("multiple_choice", choices=[(c, bool(l > 0), float(l)) for c, l in zip(choices, logits)])


def answer_file(run: str | os.PathLike, video: str | os.PathLike, question: str | None = None,
                choices: Sequence[str] = (), vocab: str | os.PathLike | None = None,
                device: str = "cpu") -> Answer:
    """Load ``run`` (run dir or ``.ckpt``), read ``video`` and answer."""
    from ..train.checkpoint import load_model, read_checkpoint, resolve_checkpoint
    from ..train.config import config_from_yaml

    ckpt = resolve_checkpoint(run)
    cfg = config_from_yaml(read_checkpoint(ckpt)["config_yaml"], source=f"config stored in {ckpt}")
    model = load_model(ckpt, device=device)
    clip = read_clip(video, cfg, model)
    return answer_video(model, cfg, clip, question, choices, ClevrerVocab.load(vocab) if vocab else None)


def format_answer(result: Answer) -> str:
    if result.kind == "multiple_choice":
        return "\n".join(f"{i + 1}. {text}: {'correct' if ok else 'wrong'} (logit {logit:+.2f})"
                         for i, (text, ok, logit) in enumerate(result.choices))
    extra = ", ".join(f"{a} {p:.2f}" for a, p in result.top)
    return f"{result.answer}    ({extra})"


__all__ = ["Answer", "answer_file", "answer_kind", "answer_video", "clip_settings", "format_answer", "read_clip", "vocab_path"]
