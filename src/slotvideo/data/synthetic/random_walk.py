"""VIM's Random Walk datasets (VIM sections 5.1-5.3): objects on black, each stepping in a random cardinal direction.

* ``random-walk`` (5.1): coloured balls; between two frames every ball makes one atomic move of
  ``step`` pixels up, down, left or right. ``moves[t, k]`` is ball k's move from frame t to t + 1
  (0 up, 1 down, 2 left, 3 right, as :data:`slotvideo.data.generated.DIRECTIONS`).
* ``random-walk-compositional`` (5.2): between two frames every ball makes a sequence of
  ``min_atomic..num_atomic`` atomic moves (e.g. left-up-up-left); ``moves`` has shape
  ``[T-1, N, num_atomic]``, padded with -1 after the last move of a shorter sequence. The displacement
  between frames is the sum of the atomic moves.
* ``random-walk-ood`` (5.3): the same atomic dynamics on objects unlike the training balls: squares,
  triangles, crosses and diamonds, of random sizes, with random hues at saturation 0.3-0.7 (the
  training colours are fully saturated, so OOD colours never coincide with them).

The papers leave several things open (reference/dataset-formats.md 5.3); our choices:

* Walls: a move that would take any part of an object out of the frame is never drawn; each move is
  drawn uniformly among the directions that keep the object inside, so every recorded move is exactly
  the displacement it names (reflection would make the recorded move and the displacement disagree).
  Every atomic move of a composition is kept inside the frame too.
* Positions are whole pixels (centres on pixel centres); objects start without overlapping each other
  but afterwards pass through each other; the drawing order is a random permutation per sequence.
* Colours: as SetCon (equally spaced hues, random offset), fixed for the dataset by default.
"""
from __future__ import annotations

import abc
import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np

from ...errors import ConfigError
from ...registry import register
from ..generated import DIRECTIONS, Generator, composite, coverage, pixel_grid
from .bouncing_balls import MAX_COVER, place_discs
from .colors import hsv_to_rgb, random_hue_colors, shared_colors


def _box(dy: np.ndarray, dx: np.ndarray, half_h: np.ndarray, half_w: np.ndarray) -> np.ndarray:
    return np.maximum(np.abs(dy) - half_h, np.abs(dx) - half_w)


def _triangle(dy: np.ndarray, dx: np.ndarray, r: np.ndarray) -> np.ndarray:
    # Equilateral, pointing up, circumradius r: three half-planes at the inradius r / 2 from the centroid.
    up = -dy
    c = math.cos(math.pi / 6)
    return np.maximum.reduce([-up, c * dx + 0.5 * up, -c * dx + 0.5 * up]) - r / 2


# Signed distance (negative inside; exact or a bound outside, enough for a one-pixel ramp) of each
# shape centred at the origin, at offsets (dy, dx). The "radius" r is the circumradius: every shape lies
# inside the disc of radius r, so the disc tests of placement and wall handling hold for all of them.
SHAPES = {
    "disc": lambda dy, dx, r: np.sqrt(dy * dy + dx * dx) - r,
    "square": lambda dy, dx, r: _box(dy, dx, r / math.sqrt(2), r / math.sqrt(2)),
    "triangle": _triangle,
    "cross": lambda dy, dx, r: np.minimum(_box(dy, dx, 0.3 * r, 0.9 * r), _box(dy, dx, 0.9 * r, 0.3 * r)),
    "diamond": lambda dy, dx, r: (np.abs(dy) + np.abs(dx) - r) / math.sqrt(2),
}


def shape_sdf(shapes: np.ndarray, positions: np.ndarray, radii: np.ndarray, height: int, width: int) -> np.ndarray:
    """Signed distance ``[T, N, H, W]`` of objects with shape indices ``shapes [N]`` (into :data:`SHAPES`)."""
    rows, cols = pixel_grid(height, width)
    dy = rows - positions[..., 0, None, None].astype(np.float32)
    dx = cols - positions[..., 1, None, None].astype(np.float32)
    dy, dx = np.broadcast_arrays(dy, dx)
    r = np.broadcast_to(radii.astype(np.float32)[None, :, None, None], dy.shape)
    sdf = np.empty(dy.shape, dtype=np.float32)
    for k, fn in enumerate(SHAPES.values()):  # loop over shape kinds (at most 5), vectorized over objects
        m = shapes == k
        if m.any():
            sdf[:, m] = fn(dy[:, m], dx[:, m], r[:, m])
    return sdf


def walk(rng: np.random.Generator, start: np.ndarray, low: np.ndarray, high: np.ndarray, step: int,
         counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Random walk of ``N`` objects: ``counts [T-1, N]`` atomic moves between frames, each drawn uniformly
    among the moves that keep the object's centre in ``[low_k, high_k]``.

    Returns positions int64 ``[T, N, 2]`` and moves int8 ``[T-1, N, A]`` (A = ``counts.max()``, -1 padded).
    """
    steps, n = counts.shape
    num_atomic = max(int(counts.max(initial=0)), 1)
    positions = np.empty((steps + 1, n, 2), dtype=np.int64)
    moves = np.full((steps, n, num_atomic), -1, dtype=np.int8)
    pos = start.astype(np.int64)
    positions[0] = pos
    for t in range(steps):
        for a in range(num_atomic):
            ahead = pos[:, None, :] + step * DIRECTIONS[None]  # [N, 4, 2]
            ok = ((ahead >= low[:, None, None]) & (ahead <= high[:, None, None])).all(-1)
            # Uniform choice among the allowed moves: the first allowed move whose running count exceeds u * #allowed.
            pick = np.floor(rng.random(n) * ok.sum(1))
            move = (np.cumsum(ok, axis=1) > pick[:, None]).argmax(axis=1)
            active = a < counts[t]
            pos = np.where(active[:, None], pos + step * DIRECTIONS[move], pos)
            moves[t, :, a] = np.where(active, move, -1)
        positions[t + 1] = pos
    return positions, moves


@dataclass(frozen=True)
class _Walk(Generator):
    """What the three random-walk datasets share: frame, object count, step and the walk itself."""

    default_num: ClassVar[dict[str, int]] = {"train": 10_000, "val": 1_000, "test": 1_000}
    radius_param: ClassVar[str] = "radius"  # the param bounding the object size

    resolution: int = 32
    num_frames: int = 15  # VIM trains "on up to 15 consecutive frames"
    num_objects: int = 3
    step: int = 3
    antialias: bool = True

    def validate(self) -> None:
        self.check("resolution", 4, 1024, integer=True)
        self.check("num_frames", 1, None, integer=True)
        r = getattr(self, self.radius_param)
        self.check(self.radius_param, 0.5, self.resolution / 4)
        fit = int(MAX_COVER * self.resolution ** 2 // (math.pi * r ** 2))
        self.check("num_objects", 1, max(1, min(127, fit)), integer=True)
        # Every position must have an allowed move on each axis: the range of centres must span a step.
        span = math.floor(self.resolution - 0.5 - r) - math.ceil(r - 0.5)
        self.check("step", 1, span, integer=True)

    @abc.abstractmethod
    def objects(self, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Shape indices ``[N]`` into :data:`SHAPES`, radii ``[N]`` and colours ``[N, 3]`` of one sequence."""

    def atomic_counts(self, rng: np.random.Generator) -> np.ndarray:
        """Number of atomic moves ``[T-1, N]`` between consecutive frames."""
        return np.ones((self.num_frames - 1, self.num_objects), dtype=np.int64)

    def generate(self, rng: np.random.Generator, seed: int) -> dict[str, np.ndarray]:
        shapes, radii, colors = self.objects(rng, seed)
        low = np.ceil(radii - 0.5).astype(np.int64)
        high = np.floor(self.resolution - 0.5 - radii).astype(np.int64)
        start = place_discs(rng, radii, low, high, integer=True)
        positions, moves = walk(rng, start, low, high, self.step, self.atomic_counts(rng))
        positions = positions.astype(np.float32)
        alpha = coverage(shape_sdf(shapes, positions, radii, self.resolution, self.resolution), self.antialias)
        video, seg, visible = composite(alpha, colors, rng.permutation(self.num_objects))
        return {"video": video, "segmentation": seg, "positions": positions, "visible": visible,
                "moves": self.format_moves(moves)}

    def format_moves(self, moves: np.ndarray) -> np.ndarray:
        return moves[..., 0]  # one atomic move per step: [T-1, N]


@register("dataset", "random-walk")
@register("generator", "random-walk")
@dataclass(frozen=True)
class RandomWalk(_Walk):
    """VIM 5.1: coloured balls, one random cardinal move of ``step`` pixels per ball per frame."""

    name: ClassVar[str] = "random-walk"

    radius: float = 3.0
    fixed_colors: bool = True

    def objects(self, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.num_objects
        colors = shared_colors(seed, n) if self.fixed_colors else random_hue_colors(rng, n)
        return np.zeros(n, dtype=np.int64), np.full(n, float(self.radius)), colors


@register("dataset", "random-walk-compositional")
@register("generator", "random-walk-compositional")
@dataclass(frozen=True)
class RandomWalkCompositional(RandomWalk):
    """VIM 5.2: between two frames each ball makes ``min_atomic..num_atomic`` atomic moves (drawn uniformly)."""

    name: ClassVar[str] = "random-walk-compositional"

    num_atomic: int = 2
    min_atomic: int = 2

    def validate(self) -> None:
        super().validate()
        self.check("num_atomic", 1, None, integer=True)
        self.check("min_atomic", 1, self.num_atomic, integer=True)

    def atomic_counts(self, rng: np.random.Generator) -> np.ndarray:
        return rng.integers(self.min_atomic, self.num_atomic + 1, size=(self.num_frames - 1, self.num_objects))

    def format_moves(self, moves: np.ndarray) -> np.ndarray:
        # walk() sizes the last axis by the longest sequence drawn; pad to num_atomic so shapes never vary.
        out = np.full(moves.shape[:2] + (self.num_atomic,), -1, dtype=np.int8)
        out[..., : moves.shape[-1]] = moves
        return out


OOD_SHAPES = "square,triangle,cross,diamond"


@register("dataset", "random-walk-ood")
@register("generator", "random-walk-ood")
@dataclass(frozen=True)
class RandomWalkOOD(_Walk):
    """VIM 5.3: the random-walk dynamics on other shapes, sizes and colours (drawn per object and sequence)."""

    name: ClassVar[str] = "random-walk-ood"
    radius_param: ClassVar[str] = "radius_max"

    shapes: str = OOD_SHAPES
    radius_min: float = 2.0
    radius_max: float = 5.0

    def validate(self) -> None:
        names = [s.strip() for s in self.shapes.split(",") if s.strip()]
        bad = [s for s in names if s not in SHAPES]
        if not names or bad:
            raise ConfigError(f"{self.name} param 'shapes' must be a comma separated list of {list(SHAPES)}, "
                              f"got {self.shapes!r}")
        self.check("radius_min", 0.5, self.radius_max)
        super().validate()

    def objects(self, rng: np.random.Generator, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = self.num_objects
        allowed = np.array([list(SHAPES).index(s.strip()) for s in self.shapes.split(",") if s.strip()])
        shapes = allowed[rng.integers(0, len(allowed), size=n)]
        radii = rng.uniform(self.radius_min, self.radius_max, size=n)
        colors = hsv_to_rgb(rng.uniform(size=n), rng.uniform(0.3, 0.7, size=n), 1.0)
        return shapes, radii, colors
