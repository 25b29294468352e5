"""Multi-Object GridWorld (SetCon appendix A.3).

Each sequence has ``num_frames`` frames of a ``size x size`` black plane with ``num_objects``
coloured pixels. Every step each pixel moves exactly one cell up, down, left or right in the
direction drawn at the start; at the border it "bounces off in the opposite direction": a move
that would leave the grid is reversed, so the pixel still moves one cell, back inwards. Pixels
start on different cells and pass through each other; where they overlap, one hides the others in
an order drawn at random for every frame.

Colours: a set of ``num_colors`` equally spaced hues with a random offset; each object gets a
different colour from the set, drawn per sequence. With ``fixed_colors`` (default, as SetCon's
main text: "reuse the same three objects throughout all sequences") the set is drawn once per
dataset seed; otherwise a new offset is drawn per sequence.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...registry import register
from ..generated import DIRECTIONS, Generator, composite
from .colors import random_hue_colors, shared_colors

# The opposite of move d is d ^ 1 (up <-> down, left <-> right), by the order of DIRECTIONS.
_OPPOSITE = np.array([1, 0, 3, 2])


@register("dataset", "gridworld")
@register("generator", "gridworld")
@dataclass(frozen=True)
class GridWorld(Generator):
    """SetCon's Multi-Object GridWorld: single-pixel objects moving one cell per step, bouncing at the border."""

    name: ClassVar[str] = "gridworld"
    default_num: ClassVar[dict[str, int]] = {"train": 50_000, "val": 1_000, "test": 1_000}

    size: int = 5
    num_frames: int = 8
    num_objects: int = 3
    num_colors: int = 3
    fixed_colors: bool = True

    def validate(self) -> None:
        self.check("size", 2, 127, integer=True)  # a 1-cell grid leaves no room to move
        self.check("num_frames", 1, None, integer=True)
        self.check("num_objects", 1, min(self.size ** 2, 127), integer=True)  # distinct start cells
        self.check("num_colors", self.num_objects, None, integer=True)  # each colour at most once

    def generate(self, rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
        n, s, t = self.num_objects, self.size, self.num_frames
        palette = shared_colors(seed, self.num_colors) if self.fixed_colors else random_hue_colors(rng, self.num_colors)
        colors = palette[rng.permutation(self.num_colors)[:n]]
        cells = rng.choice(s * s, size=n, replace=False)
        pos = np.stack([cells // s, cells % s], axis=-1)
        heading = rng.integers(0, 4, size=n)
        positions = np.empty((t, n, 2), dtype=np.int64)
        moves = np.empty((t - 1, n), dtype=np.int8)
        positions[0] = pos
        for k in range(1, t):
            ahead = pos + DIRECTIONS[heading]
            blocked = ((ahead < 0) | (ahead >= s)).any(axis=-1)
            heading = np.where(blocked, _OPPOSITE[heading], heading)
            pos = pos + DIRECTIONS[heading]
            positions[k], moves[k - 1] = pos, heading
        alpha = np.zeros((t, n, s, s), dtype=np.float32)
        ti, ni = np.meshgrid(np.arange(t), np.arange(n), indexing="ij")
        alpha[ti, ni, positions[..., 0], positions[..., 1]] = 1.0
        video, seg, visible = composite(alpha, colors, rng.random((t, n)))
        return {"video": video, "segmentation": seg, "positions": positions.astype(np.float32),
                "visible": visible, "moves": moves}
