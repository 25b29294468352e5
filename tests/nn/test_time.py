import pytest
import torch
from torch import nn

from slotvideo.errors import ConfigError, ShapeError
from slotvideo.nn.time import map_over_time, scan_over_time


def test_map_over_time_equals_a_loop_over_frames():
    torch.manual_seed(0)
    conv = nn.Conv2d(3, 4, 3, padding=1)
    video = torch.randn(2, 5, 3, 8, 8)
    out = map_over_time(conv, video)
    assert out.shape == (2, 5, 4, 8, 8)
    torch.testing.assert_close(out, torch.stack([conv(video[:, t]) for t in range(5)], dim=1))


def test_map_over_time_with_extra_inputs_and_tree_outputs():
    x, y = torch.randn(2, 3, 4), torch.randn(2, 3, 6)
    out = map_over_time(lambda a, b, scale: {"sum": a.sum(-1) * scale, "pair": (a, b)}, x, y, scale=2.0)
    torch.testing.assert_close(out["sum"], x.sum(-1) * 2.0)
    assert out["pair"][0].shape == (2, 3, 4) and out["pair"][1].shape == (2, 3, 6)
    with pytest.raises(ShapeError, match="extra input 0"):
        map_over_time(lambda a, b: a, x, torch.randn(2, 4, 6))
    with pytest.raises(ShapeError, match="B\\*T"):
        map_over_time(lambda a: a.sum(), x)


def test_scan_over_time_runs_a_step_and_stacks_outputs():
    x = torch.randn(2, 6, 3, requires_grad=True)

    def step(state, inp):
        state = state + inp
        return state, {"running": state, "sq": inp.square()}

    final, outs = scan_over_time(step, torch.zeros(2, 3), x)
    torch.testing.assert_close(outs["running"], x.cumsum(1))
    torch.testing.assert_close(final, x.sum(1))
    assert outs["sq"].shape == (2, 6, 3)
    final.sum().backward()
    torch.testing.assert_close(x.grad, torch.ones_like(x))


def test_scan_over_time_with_tuple_inputs_and_steps_only():
    a, b = torch.randn(2, 4, 3), torch.randn(2, 4)
    _, outs = scan_over_time(lambda s, inp: (s, inp[0] * inp[1][:, None]), None, (a, b))
    torch.testing.assert_close(outs, a * b[..., None])
    final, outs = scan_over_time(lambda s, _: (s * 2, s), torch.ones(2), steps=3)
    torch.testing.assert_close(outs, torch.tensor([[1.0, 2.0, 4.0]] * 2))
    torch.testing.assert_close(final, torch.full((2,), 8.0))
    with pytest.raises(ConfigError, match="steps"):
        scan_over_time(lambda s, i: (s, i), None)
    with pytest.raises(ShapeError, match="disagree"):
        scan_over_time(lambda s, i: (s, i), None, (torch.randn(2, 3), torch.randn(2, 4)))
