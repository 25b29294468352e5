"""Word vocabularies for CLEVRER questions and choices, and the fixed descriptive-answer vocabulary.

Facts (reference/dataset-formats.md 1.5): text is tokenised as ``s.lower().replace("?", "").split()``
(punctuation stays attached: ``"cube's"``, ``"removed,"``); questions are padded to 20 tokens and
choices to 12; id 0 is padding. The 21 descriptive answers get ids 1..21 in the order below, with
``0`` = padding, so an answer head has :data:`ANSWER_VOCAB_SIZE` = 22 outputs, as in SlotFormer's and
DeepMind's vocab files.

Our choice: word ids start at 2 and id 1 is ``<unk>`` for words never seen in the training split
(CLEVRER's templated text makes this rare; it keeps val/test loading from failing on one new word).
Vocabularies are built from the training split and saved as JSON so every split and every later run
uses the same ids.
"""
from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch

from ..errors import DataError

PAD, UNK = "<pad>", "<unk>"
DESCRIPTIVE_ANSWERS = ("0", "1", "2", "3", "4", "5", "blue", "brown", "cube", "cyan", "cylinder", "gray", "green",
                       "metal", "no", "purple", "red", "rubber", "sphere", "yellow", "yes")
ANSWER_VOCAB_SIZE = len(DESCRIPTIVE_ANSWERS) + 1
MAX_QUESTION_LENGTH = 20
MAX_CHOICE_LENGTH = 12
CHOICE_ANSWERS = {"wrong": 0, "correct": 1}


def tokenize(text: str) -> list[str]:
    """CLEVRER's tokenisation: lower-case, drop ``?``, split on whitespace."""
    return text.lower().replace("?", "").split()


def answer_id(answer: str, where: str = "answer") -> int:
    """Id (1..21) of a descriptive answer; :class:`DataError` naming ``where`` for anything else."""
    try:
        return DESCRIPTIVE_ANSWERS.index(str(answer).strip().lower()) + 1
    except ValueError:
        raise DataError(f"{where}: descriptive answer {answer!r} is not one of the 21 CLEVRER answers "
                        f"{list(DESCRIPTIVE_ANSWERS)}") from None


def answer_word(index: int) -> str:
    """The answer string of id ``index`` (1..21), for predictions written to a submission."""
    if not 1 <= int(index) <= len(DESCRIPTIVE_ANSWERS):
        raise DataError(f"answer id must be in [1, {len(DESCRIPTIVE_ANSWERS)}], got {int(index)}")
    return DESCRIPTIVE_ANSWERS[int(index) - 1]


class Vocabulary:
    """Word -> id map with ``<pad>`` = 0 and ``<unk>`` = 1; :meth:`encode` pads/truncates to a fixed length."""

    def __init__(self, words: Iterable[str]):
        self.words = [PAD, UNK] + sorted(set(words) - {PAD, UNK})
        self.ids = {w: i for i, w in enumerate(self.words)}

    @classmethod
    def build(cls, texts: Iterable[str]) -> "Vocabulary":
        return cls(w for text in texts for w in tokenize(text))

    def __len__(self) -> int:
        return len(self.words)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Vocabulary) and self.words == other.words

    def encode(self, text: str, length: int) -> tuple[torch.Tensor, bool]:
        """int64 ``[length]`` ids (0-padded) and whether the text had to be truncated to fit."""
        ids = [self.ids.get(w, 1) for w in tokenize(text)]
        out = torch.zeros(length, dtype=torch.long)
        out[: min(len(ids), length)] = torch.tensor(ids[:length], dtype=torch.long)
        return out, len(ids) > length

    def decode(self, ids: Iterable[int]) -> str:
        return " ".join(self.words[int(i)] for i in ids if int(i) != 0)


class ClevrerVocab:
    """The question and choice vocabularies of a CLEVRER root, saved together as one JSON file."""

    def __init__(self, question: Vocabulary, choice: Vocabulary):
        self.question, self.choice = question, choice

    def to_json(self) -> dict:
        return {"question": self.question.words, "choice": self.choice.words,
                "answer": [PAD, *DESCRIPTIVE_ANSWERS]}

    def save(self, path: str | os.PathLike) -> Path:
        """Write atomically (temp + rename): workers of a DataLoader may read it at the same time."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.partial")
        tmp.write_text(json.dumps(self.to_json(), indent=1))
        os.replace(tmp, path)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "ClevrerVocab":
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            raise DataError(f"cannot read vocabulary {path}: {e}") from None
        if not isinstance(data, Mapping) or not all(
                isinstance(data.get(k), list) and data[k][:2] == [PAD, UNK] for k in ("question", "choice")):
            raise DataError(f"vocabulary {path} must hold 'question' and 'choice' word lists starting "
                            f"with {PAD!r}, {UNK!r}")
        return cls(Vocabulary(data["question"]), Vocabulary(data["choice"]))
