"""Names and colours shared by the CLEVRER-style and CATER-style generators.

The attribute vocabularies are CLEVRER's (reference/dataset-formats.md 1.3, 1.5): 8 colours, 2 materials,
3 shapes and a 21-word descriptive answer vocabulary. CATER adds the golden snitch (``spl``) and cones and
names its actions ``_slide``, ``_pick_place``, ``_rotate``, ``_contain`` (and ``_no_op`` for an object that
stays inside a lifted cone), as its ``movements`` records do. RGB values are the CLEVR renderer's
``properties.json`` colours, so previews look like the real datasets.
"""
from __future__ import annotations

import numpy as np

COLORS = ("blue", "brown", "cyan", "gray", "green", "purple", "red", "yellow")
MATERIALS = ("metal", "rubber")
SHAPES = ("cube", "cylinder", "sphere")
ATTRIBUTES = {"color": COLORS, "material": MATERIALS, "shape": SHAPES}

RGB = {
    "gray": (87, 87, 87), "red": (173, 35, 35), "blue": (42, 75, 215), "green": (29, 105, 20),
    "brown": (129, 74, 25), "purple": (129, 38, 192), "cyan": (41, 208, 208), "yellow": (255, 238, 51),
    "gold": (255, 215, 0),
}

# Descriptive answers (CLEVRER's 21 words): counts 0..5, yes/no and the attribute words.
COUNT_ANSWERS = ("0", "1", "2", "3", "4", "5")
ANSWER_VOCAB = tuple(sorted(COUNT_ANSWERS + ("yes", "no") + COLORS + MATERIALS + SHAPES))

# CATER: shapes, sizes (radius of the footprint in plane units, as CATER's ``sized``) and action names.
CATER_SHAPES = ("cube", "cylinder", "sphere", "cone")
CATER_SIZES = {"small": 0.35, "medium": 0.5, "large": 0.7}
SNITCH_SIZE = 0.3
CATER_ACTIONS = ("_slide", "_pick_place", "_rotate", "_contain")
# ACTION_CLASSES of the official gen_train_test.py: the 14 (shape, action) classes of actions_present.
ACTION_CLASSES = (
    ("sphere", "_slide"), ("sphere", "_pick_place"),
    ("spl", "_slide"), ("spl", "_pick_place"), ("spl", "_rotate"),
    ("cylinder", "_pick_place"), ("cylinder", "_slide"), ("cylinder", "_rotate"),
    ("cube", "_slide"), ("cube", "_pick_place"), ("cube", "_rotate"),
    ("cone", "_contain"), ("cone", "_pick_place"), ("cone", "_slide"),
)
ORDERINGS = ("before", "during", "after")


def rgb(name: str) -> np.ndarray:
    """Colour ``name`` as float32 ``[3]`` in [0, 1]."""
    return np.asarray(RGB[name], dtype=np.float32) / 255.0
