"""CNN+LSTM: the object-agnostic video QA baseline that Aloe's comparisons are measured against.

Our reading of the classic baseline (the CNN+LSTM of the CLEVRER benchmark; the Aloe paper's footnote
also reports that a bidirectional LSTM over its inputs does worse than attention): no objects and no
attention, only sequence models.

* **Video**: a ResNet (:class:`~slotvideo.nn.encoders.ResNet`, trained from scratch with the model, as
  Aloe's ResNet ablation) on every frame, average-pooled over space to one vector per frame, then an
  LSTM over the frames; the video code is the last hidden state.
* **Question**: word embeddings (id 0 = padding) and an LSTM over the unpadded words; the last hidden
  state. **Choice** (multiple choice): its own embedding table (choices have their own vocabulary) and
  its own LSTM, one pass per (question, choice) pair -- choices are folded into the batch as in Aloe.
  The video and question codes do not depend on the choice, so they are computed once per sample and
  shared by its pairs (the same numbers as separate passes, C times cheaper).
* **Heads**, each an MLP with one hidden layer (``head_hidden``) on the concatenated codes: a softmax
  over the descriptive answers on ``[video, question]``; one logit per choice on ``[video, question,
  choice]``; a softmax over the 36 CATER grid cells on ``[video]``. Losses and metrics are Aloe's
  (:class:`~slotvideo.models.reasoning_task.ReasoningTask`): cross-entropy, per-choice sigmoid
  cross-entropy, CATER cross-entropy plus ``l1_weight`` times the expected L1 grid distance. Mixed CLEVRER
  batches (loader ``task: mixed``) are split into their descriptive and multiple-choice samples there,
  and padded choices are never run.

Simplifications: no self-supervised loss, no label fraction, no pretrained CNN (the benchmark's
baselines use ImageNet features; nothing is downloaded here).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils.rnn import pack_padded_sequence

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, check_shape, check_token_ids
from slotvideo.models.base import Output, VideoModel
from slotvideo.models.reasoning_task import (MixedLogits, ReasoningTask, TaskConfig, choice_pairs,
                                             output_logits, scatter_pairs)
from slotvideo.nn.encoders import ResNet
from slotvideo.nn.mlp import MLP
from slotvideo.registry import register


class WordLSTM(nn.Module):
    """Embedding + LSTM over 0-padded token ids ``[N, L]`` -> last hidden state ``[N, hidden]``.

    Padding is trailing (the vocabulary's encoding); an all-padding text reads one padding token."""

    def __init__(self, vocab_size: int, embed_dim: int, hidden: int, layers: int, name: str) -> None:
        super().__init__()
        self.vocab_size, self.name = vocab_size, name
        self.embedding = nn.Embedding(vocab_size, embed_dim)
        self.lstm = nn.LSTM(embed_dim, hidden, num_layers=layers, batch_first=True)

    def forward(self, ids: Tensor) -> Tensor:
        check_token_ids(ids, self.vocab_size, self.name)
        lengths = (ids != 0).sum(-1).clamp(min=1).cpu()
        packed = pack_padded_sequence(self.embedding(ids), lengths, batch_first=True, enforce_sorted=False)
        _, (h, _) = self.lstm(packed)
        return h[-1]


@register("model", "cnn_lstm")
class CnnLstm(ReasoningTask, VideoModel):
    """Per-frame CNN + frame LSTM, question (and choice) LSTMs, MLP heads; tasks as Aloe."""

    @dataclass
    class Config(TaskConfig):
        # task, num_answers, num_classes, vocab_size, l1_weight: TaskConfig
        resolution: int = field(default=64, metadata={"min": 4})      # frames are resized to this when read from files
        cnn_channels: list[int] = field(default_factory=lambda: [32, 64, 64])   # ResNet stages, stride 2 each
        cnn_norm: str = field(default="group", metadata={"choices": ("group", "batch", "layer", "none")})
        video_hidden: int = field(default=128, metadata={"min": 1})   # frame LSTM width
        word_dim: int = field(default=64, metadata={"min": 1})        # word embedding width
        text_hidden: int = field(default=128, metadata={"min": 1})    # question / choice LSTM width
        lstm_layers: int = field(default=1, metadata={"min": 1})
        head_hidden: int = field(default=128, metadata={"min": 1})

    def __init__(self, cfg: "CnnLstm.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        self.cnn = ResNet(3, list(cfg.cnn_channels), blocks=1, strides=2, norm=cfg.cnn_norm)
        self.video_lstm = nn.LSTM(cfg.cnn_channels[-1], cfg.video_hidden, num_layers=cfg.lstm_layers,
                                  batch_first=True)
        if cfg.task == "cater":
            self.cater_head = MLP(cfg.video_hidden, [cfg.head_hidden], cfg.num_classes)
            return
        self.question_lstm = WordLSTM(cfg.vocab_size, cfg.word_dim, cfg.text_hidden, cfg.lstm_layers, "question")
        self.choice_lstm = WordLSTM(cfg.vocab_size, cfg.word_dim, cfg.text_hidden, cfg.lstm_layers, "choice")
        self.descriptive_head = MLP(cfg.video_hidden + cfg.text_hidden, [cfg.head_hidden], cfg.num_answers)
        self.choice_head = MLP(cfg.video_hidden + 2 * cfg.text_hidden, [cfg.head_hidden], 1)

    @staticmethod
    def validate(cfg: "CnnLstm.Config") -> None:
        cfg.validate_task()
        if not cfg.cnn_channels:
            raise ConfigError("model.cnn_channels must name at least one stage")

    @classmethod
    def check_config(cls, model_cfg: "CnnLstm.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)

    # ------------------------------------------------------------------ encoders
    def encode_video(self, video: Tensor) -> Tensor:
        """``[B, T, 3, H, W]`` in [0, 1] -> the frame LSTM's last hidden state ``[B, video_hidden]``."""
        check_shape(video, "B T 3 H W", "video")
        frames = self.cnn(video * 2.0 - 1.0).mean(dim=(-2, -1))         # [B, T, C]
        _, (h, _) = self.video_lstm(frames)
        return h[-1]

    def task_logits(self, batch: Batch) -> Tensor | MixedLogits:
        """Descriptive ``[B, num_answers]``, multiple choice ``[B, C]`` (one pass per choice), CATER ``[B, 36]``;
        :class:`MixedLogits` for a mixed batch."""
        return self.logits_by_kind(batch, lambda kind, part, rows: self._kind_logits(kind, part))

    def _kind_logits(self, task: str, batch: Batch) -> Tensor:
        v = self.encode_video(batch["video"])
        if task == "cater":
            return self.cater_head(v)
        b = v.shape[0]
        question = batch["question"]
        check_shape(question, "B L", "question", B=b)
        q = self.question_lstm(question)
        if task == "descriptive":
            return self.descriptive_head(torch.cat([v, q], dim=-1))
        choices = batch["choices"]
        c = check_shape(choices, "B C L", "choices", B=b)["C"]
        pairs = choice_pairs(batch)
        sample = pairs.div(c, rounding_mode="floor")
        codes = torch.cat([v[sample], q[sample], self.choice_lstm(choices.flatten(0, 1)[pairs])], dim=-1)
        return scatter_pairs(self.choice_head(codes).reshape(-1), pairs, b, c)

    # ------------------------------------------------------------------ training
    def forward(self, batch: Batch) -> Output:
        if not self._has_labels(batch):
            key = "label" if self.task == "cater" else "answer"
            raise DataError(f"cnn_lstm trains on labelled batches; this batch has no {key!r} "
                            "(the test split has no labels: use it with slotvideo evaluate)")
        logits = self.task_logits(batch)
        loss, terms = self.task_loss(batch, logits)
        return Output(loss=loss, terms=terms, **output_logits(logits))
