"""The CLEVRER program executor on a hand-made annotation with known events."""
from __future__ import annotations

import pytest

from slotvideo.data.reasoning.executor import Executor, ProgramError


def _annotation() -> dict:
    """3 objects, 6 frames: 0 (red cube) hits 1 (blue sphere) at frame 2; 2 (green metal cylinder) enters at 3
    and hits 1 at 4. Counterfactuals: without 0 the pair (1, 2) still collides, without 2 the pair (0, 1)
    does, without 1 nothing collides. One unseen collision (0, 2) happens after the video."""
    props = [{"object_id": 0, "color": "red", "material": "rubber", "shape": "cube"},
             {"object_id": 1, "color": "blue", "material": "rubber", "shape": "sphere"},
             {"object_id": 2, "color": "green", "material": "metal", "shape": "cylinder"}]
    frames = []
    for f in range(6):
        objs = []
        for o in range(3):
            moving = (o == 0 and f < 2) or (o == 1 and f >= 2) or (o == 2 and f >= 3)
            objs.append({"object_id": o, "location": [0, 0, 0.5], "orientation": [0, 0, 0],
                         "velocity": [1.0 if moving else 0.0, 0, 0], "angular_velocity": [0, 0, 0],
                         "inside_camera_view": not (o == 2 and f < 3)})
        frames.append({"frame_id": f, "objects": objs})
    return {"scene_index": 0, "video_filename": "video_00000.mp4", "object_property": props,
            "motion_trajectory": frames,
            "collision": [{"object_ids": [0, 1], "frame_id": 2, "location": [0, 0, 0]},
                          {"object_ids": [1, 2], "frame_id": 4, "location": [0, 0, 0]}],
            "clevrer_mini": {"num_frames": 6,
                             "future_collision": [{"object_ids": [0, 2], "frame_id": 7}],
                             "counterfactual": [{"removed_object_id": 0, "collision": [{"object_ids": [1, 2], "frame_id": 4}]},
                                                {"removed_object_id": 1, "collision": []},
                                                {"removed_object_id": 2, "collision": [{"object_ids": [0, 1], "frame_id": 2}]}]}}


RED = ["objects", "red", "filter_color", "unique"]
BLUE = ["objects", "blue", "filter_color", "unique"]
GREEN = ["objects", "green", "filter_color", "unique"]


def test_descriptive_modules() -> None:
    ex = Executor(_annotation())
    assert ex.run(["events", "objects", "filter_collision", "count"]) == "2"
    assert ex.run(["events", "objects", "filter_in", "unique", "get_object", "query_shape"]) == "cylinder"
    assert ex.run(["objects", "end", "get_frame", "filter_moving", "count"]) == "2"
    assert ex.run(["objects", "start", "get_frame", "filter_stationary", "count"]) == "1"  # 2 is out of view
    assert ex.run(["events"] + BLUE + ["filter_collision", "first", "filter_order"] + BLUE
                  + ["get_col_partner", "query_color"]) == "red"
    assert ex.run(["events"] + BLUE + ["filter_collision", "last", "filter_order"] + BLUE
                  + ["get_col_partner", "query_material"]) == "metal"
    assert ex.run(["objects", "events"] + GREEN + ["filter_in", "unique", "get_frame", "filter_stationary",
                   "exist"]) == "yes"  # the red cube stopped at frame 2
    assert ex.run(["objects", "red", "filter_color", "null", "filter_moving", "count"]) == "1"


def test_explanatory_predictive_counterfactual() -> None:
    ex = Executor(_annotation())
    target = ["events", "events"] + BLUE + ["filter_collision"] + GREEN + ["filter_collision", "unique",
                                                                           "filter_ancestor", "belong_to"]
    first_col = ["events"] + RED + ["filter_collision"] + BLUE + ["filter_collision", "unique"]
    entrance = ["events"] + GREEN + ["filter_in", "unique"]
    assert ex.run(first_col + target) == "yes"    # 0-1 collision, then 1 moves into 2
    assert ex.run(entrance + target) == "yes"     # green's entrance precedes its collision
    assert ex.run(RED + target) == "yes"          # red takes part in an ancestor event
    assert ex.run(first_col + target + ["negate"]) == "no"
    pair = lambda a, b: ["all_events"] + a + ["filter_collision"] + b + ["filter_collision", "unique"]  # noqa: E731
    assert ex.run(pair(RED, GREEN) + ["unseen_events", "belong_to"]) == "yes"
    assert ex.run(pair(RED, BLUE) + ["unseen_events", "belong_to"]) == "no"
    assert ex.run(pair(BLUE, GREEN) + ["all_events"] + RED + ["get_counterfact", "belong_to"]) == "yes"
    assert ex.run(pair(RED, BLUE) + ["all_events"] + BLUE + ["get_counterfact", "belong_to"]) == "no"
    q = {"program": ["all_events"] + GREEN + ["get_counterfact", "belong_to"],
         "choices": [{"program": pair(RED, BLUE)}, {"program": pair(BLUE, GREEN)}]}
    assert ex.answer(q) == ["correct", "wrong"]


def test_broken_programs_raise() -> None:
    ex = Executor(_annotation())
    with pytest.raises(ProgramError, match="unique"):
        ex.run(["objects", "rubber", "filter_material", "unique"])
    with pytest.raises(ProgramError, match="filter_color"):
        ex.run(["objects", "pink", "filter_color"])
    with pytest.raises(ProgramError, match="stack"):
        ex.run(["objects", "objects"])
    with pytest.raises(ProgramError, match="arguments"):
        ex.run(["belong_to"])
