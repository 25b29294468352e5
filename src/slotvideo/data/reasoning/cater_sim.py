"""CATER-style scenes and their action schedule: slide, pick-place, rotate and contain on a 6x6-unit plane.

As in CATER's ``actions.py`` (reference/dataset-formats.md 2.1-2.2): object 0 is the golden snitch
(``spl``, small, metal), objects 1 and 2 are a medium and a large cone, the rest are random CLEVR shapes.
Time is cut into segments; in each segment a contain (a cone is picked up and put over a smaller cone,
sphere or the snitch, which then moves with it) may happen, and then every other top-level object
(``all_actions``) or at most two (``max2action``) gets one action. A cone that holds something can only
slide (its contents slide along and are recorded as ``_slide``) or be picked up and placed elsewhere, which
releases what it held (recorded as ``_no_op`` for the contents, as CATER does). Cones cannot rotate.

Simplifications (on purpose): motion is kinematic (no physics); overlaps are only avoided at the end of
each action (paths may cross); pick-place lifts along a parabola of height :data:`PICK_HEIGHT`.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .vocab import CATER_SIZES, COLORS, MATERIALS, SNITCH_SIZE

PICK_HEIGHT = 1.5
PLANE = 2.7  # targets stay inside [-PLANE, PLANE]^2, so every position lies in a grid cell
MIN_GAP = 0.15


@dataclass
class CaterObject:
    shape: str
    size: str
    sized: float
    material: str
    color: str
    instance: str


@dataclass
class CaterScene:
    objects: list[CaterObject]
    position: np.ndarray                 # [T, N, 3] base position (z > 0 while lifted)
    rotation: np.ndarray                 # [T, N] degrees
    container: np.ndarray                # [T, N] index of the cone directly holding the object, -1 if none
    movements: dict[str, list[list]] = field(default_factory=dict)

    def hidden(self) -> np.ndarray:
        """``[T, N]``: the object is under a cone (directly or inside a cone that is itself covered)."""
        return self.container >= 0


def _sample_objects(rng: np.random.Generator, n: int) -> list[CaterObject]:
    sizes = list(CATER_SIZES)
    objs = [CaterObject("spl", "small", SNITCH_SIZE, "metal", "gold", "Spl_0"),
            CaterObject("cone", "medium", CATER_SIZES["medium"], MATERIALS[rng.integers(2)], COLORS[rng.integers(8)], "Cone_0"),
            CaterObject("cone", "large", CATER_SIZES["large"], MATERIALS[rng.integers(2)], COLORS[rng.integers(8)], "Cone_1")]
    counts = {"cone": 2}
    for _ in range(n - 3):
        shape = ("cube", "cylinder", "sphere", "cone")[rng.integers(4)]
        size = sizes[rng.integers(3)]
        k = counts.get(shape, 0)
        counts[shape] = k + 1
        objs.append(CaterObject(shape, size, CATER_SIZES[size], MATERIALS[rng.integers(2)], COLORS[rng.integers(8)],
                                f"{shape.capitalize()}_{k}"))
    return objs


def _free(xy: np.ndarray, r: float, others: list[tuple[np.ndarray, float]]) -> bool:
    return all(np.hypot(*(xy - o)) > r + ro + MIN_GAP for o, ro in others)


class _Schedule:
    """Mutable state while actions are added: per-frame positions and who holds whom."""

    def __init__(self, objs: list[CaterObject], start: np.ndarray, t: int, rng: np.random.Generator) -> None:
        n = len(objs)
        self.objs, self.t, self.rng = objs, t, rng
        self.pos = np.repeat(np.concatenate([start, np.zeros((n, 1))], 1)[None], t, 0)
        self.rot = np.repeat(rng.uniform(0, 360, n)[None], t, 0)
        self.holder = np.full((t, n), -1, np.int64)
        self.moves: dict[str, list[list]] = {o.instance: [] for o in objs}

    def contents(self, k: int, frame: int) -> list[int]:
        """Objects held by ``k`` at ``frame``, recursively (a cone inside a cone carries its contents)."""
        inside = [j for j in range(len(self.objs)) if self.holder[frame, j] == k]
        return inside + [x for j in inside for x in self.contents(j, frame)]

    def tops(self, frame: int) -> list[int]:
        return [k for k in range(len(self.objs)) if self.holder[frame, k] < 0]

    def others(self, frame: int, exclude: set[int]) -> list[tuple[np.ndarray, float]]:
        return [(self.pos[frame, k, :2], self.objs[k].sized) for k in self.tops(frame) if k not in exclude]

    def target(self, k: int, frame: int, exclude: set[int]) -> np.ndarray | None:
        for _ in range(30):
            xy = self.rng.uniform(-PLANE, PLANE, 2)
            if _free(xy, self.objs[k].sized, self.others(frame, exclude | {k})):
                return xy
        return None

    def move(self, k: int, s: int, e: int, xy: np.ndarray, lift: bool) -> None:
        """Move ``k`` (and, for a slide, what it holds) from its position at ``s`` to ``xy`` by ``e``."""
        group = [k] + ([] if lift else self.contents(k, s))
        start = self.pos[s, k, :2].copy()
        for f in range(s, self.t):
            a = min(1.0, (f - s) / max(1, e - s))
            for j in group:
                offset = self.pos[s, j, :2] - start
                self.pos[f, j, :2] = start + a * (xy - start) + offset
            self.pos[f, k, 2] = 4 * PICK_HEIGHT * a * (1 - a) if lift else 0.0

    def release(self, k: int, frame: int) -> None:
        for j in range(len(self.objs)):
            if self.holder[frame, j] == k:
                self.holder[frame:, j] = -1


def _schedule(objs: list[CaterObject], start: np.ndarray, t: int, rng: np.random.Generator, max_motions: int,
              durations: tuple[int, int], contain_prob: float) -> _Schedule:
    sch = _Schedule(objs, start, t, rng)
    cur = 0
    while cur <= t - durations[1] - 1:
        busy: set[int] = set()
        last = cur
        motions = 0
        if rng.random() < contain_prob:
            cones = [k for k in sch.tops(cur) if objs[k].shape == "cone" and not sch.contents(k, cur)]
            rng.shuffle(cones)
            for c in cones:
                prey = [k for k in sch.tops(cur) if k != c and objs[k].shape in ("cone", "sphere", "spl")
                        and objs[k].sized < objs[c].sized]
                if not prey:
                    continue
                # Favour the snitch, the object the localization task is about.
                snitch = [k for k in prey if objs[k].shape == "spl"]
                p = snitch[0] if snitch and rng.random() < 0.6 else prey[int(rng.integers(len(prey)))]
                s = cur + int(rng.integers(0, 3))
                e = min(s + int(rng.integers(*durations)), t - 1)
                xy = sch.pos[s, p, :2].copy()
                if not _free(xy, objs[c].sized, sch.others(e, {c, p})):
                    continue
                sch.move(c, s, e, xy, lift=True)
                sch.holder[e:, p] = c
                sch.moves[objs[c].instance].append(["_contain", objs[p].instance, s, e])
                busy |= {c, p}
                last = max(last, e)
                motions += 1
                break
        order = [k for k in rng.permutation(len(objs)).tolist() if k in sch.tops(cur) and k not in busy]
        for k in order:
            if motions >= max_motions:
                break
            s = cur + int(rng.integers(0, 3))
            e = min(s + int(rng.integers(*durations)), t - 1)
            held = sch.contents(k, s)
            options = ["_slide", "_pick_place"] + ([] if objs[k].shape in ("cone", "sphere") or held else ["_rotate"])
            action = options[int(rng.integers(len(options)))]
            if action == "_rotate":
                delta = float(rng.choice([-1, 1]) * rng.uniform(90, 270))
                for f in range(s, t):
                    sch.rot[f, k] = sch.rot[s, k] + delta * min(1.0, (f - s) / max(1, e - s))
                sch.moves[objs[k].instance].append(["_rotate", None, s, e])
            else:
                xy = sch.target(k, e, busy | set(held))
                if xy is None:
                    continue
                sch.move(k, s, e, xy, lift=action == "_pick_place")
                sch.moves[objs[k].instance].append([action, None, s, e])
                if action == "_slide":
                    for j in held:
                        sch.moves[objs[j].instance].append(["_slide", None, s, e])
                else:
                    for j in held:
                        sch.moves[objs[j].instance].append(["_no_op", None, s, e])
                    sch.release(k, s)
            busy.add(k)
            busy |= set(held)
            last = max(last, e)
            motions += 1
        cur = last + 1
    return sch


def sample_cater_scene(rng: np.random.Generator, num_frames: int, min_objects: int = 5, max_objects: int = 8,
                       max_motions: int = 99, durations: tuple[int, int] = (5, 9), contain_prob: float = 0.6
                       ) -> CaterScene:
    """One scene: objects placed without overlap on the plane, then the action schedule."""
    n = int(rng.integers(min_objects, max_objects + 1))
    objs = _sample_objects(rng, n)
    start: list[np.ndarray] = []
    for o in objs:
        for _ in range(200):
            xy = rng.uniform(-PLANE, PLANE, 2)
            if _free(xy, o.sized, [(p, objs[i].sized) for i, p in enumerate(start)]):
                break
        start.append(xy)
    sch = _schedule(objs, np.stack(start), num_frames, rng, max_motions, durations, contain_prob)
    return CaterScene(objs, sch.pos, sch.rot, sch.holder, sch.moves)


def snitch_hidden_end(scene: CaterScene) -> bool:
    return bool(scene.container[-1, 0] >= 0)


__all__ = ["CaterObject", "CaterScene", "PICK_HEIGHT", "sample_cater_scene", "snitch_hidden_end"]
