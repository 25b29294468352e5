"""SetCon: shapes of every Table 1 variant, eq. 2 against a brute-force InfoNCE, the stop-gradient of the
evaluation decoder, and a few steps of training lowering the loss."""
import math

import pytest
import torch

import slotvideo.models.setcon as setcon_module
from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics.ari import fg_ari
from slotvideo.models.setcon import SetCon
from slotvideo.registry import lookup

B, T, H, W, K, D = 2, 5, 6, 6, 4, 16


def tiny(**overrides) -> SetCon:
    cfg = SetCon.Config(resolution=[H, W], decoder_channels=[8], mlp_hidden=16, **overrides)
    return SetCon(cfg)


def batch(seed: int = 0) -> Batch:
    g = torch.Generator().manual_seed(seed)
    return Batch({"video": torch.rand(B, T, 3, H, W, generator=g),
                  "segmentation": torch.randint(0, 4, (B, T, H, W), generator=g)})


VARIANTS = [dict(loss=loss, encoder=enc) for loss in ("setcon", "slotwise", "reconstruction")
            for enc in ("slot_attention", "fm_mlp")] + [dict(slot_init="gaussian", iterations=3)]


def test_registered():
    assert lookup("model", "setcon") is SetCon


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(map(str, v.values())))
def test_shapes(variant):
    torch.manual_seed(0)
    model, b = tiny(**variant), batch()
    out = model(b)
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.slots.shape == (B, T, K, D)
    assert out.masks.shape == (B, T, K, H, W)
    torch.testing.assert_close(out.masks.sum(2), torch.ones(B, T, H, W))
    assert out.recon.shape == (B, T, 3, H, W)
    assert out.extra["predictions"].shape == (B, T - 2, K, D)
    assert ("contrastive" in out.terms) == (variant.get("loss") != "reconstruction")
    torch.manual_seed(3)                              # the same initial slots for the gaussian variant below
    metrics = model.evaluate_batch(b)
    expected = {"mse_slots", "fg_ari_slots", "mse_pred", "fg_ari_pred"} | {f"mse_pred_{k}" for k in range(1, T - 1)}
    if variant.get("encoder") != "fm_mlp":          # FM-MLP has no attention masks to score
        expected.add("fg_ari_attention")
        torch.manual_seed(3)
        _, attention = model.encode(b.video)
        torch.testing.assert_close(metrics["fg_ari_attention"], torch.nanmean(fg_ari(b.segmentation, attention), 1).float())
    assert set(metrics) == expected
    assert all(v.shape == (B,) for v in metrics.values())
    assert model.segment(b.video).shape == (B, T, K, H, W)
    torch.manual_seed(3)
    both, masks = model.evaluate_with_masks(b)      # one pass: the same metrics and segment's masks
    torch.testing.assert_close(both, metrics)
    torch.manual_seed(3)
    torch.testing.assert_close(masks, model.segment(b.video))
    rolled = model.rollout(b.video, 3)
    assert rolled.recon.shape == (B, 3, 3, H, W) and rolled.masks.shape == (B, 3, K, H, W)
    assert rolled.slots.shape == (B, 3, K, D)
    out.loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())


def test_param_groups_split_off_the_evaluation_decoder():
    model = tiny()
    groups = {g.name: g for g in model.param_groups()}
    assert set(groups) == {"model", "eval_decoder"}
    assert groups["model"].optimizer == groups["eval_decoder"].optimizer  # same learning rate (appendix A.1)
    assert {id(p) for p in groups["eval_decoder"].params} == {id(p) for p in model.decoder.parameters()}
    assert sum(len(g.params) for g in groups.values()) == len(list(model.parameters()))
    assert groups["eval_decoder"].lr_scale == 1.0
    fast = {g.name: g for g in tiny(decoder_lr_scale=5.0).param_groups()}
    assert (fast["eval_decoder"].lr_scale, fast["model"].lr_scale) == (5.0, 1.0)


def brute_force_eq2(z_p: torch.Tensor, z_s: torch.Tensor, tau: float) -> torch.Tensor:
    """Eq. 2 written out term by term; the anchor's own z_p is not one of its negatives."""
    n = z_p.shape[0]
    total = 0.0
    for i in range(n):
        g = lambda a, b: math.exp(float(a @ b) / tau)  # noqa: E731
        numerator = g(z_p[i], z_s[i])
        denominator = sum(g(z_p[i], z_s[j]) for j in range(n)) + sum(g(z_p[i], z_p[j]) for j in range(n) if j != i)
        total += -math.log(numerator / denominator)
    return torch.tensor(total / n, dtype=torch.float64)


def test_set_contrastive_loss_matches_brute_force_infonce():
    torch.manual_seed(1)
    model = tiny()
    p, s = torch.randn(2, 3, K, D), torch.randn(2, 3, K, D)
    loss = model.contrastive_loss(p, s)
    with torch.no_grad():
        z_p = model.set_encoder(p).flatten(0, 1).double()
        z_s = model.set_encoder(s).flatten(0, 1).double()
    torch.testing.assert_close(loss.double(), brute_force_eq2(z_p, z_s, 0.5), rtol=1e-5, atol=1e-6)


def test_slotwise_loss_is_one_infonce_per_slot_index():
    torch.manual_seed(2)
    model = tiny(loss="slotwise", temperature=0.7)
    p, s = torch.randn(2, 3, K, D), torch.randn(2, 3, K, D)
    per_slot = [brute_force_eq2(p[:, :, k].flatten(0, 1).double(), s[:, :, k].flatten(0, 1).double(), 0.7)
                for k in range(K)]
    torch.testing.assert_close(model.contrastive_loss(p, s).double(), torch.stack(per_slot).mean(),
                               rtol=1e-5, atol=1e-6)
    # Slots paired by index: permuting the slots of the targets alone changes the slotwise loss ...
    assert not torch.allclose(model.contrastive_loss(p, s), model.contrastive_loss(p, s.flip(-2)))
    # ... while the set loss is invariant to it.
    setcon = tiny()
    torch.testing.assert_close(setcon.contrastive_loss(p, s), setcon.contrastive_loss(p, s.flip(-2)))


@pytest.mark.parametrize("encoder", ["slot_attention", "fm_mlp"])
def test_evaluation_decoder_sends_no_gradient_into_the_model(encoder):
    torch.manual_seed(3)
    model, b = tiny(encoder=encoder), batch()
    encoder_params = [p for n, p in model.named_parameters() if not n.startswith("decoder.")]
    full = torch.autograd.grad(model(b).loss, encoder_params, allow_unused=True)
    slots, _ = model.encode(b.video)
    contrastive_only = model.contrastive_loss(model.predict(slots, 1)[0][:, :-1], slots[:, 2:])
    alone = torch.autograd.grad(contrastive_only, encoder_params, allow_unused=True)
    for (name, _), g_full, g_alone in zip([x for x in model.named_parameters() if not x[0].startswith("decoder.")],
                                           full, alone):
        if g_alone is None:
            assert g_full is None or torch.count_nonzero(g_full) == 0, name
        else:
            torch.testing.assert_close(g_full, g_alone, msg=name)


def test_reconstruction_baseline_trains_the_encoder_through_the_decoder():
    torch.manual_seed(4)
    model, b = tiny(loss="reconstruction"), batch()
    model(b).loss.backward()
    assert model.set_encoder is None
    assert torch.count_nonzero(model.backbone.pixel_mlp.net[0].weight.grad) > 0


def moving_squares(n: int, seed: int) -> Batch:
    """Three coloured pixels moving one step a frame on a black 6x6 plane (a tiny GridWorld)."""
    g = torch.Generator().manual_seed(seed)
    colors = torch.eye(3)
    video = torch.zeros(n, T, 3, H, W)
    seg = torch.zeros(n, T, H, W, dtype=torch.long)
    start = torch.randint(0, H, (n, 3, 2), generator=g)
    step = torch.tensor([[0, 1], [1, 0], [0, -1], [-1, 0]])[torch.randint(0, 4, (n, 3), generator=g)]
    for t in range(T):
        pos = (start + t * step) % H
        for o in range(3):
            video[torch.arange(n), t, :, pos[:, o, 0], pos[:, o, 1]] = colors[o]
            seg[torch.arange(n), t, pos[:, o, 0], pos[:, o, 1]] = o + 1
    return Batch({"video": video, "segmentation": seg})


@pytest.mark.parametrize("loss", ["setcon", "reconstruction"])
def test_a_few_steps_lower_the_loss(loss):
    torch.manual_seed(5)
    model, b = tiny(loss=loss), moving_squares(16, 0)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        out = model(b)
        opt.zero_grad()
        out.loss.backward()
        opt.step()
        losses.append(out.loss.item())
    assert sum(losses[-5:]) / 5 < 0.8 * sum(losses[:5]) / 5, losses


def test_bad_config_and_input_raise_clear_errors():
    with pytest.raises(ConfigError, match="model.loss"):
        tiny(loss="hinge")
    with pytest.raises(ConfigError, match="model.encoder"):
        tiny(encoder="cnn")
    with pytest.raises(ConfigError, match="model.iterations"):
        tiny(iterations=0)
    model = tiny()
    with pytest.raises(ShapeError, match="video"):
        model.segment(torch.rand(B, T, 3, H + 1, W))
    with pytest.raises(ShapeError, match="3 frames"):
        model(Batch({"video": torch.rand(B, 2, 3, H, W)}))


def test_predict_rolls_the_transition_forward_without_new_input():
    torch.manual_seed(6)
    model = tiny()
    slots = torch.randn(B, T, K, D)
    one, two = model.predict(slots, 2)
    torch.testing.assert_close(one, model.transition(slots[:, :-1], slots[:, 1:]))
    torch.testing.assert_close(two, model.transition(slots[:, 1:], one))
    q, frames = setcon_module.aligned(two, torch.arange(T).view(1, T).expand(B, T), 2)
    assert q.shape[1] == frames.shape[1] == T - 3 and frames[0, 0] == 3  # p from frames 0, 1, two steps on


@pytest.mark.parametrize("name", ["gridworld", "bouncing_balls"])
def test_configs_load_and_check_the_frame_size(name):
    from pathlib import Path

    from slotvideo.train.config import build_model, load_config

    path = Path(__file__).resolve().parents[2] / "configs" / "setcon" / f"{name}.yaml"
    model = build_model(load_config(path, ["model.loss=slotwise", "model.encoder=fm_mlp"]))
    assert isinstance(model, SetCon) and model.cfg.loss == "slotwise" and model.set_encoder is None
    with pytest.raises(ConfigError, match="model.resolution"):
        load_config(path, ["model.resolution=[7,7]"])


def test_decoder_frames_trains_the_decoder_on_a_random_subset_of_frames(monkeypatch):
    torch.manual_seed(0)
    model, b = tiny(decoder_frames=2), batch()
    seen = []
    original = model.decode
    monkeypatch.setattr(model, "decode", lambda z: seen.append(z.shape[1]) or original(z))
    out = model(b)
    assert seen == [2, 2]  # s_t and p_t, two frames each
    assert out.masks.shape == (B, 2, K, H, W) and torch.isfinite(out.loss)
    out.loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    seen.clear()
    model.eval()
    model(b)
    assert seen == [T, T - 2]  # evaluation decodes every frame
    with pytest.raises(ConfigError, match="model.decoder_frames"):
        tiny(decoder_frames=0)
