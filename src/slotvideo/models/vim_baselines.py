"""VIM's deterministic baselines (appendix B): SCOFF and RIM as configurations of :class:`VIM`.

Appendix B describes both as next-frame predictors trained with teacher forcing: each object file
(slot) attends to its part of the PREVIOUS ground-truth frame, every schema (module) proposes a candidate,
a key-query attention picks one, and the updated object files are decoded into the next frame. That is
VIM's transition with ``teacher_forcing=True`` (the grouping reads frame t-1, not the target t),
``variational=False`` (no latent variables, no KL: the Gaussian update is replaced by its mean and the
module is chosen by hard straight-through Gumbel-softmax, argmax at test time) and the same slot-attention
discovery, modules and decoder. RIM is SCOFF with a single schema (``num_modules=1``), as the paper says.

Simplification: SCOFF's object files are GRUs whose schemata are GRU cells; here they are VIM's MLP
modules and residual LayerNorm update, so that the comparison isolates what the paper attributes the
gap to (deterministic teacher-forced dynamics versus a variational model), not the recurrent cell.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from slotvideo.errors import ConfigError
from slotvideo.models.vim import VIM
from slotvideo.registry import register


@register("model", "scoff")
class SCOFF(VIM):
    """SCOFF (Goyal et al. 2020) as appendix B trains it: deterministic, teacher-forced next-frame prediction."""

    name = "scoff"

    @dataclass
    class Config(VIM.Config):
        num_modules: int = field(default=5, metadata={"min": 1})
        variational: bool = False
        teacher_forcing: bool = True

    @staticmethod
    def validate(cfg: VIM.Config) -> None:
        VIM.validate(cfg)
        if cfg.variational or not cfg.teacher_forcing:
            raise ConfigError("model.variational must be false and model.teacher_forcing true for scoff/rim "
                              "(use model.name=vim for the variational model)")


@register("model", "rim")
class RIM(SCOFF):
    """RIM (Goyal et al. 2019) as VIM's appendix B defines it: SCOFF with a single schema."""

    name = "rim"

    @dataclass
    class Config(SCOFF.Config):
        num_modules: int = field(default=1, metadata={"min": 1, "max": 1})  # RIM is SCOFF with one schema
