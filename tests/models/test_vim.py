import math

import pytest
import torch
from torch.distributions import Categorical, Normal, kl_divergence

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.metrics import mask_centroids
from slotvideo.models.vim import (VIM, KeyQuerySelection, kl_terms, module_perplexity,
                                  object_centroids, usage_imbalance)
from slotvideo.models.vim_baselines import RIM, SCOFF
from slotvideo.nn.decoders import Decoded
from slotvideo.nn.distributions import DiagonalGaussian

TINY = dict(resolution=8, num_slots=3, num_modules=4, slot_dim=8, encoder_channels=[4], encoder_kernel=3,
            feature_dim=8, slot_attention_iters=2, slot_attention_hidden=8, module_hidden=[8, 8],
            latent_hidden=8, selection_hidden=8, selection_dim=8, decoder_channels=[4], decoder_kernel=3)


def tiny(cls=VIM, **kw):
    torch.manual_seed(0)
    base = {k: v for k, v in TINY.items() if cls is VIM or k != "num_modules"}  # keep the baselines' defaults
    return cls(cls.Config(**{**base, **kw}))


def video(b=2, t=4, res=8):
    return torch.rand(b, t, 3, res, res, generator=torch.Generator().manual_seed(1))


def test_forward_shapes_and_terms():
    model = tiny()
    out = model(Batch({"video": video()}))
    assert out.slots.shape == (2, 4, 3, 8) and out.masks.shape == (2, 4, 3, 8, 8)
    assert out.recon.shape == (2, 4, 3, 8, 8) and out.extra["selection"].shape == (2, 3, 1, 3, 4)
    assert torch.allclose(out.masks.sum(2), torch.ones(2, 4, 8, 8), atol=1e-5)
    assert {"nll", "kl_z", "kl_r", "mse"} <= set(out.terms) and out.loss.dim() == 0
    assert torch.isfinite(out.loss)


def test_posterior_mode_is_deterministic_and_picks_the_most_probable_module():
    model = tiny(slot_init="learned")   # deterministic discovery: only the posterior can add noise
    model.eval()
    first, second = model.infer(video(), sample=False), model.infer(video(), sample=False)
    torch.testing.assert_close(first["slots"], second["slots"])
    torch.testing.assert_close(first["selection"], second["selection"])
    h, _ = model.discover(video()[:, 0])
    feats = model.inference_encoder(video()[:, 1:2])[:, 0]
    s, keys = model.candidates(h)
    logits = model.selection.logits(keys, model.grouping.attend(h, model.grouping.prepare(feats)).updates,
                                    posterior=True)
    assert torch.equal(first["selection"][:, 0, 0].argmax(-1), logits.argmax(-1))
    assert not torch.allclose(model.infer(video())["slots"], first["slots"])   # the default samples z


def test_selection_is_hard_in_eval_and_soft_with_gradients_in_training():
    model = tiny()
    model.eval()
    sel = model.infer(video())["selection"]
    assert torch.equal(sel.sum(-1), torch.ones_like(sel.sum(-1)))
    assert set(sel.unique().tolist()) <= {0.0, 1.0}
    model.train()
    sel = model.infer(video())["selection"]
    assert ((sel > 0) & (sel < 1)).any()  # relaxed Gumbel-softmax sample
    torch.testing.assert_close(sel.sum(-1), torch.ones_like(sel.sum(-1)))
    model.zero_grad()
    model(Batch({"video": video()})).loss.backward()
    for part in (model.selection.key, model.selection.posterior_query, model.selection.query, model.modules_bank):
        grads = [p.grad for p in part.parameters()]
        assert all(g is not None and torch.isfinite(g).all() for g in grads)
        assert sum(g.abs().sum() for g in grads) > 0, part
    for i, lin in enumerate(model.modules_bank.linears):  # every module gets gradient through the soft choice
        assert (lin.weight.grad.flatten(1).abs().sum(1) > 0).all(), i


def test_bounded_selection_logits_are_a_scaled_cosine():
    torch.manual_seed(0)
    sel = KeyQuerySelection(6, 5, 8, 4, bound=3.0)
    keys, q = torch.randn(2, 7, 4, 4) * 100, torch.randn(2, 7, 5) * 100   # huge inputs cannot saturate it
    logits = sel.logits(keys, q)
    query = sel.query(q)
    expected = 3.0 * torch.nn.functional.cosine_similarity(keys, query.unsqueeze(-2), dim=-1)
    torch.testing.assert_close(logits, expected)
    assert logits.abs().max() <= 3.0 + 1e-5
    paper = KeyQuerySelection(6, 5, 8, 4)   # bound 0: the paper's scaled dot product
    paper.load_state_dict(sel.state_dict())
    torch.testing.assert_close(paper.logits(keys, q), (keys * query.unsqueeze(-2)).sum(-1) / 2.0)
    probs = torch.softmax(logits, -1)   # every module keeps probability >= e^-6 / M of the top one
    assert (probs.min(-1).values / probs.max(-1).values >= math.exp(-6.0) - 1e-6).all()


def test_bounded_selection_trains_every_module_and_logs_usage():
    model = tiny(selection_bound=5.0)
    out = model(Batch({"video": video()}))
    assert 1.0 <= float(out.terms["module_perplexity"]) <= 4.0
    out.loss.backward()
    for lin in model.modules_bank.linears:
        assert (lin.weight.grad.flatten(1).abs().sum(1) > 0).all()


def test_state_keys_read_the_candidate_next_states():
    model = tiny(candidate_keys="state")
    h = torch.randn(2, 3, 8)
    s, keys = model.candidates(h)
    torch.testing.assert_close(keys, model.selection.key(model.update_norm(h[:, :, None] + s)))
    out = model(Batch({"video": video()}))
    out.loss.backward()
    assert all(p.grad is not None for p in model.selection.key.parameters())
    with pytest.raises(ConfigError, match="candidate_keys"):
        tiny(candidate_keys="states")


def test_usage_imbalance_is_the_kl_to_uniform_and_enters_the_loss():
    torch.testing.assert_close(usage_imbalance(torch.ones(2, 3, 4)), torch.tensor(0.0))
    torch.testing.assert_close(usage_imbalance(torch.tensor([[5.0, 0, 0, 0]])), torch.tensor(math.log(4)))
    u = torch.tensor([[1.0, 3.0], [2.0, 2.0]])          # overall usage 3/8, 5/8
    p = torch.tensor([3 / 8, 5 / 8])
    torch.testing.assert_close(usage_imbalance(u), (p * (p / 0.5).log()).sum())
    base, balanced = tiny(), tiny(usage_weight=1e5)   # large enough to show on a loss of ~1e4 in float32
    torch.manual_seed(5)
    out0 = base(Batch({"video": video()}))
    torch.manual_seed(5)
    out1 = balanced(Batch({"video": video()}))
    torch.testing.assert_close(out1.loss - out0.loss, 1e5 * out1.terms["usage_imbalance"], rtol=1e-2, atol=1e-2)
    out1.loss.backward()
    assert sum(p.grad.abs().sum() for p in balanced.selection.posterior_query.parameters()) > 0


def test_usage_until_drops_the_balancing_term_from_that_step_on():
    torch.manual_seed(0)
    model = tiny(usage_weight=1e5, usage_until=10)
    losses = []
    for step in (9, 10):
        model.on_step(step)
        torch.manual_seed(5)
        losses.append(model(Batch({"video": video()})))
    before, after = losses
    torch.testing.assert_close(before.loss - after.loss, 1e5 * after.terms["usage_imbalance"], rtol=1e-2, atol=1e-2)
    assert after.terms["usage_imbalance"] > 0          # still reported, no longer trained on


def test_module_perplexity_counts_the_modules_in_use():
    one_hot = torch.nn.functional.one_hot(torch.tensor([[0, 1], [2, 3]]), 4).float()
    torch.testing.assert_close(module_perplexity(one_hot), torch.tensor(4.0))
    torch.testing.assert_close(module_perplexity(torch.eye(4)[[0, 0, 0]]), torch.tensor(1.0))


def test_hard_train_is_straight_through():
    model = tiny(hard_train=True)
    out = model(Batch({"video": video()}))
    sel = out.extra["selection"]
    assert set(sel.detach().unique().tolist()) <= {0.0, 1.0}
    out.loss.backward()
    assert sum(p.grad.abs().sum() for p in model.selection.posterior_query.parameters()) > 0


def test_kl_terms_match_closed_forms():
    g = torch.Generator().manual_seed(3)
    mu_q, mu_p = torch.randn(2, 3, 5, generator=g), torch.randn(2, 3, 5, generator=g)
    sd_q, sd_p = torch.rand(2, 3, 5, generator=g) + 0.2, torch.rand(2, 3, 5, generator=g) + 0.2
    lq, lp = torch.randn(2, 3, 4, generator=g), torch.randn(2, 3, 4, generator=g)
    kl_z, kl_r = kl_terms(DiagonalGaussian(mu_q, sd_q), DiagonalGaussian(mu_p, sd_p), lq, lp)
    torch.testing.assert_close(kl_z, kl_divergence(Normal(mu_q, sd_q), Normal(mu_p, sd_p)).sum((-1, -2)))
    torch.testing.assert_close(kl_r, kl_divergence(Categorical(logits=lq), Categorical(logits=lp)).sum(-1))
    # hand-worked: KL(N(1, 1) || N(0, 1)) = 1/2 per dim; KL([1, 0] || [1/2, 1/2]) = log 2
    one = torch.ones(1, 1, 1)
    kz, kr = kl_terms(DiagonalGaussian(one, one), DiagonalGaussian(0 * one, one),
                      torch.tensor([[[0.0, -1e9]]]), torch.zeros(1, 1, 2))
    assert math.isclose(kz.item(), 0.5, rel_tol=1e-6) and math.isclose(kr.item(), math.log(2), rel_tol=1e-6)


def test_one_module_has_zero_module_kl():
    model = tiny(num_modules=1)
    assert torch.allclose(model.infer(video())["kl_r"], torch.zeros(2, 3), atol=1e-6)


def test_curriculum_schedule_and_clip_cropping():
    model = tiny(pretrain_steps=10, curriculum_start=6, curriculum_increment=2, curriculum_every=5,
                 curriculum_max=20)
    lengths = [model.curriculum_length(s) for s in (0, 9, 10, 14, 15, 19, 20, 44, 45, 1000)]
    assert lengths == [1, 1, 6, 6, 8, 8, 10, 18, 20, 20]
    model.on_step(0)
    assert model(Batch({"video": video(t=7)})).terms["frames"].item() == 1  # pre-training: first frames
    model.on_step(10)
    assert model(Batch({"video": video(t=7)})).terms["frames"].item() == 6
    model.on_step(1000)
    assert model(Batch({"video": video(t=7)})).terms["frames"].item() == 7  # never longer than the clip
    model.eval()
    assert model(Batch({"video": video(t=7)})).terms["frames"].item() == 7  # evaluation sees whole clips


def test_a_few_steps_lower_the_loss():
    model = tiny()
    batch = Batch({"video": video(b=4, t=3)})
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    torch.manual_seed(0)
    losses = []
    for _ in range(25):
        loss = model(batch).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-5:]) / 5 < 0.9 * sum(losses[:5]) / 5


def test_vim_k_iterations():
    model = tiny(iterations=3).eval()
    out = model.infer(video())
    assert out["iteration_slots"].shape == (2, 3, 3, 3, 8) and out["selection"].shape == (2, 3, 3, 3, 4)
    torch.testing.assert_close(out["iteration_slots"][:, :, -1], out["slots"][:, 1:])
    assert model.infer(video(), iterations=2)["selection"].shape[2] == 2


def test_rollout_segment_replay():
    model = tiny().eval()
    r = model.rollout(video(t=3), steps=5, samples=3)
    assert r.recon.shape == (2, 3, 5, 3, 8, 8) and r.masks.shape == (2, 3, 5, 3, 8, 8)
    assert r.extra["selection"].shape == (2, 3, 5, 1, 3)
    assert not torch.allclose(r.slots[:, 0], r.slots[:, 1])  # samples differ
    single = model.rollout(video(t=3), steps=2)
    assert single.recon.shape == (2, 2, 3, 8, 8)
    masks = model.segment(video())
    assert masks.shape == (2, 4, 3, 8, 8) and torch.allclose(masks.sum(2), torch.ones(2, 4, 8, 8), atol=1e-5)
    replay = model.replay(video()[:, 0], torch.zeros(2, 4, 1, 3, dtype=torch.long))
    assert replay.recon.shape == (2, 5, 3, 8, 8)
    metrics = model.evaluate_batch(Batch({"video": video(), "segmentation": torch.randint(0, 3, (2, 4, 8, 8))}))
    assert set(metrics) == {"mse", "nll", "kl_z", "kl_r", "fg_ari"} and all(v.shape == (2,) for v in metrics.values())


def test_object_centroids_ignore_the_black_background_a_slot_owns():
    # slot 0 draws a bright ball at (1, 1) and owns the black right half; slot 1 owns the rest, in black
    masks = torch.zeros(1, 2, 4, 4)
    masks[0, 0, :, 2:] = 1.0
    masks[0, 0, 1, 1] = 1.0
    masks[0, 1] = 1.0 - masks[0, 0]
    rgb = torch.zeros(1, 2, 3, 4, 4)
    rgb[0, 0, :, 1, 1] = 0.8
    rgb[0, 0, 0, 0, 3] = -0.5          # out-of-range colours are clamped: no negative weights
    decoded = Decoded(rgb=rgb, mask_logits=masks[:, :, None].log(), masks=masks, recon=(masks[:, :, None] * rgb).sum(1))
    torch.testing.assert_close(object_centroids(decoded)[0, 0], torch.tensor([1.0, 1.0]))
    assert not torch.allclose(mask_centroids(masks)[0, 0], torch.tensor([1.0, 1.0]))   # pulled to the right


def test_baselines_are_deterministic_teacher_forced_configurations():
    scoff = tiny(SCOFF)
    assert scoff.cfg.num_modules == 5 and not scoff.cfg.variational and scoff.cfg.teacher_forcing
    out = scoff(Batch({"video": video()}))
    assert "kl_z" not in out.terms and torch.isclose(out.loss, out.terms["nll"])
    out.loss.backward()
    assert set(out.extra["selection"].detach().unique().tolist()) <= {0.0, 1.0}
    scoff.eval()
    # deterministic given the discovered slots (whose Gaussian init is the only noise), and teacher forcing: the step into frame t reads frame t-1, so the last frame cannot change the states
    changed = video().clone()
    changed[:, -1] = 0
    torch.manual_seed(0)
    s1 = scoff.infer(video())["slots"]
    torch.manual_seed(0)
    s2 = scoff.infer(changed)["slots"]
    torch.testing.assert_close(s1, s2)
    assert tiny(RIM).cfg.num_modules == 1
    with pytest.raises(ConfigError, match=r"model.num_modules: must be in \[1, 1\]"):
        tiny(RIM, num_modules=2)


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="teacher_forcing"):
        tiny(teacher_forcing=True)
    with pytest.raises(ConfigError, match="curriculum_max"):
        tiny(curriculum_start=6, curriculum_max=4)
    with pytest.raises(ConfigError, match="module_hidden"):
        tiny(module_hidden=[8])
    with pytest.raises(ShapeError, match="video"):
        tiny().infer(torch.rand(2, 3, 3, 16, 16))
    with pytest.raises(ConfigError, match="rollout steps"):
        tiny().rollout(video(), steps=0)


def test_discovery_slot_init():
    frame = torch.zeros(2, 3, 8, 8)
    learned = tiny(slot_init="learned")
    slots, _ = learned.discover(frame)
    assert slots.shape[1] == TINY["num_slots"]
    assert torch.pdist(slots[0]).min() > 0  # one start per slot: distinct from step 0
    assert torch.allclose(learned.discover(frame)[0], slots)  # learned starts are deterministic
    gaussian = tiny()
    assert not torch.allclose(gaussian.discover(frame)[0], gaussian.discover(frame)[0])  # sampled starts
    with pytest.raises(ConfigError, match="model.slot_init"):
        tiny(slot_init="zeros")
