"""The model the fit loop trains, and what it updates (paper §4.2.2).

* :func:`build_trainable` — the fusion model (:func:`rjcma.models.rjcma.build_model`), with the frozen backbones in
  front in end2end mode.
* :func:`layer_groups`, :func:`release_group`, :func:`release_count` — the backbone layer groups the recipe
  releases one after another (three per backbone; none in cached mode).
* :func:`set_train_mode` — train mode with frozen encoders and their frozen batch norms kept in eval mode.
* :func:`make_optimizer` — Adam over the trainable parameters only.
"""

from __future__ import annotations

import torch
from torch import nn

from rjcma.config import Config
from rjcma.encoders.build import build_audio_encoder, build_visual_encoder
from rjcma.models.backbones import layer_groups as backbone_groups
from rjcma.models.rjcma import build_model, fusion_modalities, keep_frozen_in_eval


def build_trainable(cfg: Config) -> nn.Module:
    """The model trained by the loop: :func:`rjcma.models.rjcma.build_model`, with the backbones in front in end2end
    mode (all backbone parameters frozen until their layer group is released)."""
    if cfg.train.mode == "cached":
        return build_model(cfg)
    mods = fusion_modalities(cfg)
    encoders: dict[str, nn.Module] = {}
    if "visual" in mods:
        encoders["visual"] = build_visual_encoder(cfg)
    if "audio" in mods:
        encoders["audio"] = build_audio_encoder(cfg)
    model = build_model(cfg, encoders)
    for p in model.encoders.parameters():
        p.requires_grad_(False)
    return model


def unwrap(model: nn.Module) -> nn.Module:
    """The model without its DDP wrapper."""
    return model.module if hasattr(model, "module") else model


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The release groups (paper §4.2.2, in release order): group g holds layer group g of every backbone (visual
    and audio)."""
    encoders = getattr(model, "encoders", None)
    if not encoders:
        return []
    groups: list[list[nn.Parameter]] = []
    for enc in encoders.values():
        inner = getattr(enc, "encoder", enc)  # FrameEncoder wraps the backbone
        for g, items in enumerate(backbone_groups(inner)):
            while len(groups) <= g:
                groups.append([])
            for it in items:
                groups[g] += list(it.parameters()) if isinstance(it, nn.Module) else [it]
    return groups


def release_group(model: nn.Module, index: int) -> int:
    """Make layer group ``index`` trainable; returns the number of parameters released."""
    groups = layer_groups(model)
    if index >= len(groups):
        return 0
    n = 0
    for p in groups[index]:
        p.requires_grad_(True)
        n += p.numel()
    return n


def release_count(model: nn.Module, cfg: Config) -> int:
    """How many layer groups the recipe releases: ``train.release_groups`` (paper §4.2.2: three), at most the groups
    the backbones have (none in cached mode)."""
    return min(int(cfg.train.release_groups), len(layer_groups(model)))


def set_train_mode(model: nn.Module, train: bool = True) -> None:
    """``model.train(train)``, frozen encoders and their frozen batch-norm layers kept in eval mode
    (:func:`rjcma.models.rjcma.keep_frozen_in_eval`, also applied by ``RJCMAModel.train``; re-applied here for any
    wrapper such as DDP)."""
    model.train(train)
    if not train:
        return
    for enc in getattr(model, "encoders", {}).values() if hasattr(model, "encoders") else []:
        keep_frozen_in_eval(enc)


def make_optimizer(model: nn.Module, cfg: Config, lr: float) -> torch.optim.Optimizer:
    """Adam over the trainable parameters only (paper §4.2.2).

    With ``train.kk_lr_scale`` != 1 the K×K matrices W_c / W_h of the attention (eqs 5-13) get their own group at
    ``lr · scale`` (0 means 1/K): each of their entries enters sums of up to K² terms, so at the demo's larger lr
    plain Adam diverges at K=300. Every group keeps its ``lr_scale`` so the recipe's lr applies to all of them.
    """
    scale = float(cfg.train.kk_lr_scale)
    if scale != 1.0 and hasattr(model, "param_groups"):
        groups = model.param_groups(lr, None if scale == 0 else scale)
        for g in groups:
            g["lr_scale"] = g["lr"] / lr
    else:
        groups = [{"params": [p for p in model.parameters() if p.requires_grad], "lr": lr, "lr_scale": 1.0}]
    return torch.optim.Adam(groups, lr=lr, weight_decay=float(cfg.train.weight_decay))
