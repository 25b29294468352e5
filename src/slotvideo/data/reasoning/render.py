"""Renderer for CLEVRER-style scenes: the floor seen from above at a slant, with instance labels.

The camera looks down at the floor tilted by ``tilt`` degrees from vertical, so depth (world y) is
squashed by ``cos(tilt)`` and heights rise by ``sin(tilt)``. Shapes are drawn so they can be told apart
at 64x64: a sphere is a shaded disc, a cylinder an upright tube with a bright elliptic top, a cube a
prism with a bright top face and darker sides. Metal is drawn shiny (strong Lambert contrast plus a white
specular highlight), rubber matte (soft, flat shading). Objects are painted far to near; the label map
records which object is on top at every pixel (0 = floor, k + 1 = object k), which gives the masks.

Simplifications (on purpose): no shadows, no reflections, no anti-aliasing (hard-edged masks equal the
pixels each object colours).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .physics import CUBE_HALF, HEIGHT, RADIUS
from .vocab import rgb

LIGHT = np.array([-0.45, 0.55, 0.70])
LIGHT = LIGHT / np.linalg.norm(LIGHT)
FLOOR = np.array([0.62, 0.62, 0.60], np.float32)


@dataclass(frozen=True)
class Camera:
    """Maps world floor points ``(x, y)`` and heights to pixel coordinates ``(u, v)``."""

    size: int = 64
    view_half: float = 3.5
    tilt: float = 35.0

    @property
    def scale(self) -> float:
        return self.size / (2 * self.view_half)

    def project(self, x: np.ndarray, y: np.ndarray, z: float | np.ndarray = 0.0) -> tuple[np.ndarray, np.ndarray]:
        c, s = math.cos(math.radians(self.tilt)), math.sin(math.radians(self.tilt))
        top = (self.size - 2 * self.view_half * c * self.scale) / 2 + 0.35 * s * self.scale
        u = (np.asarray(x) + self.view_half) * self.scale - 0.5
        v = top + (self.view_half - np.asarray(y)) * c * self.scale - np.asarray(z) * s * self.scale - 0.5
        return u, v


def _hull(points: np.ndarray) -> np.ndarray:
    """Convex hull (counter-clockwise in (u, v)) of a few 2-D points (monotone chain)."""
    pts = sorted(map(tuple, points.tolist()))

    def half(seq: list[tuple[float, float]]) -> list[tuple[float, float]]:
        out: list[tuple[float, float]] = []
        for p in seq:
            while len(out) >= 2 and ((out[-1][0] - out[-2][0]) * (p[1] - out[-2][1])
                                     - (out[-1][1] - out[-2][1]) * (p[0] - out[-2][0])) <= 0:
                out.pop()
            out.append(p)
        return out

    lower, upper = half(pts), half(pts[::-1])
    return np.asarray(lower[:-1] + upper[:-1])


def _inside(poly: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Pixels ``(u, v)`` inside the counter-clockwise convex polygon ``poly``."""
    inside = np.ones(np.broadcast(u, v).shape, bool)
    for (x0, y0), (x1, y1) in zip(poly, np.roll(poly, -1, axis=0)):
        inside &= (x1 - x0) * (v - y0) - (y1 - y0) * (u - x0) >= 0
    return inside


class Renderer:
    """Paints frames ``[H, W, 3]`` (float) and label maps ``[H, W]`` (int) of objects on the floor."""

    def __init__(self, camera: Camera) -> None:
        self.camera = camera
        n = camera.size
        self.v, self.u = np.mgrid[0:n, 0:n].astype(np.float32)
        shade = np.linspace(0.92, 1.05, n, dtype=np.float32)[:, None, None]
        self.floor = np.clip(FLOOR[None, None] * shade, 0, 1) * np.ones((n, n, 3), np.float32)

    def frame(self, shapes: list[str], colors: list[str], materials: list[str], xy: np.ndarray,
              angle: np.ndarray, visible: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        img = self.floor.copy()
        label = np.zeros(img.shape[:2], np.int16)
        order = sorted((i for i in range(len(shapes)) if visible[i]), key=lambda i: -xy[i, 1])
        for i in order:
            self._draw(img, label, i, shapes[i], rgb(colors[i]), materials[i] == "metal", xy[i], float(angle[i]))
        return img, label

    def _box(self, umin: float, umax: float, vmin: float, vmax: float) -> tuple[slice, slice] | None:
        n = self.camera.size
        r0, r1 = max(0, int(math.floor(vmin))), min(n, int(math.ceil(vmax)) + 1)
        c0, c1 = max(0, int(math.floor(umin))), min(n, int(math.ceil(umax)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)

    def _draw(self, img: np.ndarray, label: np.ndarray, k: int, shape: str, color: np.ndarray, metal: bool,
              xy: np.ndarray, angle: float) -> None:
        cam = self.camera
        s = cam.scale
        c, sn = math.cos(math.radians(cam.tilt)), math.sin(math.radians(cam.tilt))
        u0, v0 = cam.project(xy[0], xy[1], 0.0)
        if shape == "sphere":
            uc, vc = cam.project(xy[0], xy[1], RADIUS)
            r = RADIUS * s
            box = self._box(uc - r, uc + r, vc - r, vc + r)
            if box is None:
                return
            du, dv = (self.u[box] - uc) / r, (self.v[box] - vc) / r
            d2 = du * du + dv * dv
            mask = d2 <= 1.0
            nz = np.sqrt(np.clip(1 - d2, 0, 1))
            normal = np.stack([du, -dv, nz], -1)
            col = self._shade(color, normal @ LIGHT, normal, metal)
        elif shape == "cylinder":
            rx, ry, h = RADIUS * s, RADIUS * s * c, HEIGHT * sn * s
            box = self._box(u0 - rx, u0 + rx, v0 - h - ry, v0 + ry)
            if box is None:
                return
            du, dv = (self.u[box] - u0) / rx, (self.v[box] - v0)
            top = du * du + ((dv + h) / ry) ** 2 <= 1.0
            body = (du * du + (dv / ry) ** 2 <= 1.0) | ((np.abs(du) <= 1.0) & (dv <= 0) & (dv >= -h))
            mask = top | body
            nx = np.clip(du, -1, 1)
            side = np.stack([nx, -np.sqrt(np.clip(1 - nx * nx, 0, 1)) * 0.6, np.zeros_like(nx) + 0.3], -1)
            normal = np.where(top[..., None], np.array([0.0, 0.0, 1.0]), side)
            col = self._shade(color, normal @ LIGHT, normal, metal)
        else:
            ca, sa = math.cos(angle), math.sin(angle)
            corners = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], float) * CUBE_HALF
            world = corners @ np.array([[ca, sa], [-sa, ca]]) + xy
            gu, gv = cam.project(world[:, 0], world[:, 1], 0.0)
            tu, tv = cam.project(world[:, 0], world[:, 1], 2 * CUBE_HALF)
            hull = _hull(np.concatenate([np.stack([gu, gv], 1), np.stack([tu, tv], 1)]))
            box = self._box(hull[:, 0].min(), hull[:, 0].max(), hull[:, 1].min(), hull[:, 1].max())
            if box is None:
                return
            uu, vv = self.u[box], self.v[box]
            mask = _inside(hull, uu, vv)
            top = _inside(_hull(np.stack([tu, tv], 1)), uu, vv)
            # Side faces: lit according to which side of the cube's centre the pixel is on.
            side_dir = np.stack([np.clip((uu - u0) / (CUBE_HALF * s), -1, 1), np.full_like(uu, -0.7),
                                 np.full_like(uu, 0.2)], -1)
            normal = np.where(top[..., None], np.array([0.0, 0.0, 1.0]), side_dir)
            normal = normal / np.linalg.norm(normal, axis=-1, keepdims=True)
            col = self._shade(color, normal @ LIGHT, normal, metal)
        region = img[box]
        region[mask] = col[mask]
        label[box][mask] = k + 1

    @staticmethod
    def _shade(color: np.ndarray, lambert: np.ndarray, normal: np.ndarray, metal: bool) -> np.ndarray:
        lam = np.clip(lambert, 0, 1)[..., None]
        if not metal:
            return np.clip(color * (0.62 + 0.38 * lam), 0, 1)
        half = LIGHT + np.array([0.0, 0.0, 1.0])
        half = half / np.linalg.norm(half)
        spec = np.clip(normal @ half, 0, 1)[..., None] ** 10
        return np.clip(color * (0.3 + 0.8 * lam) + 0.75 * spec, 0, 1)


def render_video(renderer: Renderer, shapes: list[str], colors: list[str], materials: list[str],
                 position: np.ndarray, angle: np.ndarray, present: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames ``[T, H, W, 3]`` and int16 labels ``[T, H, W]`` of ``position`` ``[T, N, 2]``."""
    frames, labels = [], []
    for t in range(position.shape[0]):
        img, lab = renderer.frame(shapes, colors, materials, position[t], angle[t], present[t])
        frames.append(img)
        labels.append(lab)
    return (np.stack(frames) * 255 + 0.5).astype(np.uint8), np.stack(labels)
