"""Symbolic executor of CLEVRER programs on an annotation (ground-truth scene), in postfix order.

A program is a list of tokens; a token that names a module pops its arguments (the first pushed is the
first argument) and pushes its result, any other token (``"red"``, ``"first"``, ``"null"``) is pushed as
a literal. A multiple-choice option is run as ``choice["program"] + question["program"]`` (the official
convention), so the choice's value is the first argument of the question's final ``belong_to``.

Module semantics follow NS-DR's executor (chuangg/CLEVRER ``executor/executor.py``) with the module names
of the official question files: ``start``/``end`` push the start/end event, ``get_frame``, ``get_object``,
``get_col_partner`` and ``get_counterfact`` are the official names of NS-DR's ``query_frame``,
``query_object``, ``query_collision_partner`` and ``filter_counterfact``. Two choices of ours:

* the causal graph of ``filter_ancestor`` links each object's ``in`` and ``collision`` events in time order
  (NS-DR also links ``out`` events; an exit cannot cause anything that follows, so we leave it out);
* ``filter_moving``/``filter_stationary`` with frame ``"null"`` mean "at some frame while in view" /
  "never moving while in view".

Any type error or failed ``unique`` raises :class:`ProgramError` (NS-DR returns the string ``'error'``),
so a broken program never passes as a wrong answer.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ...errors import DataError
from .events import EXTRA, collision_events, moving, video_events, visibility
from .vocab import COLORS, MATERIALS, SHAPES

Event = dict[str, Any]


class ProgramError(DataError):
    """A program does not type-check or its ``unique`` finds zero or several items."""


def _objects(x: Any, name: str) -> list[int]:
    if isinstance(x, int) and not isinstance(x, bool):
        return [x]
    if isinstance(x, list) and all(isinstance(o, int) for o in x):
        return x
    raise ProgramError(f"{name} expects objects, got {x!r}")


def _events(x: Any, name: str) -> list[Event]:
    if isinstance(x, list) and all(isinstance(e, dict) for e in x):
        return x
    raise ProgramError(f"{name} expects a list of events, got {x!r}")


def _event(x: Any, name: str) -> Event:
    if isinstance(x, dict):
        return x
    raise ProgramError(f"{name} expects an event, got {x!r}")


class Executor:
    """Runs programs on one annotation (official fields + the ``clevrer_mini`` extras)."""

    def __init__(self, annotation: dict[str, Any]) -> None:
        self.props = annotation["object_property"]
        self.n = len(self.props)
        self.vis = visibility(annotation)
        self.mov = moving(annotation)
        self.events_ = video_events(annotation)
        self.collisions = [tuple(c["object_ids"]) for c in annotation.get("collision", [])]
        extra = annotation.get(EXTRA, {})
        self.unseen = collision_events(extra.get("future_collision", []))
        self.cf = {c["removed_object_id"]: collision_events(c["collision"]) for c in extra.get("counterfactual", [])}
        self.traces: list[list[Event]] = [[] for _ in range(self.n)]
        for e in self.events_:
            if e["type"] in ("in", "collision"):
                for o in e["object"]:
                    self.traces[o].append(e)
        self.modules: dict[str, tuple[int, Callable[..., Any]]] = {
            "objects": (0, lambda: list(range(self.n))),
            "events": (0, lambda: list(self.events_)),
            "all_events": (0, self.all_events),
            "unseen_events": (0, lambda: list(self.unseen)),
            "start": (0, lambda: self.events_[0]),
            "end": (0, lambda: self.events_[-1]),
            "unique": (1, self.unique),
            "count": (1, lambda x: str(len(self._list(x, "count")))),
            "exist": (1, lambda x: "yes" if self._list(x, "exist") else "no"),
            "negate": (1, self.negate),
            "belong_to": (2, self.belong_to),
            "filter_color": (2, lambda o, v: self._filter_attr(o, v, "color", COLORS)),
            "filter_material": (2, lambda o, v: self._filter_attr(o, v, "material", MATERIALS)),
            "filter_shape": (2, lambda o, v: self._filter_attr(o, v, "shape", SHAPES)),
            "filter_moving": (2, lambda o, f: self._filter_motion(o, f, True)),
            "filter_stationary": (2, lambda o, f: self._filter_motion(o, f, False)),
            "filter_in": (2, lambda e, o: self._filter_type(e, o, "in")),
            "filter_out": (2, lambda e, o: self._filter_type(e, o, "out")),
            "filter_collision": (2, lambda e, o: self._filter_type(e, o, "collision")),
            "filter_order": (2, self.filter_order),
            "filter_before": (2, lambda es, e: [x for x in _events(es, "filter_before")
                                                 if x["frame"] < _event(e, "filter_before")["frame"]]),
            "filter_after": (2, lambda es, e: [x for x in _events(es, "filter_after")
                                                if x["frame"] > _event(e, "filter_after")["frame"]]),
            "filter_ancestor": (2, self.filter_ancestor),
            "get_frame": (1, lambda e: int(_event(e, "get_frame")["frame"])),
            "get_object": (1, self.get_object),
            "get_col_partner": (2, self.get_col_partner),
            "get_counterfact": (2, self.get_counterfact),
            "query_color": (1, lambda o: self._query(o, "color")),
            "query_material": (1, lambda o: self._query(o, "material")),
            "query_shape": (1, lambda o: self._query(o, "shape")),
        }

    # ---------------------------------------------------------------- driver

    def run(self, program: list[str]) -> Any:
        """The value on top of the stack after running ``program`` (answers are strings)."""
        stack = self._execute(program)
        if len(stack) != 1:
            raise ProgramError(f"program leaves {len(stack)} values on the stack: {program}")
        return stack[0]

    def removed_object(self, program: list[str]) -> int:
        """The object a counterfactual question removes: the object argument of its ``get_counterfact``."""
        if "get_counterfact" not in program:
            raise ProgramError(f"not a counterfactual program (no get_counterfact): {program}")
        stack = self._execute(list(program[:program.index("get_counterfact")]))
        if len(stack) < 2:
            raise ProgramError(f"get_counterfact needs 2 arguments, the stack holds {len(stack)}")
        obj = stack[-1]
        if not isinstance(obj, int) or isinstance(obj, bool) or not 0 <= obj < self.n:
            raise ProgramError(f"get_counterfact expects an object, got {obj!r}")
        return obj

    def hard_counterfactual(self, program: list[str]) -> bool:
        """Aloe appendix B's hard subset: the counterfactual question removes an object that collides with
        another object in the (observed) video, so it cannot be answered by reading off the collisions."""
        obj = self.removed_object(program)
        return any(obj in ids for ids in self.collisions)

    def _execute(self, program: list[str]) -> list[Any]:
        stack: list[Any] = []
        for token in program:
            if token not in self.modules:
                stack.append(token)
                continue
            nargs, fn = self.modules[token]
            if len(stack) < nargs:
                raise ProgramError(f"module {token!r} needs {nargs} arguments, the stack holds {len(stack)}")
            args = stack[len(stack) - nargs:]
            del stack[len(stack) - nargs:]
            stack.append(fn(*args))
        return stack

    def answer(self, question: dict[str, Any]) -> str | list[str]:
        """The answer of a question dict: a word (descriptive) or ``"correct"/"wrong"`` per choice."""
        if "choices" not in question:
            return str(self.run(question["program"]))
        out = []
        for c in question["choices"]:
            value = self.run(c["program"] + question["program"])
            out.append("correct" if value == "yes" else "wrong")
        return out

    # ---------------------------------------------------------------- modules

    @staticmethod
    def _list(x: Any, name: str) -> list[Any]:
        if not isinstance(x, list):
            raise ProgramError(f"{name} expects a list, got {x!r}")
        return x

    def unique(self, x: Any) -> Any:
        items = self._list(x, "unique")
        if len(items) != 1:
            raise ProgramError(f"unique found {len(items)} items")
        return items[0]

    @staticmethod
    def negate(x: Any) -> str:
        if x not in ("yes", "no"):
            raise ProgramError(f"negate expects yes/no, got {x!r}")
        return "no" if x == "yes" else "yes"

    def all_events(self) -> list[Event]:
        return [{"type": "collision", "object": [i, j]} for i in range(self.n) for j in range(i + 1, self.n)]

    def belong_to(self, entry: Any, events: Any) -> str:
        events = _events(events, "belong_to")
        if isinstance(entry, dict):
            hit = any(e["type"] == entry["type"] and set(e["object"]) == set(entry["object"]) for e in events)
        elif isinstance(entry, int):
            hit = any(entry in e["object"] for e in events if e["type"] not in ("start", "end"))
        else:
            raise ProgramError(f"belong_to expects an event or an object, got {entry!r}")
        return "yes" if hit else "no"

    def _filter_attr(self, objs: Any, value: Any, attr: str, allowed: tuple[str, ...]) -> list[int]:
        if value not in allowed:
            raise ProgramError(f"filter_{attr} got {value!r}; allowed {allowed}")
        return [o for o in _objects(objs, f"filter_{attr}") if self.props[o][attr] == value]

    def _filter_motion(self, objs: Any, frame: Any, want_moving: bool) -> list[int]:
        objs = _objects(objs, "filter_moving")
        if frame == "null":
            out = []
            for o in objs:
                seen = self.vis[:, o]
                if not seen.any():
                    continue
                moves = bool((self.mov[:, o] & seen).any())
                if moves == want_moving:
                    out.append(o)
            return out
        if not isinstance(frame, int):
            raise ProgramError(f"filter_moving expects a frame or 'null', got {frame!r}")
        return [o for o in objs if self.vis[frame, o] and bool(self.mov[frame, o]) == want_moving]

    @staticmethod
    def _filter_type(events: Any, objs: Any, kind: str) -> list[Event]:
        objs = _objects(objs, f"filter_{kind}")
        return [e for e in _events(events, f"filter_{kind}") if e["type"] == kind and any(o in objs for o in e["object"])]

    @staticmethod
    def filter_order(events: Any, order: Any) -> Event:
        events = sorted(_events(events, "filter_order"), key=lambda e: e["frame"])
        index = {"first": 0, "second": 1, "last": -1}.get(order)
        if index is None or len(events) <= max(index, -index - 1):
            raise ProgramError(f"filter_order cannot take {order!r} of {len(events)} events")
        return events[index]

    def filter_ancestor(self, events: Any, event: Any) -> list[Event]:
        events, event = _events(events, "filter_ancestor"), _event(event, "filter_ancestor")
        causes: list[Event] = []
        todo = [event]
        while todo:
            e = todo.pop()
            for trace in self.traces:
                if e in trace:
                    k = trace.index(e)
                    if k > 0 and trace[k - 1] not in causes:
                        causes.append(trace[k - 1])
                        todo.append(trace[k - 1])
        return [e for e in events if e in causes]

    @staticmethod
    def get_object(event: Any) -> int:
        event = _event(event, "get_object")
        if event["type"] not in ("in", "out"):
            raise ProgramError(f"get_object expects an in/out event, got {event['type']!r}")
        return int(event["object"][0])

    @staticmethod
    def get_col_partner(event: Any, obj: Any) -> int:
        event = _event(event, "get_col_partner")
        if event["type"] != "collision" or obj not in event["object"]:
            raise ProgramError("get_col_partner expects a collision of the given object")
        a, b = event["object"]
        return b if obj == a else a

    def get_counterfact(self, events: Any, obj: Any) -> list[Event]:
        events = _events(events, "get_counterfact")
        if not isinstance(obj, int) or obj not in self.cf:
            raise ProgramError(f"get_counterfact has no counterfactual run without object {obj!r}")
        pairs = [set(e["object"]) for e in self.cf[obj]]
        return [e for e in events if e["type"] == "collision" and set(e["object"]) in pairs]

    def _query(self, obj: Any, attr: str) -> str:
        if not isinstance(obj, int) or not 0 <= obj < self.n:
            raise ProgramError(f"query_{attr} expects an object, got {obj!r}")
        return str(self.props[obj][attr])


def answer_accuracy(annotation: dict[str, Any], questions: list[dict[str, Any]]) -> float:
    """Share of questions (all options right, for multiple choice) the executor answers as recorded."""
    ex = Executor(annotation)
    right = 0
    for q in questions:
        got = ex.answer(q)
        want = q["answer"] if "choices" not in q else [c["answer"] for c in q["choices"]]
        right += int(got == want)
    return right / max(1, len(questions))


def hard_counterfactual(annotation: dict[str, Any], program: list[str]) -> bool:
    """:meth:`Executor.hard_counterfactual` for one annotation (build an :class:`Executor` once to ask many)."""
    return Executor(annotation).hard_counterfactual(program)


__all__ = ["Executor", "ProgramError", "answer_accuracy", "hard_counterfactual"]
