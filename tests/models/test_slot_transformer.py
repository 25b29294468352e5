"""Slot Transformer: shapes per task, gradients, the prior's dependence on the first p steps only, the additive
shared-parameter iterative update, the object-prediction masks, configs, and a few steps lowering the loss."""
import pytest
import torch

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, ShapeError
from slotvideo.models.slot_transformer import SlotTransformer, paper_config
from slotvideo.models.slot_transformer_heads import object_prediction_masks
from slotvideo.train.config import config_from_yaml

B, T, R = 2, 6, 16


def tiny_config(**kw) -> SlotTransformer.Config:
    base = dict(resolution=R, max_frames=8, num_slots=3, slot_dim=16, iterations=2, encoder_channels=[8, 16],
                encoder_blocks=[1, 1], encoder_strides=[2, 1], query_mlp=[16, 16], context_layers=1, context_heads=2,
                context_attention_dim=16, context_mlp=[16], decoder_channels=[8, 8], prior_steps=2, prior_hidden=16,
                prior_heads=2, refine_mlp=[16], question_hidden=16, head_embed_dim=16, head_layers=1, head_heads=2,
                head_attention_dim=16, head_mlp=[16], head_final_mlp=[16], question_vocab_size=20,
                choice_vocab_size=20, time_frequencies=2, spatial_frequencies=2, decoder_frequencies=2,
                lstm_hidden=16, lstm_layers=2)
    base.update(kw)
    return SlotTransformer.Config(**base)


def tiny(**kw) -> SlotTransformer:
    torch.manual_seed(0)
    return SlotTransformer(tiny_config(**kw))


def batch(task: str = "none", seed: int = 0, choices: bool = False) -> Batch:
    g = torch.Generator().manual_seed(seed)
    b = {"video": torch.rand(B, T, 3, R, R, generator=g)}
    if task == "clevrer":
        b["question"] = torch.randint(1, 20, (B, 5), generator=g)
        if choices:
            b["choices"] = torch.randint(1, 20, (B, 1, 4), generator=g)
            b["answer"] = torch.randint(0, 2, (B, 1), generator=g)
        else:
            b["answer"] = torch.randint(1, 22, (B,), generator=g)
    elif task in ("localization", "classification"):
        b["label"] = torch.randint(0, 36, (B,), generator=g)
    return Batch(b)


@pytest.mark.parametrize("task,choices,logits", [("clevrer", False, (B, 22)), ("clevrer", True, (B,)),
                                                 ("localization", False, (B, 36)), ("none", False, None)])
def test_output_shapes_and_terms(task, choices, logits):
    m = tiny(task=task)
    out = m(batch(task, choices=choices))
    assert out.loss.dim() == 0 and torch.isfinite(out.loss)
    assert out.slots.shape == (B, T, 3, 16)
    assert out.masks.shape == (B, T, 3, R, R) and torch.allclose(out.masks.sum(2), torch.ones(B, T, R, R))
    assert out.recon.shape == (B, T, 3, R, R)
    assert (out.logits is None) if logits is None else out.logits.shape == logits
    expected = {"nll", "kl", "mse", "object"} | ({"qa"} if task != "none" else set())
    expected |= {"question"} if task == "clevrer" else set()
    assert expected <= set(out.terms)


def test_every_parameter_gets_a_gradient():
    m = tiny(task="clevrer")
    m(batch("clevrer")).loss.backward()
    m(batch("clevrer", choices=True)).loss.backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None]
    assert missing == []


def test_prior_uses_only_the_first_p_steps():
    m = tiny().eval()
    video = batch().video
    later = video.clone()
    p = m.observed_steps(T)
    assert p == T - 2
    later[:, p:] = torch.rand_like(later[:, p:])
    priors = []
    for v in (video, later):
        torch.manual_seed(3)  # same c_0 and the same prior samples
        priors.append(m.infer(v)["prior"])
    assert priors[0].shape == (B, T, 3, 32)
    assert torch.equal(priors[0], priors[1])
    earlier = video.clone()
    earlier[:, 0] = torch.rand_like(earlier[:, 0])
    torch.manual_seed(3)
    assert not torch.allclose(m.infer(earlier)["prior"], priors[0])


def test_context_transformer_mixes_only_along_time_within_a_slot():
    m = tiny().eval()
    c = torch.randn(B, T, 3, 16)
    d = c.clone()
    d[:, :, 1] += 1.0
    a, b = m.context(c), m.context(d)
    assert torch.allclose(a[:, :, [0, 2]], b[:, :, [0, 2]], atol=1e-6)
    assert not torch.allclose(a[:, :, 1], b[:, :, 1])


def test_iterative_update_is_additive_and_shares_parameters():
    one, four = tiny(iterations=1), tiny(iterations=4)
    assert set(one.state_dict()) == set(four.state_dict())  # no per-iteration weights
    four.eval()
    torch.manual_seed(0)
    out = four.infer(batch().video)
    assert len(out["iterations"]) == 4 and len(out["refined"]) == 3
    # lambda_{k+1} - lambda_k is exactly f_iterative of the step's inputs
    it = out["iterations"][0]
    with torch.no_grad():
        delta = four.f_iterative(four.errors(it.z, it.decoded, batch().video, four_prior(four, out)))
    assert torch.allclose(out["refined"][0], it.lam + delta, atol=1e-5)
    # with f_iterative zeroed the update is the identity
    with torch.no_grad():
        four.f_iterative.weight.zero_()
        four.f_iterative.bias.zero_()
    torch.manual_seed(0)
    out = four.infer(batch().video)
    for it, lam_next in zip(out["iterations"], out["refined"]):
        assert torch.equal(lam_next, it.lam)


def four_prior(model, out):
    from slotvideo.nn.autoregressive import gaussian
    return gaussian(out["prior"])


def test_elbo_is_summed_over_iterations():
    m = tiny(iterations=3, object_prediction=False).eval()
    torch.manual_seed(1)
    out = m(batch())
    torch.manual_seed(1)
    its = m.infer(batch().video)["iterations"]
    total = sum((it.nll + it.kl).sum(1) for it in its).mean()
    assert torch.allclose(out.loss, total, rtol=1e-5)


def test_object_prediction_masks_cover_exactly_the_chosen_slots_and_steps():
    g = torch.Generator().manual_seed(0)
    masked, targets = object_prediction_masks(50, 8, 5, (1, 2, 3), masked_steps=3, target_fraction=0.5, generator=g)
    assert masked.shape == targets.shape == (3, 50, 8, 5)
    for n, count in enumerate((1, 2, 3)):
        m = masked[n]
        assert not m[:, :5].any()                                   # never before the last 3 steps
        slots = m[:, 5:].all(dim=1)                                 # a chosen slot is masked at every late step
        assert torch.equal(m[:, 5:].any(dim=1), slots)
        assert (slots.sum(-1) == count).all()                       # exactly `count` distinct slots
        t = targets[n]
        assert not (t & ~m).any()                                   # targets lie inside the mask
        steps = t.any(-1)
        assert (steps.sum(-1) >= 1).all()                           # at least one target step
        # a target step covers every masked slot of that step
        assert torch.equal(t, m & steps[..., None])
    assert 0.3 < targets.any(-1)[:, :, 5:].float().mean() < 0.9   # a random subset of the masked steps


def test_object_loss_only_scores_targets():
    m = tiny()
    z = torch.randn(B, T, 3, 16)
    g = torch.Generator().manual_seed(0)
    loss, info = m.object_loss(z, m.context, masked_steps=3, generator=g)
    err = (info["predicted"] - z).norm(dim=-1)
    assert torch.allclose(loss, (err * info["targets"]).sum(dim=(0, 2, 3)))
    assert loss.shape == (B,)


@pytest.mark.parametrize("kw", [dict(generative=False), dict(context_model="lstm"), dict(num_slots=1, slot_dim=48,
                                object_slot_counts=[1]), dict(context_every_iteration=True)])
def test_ablation_switches_run(kw):
    m = tiny(task="localization", **kw)
    out = m(batch("localization"))
    out.loss.backward()
    if kw.get("generative") is False:
        assert out.terms["kl"] == 0
        torch.manual_seed(0)
        a = m.eval().segment(batch().video)
        assert a.shape == (B, T, m.cfg.num_slots, R, R)


def test_initial_context_switch_is_tiled_and_learned():
    paper = tiny()
    assert not any(n.startswith("slot_init") for n, _ in paper.named_parameters())  # N(0, 1): nothing learned
    a, b = paper.initial_context(2, T, torch.device("cpu"), torch.float32).unbind(0)
    assert not torch.equal(a, b) and torch.equal(a[0], a[-1])  # a new sample per video, tiled over time
    learned = tiny(initial_context="learned")
    c = learned.initial_context(2, T, torch.device("cpu"), torch.float32)
    assert torch.equal(c[0], c[1]) and torch.equal(c[0, 0], learned.slot_init.slots)
    gaussian = tiny(initial_context="gaussian")
    g = gaussian.initial_context(2, T, torch.device("cpu"), torch.float32)
    assert not torch.equal(g[0], g[1]) and torch.equal(g[0, 0], g[0, -1])
    for m in (learned, gaussian):
        m(batch()).loss.backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in m.slot_init.parameters())


def test_readout_steps_repeat_the_gated_readout():
    one, three = tiny(), tiny(readout_steps=3)
    three.load_state_dict(one.state_dict())  # the steps share the readout's parameters: nothing new to learn
    encoded = one.encode_frames(batch().video)
    context = one.initial_context(B, T, torch.device("cpu"), torch.float32)
    expected = context
    for _ in range(3):
        expected, attention = one.gated_readout(expected, encoded.prepared)
    got, got_attention = three.gated_readout(context, encoded.prepared)
    assert torch.allclose(got, expected) and torch.allclose(got_attention, attention)
    assert got_attention.shape == (B, T, 3, 64) and torch.allclose(got_attention.sum(2), torch.ones(B, T, 64))


def test_upsampling_decoder_switch():
    m = tiny(decoder_broadcast_resolution=4, decoder_channels=[8, 8])
    assert isinstance(m.decoder.net[0], torch.nn.ConvTranspose2d) and m.decoder.broadcast_resolution == (4, 4)
    assert isinstance(tiny().decoder.net[0], torch.nn.Conv2d)          # 0: the paper's full-resolution decoder
    out = m(batch())
    assert out.masks.shape == (B, T, 3, R, R) and out.recon.shape == (B, T, 3, R, R)
    out.loss.backward()
    assert all(p.grad is not None for p in m.decoder.parameters())
    with pytest.raises(ConfigError, match="decoder_broadcast_resolution"):
        SlotTransformer(tiny_config(decoder_broadcast_resolution=6))
    with pytest.raises(ConfigError, match="needs at least 2 layers"):
        SlotTransformer(tiny_config(decoder_broadcast_resolution=4, decoder_channels=[8]))


def test_kl_warmup_scales_only_the_kl_term():
    m = tiny(kl_warmup_steps=100)
    assert m.kl_scale == 1.0  # before training calls on_step (a loaded model scores the full ELBO)
    b = batch()
    out = {}
    for step in (0, 50, 100, 200):
        m.on_step(step)
        torch.manual_seed(0)
        out[step] = m(b)
    kl = out[0].terms["kl"]
    assert kl > 0 and all(torch.equal(o.terms["kl"], kl) for o in out.values())
    for step, scale in ((50, 0.5), (100, 1.0), (200, 1.0)):  # the loss moves by the scaled KL and nothing else
        assert torch.allclose(out[step].loss - out[0].loss, scale * m.cfg.gen_weight * kl, rtol=1e-3)


def test_log_sigma_bias_sets_the_initial_posterior_width():
    m = tiny(log_sigma_bias=-3.0)
    assert torch.equal(m.to_lambda.bias[16:], torch.full((16,), -3.0))
    lam = m.infer(batch().video)["iterations"][0].lam
    assert lam[..., 16:].mean() < -2.0 and tiny().to_lambda.bias[16:].abs().max() < 1.0


def test_prior_head_switch_gives_the_prior_its_own_map():
    shared, separate = tiny(), tiny(prior_head="separate", log_sigma_bias=-3.0)
    assert shared.to_prior_lambda is None
    assert torch.equal(separate.to_prior_lambda.bias[16:], torch.full((16,), -3.0))
    video = batch().video
    p = separate.observed_steps(T)

    def prior_and_posterior(m):
        torch.manual_seed(3)
        out = m.eval().infer(video)
        return out["prior"][:, :p], out["iterations"][0].lam
    prior, posterior = prior_and_posterior(separate)
    with torch.no_grad():
        separate.to_lambda.weight.add_(1.0)  # the posterior's W: the prior's observed steps do not move
    moved_prior, moved_posterior = prior_and_posterior(separate)
    assert torch.equal(moved_prior, prior) and not torch.allclose(moved_posterior, posterior)
    with torch.no_grad():
        separate.to_prior_lambda.weight.add_(1.0)
    assert not torch.allclose(prior_and_posterior(separate)[0], prior)
    separate.train()(batch()).loss.backward()
    assert separate.to_prior_lambda.weight.grad is not None   # trained by the KL


def test_segment_answer_rollout_evaluate():
    m = tiny(task="clevrer").eval()
    b = batch("clevrer")
    assert m.segment(b.video).shape == (B, T, 3, R, R)
    assert m.answer(b.video, b.question).shape == (B, 22)
    roll = m.rollout(b.video[:, :4], 3)
    assert roll.recon.shape == (B, 3, 3, R, R) and roll.masks.shape == (B, 3, 3, R, R)
    res = m.evaluate_batch(b.replace(segmentation=torch.randint(0, 3, (B, T, R, R))))
    assert {"loss", "mse", "accuracy", "fg_ari"} <= set(res) and all(v.shape == (B,) for v in res.values())


def test_rollout_samples_the_prior_or_follows_its_means():
    m = tiny(initial_context="learned").eval()       # generative, and no sampled initial context
    video = batch().video[:, :4]
    draw = lambda seed, **kw: (torch.manual_seed(seed), m.rollout(video, 3, **kw).recon)[1]  # noqa: E731
    assert not torch.allclose(draw(0), draw(1))                                 # samples differ by seed
    assert torch.equal(draw(0, sample=False), draw(1, sample=False))            # the means' path does not


def test_bad_inputs_name_the_problem():
    m = tiny(task="clevrer")
    with pytest.raises(ShapeError, match="video"):
        m(Batch({"video": torch.rand(B, T, 3, R + 1, R)}))
    with pytest.raises(ShapeError, match="max_frames"):
        m(Batch({"video": torch.rand(1, 9, 3, R, R)}))
    bad = batch("clevrer").replace(question=torch.full((B, 5), 25))
    with pytest.raises(ShapeError, match="question"):
        m(bad)
    with pytest.raises(ConfigError, match="context_attention_dim"):
        SlotTransformer(tiny_config(context_attention_dim=15))
    with pytest.raises(ConfigError, match="object_slot_counts"):
        SlotTransformer(tiny_config(object_slot_counts=[4]))


def test_config_from_yaml_and_paper_tables():
    cfg = config_from_yaml("model: {name: slot-transformer, resolution: 16, num_slots: 3}\n"
                           "data: {name: bouncing-balls}\n")
    assert cfg.model.num_slots == 3
    with pytest.raises(ConfigError, match="data.params.resolution"):
        config_from_yaml("model: {name: slot-transformer, resolution: 16}\n"
                         "data: {name: bouncing-balls, params: {resolution: 32}}\n")
    clevrer = paper_config("clevrer")
    assert (clevrer.num_slots, clevrer.slot_dim, clevrer.context_layers, clevrer.iterations) == (8, 64, 8, 4)
    assert paper_config("cater").num_slots == 10 and paper_config("kinetics600").slot_dim == 128


def test_a_few_steps_lower_the_loss():
    m = tiny(task="localization", iterations=1, object_prediction=False, gen_weight=1e-3)
    b = batch("localization")
    opt = torch.optim.Adam(m.parameters(), lr=3e-3)
    losses = []
    for step in range(12):
        torch.manual_seed(step)
        loss = m(b).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3


@pytest.mark.parametrize("frames", [True, False])
def test_head_frames_switch_decides_whether_the_frame_embeddings_reach_the_answer(frames):
    m = tiny(task="localization", head_frames=frames).eval()
    assert (m.head.frame_proj is not None) == frames
    z, masks = torch.randn(B, T, 3, m.head.latent_dim), torch.rand(B, T, 3, R, R)
    first, last = torch.randn(B, m.head.frame_dim), torch.randn(B, m.head.frame_dim)
    logits = m.head(z, masks, first, last, "classes")
    moved = m.head(z, masks, first + 1.0, last - 1.0, "classes")
    assert logits.shape == (B, 36)
    assert torch.allclose(logits, moved) != frames          # without frame tokens, the frames cannot matter
    assert not torch.allclose(logits, m.head(z + 1.0, masks, first, last, "classes"))   # the slots always do
