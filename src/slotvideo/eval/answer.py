"""Answer a question about a video file with a trained Aloe run (``slotvideo answer``).

    result = answer_file("runs/clevrer_mini", "clip.mp4", "what will happen next?", choices=[...])

The video is read the way the run's data section reads its training videos (number of frames, sampling,
size), the question and choices are tokenised with the vocabulary the run trained with (the
``clevrer_vocab.json`` saved by the loader: ``data.params.vocab``, else ``<data.cache_dir or root>/``), and the
model answers: a descriptive answer word, a correct/wrong flag per choice, or (CATER runs) the snitch's cell.
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


@dataclass
class Answer:
    kind: str                                   # descriptive | multiple_choice | cater
    answer: str | None = None                   # descriptive answer word, or "row r, col c" for CATER
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


def clip_settings(cfg: Any) -> dict[str, Any]:
    """``num_frames``, ``stride``, ``sampling``, ``size`` of the run's data section (presets applied)."""
    from ..data import cater, clevrer
    from ..data.kinetics import parse_params

    module = cater if cfg.data.name == "cater" else clevrer
    spec = cater.CATER_SPEC if module is cater else clevrer.CLEVRER_SPEC
    params = parse_params(cfg.data.name, dict(cfg.data.get("params") or {}), spec, module.PRESETS)
    return {k: params[k] for k in ("num_frames", "stride", "sampling", "size")}


def read_clip(path: str | os.PathLike, cfg: Any) -> torch.Tensor:
    """``[1, T, 3, H, W]`` float video read with the run's clip settings (evenly spaced when random)."""
    clip = clip_settings(cfg)
    sampling = "uniform" if clip["sampling"] == "random" else clip["sampling"]
    frames = read_video(path, num_frames=clip["num_frames"], stride=clip["stride"], sampling=sampling,
                        size=clip["size"])
    return to_tensor(frames)[None]


def answer_video(model: Any, cfg: Any, video: torch.Tensor, question: str | None = None,
                 choices: Sequence[str] = (), vocab: ClevrerVocab | None = None) -> Answer:
    """Answer ``question`` (and ``choices``) about ``video [1, T, 3, H, W]`` with an Aloe ``model``."""
    task = getattr(getattr(model, "cfg", None), "task", None)
    if task is None or not hasattr(model, "task_logits"):
        raise ConfigError(f"this run is a {type(model).__name__}, which does not answer questions (train model.name: aloe)")
    device = next(model.parameters()).device
    video = video.to(device)
    with torch.no_grad():
        if task == "cater":
            probs = model.task_logits(Batch({"video": video}))[0].softmax(-1)
            side = int(round(probs.numel() ** 0.5))
            best = probs.topk(min(5, probs.numel()))
            cells = [(f"row {int(i) // side}, col {int(i) % side}", float(p)) for p, i in zip(best.values, best.indices)]
            return Answer("cater", cells[0][0], top=cells)
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
        batch["choices"] = ids[None].to(device)
        logits = model.task_logits(Batch(batch))[0]
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
    clip = read_clip(video, cfg)
    return answer_video(model, cfg, clip, question, choices, ClevrerVocab.load(vocab) if vocab else None)


def format_answer(result: Answer) -> str:
    if result.kind == "multiple_choice":
        return "\n".join(f"{i + 1}. {text}: {'correct' if ok else 'wrong'} (logit {logit:+.2f})"
                         for i, (text, ok, logit) in enumerate(result.choices))
    extra = ", ".join(f"{a} {p:.2f}" for a, p in result.top)
    return f"{result.answer}    ({extra})"


__all__ = ["Answer", "answer_file", "answer_video", "clip_settings", "format_answer", "read_clip", "vocab_path"]
