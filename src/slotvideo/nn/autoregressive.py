"""Autoregressive decoders started from a summary of a set: a Gaussian latent sequence, or a token sequence.

Both of the Slot Transformer's autoregressive parts (the conditional prior of 3.3 and the question
decoder of 3.4.2) have the same shape: a learned token is concatenated to a set of vectors, self-attention
runs over them, and the token's output is the initial state of a recurrent model. So the pieces are:

* :class:`SummaryToken`: learned token + a (gated) transformer -> one summary vector per set;
* :class:`AutoregressiveGaussian`: from a state, an LSTM that feeds each step's SAMPLE back in and emits
  the parameters ``[mu, log sigma]`` of the next step (a prior that depends only on its state);
* :class:`TokenDecoder`: from a state, an LSTM over the previous ground-truth tokens (teacher forcing)
  that emits next-token logits, with a cross-entropy that ignores padding.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.errors import ShapeError, check_range, check_shape
from slotvideo.nn.distributions import DiagonalGaussian
from slotvideo.nn.time import scan_over_time
from slotvideo.nn.transformer import TransformerEncoder

LOG_STD_RANGE = (-7.0, 4.0)  # keeps exp(log sigma) finite early in training; far outside what fits


def gaussian(params: Tensor) -> DiagonalGaussian:
    """``N(mu, sigma)`` from ``params = [mu, log sigma]`` ``[..., 2Z]`` (log sigma clamped to a safe range)."""
    check_shape(params, "... P", "Gaussian params")
    if params.shape[-1] % 2:
        raise ShapeError(f"Gaussian params must be [..., 2Z], got {list(params.shape)}")
    mean, log_std = params.chunk(2, dim=-1)
    return DiagonalGaussian(mean, log_std.clamp(*LOG_STD_RANGE).exp())


class SummaryToken(nn.Module):
    """A learned token prepended to ``tokens [..., N, D]``, a transformer over all, the token's output ``[..., D]``."""

    def __init__(self, dim: int, num_heads: int = 4, num_layers: int = 1, gated: bool = True,
                 attn_dropout: float = 0.0) -> None:
        super().__init__()
        check_range(dim, "SummaryToken dim", low=1, integer=True)
        self.dim = dim
        self.token = nn.Parameter(torch.randn(dim) * 0.02)
        self.encoder = TransformerEncoder(num_layers, dim, num_heads, gated=gated, attn_dropout=attn_dropout,
                                          final_norm=True)

    def forward(self, tokens: Tensor, key_padding_mask: Tensor | None = None) -> Tensor:
        check_shape(tokens, "... N D", "SummaryToken tokens", D=self.dim)
        token = self.token.to(tokens.dtype).expand(*tokens.shape[:-2], 1, self.dim)
        if key_padding_mask is not None:
            check_shape(key_padding_mask, "... N", "SummaryToken key_padding_mask", N=tokens.shape[-2])
            keep = torch.zeros_like(key_padding_mask[..., :1])
            key_padding_mask = torch.cat([keep, key_padding_mask], dim=-1)
        return self.encoder(torch.cat([token, tokens], dim=-2), key_padding_mask)[..., 0, :]


class AutoregressiveGaussian(nn.Module):
    """``p(z_t | z_<t, s)``: ``(h, c) = Linear(s)``, then ``h_t = LSTM(z_{t-1}, h_{t-1})``, ``[mu, log sigma] = W h_t``.

    The first input is ``first`` (e.g. the last observed step's mean). Each step's input is the previous
    step's reparameterised sample (``sample=False``: its mean), never data, so the sequence depends on
    nothing but the state and ``first``.
    """

    def __init__(self, latent_dim: int, state_dim: int, hidden: int = 128) -> None:
        super().__init__()
        for name, value in (("latent_dim", latent_dim), ("state_dim", state_dim), ("hidden", hidden)):
            check_range(value, f"AutoregressiveGaussian {name}", low=1, integer=True)
        self.latent_dim, self.state_dim, self.hidden = latent_dim, state_dim, hidden
        self.init_state = nn.Linear(state_dim, 2 * hidden)
        self.cell = nn.LSTMCell(latent_dim, hidden)
        self.to_params = nn.Linear(hidden, 2 * latent_dim)

    def forward(self, state: Tensor, first: Tensor, steps: int, sample: bool = True) -> tuple[Tensor, Tensor]:
        """``state [..., S]``, ``first [..., Z]`` -> params ``[..., steps, 2Z]`` and latents ``[..., steps, Z]``."""
        check_shape(state, "... S", "AutoregressiveGaussian state", S=self.state_dim)
        check_shape(first, "... Z", "AutoregressiveGaussian first", Z=self.latent_dim)
        check_range(steps, "AutoregressiveGaussian steps", low=1, integer=True)
        lead = state.shape[:-1]
        if tuple(first.shape[:-1]) != tuple(lead):
            raise ShapeError(f"AutoregressiveGaussian first {list(first.shape)} must have the leading dims "
                             f"{list(lead)} of state")
        h, c = torch.tanh(self.init_state(state.reshape(-1, self.state_dim))).chunk(2, dim=-1)

        Carry = tuple[Tensor, Tensor, Tensor]

        def step(carry: Carry, _: None) -> tuple[Carry, tuple[Tensor, Tensor]]:
            z_prev, h, c = carry
            h, c = self.cell(z_prev, (h, c))
            params = self.to_params(h)
            dist = gaussian(params)
            z = dist.rsample() if sample else dist.mean
            return (z, h, c), (params, z)

        _, (params, z) = scan_over_time(step, (first.reshape(-1, self.latent_dim), h, c), steps=steps)
        return params.reshape(*lead, steps, -1), z.reshape(*lead, steps, -1)


class TokenDecoder(nn.Module):
    """Teacher-forced token model: ``logits_l = W LSTM(embed(x_{l-1}))`` from an initial state ``s``.

    Token ids ``1..vocab_size-1`` are words and ``0`` is padding (never predicted into the loss); a
    separate learned start embedding replaces ``x_{-1}``.
    """

    def __init__(self, vocab_size: int, state_dim: int, embed_dim: int = 64, hidden: int = 128) -> None:
        super().__init__()
        for name, value in (("vocab_size", vocab_size), ("state_dim", state_dim), ("embed_dim", embed_dim),
                            ("hidden", hidden)):
            check_range(value, f"TokenDecoder {name}", low=1, integer=True)
        self.vocab_size, self.state_dim = vocab_size, state_dim
        self.embed = nn.Embedding(vocab_size, embed_dim, padding_idx=0)
        self.start = nn.Parameter(torch.randn(embed_dim) * 0.02)
        self.init_state = nn.Linear(state_dim, 2 * hidden)
        self.lstm = nn.LSTM(embed_dim, hidden, batch_first=True)
        self.to_logits = nn.Linear(hidden, vocab_size)

    def check_tokens(self, tokens: Tensor) -> None:
        check_shape(tokens, "B L", "question tokens")
        if tokens.dtype != torch.long:
            raise ShapeError(f"question tokens must be int64 ids, got {tokens.dtype}")
        if tokens.numel() and (int(tokens.min()) < 0 or int(tokens.max()) >= self.vocab_size):
            raise ShapeError(f"question tokens must be ids in [0, {self.vocab_size - 1}] (raise the model's "
                             f"question vocab size), got [{int(tokens.min())}, {int(tokens.max())}]")

    def forward(self, state: Tensor, tokens: Tensor) -> Tensor:
        """``state [B, S]``, ``tokens [B, L]`` -> next-token logits ``[B, L, V]`` (l predicts ``tokens[:, l]``)."""
        check_shape(state, "B S", "TokenDecoder state", S=self.state_dim)
        self.check_tokens(tokens)
        if tokens.shape[0] != state.shape[0]:
            raise ShapeError(f"TokenDecoder state {list(state.shape)} and tokens {list(tokens.shape)} disagree on B")
        start = self.start.to(state.dtype).expand(tokens.shape[0], 1, -1)
        inputs = torch.cat([start, self.embed(tokens[:, :-1])], dim=1)
        h, c = torch.tanh(self.init_state(state)).chunk(2, dim=-1)
        out, _ = self.lstm(inputs, (h[None].contiguous(), c[None].contiguous()))
        return self.to_logits(out)

    @staticmethod
    def loss(logits: Tensor, tokens: Tensor) -> Tensor:
        """Per-sample cross-entropy ``[B]`` summed over the non-padding tokens."""
        ce = F.cross_entropy(logits.flatten(0, 1), tokens.flatten(), reduction="none").view_as(tokens)
        return (ce * (tokens != 0)).sum(dim=-1)
