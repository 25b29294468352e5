import pytest
import torch

from slotvideo.errors import ConfigError, ShapeError, check_range, check_shape
from slotvideo.registry import lookup, register


def test_check_shape_binds_names_and_leading_dims():
    assert check_shape(torch.zeros(2, 3, 5, 8), "... N D", "x", D=8) == {"N": 5, "D": 8}
    assert check_shape(torch.zeros(4, 3, 6, 6), "B 3 H W", "video") == {"B": 4, "H": 6, "W": 6}


@pytest.mark.parametrize("shape,spec,msg", [
    ((2, 5), "... N D", "D=8"),
    ((2, 4, 6, 6), "B 3 H W", r"\[B, 3, H, W\]"),
    ((5,), "N D", r"\[N, D\]"),
])
def test_check_shape_errors_name_the_tensor(shape, spec, msg):
    with pytest.raises(ShapeError, match=msg):
        check_shape(torch.zeros(shape), spec, "inputs", D=8)


def test_check_range():
    check_range(3, "num_balls", 1, 10, integer=True)
    with pytest.raises(ConfigError, match=r"num_balls must be in \[1, 10\], got 11"):
        check_range(11, "num_balls", 1, 10, integer=True)
    with pytest.raises(ConfigError, match="integer"):
        check_range(1.5, "num_balls", 1, 10, integer=True)


def test_registry_unknown_name_lists_known():
    @register("generator", "_test_gen")
    def gen():
        return 1

    assert lookup("generator", "_test_gen") is gen
    with pytest.raises(ConfigError, match="data.name: unknown generator 'nope'"):
        lookup("generator", "nope", key="data.name")


def test_a_config_built_in_code_is_checked_against_its_field_metadata():
    """``VideoModel.configure`` applies the same metadata checks as loading a YAML config."""
    from slotvideo.models.parts import PARTS
    from slotvideo.models.slot_transformer import SlotTransformer

    with pytest.raises(ConfigError, match=r"model.prior: expected one of \['fixed', 'predictive'\], got 'bogus'"):
        PARTS(PARTS.Config(prior="bogus"))
    with pytest.raises(ConfigError, match=r"model.num_slots: must be in \[1, inf\], got 0"):
        SlotTransformer(SlotTransformer.Config(num_slots=0))
