"""Synthetic video generators with full ground truth; importing this package registers them.

``gridworld`` and ``bouncing-balls`` follow SetCon appendix A.3; ``random-walk``,
``random-walk-compositional`` and ``random-walk-ood`` follow VIM sections 5.1-5.3; ``camera-balls``
(a camera moved by recorded actions) stands in for PARTS' agent-driven PLAYROOM.
"""
from .bouncing_balls import BouncingBalls
from .camera import CameraBalls
from .colors import hsv_to_rgb, hue_colors, random_hue_colors, shared_colors
from .gridworld import GridWorld
from .random_walk import SHAPES, RandomWalk, RandomWalkCompositional, RandomWalkOOD

__all__ = ["BouncingBalls", "CameraBalls", "GridWorld", "RandomWalk", "RandomWalkCompositional", "RandomWalkOOD", "SHAPES",
           "hsv_to_rgb", "hue_colors", "random_hue_colors", "shared_colors"]
