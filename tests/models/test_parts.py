"""PARTS: refinement step, ELBO terms, TBPTT boundaries, ablation switches and the VideoModel contract."""
from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

import slotvideo.data.synthetic.camera  # noqa: F401  (registers camera-balls until data.synthetic imports it)
from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError
from slotvideo.models.parts import (OP3, PARTS, SIODINE, IterativeRefinement, Predictor, TopDownSlotAttention,
                                    posterior)
from slotvideo.nn.decoders import Decoded, compose
from slotvideo.nn.distributions import DiagonalGaussian
from slotvideo.nn.refinement import NormalizedGradient, differentiable, loss_gradient
from slotvideo.registry import lookup

ROOT = Path(__file__).resolve().parents[2]
TINY = dict(resolution=8, num_slots=3, slot_dim=4, predictor_dim=8, predictor_layers=1, predictor_heads=2,
            lstm_hidden=8, encoder_channels=[8], encoder_kernel=3, attention_dim=8, refine_hidden=[16],
            decoder_channels=[8], decoder_kernel=3)


def tiny(cls: type = PARTS, **kw) -> PARTS:
    torch.manual_seed(0)
    return cls(cls.Config(**{**TINY, **kw}))


def batch(b: int = 2, t: int = 3, res: int = 8, actions: bool = True) -> Batch:
    g = torch.Generator().manual_seed(1)
    data = {"video": torch.rand(b, t, 3, res, res, generator=g),
            "segmentation": torch.randint(0, 3, (b, t, res, res), generator=g)}
    if actions:
        data["actions"] = torch.randn(b, t, 2, generator=g)
    return Batch(data)


# ------------------------------------------------------------------ gradient input (nn/refinement.py)

def test_loss_gradient_matches_closed_form_and_is_detached() -> None:
    p = torch.randn(2, 3, 4, requires_grad=True)
    grad = loss_gradient((p ** 2).sum(), p)
    torch.testing.assert_close(grad, 2 * p.detach())
    assert not grad.requires_grad


def test_gradient_input_exists_under_no_grad() -> None:
    with torch.no_grad():
        p = differentiable(torch.randn(3, 4))
        with torch.enable_grad():
            loss = (p.sin()).sum()
        grad = loss_gradient(loss, p)
    torch.testing.assert_close(grad, p.detach().cos())


def test_normalized_gradient_per_slot_and_stop_gradient() -> None:
    norm = NormalizedGradient(6)
    grad = (torch.randn(2, 3, 6) * 50.0).requires_grad_(True)
    out = norm(grad)
    torch.testing.assert_close(out.mean(-1), torch.zeros(2, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(out.var(-1, unbiased=False), torch.ones(2, 3), atol=1e-2, rtol=0)
    out.sum().backward()
    assert grad.grad is None  # no gradient flows into the gradient input
    assert norm.norm.weight.grad is not None


def test_loss_gradient_rejects_bad_input() -> None:
    with pytest.raises(ShapeError, match="scalar"):
        loss_gradient(torch.ones(2, requires_grad=True), torch.ones(2, requires_grad=True))
    with pytest.raises(ShapeError, match="require grad"):
        loss_gradient(torch.ones(()), torch.ones(2))
    with pytest.raises(ShapeError, match="gradient"):
        NormalizedGradient(4)(torch.ones(2, 3))


# ------------------------------------------------------------------ the refinement step

class Recorder(torch.nn.Module):
    """A refiner that returns a fixed delta and records what it was given."""

    def __init__(self, delta: torch.Tensor) -> None:
        super().__init__()
        self.delta, self.seen = delta, []

    def forward(self, lam, grad, action, frame, log_likelihood, decoded):
        self.seen.append({"lam": lam, "grad": grad, "ll": log_likelihood})
        return self.delta.expand_as(lam), lam.new_zeros(lam.shape[0], lam.shape[1], 64)


@pytest.mark.parametrize("grad_mode", [True, False])
def test_refinement_is_additive_with_a_detached_normalised_gradient(grad_mode: bool) -> None:
    model = tiny(refine_steps=2)
    delta = torch.full((2 * TINY["slot_dim"],), 0.25)
    model.refiner = Recorder(delta)
    lam0 = torch.randn(2, 3, 2 * TINY["slot_dim"], requires_grad=True)
    frame = torch.rand(2, 3, 8, 8)
    with torch.set_grad_enabled(grad_mode):
        lam, _, scores = model.refine(lam0 * 1.0, frame, None, model.prior_for(lam0))
    torch.testing.assert_close(lam.detach(), lam0.detach() + 2 * delta)
    assert len(scores) == 2                                    # lambda^1 and lambda^2; lambda^0 has weight 0
    for seen in model.refiner.seen:
        assert not seen["ll"].requires_grad
        if seen["grad"].requires_grad:  # only the LayerNorm's affine is trainable: nothing leads back to lambda
            assert torch.autograd.grad(seen["grad"].sum(), lam0, allow_unused=True, retain_graph=True)[0] is None
        torch.testing.assert_close(seen["grad"].mean(-1), torch.zeros(2, 3), atol=1e-4, rtol=0)
        torch.testing.assert_close(seen["grad"].std(-1, unbiased=False), torch.ones(2, 3), atol=1e-2, rtol=0)
    if grad_mode:  # the training loss reaches lambda^0 through the additive update
        scores[-1].loss.sum().backward()
        assert lam0.grad is not None and lam0.grad.abs().sum() > 0


def test_gradient_input_is_the_gradient_of_the_loss() -> None:
    """With zero posterior noise the gradient the refiner sees is d(loss)/d(lambda), normalised per slot."""
    model = tiny()
    model.refiner = Recorder(torch.zeros(2 * TINY["slot_dim"]))
    lam0 = torch.randn(1, 3, 2 * TINY["slot_dim"])
    lam0[..., TINY["slot_dim"]:] = -30.0                         # sigma ~ exp(-7) after the clamp: ~deterministic
    frame = torch.rand(1, 3, 8, 8)
    prior = model.prior_for(lam0)
    model.refine(lam0, frame, None, prior)
    p = lam0.clone().requires_grad_(True)
    torch.manual_seed(0)
    expected = torch.autograd.grad(model.score(p, frame, prior).loss.sum(), p)[0]
    expected = torch.nn.functional.layer_norm(expected, expected.shape[-1:])
    mean_part = slice(0, TINY["slot_dim"])
    torch.testing.assert_close(model.refiner.seen[0]["grad"][..., mean_part], expected[..., mean_part],
                               atol=5e-2, rtol=5e-2)


# ------------------------------------------------------------------ ELBO terms against closed forms

class FixedDecoder(torch.nn.Module):
    """Every slot decodes to ``rgb`` with random mask logits."""

    def __init__(self, rgb: torch.Tensor, k: int) -> None:
        super().__init__()
        self.rgb, self.k = rgb, k

    def forward(self, z: torch.Tensor) -> Decoded:
        rgbs = self.rgb.expand(z.shape[0], self.k, *self.rgb.shape[-3:])
        logits = torch.randn(z.shape[0], self.k, 1, *self.rgb.shape[-2:])
        masks, recon = compose(rgbs, logits)
        return Decoded(rgbs, logits, masks, recon)


@pytest.mark.parametrize("prior", ["fixed", "predictive"])
def test_elbo_terms_match_closed_forms(prior: str) -> None:
    model = tiny(prior=prior, sigma_x=0.2, beta=0.5)
    rgb = torch.rand(3, 8, 8)
    model.decoder = FixedDecoder(rgb, 3)     # identical components: the mixture is one Gaussian
    frame = torch.rand(2, 3, 8, 8)
    lam = torch.randn(2, 3, 2 * TINY["slot_dim"])
    lam0 = torch.randn(2, 3, 2 * TINY["slot_dim"])
    scored = model.score(lam, frame, model.prior_for(lam0))
    sigma = 0.2
    nll = ((frame - rgb) ** 2 / (2 * sigma ** 2) + math.log(sigma) + 0.5 * math.log(2 * math.pi)).sum((1, 2, 3))
    torch.testing.assert_close(scored.nll, nll, atol=1e-3, rtol=1e-5)
    mu, log_std = lam.chunk(2, -1)
    if prior == "fixed":
        kl = 0.5 * (torch.exp(2 * log_std) + mu ** 2 - 1) - log_std
    else:
        mu0, log_std0 = lam0.chunk(2, -1)
        kl = (log_std0 - log_std) + (torch.exp(2 * log_std) + (mu - mu0) ** 2) / (2 * torch.exp(2 * log_std0)) - 0.5
    torch.testing.assert_close(scored.kl, kl.sum((1, 2)), atol=1e-3, rtol=1e-5)
    torch.testing.assert_close(scored.loss, scored.nll + 0.5 * scored.kl)


def test_predictive_prior_of_the_prediction_has_zero_kl() -> None:
    model = tiny(OP3)
    lam0 = torch.randn(2, 3, 2 * TINY["slot_dim"])
    scored = model.score(lam0, torch.rand(2, 3, 8, 8), model.prior_for(lam0))
    torch.testing.assert_close(scored.kl, torch.zeros(2), atol=1e-5, rtol=0)


def test_total_loss_is_the_time_average() -> None:
    model = tiny(use_actions=False)
    torch.manual_seed(3)
    out = model(batch(actions=False))
    torch.testing.assert_close(out.loss, out.extra["loss_per_frame"].mean())


# ------------------------------------------------------------------ truncated BPTT

@pytest.mark.parametrize("tbptt,cut", [(2, True), (8, False)])
def test_tbptt_stops_state_gradients_every_n_frames(tbptt: int, cut: bool) -> None:
    model = tiny(use_actions=False, tbptt=tbptt)
    video = torch.rand(1, 4, 3, 8, 8, requires_grad=True)
    out = model.unroll(video, None, observe=4)
    out["loss"][:, 3].sum().backward()
    grad = video.grad.abs().sum(dim=(0, 2, 3, 4))
    assert grad[2] > 0 and grad[3] > 0
    if cut:
        assert grad[0] == 0 and grad[1] == 0         # frames before the boundary at t = 2
    else:
        assert grad[0] > 0


# ------------------------------------------------------------------ ablation switches and presets

def test_presets_are_the_named_baselines() -> None:
    assert lookup("model", "parts") is PARTS
    assert lookup("model", "s-iodine") is SIODINE and lookup("model", "op3") is OP3
    parts, siodine, op3 = tiny(PARTS), tiny(SIODINE), tiny(OP3)
    assert isinstance(parts.refiner, TopDownSlotAttention) and parts.predictor.transformer is not None
    assert parts.cfg.prior == "fixed" and parts.cfg.use_actions
    assert isinstance(siodine.refiner, IterativeRefinement) and siodine.predictor.transformer is None
    assert siodine.cfg.prior == "fixed" and not siodine.cfg.use_actions
    assert isinstance(op3.refiner, IterativeRefinement) and op3.predictor.transformer is None
    assert op3.cfg.prior == "predictive" and op3.cfg.use_actions
    assert issubclass(SIODINE.Config, PARTS.Config) and issubclass(OP3.Config, PARTS.Config)


def test_switches_change_the_networks() -> None:
    p = 2 * TINY["slot_dim"]
    assert tiny(top_down=True).refiner.query_norm.normalized_shape == (p + 2 + p,)
    assert tiny(top_down=False).refiner.query_norm.normalized_shape == (p,)
    assert tiny(top_down=True, use_actions=False).refiner.query_norm.normalized_shape == (2 * p,)
    assert isinstance(tiny(predictor="lstm").predictor, Predictor)
    assert tiny(predictor="lstm").predictor.lstm.input_size == p + 2
    assert isinstance(tiny(refinement="iodine").refiner, IterativeRefinement)


@pytest.mark.parametrize("cls", [PARTS, SIODINE, OP3])
def test_shapes_and_backward(cls: type) -> None:
    model = tiny(cls)
    out = model(batch())
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.masks.shape == (2, 3, 3, 8, 8) and out.recon.shape == (2, 3, 3, 8, 8)
    assert out.slots.shape == (2, 3, 3, TINY["slot_dim"])
    torch.testing.assert_close(out.masks.sum(2), torch.ones(2, 3, 8, 8))
    out.loss.backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert all(g is not None for g in grads[:3])
    assert sum(float(g.abs().sum()) for g in grads if g is not None) > 0


def test_a_few_steps_lower_the_loss() -> None:
    model = tiny(use_actions=False)
    b = batch(actions=False)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(12):
        torch.manual_seed(0)
        loss = model(b).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    assert losses[-1] < losses[0]


def test_burn_in_predicts_the_rest_and_reports_rollout_mse() -> None:
    model = tiny(burn_in=2)
    model.eval()
    metrics = model.evaluate_batch(batch(t=4))
    assert {"loss", "mse", "kl", "fg_ari", "fg_ari_video", "rollout_mse"} <= set(metrics)
    assert all(v.shape == (2,) for v in metrics.values())


def test_segment_and_rollout_contract() -> None:
    model = tiny().eval()
    b = batch(t=3)
    masks = model.segment(b.video)
    assert masks.shape == (2, 3, 3, 8, 8)
    torch.testing.assert_close(masks.sum(2), torch.ones(2, 3, 8, 8))
    roll = model.rollout(b.video, 4, actions=torch.zeros(2, 6, 2))
    assert roll.recon.shape == (2, 4, 3, 8, 8) and roll.masks.shape == (2, 4, 3, 8, 8)
    assert model.rollout(b.video, 2).recon.shape == (2, 2, 3, 8, 8)   # zero actions by default


def test_bad_config_and_input_raise_clear_errors() -> None:
    with pytest.raises(ConfigError, match="model.refinement"):
        PARTS(PARTS.Config(**{**TINY, "refinement": "gru"}))
    with pytest.raises(ConfigError, match="model.predictor_dim"):
        PARTS(PARTS.Config(**{**TINY, "predictor_dim": 9}))
    model = tiny()
    with pytest.raises(ShapeError, match="video"):
        model(Batch({"video": torch.rand(2, 3, 3, 16, 16), "actions": torch.zeros(2, 3, 2)}))
    with pytest.raises(DataError, match="use_actions"):
        model(batch(actions=False))
    with pytest.raises(ShapeError, match="actions"):
        model(Batch({"video": torch.rand(2, 3, 3, 8, 8), "actions": torch.zeros(2, 3, 5)}))


@pytest.mark.parametrize("path", sorted((ROOT / "configs" / "parts").glob("*.yaml")), ids=lambda p: p.stem)
def test_configs_validate_and_build(path: Path) -> None:
    from slotvideo.train.config import build_model, load_config

    cfg = load_config(path)
    model = build_model(cfg)
    assert isinstance(model, PARTS) and model.cfg.beta == 0.5


def test_clevrer_mini_config_trains_and_scores_fg_ari(tmp_path: Path) -> None:
    # the paper's CLEVRER experiment: generated on first use, instance masks read for FG-ARI
    import json

    from slotvideo.cli import main

    runs = tmp_path / "runs"
    assert main(["train", str(ROOT / "configs" / "parts" / "clevrer_mini.yaml"), f"run.dir={runs}", "run.name=c",
                 f"data.cache_dir={tmp_path / 'cache'}", "data.params.generate.num_videos=8",
                 "data.params.generate.workers=1", "data.batch_size=2", "train.steps=2", "train.eval_every=0",
                 "train.media_every=0", "train.ckpt_every=2", "--no-progress"]) == 0
    assert main(["evaluate", str(runs / "c")]) == 0
    metrics = json.loads((runs / "c" / "eval.json").read_text())["metrics"]
    assert -1 <= metrics["fg_ari"] <= 1 and metrics["mse"] > 0


def test_posterior_parameterisation() -> None:
    lam = torch.tensor([[1.0, -0.5]])
    q = posterior(lam)
    assert isinstance(q, DiagonalGaussian)
    torch.testing.assert_close(q.std, torch.tensor([[math.exp(-0.5)]]))


def test_initial_posterior_learned_is_per_slot_and_trained() -> None:
    zeros = tiny()
    lam, h, c = zeros.initial_state(2, torch.device("cpu"), torch.float32)
    assert not lam.any() and not h.any() and zeros.initial_lambda is None
    model = tiny(initial_posterior="learned")
    lam, _, _ = model.initial_state(2, torch.device("cpu"), torch.float32)
    assert lam.shape == (2, model.cfg.num_slots, model.param_dim)
    assert torch.equal(lam[0], lam[1]) and torch.pdist(lam[0]).min() > 0  # distinct slots
    model(batch()).loss.backward()
    assert model.initial_lambda.grad is not None and model.initial_lambda.grad.abs().sum() > 0
    with pytest.raises(ConfigError, match="model.initial_posterior"):
        tiny(initial_posterior="random")
