"""The event recorder: simulation result -> official CLEVRER annotation dict, and annotation -> events.

Annotation fields are the official ones (reference/dataset-formats.md 1.3): ``object_property``,
``motion_trajectory`` (every object in every shown frame, 3-vectors, ``inside_camera_view``) and
``collision`` (``object_ids``, ``frame_id``, ``location``). What the executor needs beyond the video is
stored under the extra key :data:`EXTRA` (the official readers ignore unknown keys):

* ``future_collision``: collisions after the last shown frame (the unseen events of predictive questions);
* ``counterfactual``: for every object, the collisions of the shown frames when that object is removed;
* ``num_frames``.

Events are NS-DR's dicts ``{"type": "in" | "out" | "collision" | "start" | "end", "object": [ids],
"frame": f}``; an object "enters" when its centre comes into view after being out of view, and "exits"
when it leaves. Objects in view at frame 0 have no ``in`` event.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .physics import HEIGHT, ObjectSpec, SimParams, SimResult

EXTRA = "clevrer_mini"
MOVING_SPEED = 0.05  # units / s; friction stops objects exactly, so any small threshold works


def inside_view(result: SimResult, view_half: float) -> np.ndarray:
    """``[F, N]`` bool: the object exists and its centre is inside the camera view."""
    inside = (np.abs(result.position) <= view_half).all(axis=-1)
    return inside & result.present


def _collisions(items: list[tuple[int, int, int, tuple[float, float]]], lo: int, hi: int,
                location: bool = True) -> list[dict[str, Any]]:
    out = []
    for frame, i, j, loc in items:
        if lo <= frame < hi:
            c: dict[str, Any] = {"object_ids": [i, j], "frame_id": frame}
            if location:
                c["location"] = [round(loc[0], 4), round(loc[1], 4), 0.0]
            out.append(c)
    return out


def build_annotation(index: int, specs: list[ObjectSpec], result: SimResult, params: SimParams,
                     counterfactual: dict[int, SimResult]) -> dict[str, Any]:
    """The annotation JSON of video ``index`` (official fields + :data:`EXTRA`)."""
    t = params.num_frames
    inside = inside_view(result, params.view_half)
    trajectory = []
    for f in range(t):
        objs = []
        for i in range(len(specs)):
            x, y = result.position[f, i]
            vx, vy = result.velocity[f, i]
            objs.append({
                "object_id": i,
                "location": [round(float(x), 4), round(float(y), 4), HEIGHT / 2],
                "orientation": [0.0, 0.0, round(float(result.angle[f, i]), 4)],
                "velocity": [round(float(vx), 4), round(float(vy), 4), 0.0],
                "angular_velocity": [0.0, 0.0, round(float(result.spin[f, i]), 4)],
                "inside_camera_view": bool(inside[f, i]),
            })
        trajectory.append({"frame_id": f, "objects": objs})
    return {
        "scene_index": index,
        "video_filename": f"video_{index:05d}.mp4",
        "object_property": [{"object_id": i, "color": s.color, "material": s.material, "shape": s.shape}
                            for i, s in enumerate(specs)],
        "motion_trajectory": trajectory,
        "collision": _collisions(result.collisions, 0, t),
        EXTRA: {
            "num_frames": t,
            "future_collision": _collisions(result.collisions, t, params.total_frames),
            "counterfactual": [{"removed_object_id": k, "collision": _collisions(r.collisions, 0, t, False)}
                               for k, r in sorted(counterfactual.items())],
        },
    }


# --------------------------------------------------------------------------- annotation -> events


def visibility(annotation: dict[str, Any]) -> np.ndarray:
    """``[T, N]`` bool ``inside_camera_view`` from an annotation."""
    n = len(annotation["object_property"])
    vis = np.zeros((len(annotation["motion_trajectory"]), n), bool)
    for f, frame in enumerate(annotation["motion_trajectory"]):
        for o in frame["objects"]:
            vis[f, o["object_id"]] = bool(o["inside_camera_view"])
    return vis


def moving(annotation: dict[str, Any]) -> np.ndarray:
    """``[T, N]`` bool: the object's planar speed is above :data:`MOVING_SPEED`."""
    n = len(annotation["object_property"])
    mov = np.zeros((len(annotation["motion_trajectory"]), n), bool)
    for f, frame in enumerate(annotation["motion_trajectory"]):
        for o in frame["objects"]:
            mov[f, o["object_id"]] = float(np.hypot(*o["velocity"][:2])) > MOVING_SPEED
    return mov


def in_out_events(annotation: dict[str, Any]) -> list[dict[str, Any]]:
    """``in``/``out`` events from the visibility flags (changes between consecutive frames)."""
    vis = visibility(annotation)
    events = []
    change = vis[1:] != vis[:-1]
    for f, i in zip(*np.nonzero(change)):
        events.append({"type": "in" if vis[f + 1, i] else "out", "object": [int(i)], "frame": int(f + 1)})
    return events


def collision_events(collisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"type": "collision", "object": sorted(int(o) for o in c["object_ids"]), "frame": int(c["frame_id"])}
            for c in collisions]


def video_events(annotation: dict[str, Any]) -> list[dict[str, Any]]:
    """All events of the shown frames, sorted by frame (``start`` first, ``end`` last)."""
    t = len(annotation["motion_trajectory"])
    body = in_out_events(annotation) + collision_events(annotation["collision"])
    body.sort(key=lambda e: (e["frame"], e["type"], e["object"]))
    return [{"type": "start", "object": [], "frame": 0}] + body + [{"type": "end", "object": [], "frame": t - 1}]
