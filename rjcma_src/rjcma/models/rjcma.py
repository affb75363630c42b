"""The whole model, built from the config (paper §3, Fig. 1).

```
inputs[m] (B, K, d_m) ─[encoder_m]─► TCN_m ─► BatchNorm1d ─► fusion ─► MLP head ─► tanh ─► pred (B, K, n_targets)
```

* ``TCN_m``: :class:`rjcma.models.tcn.TemporalConvNet` with widths ``cfg.model.tcn_<m>``, kernel
  ``cfg.model.tcn_kernel``, dropout ``cfg.model.tcn_dropout``; followed by ``BatchNorm1d`` on its last width, as in
  the released code (the book's chapter *Paper vs released code*).
* fusion, chosen by ``cfg.model.fusion``: a row of the registry :data:`rjcma.fusions.FUSIONS` (its modalities and
  the kind of module, ``Fusion.builder``; :data:`FUSION_BUILDERS` below maps each kind to a constructor):

  ===================  ==============================================================  =======================
  string               module                                                          modalities
  ===================  ==============================================================  =======================
  ``rjcma``            ``attention.RecursiveJointCrossModalAttention``, l =            ``cfg.model.modalities``
                       ``num_iterations`` (paper: 3), eqs (1)–(14)
  ``rjcma-released``   ``official.ReleasedFusion`` (the released ``DCNLayer``)         visual, audio, text
  ``grjca``            ``official_family.ReleasedGatedFusion`` (GRJCA, released)       visual, audio
  ``hgrjca``           ``official_family.ReleasedHierarchicalGatedFusion`` (HGRJCA)    visual, audio
  ``dca``              ``official_family.ReleasedDynamicFusion`` (DCA, released)       visual, audio
  ``gated-rjcma``      ``gating.GatedRecursiveFusion``: ours, not from any paper       ``cfg.model.modalities``
  ``jca``              joint cross-attention, l = 1                                    audio, visual
  ``rjca``             recursive joint cross-attention, l = ``num_iterations``         audio, visual
  ``concat``           ``baselines.ConcatFusion``                                      ``cfg.model.modalities``
  ``leader-follower``  ``baselines.LeaderFollowerFusion`` (visual leads)               ``cfg.model.modalities``
  ``unimodal:<m>``     ``baselines.UnimodalFusion`` (identity)                         m
  ===================  ==============================================================  =======================

  The released follow-ups (``grjca``, ``hgrjca``, ``dca``) take ``cfg.model.released_layers`` layers and
  ``cfg.model.released_dropout``, as the released ``DCNLayer`` they build on; ``gated-rjcma`` takes
  ``cfg.model.num_iterations`` recursions. Their gates use the released temperature, 0.1.

* head: ``Linear(out_dim, head_hidden) → BatchNorm1d → LeakyReLU → Dropout(head_dropout) → Linear(head_hidden,
  n_targets) → tanh`` (the released head), one output per entry of ``cfg.targets``.

The model builds TCNs only for the modalities its fusion uses, and reads only those inputs.

**Cached mode** (the demo): ``inputs`` holds the frozen encoders' features ``(B, K, d_m)`` per modality name, with
d_m = ``cfg.model.<m>_dim``. **End-to-end mode**: pass ``encoders={"visual": ir50, "audio": vggish}`` to
:func:`build_model`. Each encoder is a *per-frame* module mapping ``(N, ...) → (N, d_m)`` (e.g. IR-50: faces
``(N, 3, 40, 40) → (N, 512)``); the model flattens ``(B, K, ...)`` to ``(B·K, ...)``, runs the encoder and
reshapes to ``(B, K, d_m)``. An encoded modality's input may be given under its modality name or under the store's
raw key (:data:`RAW_INPUT_KEYS`: ``faces``, ``logmel``). Encoders whose parameters are all frozen are kept in
eval mode by :meth:`RJCMAModel.train` (the released code let their batch-norm statistics drift: the book's chapter
*Paper vs released code*), and so are frozen BatchNorm layers inside partly released encoders (gradual release,
paper §4.2.2). :func:`keep_frozen_in_eval` is the one place that rule is written; the training loop calls it too.
"""

from __future__ import annotations

from typing import Any, Callable, Mapping, Sequence

import torch
from torch import Tensor, nn

from rjcma.config import MODALITIES, Config
from rjcma.fusions import FUSIONS, LEADER, Fusion
from rjcma.models.attention import RecursiveJointCrossModalAttention
from rjcma.models.baselines import ConcatFusion, LeaderFollowerFusion, UnimodalFusion
from rjcma.models.gating import GatedRecursiveFusion
from rjcma.models.official import ReleasedFusion
from rjcma.models.official_family import (
    ReleasedDynamicFusion,
    ReleasedGatedFusion,
    ReleasedHierarchicalGatedFusion,
)
from rjcma.models.tcn import TemporalConvNet

# Store keys of the raw inputs of an end-to-end modality (the book's chapter Data format; the dataset's end2end items).
RAW_INPUT_KEYS: dict[str, str] = {"visual": "faces", "audio": "logmel", "text": "text"}


def fusion_spec(cfg: Config) -> Fusion:
    """The registry row of ``cfg.model.fusion``."""
    try:
        return FUSIONS[cfg.model.fusion]
    except KeyError:
        raise ValueError(f"unknown fusion {cfg.model.fusion!r}; choose one of {', '.join(FUSIONS)}") from None


def fusion_modalities(cfg: Config) -> list[str]:
    """The modalities, in order, that ``cfg.model.fusion`` uses."""
    return fusion_spec(cfg).modalities_for(cfg.model.modalities)


class JointAttentionFusion(nn.Module):
    """Adapter: RJCMA / RJCA / JCA (``RecursiveJointCrossModalAttention``) with the common fusion interface."""

    def __init__(self, dims: Sequence[int], seq_len: int, num_iterations: int, share_weights: bool) -> None:
        super().__init__()
        self.rec = RecursiveJointCrossModalAttention(dims, seq_len, num_iterations, share_weights)
        self.out_dim = sum(int(d) for d in dims)

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        out, extras = self.rec(list(xs), return_all=True)  # (B, K, d), eq. (14)
        return (out, extras) if return_all else out


class ReleasedFusionAdapter(nn.Module):
    """Adapter: the released ``DCNLayer`` (:class:`rjcma.models.official.ReleasedFusion`), outputs concatenated.

    ``self.released`` holds the module whose ``state_dict`` matches a released fusion checkpoint; its inputs come
    in the released order (visual, audio, text), so released weights load unchanged.
    """

    def __init__(self, dims: Sequence[int], seq_len: int, num_layers: int, dropout: float) -> None:
        super().__init__()
        self.released = ReleasedFusion(list(dims), seq_len=seq_len, num_layers=num_layers, dropout=dropout)
        self.out_dim = sum(int(d) for d in dims)

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        outs, extras = self.released(list(xs), return_all=True)  # list of (B, K, d_m), per-layer extras
        out = torch.cat(list(outs), dim=-1)  # (B, K, d)
        return (out, extras) if return_all else out


class FrameEncoder(nn.Module):
    """Runs a per-frame encoder ``(N, ...) → (N, d)`` on ``(B, K, ...)`` by flattening B·K frames."""

    def __init__(self, encoder: nn.Module, chunk: int | None = None) -> None:
        super().__init__()
        self.encoder = encoder
        self.chunk = chunk  # frames per encoder call (None = all at once)

    def forward(self, x: Tensor) -> Tensor:
        B, K = x.shape[:2]
        flat = x.reshape(B * K, *x.shape[2:])  # (B·K, ...)
        if self.chunk:
            y = torch.cat([self.encoder(flat[i : i + self.chunk]) for i in range(0, B * K, self.chunk)])
        else:
            y = self.encoder(flat)
        return y.reshape(B, K, -1)  # (B, K, d_m)


class Head(nn.Module):
    """MLP head: Linear → BatchNorm1d → LeakyReLU → Dropout → Linear → tanh (the released head)."""

    def __init__(self, in_dim: int, hidden: int, n_out: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_dim, hidden)
        self.bn = nn.BatchNorm1d(hidden)
        self.act = nn.LeakyReLU()
        self.drop = nn.Dropout(dropout)
        self.fc2 = nn.Linear(hidden, n_out)

    def forward(self, x: Tensor) -> Tensor:  # (B, K, d) -> (B, K, n_out)
        h = self.fc1(x)  # (B, K, hidden)
        h = self.bn(h.transpose(1, 2)).transpose(1, 2)
        h = self.drop(self.act(h))
        return torch.tanh(self.fc2(h))


class RJCMAModel(nn.Module):
    """TCN per modality → fusion → head. Build it with :func:`build_model`; see the module docstring."""

    def __init__(self, cfg: Config, encoders: Mapping[str, nn.Module] | None = None) -> None:
        super().__init__()
        mc = cfg.model
        self.fusion_name = mc.fusion
        self.seq_len = cfg.K
        self.targets = list(cfg.targets)
        self.modalities = fusion_modalities(cfg)
        encoders = dict(encoders or {})
        unknown = set(encoders) - set(MODALITIES)
        if unknown:
            raise ValueError(f"encoders for unknown modalities {sorted(unknown)}; use names from {MODALITIES}")
        self.encoders = nn.ModuleDict(
            {
                m: (e if isinstance(e, FrameEncoder) else FrameEncoder(e))
                for m, e in encoders.items()
                if m in self.modalities
            }
        )
        self.input_dims = {m: mc.input_dim(m) for m in self.modalities}
        self.tcn = nn.ModuleDict(
            {
                m: TemporalConvNet(self.input_dims[m], mc.tcn_channels(m), mc.tcn_kernel, mc.tcn_dropout)
                for m in self.modalities
            }
        )
        self.bn = nn.ModuleDict({m: nn.BatchNorm1d(self.tcn[m].out_dim) for m in self.modalities})
        dims = [self.tcn[m].out_dim for m in self.modalities]
        spec = fusion_spec(cfg)
        self.fusion: nn.Module = FUSION_BUILDERS[spec.builder](spec, dims, cfg, self.modalities)
        self.head = Head(self.fusion.out_dim, mc.head_hidden, len(self.targets), mc.head_dropout)

    # ---- inputs ----------------------------------------------------------------------------------
    def input_key(self, m: str, inputs: Mapping[str, Any]) -> str:
        """The key of modality m in ``inputs``: its name, or (with an encoder) the store's raw key."""
        if m in inputs or m not in self.encoders:
            return m
        return RAW_INPUT_KEYS.get(m, m)

    def check_inputs(self, inputs: Mapping[str, Tensor]) -> None:
        """Raise ``ValueError`` naming the expected and the given shapes when ``inputs`` do not fit the model."""
        K = self.seq_len
        expected = {
            m: f"(B, {K}, ...) raw input for the {m} encoder"
            if m in self.encoders
            else f"(B, {K}, {self.input_dims[m]})"
            for m in self.modalities
        }
        given = {k: tuple(v.shape) if isinstance(v, Tensor) else type(v).__name__ for k, v in inputs.items()}
        batch = None
        for m in self.modalities:
            key = self.input_key(m, inputs)
            if key not in inputs:
                raise ValueError(
                    f"RJCMAModel ({self.fusion_name}): missing input {key!r}; expected {expected}, given {given}"
                )
            x = inputs[key]
            ok = isinstance(x, Tensor) and x.dim() >= 3 and x.shape[1] == K
            if m not in self.encoders:
                ok = ok and x.dim() == 3 and x.shape[2] == self.input_dims[m]
            if not ok:
                raise ValueError(
                    f"RJCMAModel ({self.fusion_name}): input {key!r} should be {expected[m]}, given "
                    f"{given[key]}; all expected: {expected}"
                )
            if batch is None:
                batch = x.shape[0]
            elif x.shape[0] != batch:
                raise ValueError(f"RJCMAModel ({self.fusion_name}): batch sizes differ across inputs; given {given}")

    # ---- forward ---------------------------------------------------------------------------------
    def forward(self, inputs: Mapping[str, Tensor]) -> dict[str, Any]:
        """``inputs[m]`` (B, K, d_m) → ``{"pred": (B, K, n_targets), "features", "maps", "gates", "tcn"}``.

        ``features``: per iteration (layer, for the released fusions), the list of attended features per modality;
        ``maps``: per iteration, the block's maps (``J``, ``C``, ``H`` for the paper's blocks; ``C``, ``H`` for the
        released layers); both empty lists for fusions without them (baselines). ``gates``: for the gated fusions,
        ``{gate name: {"candidates": labels, "weights": [(B, K, n) per modality]}}`` (the weights over time of
        each candidate, in the model's modality order), else ``{}``. ``tcn``: the fusion inputs per modality.
        """
        self.check_inputs(inputs)
        xs = []
        for m in self.modalities:
            x = inputs[self.input_key(m, inputs)]
            if m in self.encoders:
                x = self.encoders[m](x)  # (B, K, d_m)
                if x.shape[-1] != self.input_dims[m]:
                    raise ValueError(
                        f"RJCMAModel: the {m} encoder gives width {x.shape[-1]}, "
                        f"cfg.model.{m}_dim is {self.input_dims[m]}"
                    )
            x = self.tcn[m](x.float())  # (B, K, c_m)
            x = self.bn[m](x.transpose(1, 2)).transpose(1, 2)  # BatchNorm1d over channels
            xs.append(x)
        fused, extras = self.fusion(xs, return_all=True)  # every fusion: (out, {"features", "maps"[, "gates"]})
        pred = self.head(fused)  # (B, K, n_targets) in [-1, 1]
        return {"pred": pred, "features": extras["features"], "maps": extras["maps"],
                "gates": extras.get("gates", {}), "tcn": xs}

    # ---- modes -----------------------------------------------------------------------------------
    def train(self, mode: bool = True) -> "RJCMAModel":
        """As ``nn.Module.train``, but frozen encoders (and frozen BatchNorm inside encoders) stay in eval mode."""
        super().train(mode)
        if mode:
            for enc in self.encoders.values():
                keep_frozen_in_eval(enc)
        return self

    # ---- optimisation ----------------------------------------------------------------------------
    def param_groups(self, lr: float, kk_lr_scale: float | None = None) -> list[dict[str, Any]]:
        """Adam parameter groups over the *trainable* parameters, all at ``lr`` except, for the fusions built on
        the paper's recursion, the K×K matrices W_c / W_h at ``lr·kk_lr_scale`` (default 1/K; see
        ``RecursiveJointCrossModalAttention.param_groups``). Optional: ``Adam(trainable, lr)`` is the paper's recipe.
        """
        special: list[nn.Parameter] = []
        rec = getattr(self.fusion, "rec", None)  # the paper's recursion (RJCMA, RJCA, JCA, gated-rjcma)
        if isinstance(rec, RecursiveJointCrossModalAttention):
            groups = rec.param_groups(lr, kk_lr_scale)
            special = [p for p in groups[1]["params"] if p.requires_grad]
            kk_lr = groups[1]["lr"]
        ids = {id(p) for p in special}
        rest = [p for p in self.parameters() if p.requires_grad and id(p) not in ids]
        out = [{"params": rest, "lr": lr}]
        if special:
            out.append({"params": special, "lr": kk_lr})
        return out

    # ---- description -----------------------------------------------------------------------------
    def param_counts(self) -> dict[str, tuple[int, int]]:
        """``{part: (parameters, trainable)}`` for encoders, TCNs, BatchNorms, fusion and head."""
        parts: dict[str, nn.Module] = {}
        for m, e in self.encoders.items():
            parts[f"encoder.{m}"] = e
        for m in self.modalities:
            parts[f"tcn.{m}"] = self.tcn[m]
            parts[f"bn.{m}"] = self.bn[m]
        parts[f"fusion ({self.fusion_name})"] = self.fusion
        parts["head"] = self.head
        out = {
            k: (sum(p.numel() for p in v.parameters()), sum(p.numel() for p in v.parameters() if p.requires_grad))
            for k, v in parts.items()
        }
        out["total"] = (
            sum(p.numel() for p in self.parameters()),
            sum(p.numel() for p in self.parameters() if p.requires_grad),
        )
        return out

    def describe(self) -> str:
        """A small table of parameter counts per part, with K, modalities and output targets."""
        rows = self.param_counts()
        w = max(len(k) for k in rows)
        lines = [
            f"RJCMAModel: fusion={self.fusion_name}, modalities={self.modalities}, K={self.seq_len}, "
            f"targets={self.targets}",
            f"{'part':<{w}}  {'params':>12}  {'trainable':>12}",
        ]
        lines += [f"{k:<{w}}  {n:>12,}  {t:>12,}" for k, (n, t) in rows.items()]
        return "\n".join(lines)


def keep_frozen_in_eval(encoder: nn.Module) -> None:
    """Put a frozen encoder (no trainable parameter) in eval mode, and inside a partly released one every BatchNorm
    whose own parameters are frozen (or that has none): their running statistics must not drift while the layers
    around them train."""
    if not any(p.requires_grad for p in encoder.parameters()):
        encoder.eval()
        return
    for mod in encoder.modules():
        if isinstance(mod, nn.modules.batchnorm._BatchNorm):
            own = list(mod.parameters(recurse=False))
            if not own or not any(p.requires_grad for p in own):
                mod.eval()


def _joint_attention(spec: Fusion, dims: list[int], cfg: Config, mods: list[str]) -> nn.Module:
    mc = cfg.model
    if spec.iterations is not None:  # JCA: one block, never shared (its parameter names are those of l = 1)
        return JointAttentionFusion(dims, cfg.K, spec.iterations, False)
    return JointAttentionFusion(dims, cfg.K, mc.num_iterations, mc.share_weights)


def _released_family(cls: type[nn.Module]) -> Callable[[Fusion, list[int], Config, list[str]], nn.Module]:
    """Constructor of a released follow-up: the released DCNLayer's settings, the released temperature."""
    return lambda spec, dims, cfg, mods: cls(dims, seq_len=cfg.K, num_layers=cfg.model.released_layers,
                                              dropout=cfg.model.released_dropout)


# kind of fusion module (rjcma.fusions.Fusion.builder) -> constructor(spec, TCN widths, config, modalities)
FUSION_BUILDERS: dict[str, Callable[[Fusion, list[int], Config, list[str]], nn.Module]] = {
    "joint-attention": _joint_attention,
    "released": lambda spec, dims, cfg, mods: ReleasedFusionAdapter(dims, cfg.K, cfg.model.released_layers,
                                                                   cfg.model.released_dropout),
    "concat": lambda spec, dims, cfg, mods: ConcatFusion(dims),
    "leader-follower": lambda spec, dims, cfg, mods: LeaderFollowerFusion(dims, leader=mods.index(LEADER)),
    "unimodal": lambda spec, dims, cfg, mods: UnimodalFusion(dims[0]),
    "released-gated": _released_family(ReleasedGatedFusion),
    "released-hierarchical": _released_family(ReleasedHierarchicalGatedFusion),
    "released-dynamic": _released_family(ReleasedDynamicFusion),
    "gated-joint-attention": lambda spec, dims, cfg, mods: GatedRecursiveFusion(
        dims, cfg.K, cfg.model.num_iterations, cfg.model.share_weights),
}


def build_model(cfg: Config, encoders: Mapping[str, nn.Module] | None = None) -> RJCMAModel:
    """Build the model that ``cfg`` describes (``cfg.model``, K = ``cfg.K``, outputs = ``cfg.targets``).

    ``encoders`` (end-to-end mode): per-frame front ends by modality name, see the module docstring.
    """
    return RJCMAModel(cfg, encoders)
