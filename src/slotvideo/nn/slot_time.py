"""Sequence models run over TIME separately for every slot: ``[..., T, K, D] -> [..., T, K, D]``.

The Slot Transformer's context transformer (Faulkner & Zoran, 3.1.2 / A.4) lets each slot talk only to
itself at other time steps: the same weights are applied to each slot's sequence, slots never attend to
each other, so slots are pushed towards specialised roles and the cost does not grow with K. Both
modules here fold the slot axis into the batch to get that for free.

* :class:`SlotTimeTransformer`: a gated (GTrXL) transformer with absolute Fourier time encodings
  CONCATENATED to the input (then projected back to the model width), no causal mask, attention dropout.
* :class:`SlotTimeLSTM`: the appendix C.1 ablation, a deep LSTM rolled forward per slot.

Times are scaled by a fixed ``max_frames`` (not by the clip length) so that a prefix of a clip gets the
same encodings as the whole clip: the conditional prior runs the transformer on the first ``p`` steps.
"""
from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.nn.position import fourier_time_encoding
from slotvideo.nn.transformer import TransformerEncoder


def frame_times(steps: int, max_frames: int, start: int = 0, device: torch.device | None = None) -> Tensor:
    """Frame indices ``start .. start + steps - 1`` scaled so that ``0 .. max_frames - 1`` spans [-1, 1]."""
    if start + steps > max_frames:
        raise ShapeError(f"time steps {start}..{start + steps - 1} exceed max_frames={max_frames}; "
                         "raise max_frames in the model config")
    index = torch.arange(start, start + steps, device=device, dtype=torch.float32)
    return 2.0 * index / max(max_frames - 1, 1) - 1.0


class SlotTimeTransformer(nn.Module):
    """GTrXL over time, one sequence per slot; see the module docstring.

    ``attention_dim`` is the total width of the attention heads (Table 5's "embedding size"), so each
    head has ``attention_dim / num_heads`` dims; ``mlp_hidden`` are the hidden sizes of each block's MLP
    (Table 5's "MLP layer sizes" minus the output, which is ``dim``).
    """

    def __init__(self, dim: int, num_layers: int = 8, num_heads: int = 4, attention_dim: int = 128,
                 mlp_hidden: Sequence[int] = (64, 128), time_frequencies: int = 8, max_frames: int = 64,
                 attn_dropout: float = 0.1, dropout: float = 0.0, gated: bool = True) -> None:
        super().__init__()
        check_range(dim, "SlotTimeTransformer dim", low=1, integer=True)
        check_range(time_frequencies, "SlotTimeTransformer time_frequencies", low=1, integer=True)
        check_range(max_frames, "SlotTimeTransformer max_frames", low=1, integer=True)
        check_range(num_heads, "SlotTimeTransformer num_heads", low=1, integer=True)
        if attention_dim % num_heads:
            raise ConfigError(f"SlotTimeTransformer attention_dim ({attention_dim}) must be divisible by "
                              f"num_heads ({num_heads})")
        self.dim, self.time_frequencies, self.max_frames = dim, time_frequencies, max_frames
        self.proj_in = nn.Linear(dim + 2 * time_frequencies, dim)
        self.encoder = TransformerEncoder(num_layers, dim, num_heads, head_dim=attention_dim // num_heads,
                                          mlp_hidden=list(mlp_hidden), gated=gated, dropout=dropout,
                                          attn_dropout=attn_dropout)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        """``x [..., T, K, D]`` -> ``[..., T, K, D]``; ``start`` is the frame index of ``x[..., 0, :, :]``."""
        sizes = check_shape(x, "... T K D", "SlotTimeTransformer input", D=self.dim)
        times = frame_times(sizes["T"], self.max_frames, start, x.device)
        enc = fourier_time_encoding(times, self.time_frequencies).to(x.dtype)       # [T, 2F]
        enc = enc[:, None, :].expand(*x.shape[:-1], enc.shape[-1])
        h = self.proj_in(torch.cat([x, enc], dim=-1)).transpose(-3, -2)             # [..., K, T, D]
        return self.encoder(h).transpose(-3, -2)


class SlotTimeLSTM(nn.Module):
    """A ``num_layers``-deep LSTM rolled forward over time separately for each slot, read out to ``dim``.

    Appendix C.1: 4 layers of 256 hidden units. Causal by construction (no time encodings needed).
    """

    def __init__(self, dim: int, hidden: int = 256, num_layers: int = 4, max_frames: int = 64) -> None:
        super().__init__()
        check_range(dim, "SlotTimeLSTM dim", low=1, integer=True)
        check_range(hidden, "SlotTimeLSTM hidden", low=1, integer=True)
        check_range(num_layers, "SlotTimeLSTM num_layers", low=1, integer=True)
        self.dim, self.max_frames = dim, max_frames
        self.lstm = nn.LSTM(dim, hidden, num_layers=num_layers, batch_first=True)
        self.proj_out = nn.Linear(hidden, dim)

    def forward(self, x: Tensor, start: int = 0) -> Tensor:
        sizes = check_shape(x, "... T K D", "SlotTimeLSTM input", D=self.dim)
        frame_times(sizes["T"], self.max_frames, start)  # same length check as the transformer
        h = x.transpose(-3, -2)                                                     # [..., K, T, D]
        lead = h.shape[:-2]
        out, _ = self.lstm(h.reshape(-1, sizes["T"], self.dim))
        return self.proj_out(out).reshape(*lead, sizes["T"], self.dim).transpose(-3, -2)


SLOT_TIME_MODELS = ("transformer", "lstm")
