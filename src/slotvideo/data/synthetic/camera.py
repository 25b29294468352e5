"""Camera Balls: an action-conditioned stand-in for PARTS's PLAYROOM (agent-driven camera, 4.2-4.3).

Balls bounce elastically in a square *world* of ``world`` pixels (the Bouncing Balls physics of
:mod:`.bouncing_balls`, run on the world); the frame is a ``resolution`` window onto it. Between two
frames the camera moves by an action vector, so the whole scene shifts by minus the action and objects
leave and re-enter the view. ``actions[t]`` (float32 ``[T, 2]``, (d_row, d_col) in pixels) is the camera
move taken *after* frame ``t``: the view of frame ``t + 1`` is that of frame ``t`` moved by ``actions[t]``.

Choices the paper leaves to us (its PLAYROOM is a 3-D Unity room, not reproducible here):

* actions are drawn i.i.d. uniform in ``[-max_action, max_action]^2``, then cut so the window stays
  inside the world; the recorded action is the move actually made (what the model must learn to use);
* the camera starts uniformly inside the world; ``positions`` are ball centres in *view* pixels (they
  may lie outside ``[0, resolution)``), ``visible`` says whether a ball owns a pixel of the view;
* the last action (after the last frame) is drawn like the others, so a roll-out may use it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...registry import register
from ..generated import Generator, composite, coverage
from .bouncing_balls import disc_sdf, max_discs, place_discs, simulate
from .colors import random_hue_colors, shared_colors


def camera_path(rng: np.random.Generator, num_frames: int, view: int, world: int, max_action: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Top-left corners ``[T, 2]`` of the view window and the moves actually made ``[T, 2]`` (float32)."""
    high = float(world - view)
    corner = np.empty((num_frames + 1, 2), dtype=np.float64)
    corner[0] = rng.uniform(0.0, high, size=2)
    wanted = rng.uniform(-max_action, max_action, size=(num_frames, 2))
    for t in range(num_frames):  # sequential: each clip depends on where the last move ended
        corner[t + 1] = np.clip(corner[t] + wanted[t], 0.0, high)
    return corner[:-1].astype(np.float32), np.diff(corner, axis=0).astype(np.float32)


@register("dataset", "camera-balls")
@register("generator", "camera-balls")
@dataclass(frozen=True)
class CameraBalls(Generator):
    """Bouncing balls in a ``world``-sized square seen through a ``resolution`` window the actions move."""

    name: ClassVar[str] = "camera-balls"
    default_num: ClassVar[dict[str, int]] = {"train": 872, "val": 128, "test": 128}

    resolution: int = 32
    world: int = 48
    num_frames: int = 16
    num_balls: int = 4
    radius: float = 3.0
    speed: float = 1.0
    max_action: float = 2.0
    fixed_colors: bool = True
    antialias: bool = True

    def validate(self) -> None:
        self.check("resolution", 4, 1024, integer=True)
        self.check("world", self.resolution, 4 * self.resolution, integer=True)
        self.check("num_frames", 1, None, integer=True)
        self.check("radius", 0.5, self.resolution / 4)
        self.check("num_balls", 1, max(1, min(127, max_discs(self.world, self.radius))), integer=True)
        self.check("speed", 0.0, self.resolution / 2)
        self.check("max_action", 0.0, self.resolution / 2)

    def generate(self, rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
        n, r, res = self.num_balls, self.radius, self.resolution
        colors = shared_colors(seed, n) if self.fixed_colors else random_hue_colors(rng, n)
        low, high = r - 0.5, self.world - 0.5 - r
        start = place_discs(rng, np.full(n, r), np.full(n, low), np.full(n, high))
        angle = rng.uniform(0.0, 2 * math.pi, size=n)
        velocity = self.speed * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
        world_positions = simulate(start, velocity, self.num_frames, low, high, r)
        corners, actions = camera_path(rng, self.num_frames, res, self.world, self.max_action)
        positions = (world_positions - corners[:, None, :]).astype(np.float32)   # in view pixels
        alpha = coverage(disc_sdf(positions, r, res, res), self.antialias)
        video, seg, visible = composite(alpha, colors, np.zeros(n))
        return {"video": video, "segmentation": seg, "positions": positions, "visible": visible,
                "actions": actions}
