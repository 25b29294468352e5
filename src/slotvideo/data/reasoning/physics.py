"""2-D rigid-body simulation of a CLEVRER-style scene with pymunk (the floor seen from above).

Objects slide on a floor without walls: they may leave the camera view, and objects that "enter the
scene" are added just outside the view at their entry frame, moving inward. Floor friction is a constant
deceleration applied once per frame (so an object that stops is exactly still, which makes CLEVRER's
moving/stationary filters crisp), and objects bounce off each other with material-dependent mass and
elasticity (metal is heavier and bouncier than rubber).

Simplification (on purpose): the scene is 2-D; heights are only used by the renderer. Collisions are
logged on pymunk's ``begin`` callback, at the frame in which the contact starts; a second contact of the
same pair within :data:`REPEAT_FRAMES` frames counts as the same collision.

Everything is a pure function of the :class:`ObjectSpec` list, so re-running without one object (the
counterfactual) is just :func:`simulate` with ``removed`` set.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pymunk

REPEAT_FRAMES = 3
RADIUS = 0.5        # sphere/cylinder radius; the cube's side is 2 * CUBE_HALF
CUBE_HALF = 0.45
HEIGHT = 1.0        # object height (used by the renderer and as 2 * z of the annotation location)
MASS = {"metal": 2.0, "rubber": 1.0}
ELASTICITY = {"metal": 0.9, "rubber": 0.7}


@dataclass(frozen=True)
class ObjectSpec:
    """One object: attributes, state when it appears, and the frame it appears at (0 = present at start)."""

    shape: str
    color: str
    material: str
    position: tuple[float, float]
    velocity: tuple[float, float]
    angle: float = 0.0
    enter_frame: int = 0


@dataclass(frozen=True)
class SimParams:
    """Physical and temporal settings; ``num_frames`` are shown, ``future_frames`` more are simulated unseen."""

    num_frames: int = 32
    future_frames: int = 16
    frame_dt: float = 0.125
    substeps: int = 4
    friction_decel: float = 0.6       # units / s^2 of floor friction
    spin_decel: float = 1.5           # rad / s^2
    view_half: float = 3.5            # the camera sees [-view_half, view_half]^2

    @property
    def total_frames(self) -> int:
        return self.num_frames + self.future_frames


@dataclass
class SimResult:
    """Per-frame state ``[F, N, ...]`` for all objects (removed/unspawned objects keep their spawn state)."""

    position: np.ndarray      # [F, N, 2]
    angle: np.ndarray         # [F, N]
    velocity: np.ndarray      # [F, N, 2]
    spin: np.ndarray          # [F, N]
    present: np.ndarray       # [F, N] bool: the object exists in the world at this frame
    collisions: list[tuple[int, int, int, tuple[float, float]]]  # (frame, i, j, location), i < j


def _make_shape(spec: ObjectSpec, body: pymunk.Body) -> pymunk.Shape:
    if spec.shape == "cube":
        shape: pymunk.Shape = pymunk.Poly.create_box(body, (2 * CUBE_HALF, 2 * CUBE_HALF))
    else:
        shape = pymunk.Circle(body, RADIUS)
    shape.elasticity = ELASTICITY[spec.material]
    shape.friction = 0.3
    return shape


def _make_body(spec: ObjectSpec) -> pymunk.Body:
    mass = MASS[spec.material]
    if spec.shape == "cube":
        moment = pymunk.moment_for_box(mass, (2 * CUBE_HALF, 2 * CUBE_HALF))
    else:
        moment = pymunk.moment_for_circle(mass, 0, RADIUS)
    body = pymunk.Body(mass, moment)
    body.position = spec.position
    body.velocity = spec.velocity
    body.angle = spec.angle
    return body


def _slow_down(value: float, decel: float) -> float:
    return math.copysign(max(0.0, abs(value) - decel), value)


def simulate(specs: list[ObjectSpec], params: SimParams, removed: int | None = None,
             frames: int | None = None) -> SimResult:
    """Run the scene for ``frames`` frames (default ``params.total_frames``), without object ``removed``."""
    frames = params.total_frames if frames is None else frames
    n = len(specs)
    space = pymunk.Space()
    space.iterations = 20
    bodies: dict[int, pymunk.Body] = {}
    contacts: dict[tuple[int, int], int] = {}
    collisions: list[tuple[int, int, int, tuple[float, float]]] = []
    frame_now = [0]

    def begin(arbiter: pymunk.Arbiter, _space: pymunk.Space, _data: object) -> None:
        a, b = (s.collision_type for s in arbiter.shapes)
        pair = (min(a, b), max(a, b))
        last = contacts.get(pair)
        contacts[pair] = frame_now[0]
        if last is not None and frame_now[0] - last <= REPEAT_FRAMES:
            return
        point = arbiter.contact_point_set.points
        loc = point[0].point_a if point else bodies[a].position
        collisions.append((frame_now[0], pair[0], pair[1], (float(loc[0]), float(loc[1]))))

    space.on_collision(begin=begin)

    position = np.zeros((frames, n, 2), np.float64)
    angle = np.zeros((frames, n), np.float64)
    velocity = np.zeros((frames, n, 2), np.float64)
    spin = np.zeros((frames, n), np.float64)
    present = np.zeros((frames, n), bool)
    for i, s in enumerate(specs):
        position[:, i] = s.position
        angle[:, i] = s.angle
    dt = params.frame_dt / params.substeps
    for f in range(frames):
        frame_now[0] = f
        for i, s in enumerate(specs):
            if i != removed and s.enter_frame == f and i not in bodies:
                body = _make_body(s)
                shape = _make_shape(s, body)
                shape.collision_type = i
                space.add(body, shape)
                bodies[i] = body
        if f > 0:
            for _ in range(params.substeps):
                space.step(dt)
            for body in bodies.values():
                vx, vy = body.velocity
                speed = math.hypot(vx, vy)
                if speed > 0:
                    scale = max(0.0, speed - params.friction_decel * params.frame_dt) / speed
                    body.velocity = (vx * scale, vy * scale)
                body.angular_velocity = _slow_down(body.angular_velocity, params.spin_decel * params.frame_dt)
        for i, body in bodies.items():
            position[f, i] = body.position
            angle[f:, i] = body.angle
            velocity[f, i] = body.velocity
            spin[f, i] = body.angular_velocity
            present[f, i] = True
        # Unspawned objects wait at their spawn point; after the last update a body keeps its last state.
    collisions.sort()
    return SimResult(position, angle, velocity, spin, present, collisions)
