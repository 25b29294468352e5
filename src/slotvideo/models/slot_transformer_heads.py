"""The Slot Transformer's heads: the task head (3.5, A.7, Algorithm 2) and the auxiliary losses (3.4).

* :class:`TaskHead`: a CLS token, the question (and choice) word embeddings, the final latents projected
  to tokens (T x K of them) with the embeddings of their decoded masks, and the first/last frame
  embeddings of the ResNet (``frame_tokens=False``, not in the paper, leaves those out) -> a gated
  transformer with absolute position encodings -> the CLS output -> one output MLP per task (descriptive
  answers, multiple-choice flag, CATER's 36 cells, action classes).
* :class:`ObjectPrediction` (3.4.1): mask the last steps of 1, 2 and 3 random slots, run the context
  transformer once, L2 between predicted and true latents on random masked steps, summed.
* :class:`QuestionPrediction` (3.4.2): answer + latents -> a CLS summary -> teacher-forced question decoder.

Readings of the paper (also in docs/slot-transformer.md):
* the head reads the final posterior SAMPLES ``z_K`` (3.6 and Figure 2; Algorithm 2 writes ``c_K``);
* a mask embedding is ADDED to the token of its (step, slot) rather than appended as T x K more tokens,
  which keeps the sequence length at T x K (the paper does not say how masks enter);
* object-prediction targets are detached (a stop-gradient, as in BERT-style latent prediction), so the
  loss cannot be lowered by collapsing the targets.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.errors import ConfigError, check_range, check_shape, check_token_ids
from slotvideo.nn.autoregressive import SummaryToken, TokenDecoder
from slotvideo.nn.mlp import MLP
from slotvideo.nn.position import sinusoidal_encoding
from slotvideo.nn.transformer import TransformerEncoder


def pooled_masks(masks: Tensor, grid: int) -> Tensor:
    """Soft masks ``[..., H, W]`` average-pooled to ``grid x grid`` and flattened: ``[..., grid * grid]``."""
    lead = masks.shape[:-2]
    pooled = F.adaptive_avg_pool2d(masks.reshape(-1, 1, *masks.shape[-2:]), grid)
    return pooled.reshape(*lead, grid * grid)


class TaskHead(nn.Module):
    """Algorithm 2. ``outputs`` maps an output name to its size (``{"descriptive": 22, "multiple_choice": 1}``)."""

    def __init__(self, latent_dim: int, frame_dim: int, outputs: Mapping[str, int], embed_dim: int = 64,
                 num_layers: int = 8, num_heads: int = 4, attention_dim: int = 128,
                 mlp_hidden: Sequence[int] = (128, 128), final_hidden: Sequence[int] = (2048, 2048),
                 question_vocab: int = 0, choice_vocab: int = 0, mask_grid: int = 4,
                 attn_dropout: float = 0.1, frame_tokens: bool = True) -> None:
        super().__init__()
        if not outputs:
            raise ConfigError("TaskHead needs at least one output")
        if attention_dim % num_heads:
            raise ConfigError(f"TaskHead attention_dim ({attention_dim}) must be divisible by num_heads ({num_heads})")
        check_range(mask_grid, "TaskHead mask_grid", low=1, integer=True)
        self.latent_dim, self.frame_dim, self.embed_dim, self.mask_grid = latent_dim, frame_dim, embed_dim, mask_grid
        self.question_vocab, self.choice_vocab = question_vocab, choice_vocab
        self.cls = nn.Parameter(torch.zeros(embed_dim))  # Bias(1): a learned vector
        self.question_embed = nn.Embedding(question_vocab, embed_dim, padding_idx=0) if question_vocab else None
        self.choice_embed = nn.Embedding(choice_vocab, embed_dim, padding_idx=0) if choice_vocab else None
        self.context_proj = nn.Linear(latent_dim, embed_dim)
        self.mask_proj = nn.Linear(mask_grid * mask_grid, embed_dim)
        # frame_tokens=False (not in the paper) leaves out the first/last frame tokens: the head then sees the
        # video only through the slots, which shows whether it reads them
        self.frame_proj = nn.Linear(frame_dim, embed_dim) if frame_tokens else None
        self.transformer = TransformerEncoder(num_layers, embed_dim, num_heads, head_dim=attention_dim // num_heads,
                                              mlp_hidden=list(mlp_hidden), gated=True, attn_dropout=attn_dropout,
                                              final_norm=True)
        self.outputs = nn.ModuleDict({name: MLP(embed_dim, list(final_hidden), size) for name, size in outputs.items()})

    def forward(self, z: Tensor, masks: Tensor, first: Tensor, last: Tensor, output: str,
                question: Tensor | None = None, choices: Tensor | None = None) -> Tensor:
        """``z [B, T, K, Z]``, ``masks [B, T, K, H, W]``, frame embeddings ``first``/``last [B, ...]`` -> logits."""
        if output not in self.outputs:
            raise ConfigError(f"TaskHead has no output {output!r}; it has {sorted(self.outputs)}")
        sizes = check_shape(z, "B T K Z", "TaskHead latents", Z=self.latent_dim)
        check_shape(masks, "B T K H W", "TaskHead masks", B=sizes["B"], T=sizes["T"], K=sizes["K"])
        b = sizes["B"]
        slots = self.context_proj(z) + self.mask_proj(pooled_masks(masks, self.mask_grid))
        tokens = [self.cls.to(z.dtype).expand(b, 1, -1)]
        pads = [torch.zeros(b, 1, dtype=torch.bool, device=z.device)]
        for ids, table, name in ((question, self.question_embed, "question"), (choices, self.choice_embed, "choices")):
            if ids is None:
                continue
            if table is None:
                raise ConfigError(f"the batch has {name} but the model was built without a {name} vocabulary "
                                  f"(model.{'question' if name == 'question' else 'choice'}_vocab_size)")
            ids = ids.reshape(b, -1)
            check_token_ids(ids, table.num_embeddings, name, f"model.{name.rstrip('s')}_vocab_size")
            tokens.append(table(ids))
            pads.append(ids == 0)
        visual = [slots.flatten(1, 2)]
        if self.frame_proj is not None:
            visual.append(self.frame_proj(torch.stack([first.reshape(b, -1), last.reshape(b, -1)], dim=1)))
        tokens += visual
        pads.append(torch.zeros(b, sum(t.shape[1] for t in visual), dtype=torch.bool, device=z.device))
        x = torch.cat(tokens, dim=1)
        x = x + sinusoidal_encoding(torch.arange(x.shape[1], device=x.device), self.embed_dim).to(x.dtype)
        y = self.transformer(x, key_padding_mask=torch.cat(pads, dim=1))
        return self.outputs[output](y[:, 0])


def object_prediction_masks(batch: int, steps: int, num_slots: int, slot_counts: Sequence[int], masked_steps: int,
                            target_fraction: float = 0.5, device: torch.device | str | None = None,
                            generator: torch.Generator | None = None) -> tuple[Tensor, Tensor]:
    """Which (slot, step) entries to mask and which of them to score, one row per entry of ``slot_counts``.

    Returns bool ``masked [N, B, T, K]`` (the last ``masked_steps`` steps of ``slot_counts[n]`` distinct
    random slots) and ``targets [N, B, T, K]``: the masked entries at a random subset of the masked steps
    (each kept with probability ``target_fraction``, at least one).
    """
    check_range(masked_steps, "masked_steps", low=1, high=steps, integer=True)
    for c in slot_counts:
        check_range(c, "object prediction slot count", low=1, high=num_slots, integer=True)
    check_range(target_fraction, "target_fraction", low=0.0, high=1.0)
    n = len(slot_counts)
    counts = torch.tensor(list(slot_counts), device=device)
    ranks = torch.rand(n, batch, num_slots, device=device, generator=generator).argsort(-1).argsort(-1)
    chosen = ranks < counts[:, None, None]                                                  # [N, B, K]
    step_masked = torch.arange(steps, device=device) >= steps - masked_steps                # [T]
    masked = chosen[:, :, None, :] & step_masked[None, None, :, None]
    pick = torch.rand(n, batch, steps, device=device, generator=generator) < target_fraction
    forced = steps - masked_steps + torch.randint(masked_steps, (n, batch), device=device, generator=generator)
    pick = (pick | F.one_hot(forced, steps).bool()) & step_masked
    return masked, masked & pick[..., None]


class ObjectPrediction(nn.Module):
    """3.4.1: masked latents -> the context transformer -> L2 to the true (detached) latents on the targets."""

    def __init__(self, latent_dim: int, slot_counts: Sequence[int] = (1, 2, 3), target_fraction: float = 0.5) -> None:
        super().__init__()
        self.latent_dim, self.slot_counts, self.target_fraction = latent_dim, tuple(slot_counts), target_fraction
        self.mask_token = nn.Parameter(torch.randn(latent_dim) * 0.02)

    def forward(self, z: Tensor, transformer: nn.Module, masked_steps: int,
                generator: torch.Generator | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Per-sample loss ``[B]`` of latents ``z [B, T, K, Z]`` with the last ``masked_steps`` steps masked;
        also the masks and predictions for inspection."""
        sizes = check_shape(z, "B T K Z", "ObjectPrediction latents", Z=self.latent_dim)
        k = sizes["K"]
        counts = [c for c in self.slot_counts if c <= k] or [k]
        masked, targets = object_prediction_masks(sizes["B"], sizes["T"], k, counts,
                                                  masked_steps, self.target_fraction,
                                                  z.device, generator)
        inputs = torch.where(masked[..., None], self.mask_token.to(z.dtype), z.unsqueeze(0))  # [N, B, T, K, Z]
        predicted = transformer(inputs)
        error = (predicted - z.detach().unsqueeze(0)).norm(dim=-1)                            # [N, B, T, K]
        loss = (error * targets).sum(dim=(0, 2, 3))
        return loss, {"masked": masked, "targets": targets, "predicted": predicted}


class QuestionPrediction(nn.Module):
    """3.4.2: ``[answer token, latent tokens]`` -> CLS summary -> teacher-forced question decoder, per-sample CE."""

    def __init__(self, latent_dim: int, question_vocab: int, num_answers: int, dim: int = 64, num_heads: int = 4,
                 num_layers: int = 1, hidden: int = 128) -> None:
        super().__init__()
        self.num_answers = num_answers
        self.answer_embed = nn.Embedding(num_answers, dim)
        self.latent_proj = nn.Linear(latent_dim, dim)
        self.summary = SummaryToken(dim, num_heads, num_layers)
        self.decoder = TokenDecoder(question_vocab, dim, dim, hidden)

    def forward(self, z: Tensor, answer: Tensor, question: Tensor) -> Tensor:
        """``z [B, T, K, Z]``, answer ids ``[B]`` (< num_answers), question ``[B, L]`` -> loss ``[B]``."""
        check_shape(answer, "B", "question-prediction answer ids", B=z.shape[0])
        check_token_ids(answer, self.num_answers, "question-prediction answer", "the answer vocabulary size")
        tokens = torch.cat([self.answer_embed(answer)[:, None], self.latent_proj(z).flatten(1, 2)], dim=1)
        logits = self.decoder(self.summary(tokens), question)
        return self.decoder.loss(logits, question)
