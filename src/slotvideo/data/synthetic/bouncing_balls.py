"""Bouncing Balls (SetCon appendix A.3): balls in continuous 2-D space, colliding elastically.

Physics. Equal masses, no friction or gravity. Between two frames (one time unit) the simulation is
*event driven*: it computes the exact time of the next wall or ball-ball contact, moves every ball
there in a straight line, resolves that contact, and repeats. This replaces the fixed sub-steps of
the Sutskever generator (``eps=.5``, see reference/dataset-formats.md 5.1): the result does not depend
on a step size, and balls never overlap each other or cross a wall (they touch at contact instants).
A wall contact reverses the velocity component normal to the wall; a ball-ball contact swaps the
two velocity components along the line of centres (elastic, equal masses).

Initial state: centres placed uniformly at random without overlap (rejection sampling), velocity
directions uniform, every ball starting with speed ``speed`` pixels per frame.

Colours: SetCon generates the three colours once and reuses them across all sequences; ball k always
has colour k (``fixed_colors=True``). ``fixed_colors=False`` draws a new hue offset per sequence.
Balls are anti-aliased discs by default (``antialias=False`` for hard discs).

Task ``locate`` (not in SetCon; a CATER-style localization task on balls the models can segment): each
sample also has a ``label``, the cell of a ``grid x grid`` grid (class ``row * grid + col``, as CATER's
:func:`~slotvideo.metrics.cater.class_to_cell`) holding the centre of ball ``target`` (of the fixed colour
``target``) ``horizon`` frames after the last frame shown. ``horizon=0`` asks where the ball is at the end
of the clip; ``horizon > 0`` asks where it will be, which needs its velocity, the walls and its collisions.
The video, masks and positions are the first ``num_frames`` frames of a simulation ``horizon`` frames longer.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import ConfigError, DataError
from ...registry import register
from ..generated import Generator, composite, coverage, pixel_grid
from .colors import random_hue_colors, shared_colors

TASKS = ("video", "locate")

# Rejection sampling of start positions is reliable below this fraction of the frame covered by balls.
MAX_COVER = 0.3
# Contacts per frame after which the simulation stops resolving (never reached at sane densities).
_MAX_EVENTS = 10_000


def max_discs(resolution: int, radius: float) -> int:
    """How many discs of ``radius`` fit comfortably (rejection sampling succeeds) in a square frame."""
    return int(MAX_COVER * resolution ** 2 // (math.pi * radius ** 2))


def place_discs(rng: np.random.Generator, radii: np.ndarray, low: np.ndarray, high: np.ndarray,
                integer: bool = False, tries: int = 2_000) -> np.ndarray:
    """Centres ``[N, 2]`` of discs that do not overlap, each uniform in its box ``[low_k, high_k]^2``.

    Sequential rejection sampling, drawing candidates for each disc in vectorized batches of 100.
    """
    centres = np.empty((len(radii), 2), dtype=np.float64)
    for k, r in enumerate(radii):
        for _ in range(tries // 100):
            if integer:
                cand = rng.integers(low[k], high[k] + 1, size=(100, 2)).astype(np.float64)
            else:
                cand = rng.uniform(low[k], high[k], size=(100, 2))
            gap = np.sqrt(((cand[:, None] - centres[None, :k]) ** 2).sum(-1)) - (r + radii[:k])
            ok = np.flatnonzero((gap >= 1e-6).all(axis=1))
            if len(ok):
                centres[k] = cand[ok[0]]
                break
        else:
            raise DataError(f"could not place {len(radii)} non-overlapping objects of radius up to {radii.max():g} "
                            f"after {tries} tries; use fewer or smaller objects")
    return centres


def disc_sdf(positions: np.ndarray, radii: np.ndarray | float, height: int, width: int) -> np.ndarray:
    """Signed distance ``[T, N, H, W]`` from pixel centres to discs at ``positions [T, N, 2]``."""
    rows, cols = pixel_grid(height, width)
    dy = rows - positions[..., 0, None, None].astype(np.float32)
    dx = cols - positions[..., 1, None, None].astype(np.float32)
    return np.sqrt(dy * dy + dx * dx) - np.asarray(radii, dtype=np.float32)[..., None, None]


def _next_wall(p: np.ndarray, v: np.ndarray, low: float, high: float) -> tuple[float, int, int]:
    # Time to the wall each (ball, axis) moves towards; a component at rest never hits.
    target = np.where(v > 0, high, low)
    moving = v != 0
    t = np.full(p.shape, np.inf)
    t[moving] = (target[moving] - p[moving]) / v[moving]
    k = int(t.argmin())
    return max(float(t.flat[k]), 0.0), k // 2, k % 2


def _next_contact(p: np.ndarray, v: np.ndarray, i: np.ndarray, j: np.ndarray, diameter: float) -> tuple[float, int]:
    # Earliest t >= 0 with |dp + t dv| = diameter among approaching pairs (dp . dv < 0).
    if not len(i):
        return math.inf, -1
    dp, dv = p[j] - p[i], v[j] - v[i]
    a = (dv * dv).sum(-1)
    b = (dp * dv).sum(-1)
    c = (dp * dp).sum(-1) - diameter ** 2
    disc = b * b - a * c
    hit = (b < 0) & (disc >= 0)
    if not hit.any():
        return math.inf, -1
    t = np.full(len(i), np.inf)
    t[hit] = np.maximum((-b[hit] - np.sqrt(disc[hit])) / a[hit], 0.0)
    t[hit & (c <= 0)] = 0.0  # touching already and closing in
    k = int(t.argmin())
    return float(t[k]), k


def simulate(p: np.ndarray, v: np.ndarray, num_frames: int, low: float, high: float, radius: float) -> np.ndarray:
    """Centres ``[T, N, 2]`` of equal elastic discs whose centres live in ``[low, high]^2``; one time unit per frame."""
    p, v = p.astype(np.float64).copy(), v.astype(np.float64).copy()
    i, j = np.triu_indices(len(p), k=1)
    out = np.empty((num_frames, len(p), 2))
    out[0] = p
    for frame in range(1, num_frames):
        left = 1.0
        for _ in range(_MAX_EVENTS):
            t_wall, ball, axis = _next_wall(p, v, low, high)
            t_pair, pair = _next_contact(p, v, i, j, 2 * radius)
            if min(t_wall, t_pair) >= left:
                break
            dt = min(t_wall, t_pair)
            p = np.clip(p + v * dt, low, high)
            left -= dt
            if t_wall <= t_pair:  # wall events only exist for motion towards the wall, so reversing points inwards
                v[ball, axis] = -v[ball, axis]
            else:
                a, b = i[pair], j[pair]
                normal = (p[b] - p[a]) / np.linalg.norm(p[b] - p[a])
                exchange = ((v[b] - v[a]) @ normal) * normal
                v[a] += exchange
                v[b] -= exchange
        p = np.clip(p + v * left, low, high)
        out[frame] = p
    return out


@register("dataset", "bouncing-balls")
@register("generator", "bouncing-balls")
@dataclass(frozen=True)
class BouncingBalls(Generator):
    """SetCon's Bouncing Balls: ``num_balls`` discs bouncing elastically off each other and the frame."""

    name: ClassVar[str] = "bouncing-balls"
    # SetCon: 1,000 sequences of which 128 are used for evaluation.
    default_num: ClassVar[dict[str, int]] = {"train": 872, "val": 128, "test": 128}

    resolution: int = 32
    num_frames: int = 12
    num_balls: int = 3
    radius: float = 3.0
    speed: float = 2.0
    fixed_colors: bool = True
    antialias: bool = True
    task: str = "video"
    horizon: int = 0
    grid: int = 6
    target: int = 0

    def validate(self) -> None:
        self.check("resolution", 4, 1024, integer=True)
        self.check("num_frames", 1, None, integer=True)
        self.check("radius", 0.5, self.resolution / 4)
        self.check("num_balls", 1, max(1, min(127, max_discs(self.resolution, self.radius))), integer=True)
        self.check("speed", 0.0, self.resolution / 2)
        if self.task not in TASKS:
            raise ConfigError(f"{self.name} param 'task' must be one of {list(TASKS)}, got {self.task!r}")
        self.check("horizon", 0, None, integer=True)
        self.check("grid", 1, self.resolution, integer=True)
        self.check("target", 0, self.num_balls - 1, integer=True)

    def generate(self, rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
        n, r, res = self.num_balls, self.radius, self.resolution
        colors = shared_colors(seed, n) if self.fixed_colors else random_hue_colors(rng, n)
        # Centres stay where the whole disc is inside the frame, which spans [-0.5, res - 0.5].
        low, high = r - 0.5, res - 0.5 - r
        start = place_discs(rng, np.full(n, r), np.full(n, low), np.full(n, high))
        angle = rng.uniform(0.0, 2 * math.pi, size=n)
        velocity = self.speed * np.stack([np.sin(angle), np.cos(angle)], axis=-1)
        extra = self.horizon if self.task == "locate" else 0
        path = simulate(start, velocity, self.num_frames + extra, low, high, r).astype(np.float32)
        positions = path[:self.num_frames]
        alpha = coverage(disc_sdf(positions, r, res, res), self.antialias)
        video, seg, visible = composite(alpha, colors, np.zeros(n))
        out = {"video": video, "segmentation": seg, "positions": positions, "visible": visible}
        if self.task == "locate":
            out["label"] = cell_class(path[-1, self.target], res, self.grid)
        return out


def cell_class(position: np.ndarray, resolution: int, grid: int) -> np.ndarray:
    """Class ``row * grid + col`` (int64 ``[...]``) of the grid cell holding pixel positions ``[..., 2]`` (y, x)
    in a frame spanning ``[-0.5, resolution - 0.5]``."""
    cell = np.clip(np.floor((np.asarray(position, np.float64) + 0.5) * grid / resolution), 0, grid - 1)
    return (cell[..., 0] * grid + cell[..., 1]).astype(np.int64)
