"""Random CLEVRER-style scenes: which objects, where, how they move, and who enters later.

CLEVRER videos are built so that things happen: some objects start at rest, some move, and moving or
entering objects are aimed (with noise) at other objects so that collisions, and chains of collisions,
are common. A scene is re-drawn until at least ``min_collisions`` collisions are seen.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .physics import ObjectSpec, SimParams, SimResult, simulate
from .vocab import COLORS, MATERIALS, SHAPES


@dataclass(frozen=True)
class SceneParams:
    min_objects: int = 3          # present at the start
    max_objects: int = 5
    max_entering: int = 2         # objects that enter later
    min_collisions: int = 1
    speed: tuple[float, float] = (2.0, 3.5)
    max_tries: int = 30


def _attributes(rng: np.random.Generator, n: int) -> list[tuple[str, str, str]]:
    """``n`` distinct (shape, color, material) triples, so every object has a unique full description."""
    chosen: list[tuple[str, str, str]] = []
    while len(chosen) < n:
        t = (SHAPES[rng.integers(3)], COLORS[rng.integers(8)], MATERIALS[rng.integers(2)])
        if t not in chosen:
            chosen.append(t)
    return chosen


def _aim(rng: np.random.Generator, src: np.ndarray, dst: np.ndarray, speed: float, noise: float) -> tuple[float, float]:
    d = dst - src
    a = math.atan2(d[1], d[0]) + rng.normal(0.0, noise)
    return (speed * math.cos(a), speed * math.sin(a))


def sample_specs(rng: np.random.Generator, sim: SimParams, scene: SceneParams) -> list[ObjectSpec]:
    """One random scene (not yet checked for collisions)."""
    n_start = int(rng.integers(scene.min_objects, scene.max_objects + 1))
    n_enter = int(rng.integers(0, scene.max_entering + 1))
    attrs = _attributes(rng, n_start + n_enter)
    inner = sim.view_half - 0.8
    pos: list[np.ndarray] = []
    while len(pos) < n_start:
        p = rng.uniform(-inner, inner, size=2)
        if all(np.linalg.norm(p - q) > 1.5 for q in pos):
            pos.append(p)
    n_moving = int(rng.integers(1, max(2, n_start - 1) + 1))
    moving = set(rng.permutation(n_start)[:n_moving].tolist())
    specs = []
    for i in range(n_start):
        vel = (0.0, 0.0)
        if i in moving:
            target = pos[int(rng.choice([j for j in range(n_start) if j != i]))]
            vel = _aim(rng, pos[i], target, float(rng.uniform(*scene.speed)), 0.15)
        shape, color, material = attrs[i]
        specs.append(ObjectSpec(shape, color, material, (float(pos[i][0]), float(pos[i][1])), vel,
                                float(rng.uniform(0, 2 * math.pi)), 0))
    for k in range(n_enter):
        side = rng.uniform(0, 2 * math.pi)
        start = (sim.view_half + 0.7) * np.array([math.cos(side), math.sin(side)]) * math.sqrt(2) * 0.9
        start = np.clip(start, -(sim.view_half + 0.7), sim.view_half + 0.7)
        target = pos[int(rng.integers(n_start))]
        speed = float(rng.uniform(scene.speed[0] + 0.5, scene.speed[1] + 0.8))
        frame = int(rng.integers(1, max(2, int(sim.num_frames * 0.95))))
        shape, color, material = attrs[n_start + k]
        specs.append(ObjectSpec(shape, color, material, (float(start[0]), float(start[1])),
                                _aim(rng, start, target, speed, 0.1), float(rng.uniform(0, 2 * math.pi)), frame))
    return specs


def sample_scene(rng: np.random.Generator, sim: SimParams, scene: SceneParams) -> tuple[list[ObjectSpec], SimResult]:
    """Draw scenes until one has ``min_collisions`` collisions within the shown frames (or tries run out)."""
    best: tuple[list[ObjectSpec], SimResult] | None = None
    for _ in range(scene.max_tries):
        specs = sample_specs(rng, sim, scene)
        result = simulate(specs, sim)
        seen = sum(1 for c in result.collisions if c[0] < sim.num_frames)
        if seen >= scene.min_collisions:
            return specs, result
        if best is None:
            best = (specs, result)
    assert best is not None
    return best
