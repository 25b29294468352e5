"""Aloe (Ding et al. 2021): attention over learned object embeddings, for video QA and snitch localization.

**Tokens** (seed-model-details.md 1.1). The object latents ``mu_ti`` of every frame, frame-major, each with a
modality one-hot ``[0, 1]``; the question's words and (multiple choice) the choice's words, embedded to
``object_dim - 2`` dims plus a segment one-hot (question ``[1, 0]`` / choice ``[0, 1]``) and the modality
one-hot ``[1, 0]``; a learned CLS vector (zero-initialised). All tokens are ``object_dim + 2`` wide and are
lifted to the model width by Linear + ReLU. Layout: ``[CLS, question, choice, objects]``.

**Transformer**: pre-LN, Transformer-XL relative positions over the flat sequence at every layer (exact
offsets; the official release's wrap-around ``rel_shift`` is a quirk of its un-masked use). Our choice:
padded word positions are masked as keys (the release attends to them).

**Heads** on the CLS output, each an MLP with one hidden layer (``head_hidden``): a softmax over the
descriptive answers; one logit per multiple-choice option (one pass per (question, choice) pair, batched
by folding the choices into the batch; trained with per-choice sigmoid cross-entropy, as the release's
``logit >= 0`` decision implies); a softmax over the 36 grid cells (CATER), optionally plus the expected
L1 grid distance under the predicted distribution (our differentiable reading of the "L1 loss").

**Self-supervised loss** (2.1, A.2): masked object tokens are replaced by a learned vector (the whole
token, ids included), and ``f`` (a linear map from the model width to ``object_dim``) predicts their
latent from the transformer output; L2 or contrastive loss (negatives from the whole video or the same
frame, temperature, dot or cosine similarity), averaged over the targets of the six masking schemes of
:mod:`slotvideo.models.aloe_masking`, weighted by ``aux_weight`` (lambda). Latents are detached: the
gradients reach only the transformer, the token maps and ``f``, never the object front-end.

**Training** (A.3): the last ``unsupervised_fraction`` of every batch is the unsupervised sub-batch (aux loss
only, masked pass); the rest is the supervised sub-batch (task loss, unmasked pass), restricted to the
videos whose labels may be used (``label_fraction`` of videos, chosen by a hash of ``scene_index`` /
``video_index``, so the same videos stay labelled across epochs and runs). A mixed CLEVRER batch (loader
``task: mixed``) has its supervised sub-batch split into descriptive and multiple-choice questions, each
with its own head and mean loss, summed (:mod:`slotvideo.models.reasoning_task`); the split follows the
data rather than the paper's fixed 4 + 4. The masked pass of a mixed batch reads each sample's first
choice row, which is all padding (masked as keys) for descriptive questions.

**Ablations** (Table 1) are switches: ``encoder: mlp`` (fully connected layers on the flattened sequence),
``encoder: hierarchical`` (attention within frames, then across frame vectors), ``frontend: resnet``
(ResNet hyper-pixels trained with the model), ``aux_weight: 0``. ``frontend: slots`` runs Aloe on the
slots of any slotvideo model run (a ``forward`` that returns ``slots``). ``frontend: masks`` is a diagnostic
beyond the paper: tokens from the data's ground-truth instance masks (:mod:`slotvideo.models.mask_objects`,
``mask_objects`` tokens per frame), to see what the reasoning model does when perception is perfect.

**Front-end** ``monet``: from ``frontend_checkpoint`` (a MONet run, frozen), or, when it is empty, a MONet
built from ``monet`` and trained alongside on the same videos with its own loss (``monet_pretrain_steps``
of MONet alone first) -- so a config trains with no preparation step.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from slotvideo.data.batch import Batch
from slotvideo.errors import ConfigError, DataError, ShapeError, check_range, check_shape, check_token_ids
from slotvideo.models.aloe_masking import SCHEMES, check_scheme, sample_masks
from slotvideo.models.base import Output, ParamGroup, VideoModel
from slotvideo.models.monet import Monet
from slotvideo.models.reasoning_task import (MixedLogits, ReasoningTask, TaskConfig, choice_pairs,
                                             expected_grid_distance, output_logits, scatter_pairs, select_rows)
from slotvideo.models.mask_objects import FEATURES as MASK_FEATURES
from slotvideo.models.mask_objects import mask_objects
from slotvideo.nn.encoders import ResNet
from slotvideo.nn.mlp import MLP
from slotvideo.nn.transformer import TransformerEncoder
from slotvideo.registry import register

FRONTENDS = ("monet", "slots", "resnet", "masks")
ENCODERS = ("global", "hierarchical", "mlp")
__all__ = ["Aloe", "FlatMLPEncoder", "HierarchicalEncoder", "expected_grid_distance", "labelled_videos"]


def labelled_videos(ids: Tensor, fraction: float) -> Tensor:
    """Bool ``[B]``: whether video ``ids`` belong to the labelled ``fraction`` (a fixed hash of the id)."""
    if fraction >= 1.0:
        return torch.ones_like(ids, dtype=torch.bool)
    h = (ids.long() * 2654435761 + 12345) % (2 ** 32)
    return h.double() / 2 ** 32 < fraction


class HierarchicalEncoder(nn.Module):
    """The ablation of section 2: a transformer within each frame (its objects + the words), the frame's
    object outputs concatenated and projected to one frame vector, then a transformer over
    ``[CLS, words, frame vectors]``. An object's output is its within-frame output plus its frame's output
    (so the masked-object loss still has a per-object prediction that saw other frames)."""

    def __init__(self, dim: int, num_slots: int, first_layers: int, second_layers: int, **block: Any) -> None:
        super().__init__()
        self.within = TransformerEncoder(first_layers, dim, **block)
        self.frame = nn.Linear(num_slots * dim, dim)
        self.across = TransformerEncoder(second_layers, dim, **block)

    def forward(self, x: Tensor, pad: Tensor, prefix: int, frames: int, slots: int) -> Tensor:
        b = x.shape[0]
        words, wpad = x[:, 1:prefix], pad[:, 1:prefix]
        objects = x[:, prefix:].unflatten(1, (frames, slots))
        n_words = words.shape[1]
        inner = torch.cat([words[:, None].expand(-1, frames, -1, -1), objects], dim=2)
        inner_pad = torch.cat([wpad[:, None].expand(-1, frames, -1),
                               torch.zeros(b, frames, slots, dtype=torch.bool, device=x.device)], dim=2)
        h1 = self.within(inner, key_padding_mask=inner_pad)[:, :, n_words:]          # [B, T, K, D]
        frame_vectors = self.frame(h1.flatten(2))                                     # [B, T, D]
        outer_pad = torch.cat([pad[:, :prefix], torch.zeros(b, frames, dtype=torch.bool, device=x.device)], dim=1)
        h2 = self.across(torch.cat([x[:, :prefix], frame_vectors], dim=1), key_padding_mask=outer_pad)
        return torch.cat([h2[:, :prefix], (h1 + h2[:, prefix:, None]).flatten(1, 2)], dim=1)


class FlatMLPEncoder(nn.Module):
    """The MLP ablation: fully connected layers on the whole flattened (padded) sequence, back to tokens.

    The sequence is padded to ``1 + max_question + max_choice + frames * slots`` tokens (padded tokens are
    zero), so the MLP needs the clip length in advance (``num_frames``)."""

    def __init__(self, dim: int, hidden: list[int], max_prefix: int, num_objects: int) -> None:
        super().__init__()
        self.max_prefix, self.num_objects, self.dim = max_prefix, num_objects, dim
        n = (max_prefix + num_objects) * dim
        self.mlp = MLP(n, hidden, n)

    def forward(self, x: Tensor, pad: Tensor, prefix: int, frames: int, slots: int) -> Tensor:
        if prefix > self.max_prefix or frames * slots != self.num_objects:
            raise ShapeError(f"the MLP encoder was built for <= {self.max_prefix - 1} words and {self.num_objects} "
                             f"object tokens (model.num_frames x slots), got {prefix - 1} words and "
                             f"{frames} x {slots} objects")
        x = x.masked_fill(pad[..., None], 0.0)
        words = F.pad(x[:, :prefix], (0, 0, 0, self.max_prefix - prefix))
        flat = torch.cat([words, x[:, prefix:]], dim=1).flatten(1)
        out = self.mlp(flat).unflatten(1, (-1, self.dim))
        return torch.cat([out[:, :prefix], out[:, self.max_prefix:]], dim=1)


@register("model", "aloe")
class Aloe(ReasoningTask, VideoModel):
    """Aloe on object latents from a MONet (or any slot model, or ResNet hyper-pixels).

    Task loss and evaluation metrics come from :class:`~slotvideo.models.reasoning_task.ReasoningTask`."""

    @dataclass
    class Config(TaskConfig):
        # task, num_answers, num_classes, vocab_size, l1_weight: TaskConfig
        # object front-end
        frontend: str = field(default="monet", metadata={"choices": FRONTENDS})
        frontend_checkpoint: str = ""       # a MONet / slot-model run dir or .ckpt; "" trains a MONet alongside
        monet: dict[str, Any] = field(default_factory=dict)           # keys of Monet.Config (trained alongside)
        monet_pretrain_steps: int = field(default=0, metadata={"min": 0})
        monet_optimizer: str = "main"       # optimizer (optim.<name>) of the MONet trained alongside
        resolution: int = field(default=64, metadata={"min": 4})      # frames (resnet front-end)
        resnet_channels: list[int] = field(default_factory=lambda: [32, 32, 32])  # stride 2 each
        mask_objects: int = field(default=8, metadata={"min": 1})    # tokens per frame (masks front-end)
        # transformer
        encoder: str = field(default="global", metadata={"choices": ENCODERS})
        dim: int = field(default=128, metadata={"min": 2})
        num_heads: int = field(default=8, metadata={"min": 1})
        head_dim: int = field(default=0, metadata={"min": 0})         # 0: dim / num_heads
        num_layers: int = field(default=4, metadata={"min": 1})
        hierarchical_layers: int = field(default=2, metadata={"min": 1})   # within-frame stage
        mlp_hidden: int = field(default=512, metadata={"min": 1})
        dropout: float = field(default=0.1, metadata={"min": 0.0, "max": 1.0})
        head_hidden: int = field(default=128, metadata={"min": 1})
        ablation_mlp_hidden: list[int] = field(default_factory=lambda: [512, 512, 512, 512])
        max_question_length: int = field(default=20, metadata={"min": 1})  # MLP ablation only
        max_choice_length: int = field(default=12, metadata={"min": 0})    # MLP ablation only
        num_frames: int = field(default=25, metadata={"min": 1})           # MLP ablation only
        shuffle_objects: bool = False       # one random slot permutation per batch (all frames), as the release
        cache_latents: bool = True          # memoise a frozen front-end's latents per clip (CPU cost knob)
        # self-supervised loss
        aux_weight: float = field(default=0.01, metadata={"min": 0.0})     # lambda; 0 = no auxiliary loss
        aux_loss: str = field(default="l2", metadata={"choices": ("l2", "contrastive")})
        negatives: str = field(default="video", metadata={"choices": ("video", "frame")})
        temperature: float = field(default=1.0, metadata={"min": 1e-6})
        similarity: str = field(default="dot", metadata={"choices": ("dot", "cosine")})
        masking: str = field(default="one_per_frame", metadata={"choices": SCHEMES})
        mask_prob: float = field(default=0.15, metadata={"min": 0.0, "max": 1.0})
        target_frames: int = field(default=3, metadata={"min": 1})
        buffer_frames: int = field(default=3, metadata={"min": 0})
        # batches (A.3)
        unsupervised_fraction: float = field(default=0.5, metadata={"min": 0.0, "max": 1.0})
        label_fraction: float = field(default=1.0, metadata={"min": 0.0, "max": 1.0})

    def __init__(self, cfg: "Aloe.Config | None" = None) -> None:
        super().__init__()
        cfg = self.configure(cfg)
        self.step = 0
        self._latent_cache: dict[str, Tensor] = {}
        self._probe: Tensor | None = None
        self.monet: Monet | None = None          # trained alongside
        self.frozen: nn.Module | None = None     # loaded from a checkpoint, never trained
        self.resnet: ResNet | None = None
        self.object_dim = self._build_frontend(cfg)
        if self.object_dim < 3:
            raise ConfigError(f"the object latents must have >= 3 dims (words use object_dim - 2), got {self.object_dim}")
        width = self.object_dim + 2
        # questions and choices have their own vocabularies (slotvideo.data.vocab), so their own tables
        self.word_embedding = nn.Embedding(cfg.vocab_size, self.object_dim - 2)
        self.choice_embedding = nn.Embedding(cfg.vocab_size, self.object_dim - 2)
        self.cls = nn.Parameter(torch.zeros(width))
        self.mask_token = nn.Parameter(torch.zeros(width))
        self.lift = nn.Sequential(nn.Linear(width, cfg.dim), nn.ReLU())
        block = dict(num_heads=cfg.num_heads, head_dim=cfg.head_dim or None, mlp_hidden=cfg.mlp_hidden,
                     dropout=cfg.dropout, relative_position=True, qkv_bias=False)
        if cfg.encoder == "global":
            self.encoder: nn.Module = TransformerEncoder(cfg.num_layers, cfg.dim, **block)
        elif cfg.encoder == "hierarchical":
            self.encoder = HierarchicalEncoder(cfg.dim, self.num_slots_hint(), cfg.hierarchical_layers,
                                               cfg.num_layers, **block)
        else:
            prefix = 1 + cfg.max_question_length + cfg.max_choice_length
            self.encoder = FlatMLPEncoder(cfg.dim, list(cfg.ablation_mlp_hidden), prefix,
                                          cfg.num_frames * self.num_slots_hint())
        self.descriptive_head = MLP(cfg.dim, [cfg.head_hidden], cfg.num_answers)
        self.choice_head = MLP(cfg.dim, [cfg.head_hidden], 1)
        self.cater_head = MLP(cfg.dim, [cfg.head_hidden], cfg.num_classes)
        self.predictor = nn.Linear(cfg.dim, self.object_dim)   # f of eq. (aux loss)

    # ------------------------------------------------------------------ construction
    @staticmethod
    def validate(cfg: "Aloe.Config") -> None:
        cfg.validate_task()
        check_scheme(cfg.masking, None, cfg.target_frames, cfg.buffer_frames, cfg.mask_prob, key="model.masking")
        head_dim = cfg.head_dim or cfg.dim // cfg.num_heads
        if not cfg.head_dim and cfg.dim % cfg.num_heads:
            raise ConfigError(f"model.dim ({cfg.dim}) must be divisible by model.num_heads ({cfg.num_heads}) "
                              "unless model.head_dim is set")
        check_range(head_dim, "model.head_dim", low=1, integer=True)
        if cfg.dim % 2:
            raise ConfigError(f"model.dim must be even (relative position sinusoids), got {cfg.dim}")
        if cfg.frontend != "monet" and cfg.monet:
            raise ConfigError("model.monet configures the MONet front-end; set model.frontend: monet or remove it")
        if cfg.frontend == "slots" and not cfg.frontend_checkpoint:
            raise ConfigError("model.frontend: slots needs model.frontend_checkpoint (a run of a slot model)")
        if cfg.frontend == "resnet" and cfg.frontend_checkpoint:
            raise ConfigError("model.frontend: resnet is trained with the model; remove model.frontend_checkpoint")
        if cfg.frontend == "masks" and cfg.frontend_checkpoint:
            raise ConfigError("model.frontend: masks reads the data's instance masks; remove model.frontend_checkpoint")
        if cfg.frontend == "resnet" and not cfg.resnet_channels:
            raise ConfigError("model.resnet_channels must name at least one stage")
        if cfg.encoder == "mlp" and not cfg.ablation_mlp_hidden:
            raise ConfigError("model.ablation_mlp_hidden must name at least one layer")

    @classmethod
    def check_config(cls, model_cfg: "Aloe.Config", full_cfg: Any) -> None:
        cls.validate(model_cfg)
        groups = set(full_cfg.optim)
        if model_cfg.frontend == "monet" and not model_cfg.frontend_checkpoint and model_cfg.monet_optimizer not in groups:
            raise ConfigError(f"model.monet_optimizer: no optimizer optim.{model_cfg.monet_optimizer}; "
                              f"the config has {sorted(groups)}")
        if model_cfg.frontend == "monet" and not model_cfg.frontend_checkpoint:
            Monet.validate(Monet.Config(**model_cfg.monet))

    def _build_frontend(self, cfg: "Aloe.Config") -> int:
        if cfg.frontend == "masks":
            return MASK_FEATURES
        if cfg.frontend == "resnet":
            self.resnet = ResNet(3, list(cfg.resnet_channels), blocks=1, strides=2, norm="group")
            return cfg.resnet_channels[-1]
        if cfg.frontend_checkpoint:
            from slotvideo.train.checkpoint import load_model  # above models: imported only when asked for

            model = load_model(cfg.frontend_checkpoint)
            if cfg.frontend == "monet" and not isinstance(model, Monet):
                raise ConfigError(f"model.frontend_checkpoint: {cfg.frontend_checkpoint} is a "
                                  f"{type(model).__name__} run, not a MONet run (use model.frontend: slots)")
            for p in model.parameters():
                p.requires_grad_(False)
            self.frozen = model.eval()
            return self._probe_dim(model)
        try:
            monet_cfg = Monet.Config(**cfg.monet)
        except TypeError as e:
            raise ConfigError(f"model.monet: {e}") from None
        self.monet = Monet(monet_cfg)
        return monet_cfg.latent_dim

    def _probe_dim(self, model: nn.Module) -> int:
        if isinstance(model, Monet):
            return model.cfg.latent_dim
        res = getattr(getattr(model, "cfg", None), "resolution", 32)
        with torch.no_grad():
            slots = self._slots_of(model, torch.zeros(1, 1, 3, res, res))
        return slots.shape[-1]

    def num_slots_hint(self) -> int:
        """Object tokens per frame (fixed sizes are needed by the hierarchical and MLP encoders)."""
        if self.resnet is not None:
            side = self.cfg.resolution
            for _ in self.cfg.resnet_channels:
                side = (side + 1) // 2
            return side * side
        if self.monet is not None:
            return self.monet.cfg.num_slots
        if self.cfg.frontend == "masks":
            return self.cfg.mask_objects
        frozen = self.frozen
        if isinstance(frozen, Monet):
            return frozen.cfg.num_slots
        k = getattr(getattr(frozen, "cfg", None), "num_slots", None)
        if k is None:
            raise ConfigError("model.frontend_checkpoint: cannot tell the number of slots of this model")
        return int(k)

    def train(self, mode: bool = True) -> "Aloe":
        super().train(mode)
        if self.frozen is not None:
            self.frozen.eval()  # a loaded front-end stays in inference mode
        return self

    def param_groups(self) -> list[ParamGroup]:
        own = [p for n, p in self.named_parameters() if p.requires_grad and not n.startswith(("monet.", "frozen."))]
        groups = [ParamGroup(own, name="aloe")]
        if self.monet is not None:
            groups.append(ParamGroup(list(self.monet.parameters()), optimizer=self.cfg.monet_optimizer, name="monet"))
        return groups

    def on_step(self, step: int) -> None:
        self.step = step

    # ------------------------------------------------------------------ objects
    @staticmethod
    def _slots_of(model: nn.Module, video: Tensor) -> Tensor:
        if hasattr(model, "object_latents"):
            return model.object_latents(video)
        out = model(Batch({"video": video}))
        if getattr(out, "slots", None) is None:
            raise ConfigError(f"model.frontend_checkpoint: {type(model).__name__} returns no slots")
        return out.slots

    def objects(self, video: Tensor, segmentation: Tensor | None = None) -> Tensor:
        """Object tokens' latents ``[B, T, K, object_dim]``; detached unless they are ResNet hyper-pixels.
        ``segmentation`` (instance ids ``[B, T, H, W]``) is read by the ``masks`` front-end only."""
        check_shape(video, "B T 3 H W", "video")
        if self.cfg.frontend == "masks":
            if segmentation is None:
                raise DataError("model.frontend: masks needs 'segmentation' in the batch (ground-truth instance "
                                "masks, e.g. data.params.masks: true)")
            return mask_objects(video, segmentation, self.cfg.mask_objects)
        if self.resnet is not None:
            features = self.resnet(video * 2.0 - 1.0)                       # [B, T, C, h, w]
            return features.flatten(-2).transpose(-1, -2)
        if self.frozen is None:
            with torch.no_grad():
                return self._slots_of(self.monet, video).detach()
        return self._cached_slots(video)

    def batch_objects(self, batch: Batch) -> Tensor:
        """:meth:`objects` of a batch's video (and its ``segmentation``, when it has one)."""
        return self.objects(batch["video"], batch["segmentation"] if "segmentation" in batch else None)

    @torch.no_grad()
    def _cached_slots(self, video: Tensor) -> Tensor:
        """Latents of a frozen front-end, memoised per clip (the paper also trains on pre-extracted latents).

        A clip is recognised by a fingerprint of its pixels (a fixed random projection), so randomly
        sampled clips of the same video are distinct entries and nothing stale is ever returned."""
        if not self.cfg.cache_latents:
            return self._slots_of(self.frozen, video).detach()
        flat = video.reshape(video.shape[0], -1).double()
        if self._probe is None or self._probe.numel() != flat.shape[1]:
            self._probe = torch.rand(flat.shape[1], generator=torch.Generator().manual_seed(0),
                                     dtype=torch.float64).to(video.device)
        keys = [f"{v:.10e}" for v in (flat @ self._probe).tolist()]
        missing = [i for i, k in enumerate(keys) if k not in self._latent_cache]
        if missing:
            fresh = self._slots_of(self.frozen, video[missing]).detach().cpu()
            for i, latent in zip(missing, fresh):
                self._latent_cache[keys[i]] = latent
        return torch.stack([self._latent_cache[k] for k in keys]).to(video.device)

    # ------------------------------------------------------------------ tokens and transformer
    def _word_tokens(self, ids: Tensor, segment: int) -> Tensor:
        check_token_ids(ids, self.cfg.vocab_size, "question" if segment == 0 else "choice")
        ids_onehot = ids.new_zeros(*ids.shape, 4, dtype=torch.float)
        ids_onehot[..., segment] = 1.0     # segment: question [1, 0] / choice [0, 1]
        ids_onehot[..., 2] = 1.0           # modality: word [1, 0]
        table = self.word_embedding if segment == 0 else self.choice_embedding
        return torch.cat([table(ids), ids_onehot.to(self.cls.dtype)], dim=-1)

    def encode(self, latents: Tensor, question: Tensor | None = None, choice: Tensor | None = None,
               keep: Tensor | None = None) -> tuple[Tensor, int]:
        """Transformer outputs ``[B, N, dim]`` of ``[CLS, question, choice, objects]`` and the number of
        tokens before the objects. ``keep`` (bool ``[B, T, K]``, False = masked) applies a masking scheme."""
        check_shape(latents, "B T K D", "object latents", D=self.object_dim)
        b, t, k = latents.shape[:3]
        objects = torch.cat([latents, latents.new_tensor([0.0, 1.0]).expand(b, t, k, 2)], dim=-1)
        if keep is not None:
            check_shape(keep, f"{b} {t} {k}", "keep")
            objects = torch.where(keep[..., None], objects, self.mask_token.to(objects.dtype))
        parts = [self.cls.expand(b, 1, -1)]
        pads = [torch.zeros(b, 1, dtype=torch.bool, device=latents.device)]
        for ids, segment in ((question, 0), (choice, 1)):
            if ids is not None:
                check_shape(ids, f"{b} L", "question" if segment == 0 else "choice")
                parts.append(self._word_tokens(ids, segment))
                pads.append(ids == 0)
        prefix = sum(p.shape[1] for p in parts)
        x = self.lift(torch.cat(parts + [objects.flatten(1, 2)], dim=1))
        pad = torch.cat(pads + [torch.zeros(b, t * k, dtype=torch.bool, device=x.device)], dim=1)
        if self.cfg.encoder == "global":
            return self.encoder(x, key_padding_mask=pad), prefix
        return self.encoder(x, pad, prefix, t, k), prefix

    # ------------------------------------------------------------------ heads
    def task_logits(self, batch: Batch, latents: Tensor | None = None) -> Tensor | MixedLogits:
        """Descriptive ``[B, num_answers]``, multiple choice ``[B, C]`` (one pass per choice), CATER ``[B, 36]``;
        :class:`MixedLogits` for a mixed batch."""
        latents = self.batch_objects(batch) if latents is None else latents
        return self.logits_by_kind(
            batch, lambda kind, part, rows: self._kind_logits(kind, part, latents if rows is None else latents[rows]))

    def _kind_logits(self, task: str, batch: Batch, latents: Tensor) -> Tensor:
        if task == "cater":
            out, _ = self.encode(latents)
            return self.cater_head(out[:, 0])
        question = batch["question"]
        if task == "descriptive":
            out, _ = self.encode(latents, question)
            return self.descriptive_head(out[:, 0])
        choices = batch["choices"]
        b, c = check_shape(choices, "B C L", "choices", B=question.shape[0])["B"], choices.shape[1]
        pairs = choice_pairs(batch)
        sample = pairs.div(c, rounding_mode="floor")
        out, _ = self.encode(latents[sample], question[sample], choices.flatten(0, 1)[pairs])
        return scatter_pairs(self.choice_head(out[:, 0]).reshape(-1), pairs, b, c)

    # ------------------------------------------------------------------ self-supervised loss
    def aux_loss(self, predictions: Tensor, latents: Tensor, target: Tensor) -> Tensor:
        """Mean over the targets of ``l(f(mu'_ti), mu)``; ``predictions``/``latents`` ``[B, T, K, D]``."""
        if not bool(target.any()):
            return predictions.sum() * 0.0
        if self.cfg.aux_loss == "l2":
            return (predictions - latents).square().sum(-1)[target].mean()
        p, m = predictions, latents
        if self.cfg.similarity == "cosine":
            p, m = F.normalize(p, dim=-1), F.normalize(m, dim=-1)
        if self.cfg.negatives == "frame":
            scores = torch.einsum("btkd,btjd->btkj", p, m) / self.cfg.temperature
            log_p = scores.log_softmax(-1).diagonal(dim1=-2, dim2=-1)              # [B, T, K]
        else:
            b, t, k, _ = p.shape
            scores = torch.einsum("btkd,bsjd->btksj", p, m).flatten(-2) / self.cfg.temperature
            own = torch.arange(t * k, device=p.device).reshape(1, t, k, 1).expand(b, -1, -1, -1)
            log_p = scores.log_softmax(-1).gather(-1, own).squeeze(-1)
        return -log_p[target].mean()

    def masked_prediction(self, batch: Batch, latents: Tensor) -> tuple[Tensor, Tensor]:
        """The auxiliary loss on ``batch`` (a masked pass) and the fraction of tokens that were targets."""
        b, t, k, _ = latents.shape
        keep, target = sample_masks(self.cfg.masking, b, t, k, mask_prob=self.cfg.mask_prob,
                                    target_frames=self.cfg.target_frames, buffer_frames=self.cfg.buffer_frames,
                                    device=latents.device)
        question = batch["question"] if self.cfg.task == "clevrer" and "question" in batch else None
        choice = batch["choices"][:, 0] if question is not None and "choices" in batch else None
        out, prefix = self.encode(latents, question, choice, keep=keep)
        predictions = self.predictor(out[:, prefix:]).reshape(b, t, k, -1)
        return self.aux_loss(predictions, latents.detach(), target), target.float().mean()

    # ------------------------------------------------------------------ training
    def forward(self, batch: Batch) -> Output:
        video = batch["video"]
        terms: dict[str, Tensor] = {}
        loss = video.new_zeros(())
        if self.monet is not None:
            monet_out = self.monet(batch)
            loss = loss + monet_out.loss
            terms.update({f"monet_{k}": v for k, v in monet_out.terms.items()})
            terms["monet_loss"] = monet_out.loss.detach()
            if self.step < self.cfg.monet_pretrain_steps:
                return Output(loss=loss, terms=terms)
        latents = self.batch_objects(batch)
        if self.cfg.shuffle_objects and self.training:
            latents = latents[:, :, torch.randperm(latents.shape[2], device=latents.device)]
        b = latents.shape[0]
        n_unsup = int(round(b * self.cfg.unsupervised_fraction)) if self.cfg.aux_weight > 0 else 0
        n_unsup = min(n_unsup, b - 1) if b > 1 else n_unsup
        sup = torch.arange(b, device=video.device) < b - n_unsup
        if self.cfg.label_fraction < 1.0:
            sup &= labelled_videos(self._video_ids(batch).to(video.device), self.cfg.label_fraction)
        logits: Tensor | MixedLogits | None = None
        if self._has_labels(batch) and bool(sup.any()):
            index = sup.nonzero().squeeze(1)
            sub = select_rows(batch, index)
            logits = self.task_logits(sub, latents[index])
            task_loss, task_terms = self.task_loss(sub, logits)
            loss = loss + task_loss
            terms.update(task_terms)
            terms["supervised"] = torch.tensor(float(len(index)))
        if n_unsup:
            index = torch.arange(b - n_unsup, b, device=video.device)
            aux, share = self.masked_prediction(select_rows(batch, index), latents[index])
            loss = loss + self.cfg.aux_weight * aux
            terms.update(aux=aux.detach(), target_share=share)
        if not loss.requires_grad:
            # nothing to learn from in this batch (no labelled video, no aux sub-batch: label_fraction < 1 with
            # aux_weight 0): a zero loss still tied to the parameters, so backward and DDP see every one
            loss = loss + sum(p.sum() for p in self.parameters() if p.requires_grad) * 0.0
        return Output(loss=loss, terms=terms, slots=latents, **output_logits(logits))

    @staticmethod
    def _video_ids(batch: Batch) -> Tensor:
        for key in ("scene_index", "video_index"):
            if key in batch:
                return batch[key].reshape(-1)
        raise DataError("model.label_fraction < 1 needs batches with 'scene_index' or 'video_index' to decide "
                        "which videos are labelled")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def cls_attention(self, batch: Batch) -> Tensor:
        """Last-layer attention of CLS on each object, ``[B, H, T, K]`` (appendix C; global encoder only).

        For multiple-choice batches the first choice is used."""
        if self.cfg.encoder != "global":
            raise ConfigError("cls_attention needs model.encoder: global")
        latents = self.batch_objects(batch)
        question = batch["question"] if self.cfg.task == "clevrer" else None
        choice = batch["choices"][:, 0] if question is not None and "choices" in batch else None
        blocks = self.encoder.blocks
        captured: dict[str, Tensor] = {}

        def grab(module: nn.Module, args: tuple, kwargs: dict) -> None:
            captured["x"], captured["pad"] = args[0], kwargs.get("key_padding_mask", args[1] if len(args) > 1 else None)

        handle = blocks[-1].register_forward_pre_hook(grab, with_kwargs=True)
        try:
            _, prefix = self.encode(latents, question, choice)
        finally:
            handle.remove()
        block = blocks[-1]
        rel = block.self_attn
        q, k, _ = rel.attn.project(block.attn_sub.norm(captured["x"]))
        q = q * rel.attn.head_dim ** -0.5
        logits = (q + rel.r_w_bias[:, None, :]) @ k.transpose(-1, -2) + rel.position_bias(q)
        pad = captured["pad"]
        if pad is not None:
            logits = logits.masked_fill(pad[:, None, None, :], float("-inf"))
        weights = logits.softmax(-1)[:, :, 0, prefix:]                      # CLS row, object keys
        b, t, kk = latents.shape[:3]
        return weights.reshape(b, -1, t, kk)

