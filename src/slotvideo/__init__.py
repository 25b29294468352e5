"""slotvideo: object-centric video learning on PyTorch.

    import slotvideo
    model = slotvideo.load("runs/quickstart")       # a run directory or a checkpoint file
    masks = model.segment(video)                    # [B, T, K, H, W]
"""
from __future__ import annotations

__version__ = "0.1.0"

from .errors import SlotvideoError  # noqa: E402


def load(path, device="cpu"):
    """Load a trained model from a run directory or checkpoint file, ready for inference."""
    from .train.checkpoint import load_model

    return load_model(path, device=device)


__all__ = ["load", "SlotvideoError", "__version__"]
