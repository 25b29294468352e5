import pytest
import torch
import torch.nn.functional as F

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError
from slotvideo.models.aloe import Aloe, expected_grid_distance, labelled_videos
from slotvideo.models.monet import Monet

MONET = dict(resolution=16, num_slots=3, unet_channels=[8, 8], unet_hidden=16, encoder_channels=[8, 8],
             encoder_hidden=16, decoder_channels=[8])
SMALL = dict(dim=16, num_heads=2, num_layers=2, mlp_hidden=32, head_hidden=16, vocab_size=20, monet=MONET,
             resolution=16, resnet_channels=[8, 8], num_frames=4, max_question_length=5, max_choice_length=3,
             ablation_mlp_hidden=[32], dropout=0.0, target_frames=1, buffer_frames=0)
B, T = 4, 4


def model(**kw):
    torch.manual_seed(0)
    cfg = {**SMALL, **kw}
    if cfg.get("frontend") in ("resnet", "slots", "masks"):
        cfg["monet"] = {}
    return Aloe(Aloe.Config(**cfg))


def batch(kind="descriptive", b=B):
    g = torch.Generator().manual_seed(1)
    data = {"video": torch.rand(b, T, 3, 16, 16, generator=g), "scene_index": torch.arange(b)}
    if kind == "cater":
        data["label"] = torch.randint(0, 36, (b,), generator=g)
        return Batch(data)
    data["question"] = torch.randint(1, 20, (b, 5), generator=g)
    data["question"][:, -1] = 0
    if kind == "descriptive":
        data["answer"] = torch.randint(1, 22, (b,), generator=g)
    else:
        data["choices"] = torch.randint(1, 20, (b, 2, 3), generator=g)
        data["answer"] = torch.randint(0, 2, (b, 2), generator=g)
        data["question_type"] = torch.tensor([1, 2, 3, 1][:b])
    return Batch(data)


@pytest.mark.parametrize("encoder", ["global", "hierarchical", "mlp"])
@pytest.mark.parametrize("kind,shape", [("descriptive", (B, 22)), ("multiple_choice", (B, 2)), ("cater", (B, 36))])
def test_task_logit_shapes_for_every_encoder(encoder, kind, shape):
    m = model(encoder=encoder, task="cater" if kind == "cater" else "clevrer",
              max_choice_length=3 if encoder != "mlp" else 3)
    assert m.task_logits(batch(kind)).shape == shape


def test_one_pass_per_choice_each_choice_scored_alone():
    m = model().eval()
    mc = batch("multiple_choice")
    both = m.task_logits(mc)
    first = m.task_logits(mc.replace(choices=mc["choices"][:, :1], answer=mc["answer"][:, :1]))
    torch.testing.assert_close(both[:, :1], first)


def test_padded_words_do_not_change_the_answer():
    # the last question word is padding (id 0): whatever its embedding, no other token sees it
    m = model().eval()
    d = batch()
    before = m.task_logits(d)
    with torch.no_grad():
        m.word_embedding.weight[0] += 10 * torch.randn_like(m.word_embedding.weight[0])
    torch.testing.assert_close(m.task_logits(d), before)


@pytest.mark.parametrize("kind", ["descriptive", "multiple_choice"])
def test_gradients_never_reach_monet_from_aloe_losses(kind):
    m = model(aux_weight=1.0)
    d = batch(kind)
    latents = m.objects(d["video"])
    assert not latents.requires_grad
    logits = m.task_logits(d, latents)
    loss, _ = m.task_loss(d, logits)
    aux, _ = m.masked_prediction(d, latents)
    (loss + aux).backward()
    assert all(p.grad is None for p in m.monet.parameters())
    assert m.predictor.weight.grad is not None and m.cls.grad is not None and m.mask_token.grad is not None
    for name, p in m.encoder.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name


def test_frozen_checkpoint_front_end_gets_no_gradient_and_stays_in_eval(tmp_path, monkeypatch):
    torch.manual_seed(0)
    monet = Monet(Monet.Config(**MONET)).eval()
    import slotvideo.train.checkpoint as ckpt
    monkeypatch.setattr(ckpt, "load_model", lambda path: monet)
    m = model(frontend_checkpoint=str(tmp_path), monet={})
    m.train()
    assert not m.frozen.training and all(not p.requires_grad for p in m.frozen.parameters())
    names = {n for g in m.param_groups() for p in g.params for n, q in m.named_parameters() if q is p}
    assert not any(n.startswith("frozen.") for n in names)
    out = m(batch())
    out.loss.backward()
    assert all(p.grad is None for p in m.frozen.parameters())
    torch.testing.assert_close(out.slots, monet.object_latents(batch()["video"]))


def test_slot_model_front_end_gives_its_tracked_slots_as_tokens(tmp_path, monkeypatch):
    """``frontend: slots`` on a slot-attention video run: its slots of every frame are the object tokens,
    the model stays frozen and in eval mode (whole clips, not training windows)."""
    from slotvideo.models.slot_attention_video import SlotAttentionVideo

    torch.manual_seed(0)
    sa = SlotAttentionVideo(SlotAttentionVideo.Config(
        resolution=16, num_slots=3, slot_dim=12, hidden=16, feature_dim=8, encoder_channels=[8], decoder_channels=[8],
        broadcast_resolution=8, transition_hidden=16, train_frames=2, slot_init="learned")).eval()
    import slotvideo.train.checkpoint as ckpt
    monkeypatch.setattr(ckpt, "load_model", lambda path: sa)
    m = model(frontend="slots", frontend_checkpoint=str(tmp_path), task="cater")
    assert m.object_dim == 12 and m.num_slots_hint() == 3
    m.train()
    out = m(batch("cater"))
    assert out.slots.shape == (B, T, 3, 12)
    torch.testing.assert_close(out.slots, sa(Batch({"video": batch("cater")["video"]})).slots)
    out.loss.backward()
    assert all(p.grad is None for p in sa.parameters())


def test_monet_trained_alongside_has_its_own_group_and_pretrain_steps():
    m = model(monet_pretrain_steps=5)
    groups = {g.name: g for g in m.param_groups()}
    assert set(groups) == {"aloe", "monet"}
    assert len(groups["monet"].params) == len(list(m.monet.parameters()))
    m.on_step(0)
    out = m(batch())
    assert "ce_descriptive" not in out.terms and "monet_loss" in out.terms
    m.on_step(5)
    assert "ce_descriptive" in m(batch()).terms


def test_masked_tokens_are_replaced_by_the_learned_vector():
    m = model().eval()
    with torch.no_grad():
        m.mask_token.normal_()
    latents = torch.randn(2, T, 3, m.object_dim)
    keep = torch.ones(2, T, 3, dtype=torch.bool)
    keep[:, 1, 2] = False
    other = latents.clone()
    other[:, 1, 2] += 100.0   # the content of a masked object cannot matter
    a, _ = m.encode(latents, keep=keep)
    b, _ = m.encode(other, keep=keep)
    torch.testing.assert_close(a, b)
    c, _ = m.encode(other)
    assert not torch.allclose(a, c)


def test_contrastive_losses_against_brute_force():
    m = model()
    torch.manual_seed(3)
    pred, mu = torch.randn(2, 3, 4, 5), torch.randn(2, 3, 4, 5)
    target = torch.zeros(2, 3, 4, dtype=torch.bool)
    target[0, 1, 2] = target[1, 0, 0] = target[1, 2, 3] = True

    def brute(same_frame, temp, cosine):
        losses = []
        for b, t, i in target.nonzero().tolist():
            sim = (lambda x, y: F.cosine_similarity(x, y, dim=-1)) if cosine else (lambda x, y: (x * y).sum(-1))
            cands = mu[b, t] if same_frame else mu[b].reshape(-1, 5)
            scores = sim(pred[b, t, i][None], cands) / temp
            pos = sim(pred[b, t, i], mu[b, t, i]) / temp
            losses.append(-(pos - torch.logsumexp(scores, 0)))
        return torch.stack(losses).mean()

    for negatives in ("video", "frame"):
        for temp in (1.0, 0.3):
            for similarity in ("dot", "cosine"):
                m.cfg.aux_loss, m.cfg.negatives, m.cfg.temperature, m.cfg.similarity = \
                    "contrastive", negatives, temp, similarity
                torch.testing.assert_close(m.aux_loss(pred, mu, target), brute(negatives == "frame", temp,
                                                                              similarity == "cosine"))
    m.cfg.aux_loss = "l2"
    torch.testing.assert_close(m.aux_loss(pred, mu, target), (pred - mu).square().sum(-1)[target].mean())


def test_sub_batches_and_label_fraction():
    m = model(aux_weight=1.0, unsupervised_fraction=0.5)
    out = m(batch(b=4))
    assert out.terms["supervised"].item() == 2 and "aux" in out.terms
    ids = torch.arange(2000)
    share = labelled_videos(ids, 0.25).float().mean().item()
    assert 0.2 < share < 0.3
    assert torch.equal(labelled_videos(ids, 0.25), labelled_videos(ids, 0.25))
    assert (labelled_videos(ids, 0.25) <= labelled_videos(ids, 0.5)).all()   # nested subsets
    none = model(aux_weight=0.0, label_fraction=0.0)(batch())
    assert "supervised" not in none.terms and "aux" not in none.terms
    # no MONet trained alongside: a batch with nothing to learn from is a zero step, not an error
    m = model(frontend="resnet", aux_weight=0.0, label_fraction=0.0)
    none = m(batch())
    none.loss.backward()
    assert none.loss.item() == 0.0
    assert all(p.grad is not None and not p.grad.any() for p in m.parameters() if p.requires_grad)


def test_cater_l1_loss_is_the_expected_grid_distance():
    logits = torch.full((1, 36), -1e4)
    logits[0, 7] = 0.0                      # row 1, col 1
    torch.testing.assert_close(expected_grid_distance(logits, torch.tensor([14])), torch.tensor([2.0]))
    m = model(task="cater", l1_weight=1.0)
    out = m(batch("cater"))
    assert "l1_loss" in out.terms
    metrics = m.eval().evaluate_batch(batch("cater"))
    assert set(metrics) == {"loss", "top1", "top5", "l1"} and metrics["top1"].shape == (B,)


def test_evaluate_batch_per_type_option_accuracy():
    m = model().eval()
    metrics = m.evaluate_batch(batch("multiple_choice"))
    assert torch.isnan(metrics["option_acc_predictive"][[0, 2, 3]]).all()
    assert not torch.isnan(metrics["option_acc_predictive"][1])


def test_cls_attention_over_objects_sums_to_at_most_one():
    m = model().eval()
    w = m.cls_attention(batch())
    assert w.shape == (B, 2, T, 3)
    assert (w.sum((-1, -2)) <= 1 + 1e-5).all() and (w >= 0).all()


@pytest.mark.parametrize("frontend", ["resnet"])
def test_a_few_steps_lower_the_task_loss(frontend):
    m = model(frontend=frontend, aux_weight=0.0, dropout=0.0)
    d = batch()
    opt = torch.optim.Adam([p for g in m.param_groups() if g.name == "aloe" for p in g.params], lr=3e-3)
    first = None
    for _ in range(30):
        opt.zero_grad()
        out = m(d)
        loss = out.terms["ce_descriptive"]
        first = loss.item() if first is None else first
        (out.loss - out.terms.get("monet_loss", 0.0)).backward()
        opt.step()
    assert m(d).terms["ce_descriptive"].item() < 0.5 * first


def test_bad_config_and_input():
    with pytest.raises(ConfigError, match="model.dim"):
        model(dim=15, num_heads=3, head_dim=5)
    with pytest.raises(ConfigError, match="frontend_checkpoint"):
        model(frontend="slots")
    with pytest.raises(ConfigError, match="model.l1_weight is the CATER"):
        model(l1_weight=1.0)                     # task clevrer: the grid-distance loss would be ignored
    with pytest.raises(ConfigError, match="needs videos of"):
        model(masking="infill_scene", target_frames=3, buffer_frames=1)(batch())
    with pytest.raises(ShapeError, match="vocab_size"):
        model().task_logits(batch().replace(question=torch.full((B, 5), 99)))


def test_answer_video_descriptive_and_per_choice():
    from omegaconf import OmegaConf

    from slotvideo.data.vocab import ClevrerVocab, Vocabulary
    from slotvideo.eval.answer import answer_video, format_answer

    m = model().eval()
    vocab = ClevrerVocab(Vocabulary("what color is the cube".split()), Vocabulary("the cube moves".split()))
    cfg = OmegaConf.create({"data": {"name": "clevrer", "cache_dir": None, "params": {}}})
    video = torch.rand(1, T, 3, 16, 16)
    desc = answer_video(m, cfg, video, "What color is the cube?", vocab=vocab)
    assert desc.kind == "descriptive" and desc.answer is not None and len(desc.top) == 3
    mc = answer_video(m, cfg, video, "what color is the cube", ["the cube moves", "the sphere moves"], vocab=vocab)
    assert [c[0] for c in mc.choices] == ["the cube moves", "the sphere moves"]
    assert "correct" in format_answer(mc) or "wrong" in format_answer(mc)
    cater = answer_video(model(task="cater").eval(), cfg, video)
    assert cater.kind == "cater" and cater.answer.startswith("row")


def test_masks_front_end_reads_ground_truth_objects():
    """``frontend: masks``: tokens from the batch's instance masks (a visible object's centroid, colour; zeros
    when hidden), gradients reach Aloe, and a batch without masks is refused with a clear error."""
    from slotvideo.models.mask_objects import FEATURES, mask_objects

    m = model(frontend="masks", task="cater", mask_objects=3)
    assert m.object_dim == FEATURES and m.num_slots_hint() == 3
    seg = torch.zeros(B, T, 16, 16, dtype=torch.long)
    seg[:, :, 2:4, 12:14] = 1          # object 1: 2x2 pixels, top right
    seg[:, :2, 8:12, 0:4] = 3          # object 3: visible in the first two frames only
    data = batch("cater")
    video = data["video"]
    tokens = mask_objects(video, seg, 3)
    assert tokens.shape == (B, T, 3, FEATURES)
    assert torch.equal(tokens[..., 0, 0], torch.ones(B, T)) and torch.equal(tokens[..., 1, :], torch.zeros(B, T, FEATURES))
    torch.testing.assert_close(tokens[0, 0, 0, 1], torch.tensor(4 / 256))                  # area
    rows = torch.linspace(-1, 1, 16)
    torch.testing.assert_close(tokens[0, 0, 0, 2:4], torch.stack([rows[2:4].mean(), rows[12:14].mean()]))
    torch.testing.assert_close(tokens[0, 0, 0, 6:], video[0, 0, :, 2:4, 12:14].mean((-2, -1)) * 2 - 1)
    assert torch.equal(tokens[:, 2:, 2], torch.zeros(B, T - 2, FEATURES))                   # hidden: zeros
    out = m(data.replace(segmentation=seg))
    torch.testing.assert_close(out.slots, tokens)
    out.loss.backward()
    assert all(p.grad is not None for p in m.cater_head.parameters()) and m.lift[0].weight.grad is not None
    with pytest.raises(DataError, match="segmentation"):
        m(data)
    with pytest.raises(ShapeError, match="instance id 4"):
        mask_objects(video, seg + 1, 3)
    with pytest.raises(ConfigError, match="frontend_checkpoint"):
        model(frontend="masks", frontend_checkpoint="runs/x")
