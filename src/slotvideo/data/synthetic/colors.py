"""Object colours of the synthetic datasets (SetCon appendix A.3).

"We generate this set of colors by selecting equally spaced out hue values in HSV with a random
offset and converting them to RGB." Fully saturated, full value: the colours are as far apart as
hue alone allows, so every object is distinguishable from the others and from the black background.
"""
from __future__ import annotations

import numpy as np

# Stream id mixed into the dataset seed for things shared by every sample of every split
# (the fixed palette of SetCon's Bouncing Balls), so they never depend on the split or the index.
SHARED_STREAM = 0x5E7C0


def hsv_to_rgb(h: np.ndarray, s: np.ndarray | float = 1.0, v: np.ndarray | float = 1.0) -> np.ndarray:
    """Vectorized HSV -> RGB; inputs in [0, 1] (hue wraps), output float32 ``[..., 3]`` in [0, 1]."""
    h = np.asarray(h, dtype=np.float64) % 1.0
    s = np.broadcast_to(np.asarray(s, dtype=np.float64), h.shape)
    v = np.broadcast_to(np.asarray(v, dtype=np.float64), h.shape)
    # Standard piecewise-linear form: each channel is v * (1 - s * clamp(k distance, 0, 1)).
    k = (np.array([5.0, 3.0, 1.0]) + h[..., None] * 6.0) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (v[..., None] * (1.0 - s[..., None] * ramp)).astype(np.float32)


def hue_colors(n: int, offset: float) -> np.ndarray:
    """``n`` colours with equally spaced hues starting at ``offset`` (in turns); float32 ``[n, 3]``."""
    return hsv_to_rgb(offset + np.arange(n) / n)


def random_hue_colors(rng: np.random.Generator, n: int) -> np.ndarray:
    """SetCon's colour set: equally spaced hues with an offset drawn uniformly from ``rng``."""
    return hue_colors(n, float(rng.uniform()))


def shared_colors(seed: int, n: int) -> np.ndarray:
    """The palette fixed for a whole dataset: a pure function of the dataset seed (not of split or index)."""
    return random_hue_colors(np.random.default_rng([seed, SHARED_STREAM]), n)
