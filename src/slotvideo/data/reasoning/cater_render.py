"""Renderer for CATER-style scenes: a pinhole camera over the plane, static or moving, with instance labels.

Every object is a convex solid given by a few 3-D points (box corners, two circles for a cylinder, a
circle and an apex for a cone); its image is the convex hull of their projections, with the top face
drawn brighter and a lit/unlit split on the sides. Spheres and the snitch are shaded discs (the snitch
small, gold and shiny with a dark band). Objects are painted far to near; a contained object is not drawn
(it is under its cone), so its mask is empty, as it is invisible in the real videos.

The moving camera orbits the scene: every ``shift_every`` frames it picks a new azimuth and height and
moves there linearly (CATER moves its camera every 30 of 300 frames). Simplifications (on purpose): no
shadows, flat floor colour, no anti-aliasing.
"""
from __future__ import annotations

import math

import numpy as np

from .cater_sim import CaterScene
from .render import _hull, _inside
from .vocab import rgb

FLOOR = np.array([0.55, 0.55, 0.53], np.float32)
BASE_CAMERA = (7.0, -45.0, 6.5)  # distance, azimuth (degrees), height


def camera_path(num_frames: int, moving: bool, rng: np.random.Generator, shift_every: int = 8) -> np.ndarray:
    """Camera positions ``[T, 3]``: fixed, or moving between random orbit keyframes."""
    dist, az0, h0 = BASE_CAMERA
    keys = [(0, az0, h0)]
    if moving:
        for f in range(shift_every, num_frames + shift_every, shift_every):
            keys.append((min(f, num_frames - 1), az0 + float(rng.uniform(-70, 70)), float(rng.uniform(5.5, 9.0))))
    out = np.zeros((num_frames, 3))
    for f in range(num_frames):
        k = max(i for i, key in enumerate(keys) if key[0] <= f)
        f0, a0, z0 = keys[k]
        f1, a1, z1 = keys[min(k + 1, len(keys) - 1)]
        w = 0.0 if f1 == f0 else (f - f0) / (f1 - f0)
        az, z = math.radians(a0 + w * (a1 - a0)), z0 + w * (z1 - z0)
        out[f] = (dist * math.cos(az), dist * math.sin(az), z)
    return out


class PinholeCamera:
    """Looks from ``eye`` at the plane's centre; ``project`` maps world points ``[..., 3]`` to (u, v, depth)."""

    def __init__(self, eye: np.ndarray, size: int, fov: float = 38.0) -> None:
        forward = -eye / np.linalg.norm(eye)
        right = np.cross(forward, [0.0, 0.0, 1.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        self.eye, self.rot = eye, np.stack([right, up, forward])
        self.focal = size / 2 / math.tan(math.radians(fov / 2))
        self.size = size

    def project(self, p: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        c = (p - self.eye) @ self.rot.T
        depth = np.maximum(c[..., 2], 1e-3)
        u = self.size / 2 + self.focal * c[..., 0] / depth - 0.5
        v = self.size / 2 - self.focal * c[..., 1] / depth - 0.5
        return u, v, depth


def _circle(center: np.ndarray, r: float, z: float, n: int = 12) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([center[0] + r * np.cos(a), center[1] + r * np.sin(a), np.full(n, z)], 1)


def _solid(shape: str, base: np.ndarray, r: float, rot: float) -> tuple[np.ndarray, np.ndarray | None]:
    """(all points, top-face points or None) of a solid standing at ``base`` with footprint radius ``r``."""
    if shape == "cube":
        h = r * math.sqrt(2)  # CATER shrinks cubes by sqrt(2) so the footprint radius matches
        a = math.radians(rot) + np.arange(4) * np.pi / 2 + np.pi / 4
        ring = np.stack([base[0] + r * np.cos(a), base[1] + r * np.sin(a)], 1)
        bottom = np.concatenate([ring, np.full((4, 1), base[2])], 1)
        top = np.concatenate([ring, np.full((4, 1), base[2] + h)], 1)
        return np.concatenate([bottom, top]), top
    if shape == "cylinder":
        top = _circle(base, r, base[2] + 1.6 * r)
        return np.concatenate([_circle(base, r, base[2]), top]), top
    apex = np.array([[base[0], base[1], base[2] + 2.0 * r]])  # cone
    return np.concatenate([_circle(base, r, base[2], 16), apex]), None


class CaterRenderer:
    def __init__(self, size: int) -> None:
        self.size = size
        self.v, self.u = np.mgrid[0:size, 0:size].astype(np.float32)
        shade = np.linspace(0.85, 1.05, size, dtype=np.float32)[:, None, None]
        self.floor = np.clip(FLOOR[None, None] * shade, 0, 1) * np.ones((size, size, 3), np.float32)

    def frame(self, scene: CaterScene, t: int, eye: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        cam = PinholeCamera(eye, self.size)
        img = self.floor.copy()
        label = np.zeros((self.size, self.size), np.int16)
        hidden = scene.hidden()[t]
        centers = scene.position[t].copy()
        _, _, depth = cam.project(centers)
        for k in np.argsort(-depth):
            if hidden[k]:
                continue
            self._draw(img, label, int(k), scene, t, cam)
        return img, label

    def _draw(self, img: np.ndarray, label: np.ndarray, k: int, scene: CaterScene, t: int,
              cam: PinholeCamera) -> None:
        obj = scene.objects[k]
        base = scene.position[t, k]
        color = rgb(obj.color)
        metal = obj.material == "metal"
        if obj.shape in ("sphere", "spl"):
            center = base + np.array([0, 0, obj.sized])
            u, v, d = cam.project(center)
            r = cam.focal * obj.sized / d
            box = self._box(u - r, u + r, v - r, v + r)
            if box is None:
                return
            du, dv = (self.u[box] - u) / r, (self.v[box] - v) / r
            d2 = du * du + dv * dv
            mask = d2 <= 1
            lam = np.clip(-0.45 * du - 0.55 * dv + 0.7 * np.sqrt(np.clip(1 - d2, 0, 1)), 0, 1)[..., None]
            col = color * (0.35 + 0.75 * lam) if metal else color * (0.6 + 0.4 * lam)
            if metal:
                col = col + 0.8 * np.clip(1 - ((du + 0.35) ** 2 + (dv + 0.35) ** 2) * 6, 0, 1)[..., None]
            if obj.shape == "spl":
                col = np.where((np.abs(dv) < 0.18)[..., None], col * 0.45, col)
        else:
            points, top = _solid(obj.shape, base, obj.sized, float(scene.rotation[t, k]))
            u, v, _ = cam.project(points)
            hull = _hull(np.stack([u, v], 1))
            box = self._box(hull[:, 0].min(), hull[:, 0].max(), hull[:, 1].min(), hull[:, 1].max())
            if box is None:
                return
            uu, vv = self.u[box], self.v[box]
            mask = _inside(hull, uu, vv)
            cu, _, _ = cam.project(base)
            lam = np.clip(0.55 - 0.4 * (uu - cu) / max(1.0, float(np.ptp(hull[:, 0]))), 0, 1)[..., None]
            col = color * (0.45 + 0.6 * lam) if metal else color * (0.55 + 0.35 * lam)
            if top is not None:
                tu, tv, _ = cam.project(top)
                on_top = _inside(_hull(np.stack([tu, tv], 1)), uu, vv)[..., None]
                col = np.where(on_top, color * (1.15 if metal else 1.0) + (0.15 if metal else 0.0), col)
        col = np.clip(col, 0, 1)
        img[box][mask] = col[mask]
        label[box][mask] = k + 1

    def _box(self, umin: float, umax: float, vmin: float, vmax: float) -> tuple[slice, slice] | None:
        n = self.size
        r0, r1 = max(0, int(math.floor(vmin))), min(n, int(math.ceil(vmax)) + 1)
        c0, c1 = max(0, int(math.floor(umin))), min(n, int(math.ceil(umax)) + 1)
        if r0 >= r1 or c0 >= c1:
            return None
        return slice(r0, r1), slice(c0, c1)


def render_cater(scene: CaterScene, size: int, eyes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """uint8 frames ``[T, H, W, 3]`` and int16 labels ``[T, H, W]`` (0 floor, k + 1 object k)."""
    r = CaterRenderer(size)
    frames, labels = zip(*(r.frame(scene, t, eyes[t]) for t in range(scene.position.shape[0])))
    return (np.stack(frames) * 255 + 0.5).astype(np.uint8), np.stack(labels)
