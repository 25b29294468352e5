"""CLEVRER questions from recorded events: descriptive, explanatory, predictive and counterfactual.

Each template lists every question it can ask about a video with the answer taken from :class:`Facts`
(not from the executor). Answers are balanced per template the way CLEVR does it: a target answer is drawn
uniformly from the template's answer space and a question with that answer is asked; when the video has
none, another answer is drawn (a few times), else the template is skipped. Multiple-choice questions draw
2-4 options and the number of correct ones uniformly from what the video allows, so "correct" and "wrong"
are about equally common. Programs are postfix token lists in the official module vocabulary (see
:mod:`slotvideo.data.reasoning.executor` for the stack convention).
"""
from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import combinations
from typing import Any

import numpy as np

from .facts import ATTR_ORDER, Facts, describe, filter_phrase
from .vocab import ATTRIBUTES, COLORS, COUNT_ANSWERS, MATERIALS, SHAPES

Candidate = tuple[str, list[str], str]  # question text, program, answer
ORDERS = ("first", "last")


@dataclass(frozen=True)
class QuestionParams:
    descriptive: int = 6
    explanatory: int = 1
    predictive: int = 1
    counterfactual: int = 1
    answer_tries: int = 1


# --------------------------------------------------------------------------- helpers


def _plural(noun: str) -> str:
    return noun + "s"


def _filters() -> list[tuple[str, ...] | tuple[str, str]]:
    """The attribute filters of counting/existence questions: none, or one attribute value."""
    return [()] + [(a, v) for a in ATTR_ORDER for v in ATTRIBUTES[a]]


def _filter_set(facts: Facts, filt: tuple) -> tuple[str, list[str], list[int]]:
    """(words before "objects", program, matching objects) of a filter."""
    if not filt:
        return "", ["objects"], list(range(facts.n))
    attr, value = filt
    text, program = filter_phrase({attr: value, "shape": value if attr == "shape" else ""}, (attr,))
    objs = [o for o in range(facts.n) if facts.props[o][attr] == value]
    return text, program, objs


def _noun_phrase(text: str, plural: bool) -> str:
    """"red object" -> "red objects"; "" -> "objects"."""
    text = text or "object"
    return _plural(text) if plural else text


def _strict(frames: list[int], order: str) -> bool:
    """True if the first/last of ``frames`` (sorted) is not tied with its neighbour."""
    fs = sorted(frames)
    if len(fs) < 2:
        return len(fs) == 1
    return fs[0] < fs[1] if order == "first" else fs[-1] > fs[-2]


def _single_enter(facts: Facts) -> list[int]:
    return [o for o, fs in facts.enter.items() if len(fs) == 1]


# --------------------------------------------------------------------------- descriptive templates


def count_moving_end(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters():
        words, prog, objs = _filter_set(f, filt)
        n = sum(bool(f.vis[-1, o] and f.mov[-1, o]) for o in objs)
        yield (f"How many {_noun_phrase(words, True)} are moving when the video ends?",
               prog + ["end", "get_frame", "filter_moving", "count"], str(n))


def count_stationary_start(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters():
        words, prog, objs = _filter_set(f, filt)
        n = sum(bool(f.vis[0, o] and not f.mov[0, o]) for o in objs)
        yield (f"How many {_noun_phrase(words, True)} are stationary when the video begins?",
               prog + ["start", "get_frame", "filter_stationary", "count"], str(n))


def count_enter(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters():
        words, prog, objs = _filter_set(f, filt)
        n = sum(len(f.enter.get(o, [])) for o in objs)
        yield (f"How many {_noun_phrase(words, True)} enter the scene?", ["events"] + prog + ["filter_in", "count"], str(n))


def count_exit(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters():
        words, prog, objs = _filter_set(f, filt)
        n = sum(len(f.exit.get(o, [])) for o in objs)
        yield (f"How many {_noun_phrase(words, True)} exit the scene?", ["events"] + prog + ["filter_out", "count"], str(n))


def count_collisions_of(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for o in range(f.n):
        ref = describe(f, o, rng)
        if ref:
            yield (f"How many collisions involve the {ref[0]}?", ["events"] + ref[1] + ["filter_collision", "count"],
                   str(len(f.collisions_of(o))))


def _filters_when_enters(f: Facts, rng: np.random.Generator) -> Iterator[tuple[Any, int, Any, list, Any]]:
    """``(reference, entrance frame, filter words, filter program, filtered objects)`` for every object that
    enters alone and every object filter (the questions "... when the X enters the scene")."""
    for o in _single_enter(f):
        ref = describe(f, o, rng)
        if not ref:
            continue
        frame = f.enter[o][0]
        for filt in _filters():
            yield (ref, frame, *_filter_set(f, filt))


def count_moving_when_enters(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for ref, frame, words, prog, objs in _filters_when_enters(f, rng):
        n = sum(bool(f.vis[frame, k] and f.mov[frame, k]) for k in objs)
        yield (f"How many {_noun_phrase(words, True)} are moving when the {ref[0]} enters the scene?",
               prog + ["events"] + ref[1] + ["filter_in", "unique", "get_frame", "filter_moving", "count"], str(n))


def exist_moving_end(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters():
        words, prog, objs = _filter_set(f, filt)
        yes = any(f.vis[-1, o] and f.mov[-1, o] for o in objs)
        yield (f"Are there any {_noun_phrase(words, True)} that are moving when the video ends?",
               prog + ["end", "get_frame", "filter_moving", "exist"], "yes" if yes else "no")


def exist_stationary_when_enters(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for ref, frame, words, prog, objs in _filters_when_enters(f, rng):
        yes = any(f.vis[frame, k] and not f.mov[frame, k] for k in objs)
        yield (f"Are there any stationary {_noun_phrase(words, True)} when the {ref[0]} enters the scene?",
               prog + ["events"] + ref[1] + ["filter_in", "unique", "get_frame", "filter_stationary", "exist"],
               "yes" if yes else "no")


def exist_enter(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for filt in _filters()[1:]:
        words, prog, objs = _filter_set(f, filt)
        yes = any(o in f.enter for o in objs)
        yield (f"Does a {words} enter the scene?", ["events"] + prog + ["filter_in", "exist"], "yes" if yes else "no")


def exist_collision(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for i, j in combinations(range(f.n), 2):
        a, b = describe(f, i, rng), describe(f, j, rng)
        if a and b:
            yield (f"Is there a collision between the {a[0]} and the {b[0]}?",
                   ["events"] + a[1] + ["filter_collision"] + b[1] + ["filter_collision", "exist"],
                   "yes" if f.pair_collisions(i, j) else "no")


def exist_exit(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
    for o in range(f.n):
        ref = describe(f, o, rng)
        if ref:
            yield (f"Does the {ref[0]} exit the scene?", ["events"] + ref[1] + ["filter_out", "exist"],
                   "yes" if o in f.exit else "no")


def _query(attr: str) -> Callable[[Facts, np.random.Generator], Iterator[Candidate]]:
    """All query templates for one attribute (each candidate: who is asked about, answer = attr value)."""

    def gen(f: Facts, rng: np.random.Generator) -> Iterator[Candidate]:
        q = f"What is the {attr} of"
        tail = [f"query_{attr}"]
        enters = [(fs[0], o) for o, fs in f.enter.items() if len(fs) == 1]
        if sum(len(fs) for fs in f.enter.values()) == 1 and enters:
            o = enters[0][1]
            yield (f"{q} the object that enters the scene?",
                   ["events", "objects", "filter_in", "unique", "get_object"] + tail, f.props[o][attr])
        all_in = sorted(fr for fs in f.enter.values() for fr in fs)
        if len(all_in) >= 2:
            for order in ORDERS:
                if _strict(all_in, order):
                    frame = all_in[0] if order == "first" else all_in[-1]
                    o = next(k for k, fs in f.enter.items() if frame in fs)
                    yield (f"{q} the {order} object to enter the scene?",
                           ["events", "objects", "filter_in", order, "filter_order", "get_object"] + tail,
                           f.props[o][attr])
        for o in range(f.n):
            cols = f.collisions_of(o)
            ref = describe(f, o, rng)
            if not ref or not cols:
                continue
            if len(cols) == 1:
                yield (f"{q} the object that collides with the {ref[0]}?",
                       ["events"] + ref[1] + ["filter_collision", "unique"] + ref[1] + ["get_col_partner"] + tail,
                       f.props[cols[0][1]][attr])
            else:
                frames = [c[0] for c in cols]
                for order in ORDERS:
                    if _strict(frames, order):
                        partner = cols[0][1] if order == "first" else cols[-1][1]
                        yield (f"{q} the {order} object to collide with the {ref[0]}?",
                               ["events"] + ref[1] + ["filter_collision", order, "filter_order"] + ref[1]
                               + ["get_col_partner"] + tail, f.props[partner][attr])
        for filt in _filters():
            if filt and filt[0] == attr:
                continue
            words, prog, objs = _filter_set(f, filt)
            hits = [o for o in objs if f.vis[-1, o] and f.mov[-1, o]]
            if len(hits) == 1:
                yield (f"{q} the {_noun_phrase(words, False)} that is moving when the video ends?",
                       prog + ["end", "get_frame", "filter_moving", "unique"] + tail, f.props[hits[0]][attr])
            for e in _single_enter(f):
                ref = describe(f, e, rng)
                frame = f.enter[e][0]
                hits = [o for o in objs if f.vis[frame, o] and not f.mov[frame, o]]
                if ref and len(hits) == 1:
                    yield (f"{q} the {_noun_phrase(words, False)} that is stationary when the {ref[0]} enters the scene?",
                           prog + ["events"] + ref[1] + ["filter_in", "unique", "get_frame", "filter_stationary", "unique"]
                           + tail, f.props[hits[0]][attr])
        for o in range(f.n):
            ref = describe(f, o, rng, exclude=attr)
            if ref:
                yield f"{q} the {ref[0]}?", ref[1] + tail, f.props[o][attr]

    gen.__name__ = f"query_{attr}"
    return gen


YES_NO = ("yes", "no")
DESCRIPTIVE: dict[str, tuple[str, tuple[str, ...], Callable[[Facts, np.random.Generator], Iterator[Candidate]]]] = {
    "count_moving_end": ("count", COUNT_ANSWERS, count_moving_end),
    "count_stationary_start": ("count", COUNT_ANSWERS, count_stationary_start),
    "count_enter": ("count", COUNT_ANSWERS[:3], count_enter),
    "count_exit": ("count", COUNT_ANSWERS[:4], count_exit),
    "count_collisions_of": ("count", COUNT_ANSWERS[:4], count_collisions_of),
    "count_moving_when_enters": ("count", COUNT_ANSWERS, count_moving_when_enters),
    "exist_moving_end": ("exist", YES_NO, exist_moving_end),
    "exist_stationary_when_enters": ("exist", YES_NO, exist_stationary_when_enters),
    "exist_enter": ("exist", YES_NO, exist_enter),
    "exist_collision": ("exist", YES_NO, exist_collision),
    "exist_exit": ("exist", YES_NO, exist_exit),
    "query_color": ("query_color", COLORS, _query("color")),
    "query_material": ("query_material", MATERIALS, _query("material")),
    "query_shape": ("query_shape", SHAPES, _query("shape")),
}


def _balanced_pick(cands: list[Candidate], space: tuple[str, ...], rng: np.random.Generator,
                   tries: int) -> Candidate | None:
    by_answer: dict[str, list[Candidate]] = {}
    for c in cands:
        by_answer.setdefault(c[2], []).append(c)
    for answer in rng.permutation(len(space))[:tries]:
        pool = by_answer.get(space[int(answer)])
        if pool:
            return pool[int(rng.integers(len(pool)))]
    return None


def descriptive_questions(f: Facts, rng: np.random.Generator, n: int, tries: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    names = list(DESCRIPTIVE)
    for k in rng.permutation(len(names)):
        if len(out) >= n:
            break
        subtype, space, template = DESCRIPTIVE[names[int(k)]]
        pick = _balanced_pick(list(template(f, rng)), space, rng, tries)
        if pick is not None:
            text, program, answer = pick
            out.append({"question": text, "question_type": "descriptive", "question_subtype": subtype,
                        "program": program, "answer": answer, "template": names[int(k)]})
    return out


# --------------------------------------------------------------------------- multiple choice


def _choose_options(rng: np.random.Generator, right: list[Any], wrong: list[Any], lo: int = 2, hi: int = 4
                    ) -> list[tuple[Any, bool]] | None:
    """2-4 options with a number of correct ones drawn uniformly from what ``right``/``wrong`` allow."""
    sizes = [k for k in range(lo, hi + 1) if k <= len(right) + len(wrong)]
    if not sizes:
        return None
    k = sizes[int(rng.integers(len(sizes)))]
    feasible = [c for c in range(0, k + 1) if c <= len(right) and k - c <= len(wrong)]
    c = feasible[int(rng.integers(len(feasible)))]
    picked = [(right[i], True) for i in rng.permutation(len(right))[:c]]
    picked += [(wrong[i], False) for i in rng.permutation(len(wrong))[:k - c]]
    return [picked[i] for i in rng.permutation(len(picked))]


def _mc(text: str, qtype: str, program: list[str], options: list[tuple[tuple[str, list[str]], bool]],
        negate: bool) -> dict[str, Any]:
    choices = [{"choice_id": i, "choice": t, "program": p, "answer": "correct" if ok != negate else "wrong"}
               for i, ((t, p), ok) in enumerate(options)]
    return {"question": text, "question_type": qtype, "program": program + (["negate"] if negate else []),
            "choices": choices}


def _pair_option(f: Facts, i: int, j: int, rng: np.random.Generator, root: str) -> tuple[str, list[str]] | None:
    a, b = describe(f, i, rng), describe(f, j, rng)
    if not (a and b):
        return None
    if rng.random() < 0.5:
        a, b = b, a
    text = f"The {a[0]} and the {b[0]} collide" if rng.random() < 0.5 else f"The {a[0]} collides with the {b[0]}"
    return text, [root] + a[1] + ["filter_collision"] + b[1] + ["filter_collision", "unique"]


def explanatory_questions(f: Facts, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    targets = [(fr, i, j) for fr, i, j in f.collisions if len(f.pair_collisions(i, j)) == 1
               and f.ancestors(("collision", i, j, fr))]
    out = []
    for k in rng.permutation(len(targets))[:n]:
        fr, i, j = targets[int(k)]
        a, b = describe(f, i, rng), describe(f, j, rng)
        if not (a and b):
            continue
        anc = f.ancestors(("collision", i, j, fr))
        involved = {o for e in anc for o in (e[1:3] if e[0] == "collision" else e[1:2])}
        right, wrong = [], []
        for o, fs in f.enter.items():
            ref = describe(f, o, rng)
            if ref and len(fs) == 1:
                opt = (f"the {ref[0]}'s entering the scene", ["events"] + ref[1] + ["filter_in", "unique"])
                (right if ("in", o, fs[0]) in anc else wrong).append(opt)
        for fr2, x, y in f.collisions:
            if (x, y) == (i, j) or len(f.pair_collisions(x, y)) != 1:
                continue
            rx, ry = describe(f, x, rng), describe(f, y, rng)
            if rx and ry:
                opt = (f"the collision between the {rx[0]} and the {ry[0]}",
                       ["events"] + rx[1] + ["filter_collision"] + ry[1] + ["filter_collision", "unique"])
                (right if ("collision", x, y, fr2) in anc else wrong).append(opt)
        for o in range(f.n):
            ref = describe(f, o, rng)
            if ref and o not in (i, j):
                (right if o in involved else wrong).append((f"the presence of the {ref[0]}", ref[1]))
        options = _choose_options(rng, right, wrong)
        if options is None:
            continue
        negate = bool(rng.random() < 0.3)
        text = (f"Which of the following is {'not ' if negate else ''}responsible for the collision between "
                f"the {a[0]} and the {b[0]}?")
        program = (["events", "events"] + a[1] + ["filter_collision"] + b[1]
                   + ["filter_collision", "unique", "filter_ancestor", "belong_to"])
        out.append(_mc(text, "explanatory", program, options, negate))
    return out


def predictive_questions(f: Facts, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    if n < 1 or not f.future:
        return []
    future = {(i, j) for _, i, j in f.future}
    right = [o for i, j in sorted(future) if (o := _pair_option(f, i, j, rng, "all_events"))]
    wrong = [o for i, j in combinations(range(f.n), 2) if (i, j) not in future
             and (o := _pair_option(f, i, j, rng, "all_events"))]
    if not right or not wrong:
        return []
    options = [(right[int(rng.integers(len(right)))], True), (wrong[int(rng.integers(len(wrong)))], False)]
    options = [options[i] for i in rng.permutation(2)]
    text = "What will happen next?" if rng.random() < 0.5 else "Which event will happen next?"
    return [_mc(text, "predictive", ["unseen_events", "belong_to"], options, False)]


def counterfactual_questions(f: Facts, rng: np.random.Generator, n: int) -> list[dict[str, Any]]:
    out = []
    for r in rng.permutation(f.n):
        if len(out) >= n:
            break
        r = int(r)
        ref = describe(f, r, rng)
        if ref is None or r not in f.cf:
            continue
        right, wrong = [], []
        real = {(i, j) for _, i, j in f.collisions}
        for i, j in combinations([o for o in range(f.n) if o != r], 2):
            opt = _pair_option(f, i, j, rng, "all_events")
            if opt is None:
                continue
            if (i, j) in f.cf[r]:
                right.append(opt)
            elif (i, j) in real or rng.random() < 0.5:  # prefer wrong options that did happen in the video
                wrong.append(opt)
        options = _choose_options(rng, right, wrong)
        if options is None:
            continue
        negate = bool(rng.random() < 0.3)
        text = f"Which event will {'not ' if negate else ''}happen if the {ref[0]} is removed?"
        out.append(_mc(text, "counterfactual", ["all_events"] + ref[1] + ["get_counterfact", "belong_to"],
                       options, negate))
    return out


def generate_questions(f: Facts, rng: np.random.Generator, params: QuestionParams) -> list[dict[str, Any]]:
    """All questions of one video, numbered from 0 (``question_id``), descriptive first."""
    qs = descriptive_questions(f, rng, params.descriptive, params.answer_tries)
    qs += explanatory_questions(f, rng, params.explanatory)
    qs += predictive_questions(f, rng, params.predictive)
    qs += counterfactual_questions(f, rng, params.counterfactual)
    return [{"question_id": k, **q} for k, q in enumerate(qs)]
