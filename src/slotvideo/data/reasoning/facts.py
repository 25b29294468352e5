"""What happened in a video, computed straight from the annotation, and how to refer to objects.

The question generator takes its answers from these facts, never from the program executor, so the
executor test (every program gives the recorded answer) checks two independent implementations.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from itertools import combinations
from typing import Any

import numpy as np

from .events import EXTRA, moving, visibility

ATTR_ORDER = ("color", "material", "shape")


@dataclass
class Facts:
    props: list[dict[str, str]]
    vis: np.ndarray                      # [T, N] inside_camera_view
    mov: np.ndarray                      # [T, N] moving
    enter: dict[int, list[int]]          # object -> frames of its entrances (into view)
    exit: dict[int, list[int]]           # object -> frames of its exits
    collisions: list[tuple[int, int, int]]          # (frame, i, j) shown
    future: list[tuple[int, int, int]]              # (frame, i, j) after the cut
    cf: dict[int, set[tuple[int, int]]]             # removed object -> pairs that collide without it
    parents: dict[tuple, set[tuple]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.props)

    @property
    def t(self) -> int:
        return self.vis.shape[0]

    def pair_collisions(self, i: int, j: int) -> list[int]:
        a, b = min(i, j), max(i, j)
        return [f for f, x, y in self.collisions if (x, y) == (a, b)]

    def collisions_of(self, o: int) -> list[tuple[int, int]]:
        """(frame, partner) of every shown collision of ``o``, in time order."""
        return sorted((f, j if i == o else i) for f, i, j in self.collisions if o in (i, j))

    def ancestors(self, event: tuple) -> set[tuple]:
        seen: set[tuple] = set()
        todo = [event]
        while todo:
            for p in self.parents.get(todo.pop(), ()):
                if p not in seen:
                    seen.add(p)
                    todo.append(p)
        return seen


def _changes(vis: np.ndarray, to: bool) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for f in range(1, vis.shape[0]):
        for o in np.nonzero((vis[f] == to) & (vis[f - 1] != to))[0]:
            out.setdefault(int(o), []).append(f)
    return out


def facts_from_annotation(annotation: dict[str, Any]) -> Facts:
    extra = annotation[EXTRA]
    vis, mov = visibility(annotation), moving(annotation)
    col = sorted((c["frame_id"], *sorted(c["object_ids"])) for c in annotation["collision"])
    fut = sorted((c["frame_id"], *sorted(c["object_ids"])) for c in extra["future_collision"])
    cf = {c["removed_object_id"]: {tuple(sorted(x["object_ids"])) for x in c["collision"]}
          for c in extra["counterfactual"]}
    facts = Facts(annotation["object_property"], vis, mov, _changes(vis, True), _changes(vis, False),
                  col, fut, cf)
    # Causal parents: the previous entrance/collision of each participant (events keyed as tuples).
    timeline: dict[int, list[tuple[int, tuple]]] = {o: [] for o in range(facts.n)}
    for o, frames in facts.enter.items():
        for f in frames:
            timeline[o].append((f, ("in", o, f)))
    for f, i, j in col:
        for o in (i, j):
            timeline[o].append((f, ("collision", i, j, f)))
    for items in timeline.values():
        items.sort()
        for (_, a), (_, b) in zip(items, items[1:]):
            facts.parents.setdefault(b, set()).add(a)
    return facts


# --------------------------------------------------------------------------- references


def describe(facts: Facts, obj: int, rng: np.random.Generator, exclude: str | None = None
             ) -> tuple[str, list[str]] | None:
    """Shortest description that singles out ``obj`` (text, program ending in ``unique``), or None."""
    usable = [a for a in ATTR_ORDER if a != exclude]
    for size in range(1, len(usable) + 1):
        subsets = [s for s in combinations(usable, size)
                   if sum(all(facts.props[k][a] == facts.props[obj][a] for a in s) for k in range(facts.n)) == 1]
        if subsets:
            chosen = subsets[int(rng.integers(len(subsets)))]
            return filter_phrase(facts.props[obj], chosen)[0], filter_phrase(facts.props[obj], chosen)[1] + ["unique"]
    return None


def filter_phrase(values: dict[str, str], attrs: tuple[str, ...]) -> tuple[str, list[str]]:
    """("red metal sphere", ["objects", "red", "filter_color", ...]) for the attributes ``attrs``."""
    words = [values[a] for a in ATTR_ORDER if a in attrs and a != "shape"]
    words.append(values["shape"] if "shape" in attrs else "object")
    program = ["objects"]
    for a in ATTR_ORDER:
        if a in attrs:
            program += [values[a], f"filter_{a}"]
    return " ".join(words), program
