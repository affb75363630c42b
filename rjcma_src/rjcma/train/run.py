"""One training run as the fit loop (:func:`rjcma.train.loop.fit`) carries it: the :class:`Run` record, and how a run
starts — fresh, or resumed from the training state of an interrupted one (:mod:`rjcma.train.checkpoint`).

* Hugging Face Accelerate places the model, runs bf16 autocast (``train.mixed_precision``) and wraps the model in
  DDP when started by ``accelerate launch`` / ``torchrun``; on one CPU it is a no-op wrapper.
* The data of the run is the fold's training and validation trials of the store (:func:`rjcma.data.folds.fold_split`);
  the validation set is normalised with the training trials' text statistics.
* The seed is set before the model is built, so the same config builds the same initial weights.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.state import AcceleratorState
from torch import nn

from rjcma.config import Config
from rjcma.data.dataset import WindowDataset
from rjcma.data.folds import fold_split
from rjcma.data.store import Store
from rjcma.models.rjcma import fusion_modalities
from rjcma.runtime import deterministic_cuda, training_precision
from rjcma.train.checkpoint import STATE_FILE, load_train_state, restore_rng
from rjcma.train.recipe import Recipe
from rjcma.train.results import config_hash
from rjcma.train.trainable import build_trainable, make_optimizer, release_count, release_group, unwrap


@dataclass
class Run:
    """What one training run holds while it fits: the accelerator, the data, the model and its schedule."""

    cfg: Config
    run_dir: Path
    acc: Accelerator
    split: dict[str, list[str]]  # "train" / "validation" -> trial names
    train_ds: WindowDataset
    val_ds: WindowDataset
    model: nn.Module  # wrapped by acc.prepare (DDP when several processes)
    optimizer: torch.optim.Optimizer
    recipe: Recipe
    start_events: list[str]
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def net(self) -> nn.Module:  # the model without its DDP wrapper
        return unwrap(self.model)


def make_accelerator(cfg: Config) -> Accelerator:
    """Accelerate handles CPU/GPU, bf16 autocast and DDP (``accelerate launch`` / ``torchrun``)."""
    cpu = cfg.train.device == "cpu" or (cfg.train.device == "auto" and not torch.cuda.is_available())
    mp = training_precision(cfg.train.mixed_precision, cpu)
    # Accelerate keeps one precision per process and refuses another; runs of two precisions in one process (a
    # notebook, the tests) start its state over (the distributed part, PartialState, is kept)
    if AcceleratorState._shared_state.get("_mixed_precision", mp) != mp:
        AcceleratorState._reset_state()
    acc = Accelerator(mixed_precision=mp, cpu=cpu)
    if acc.device.type == "cuda":
        deterministic_cuda()
    return acc


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def fold_data(cfg: Config) -> tuple[dict[str, list[str]], WindowDataset, WindowDataset]:
    """The fold's trial names and its training and validation windows (the modalities the fusion reads)."""
    store = Store(Path(cfg.data.store))
    split = fold_split(cfg)
    store.require_trials(split["train"], "training")
    store.require_trials(split["validation"], "validation")
    mods = fusion_modalities(cfg)
    train_ds = WindowDataset(store, split["train"], cfg, train=True, modalities=mods)
    val_ds = WindowDataset(store, split["validation"], cfg, train=False, text_stats=train_ds.text_stats, modalities=mods)
    return split, train_ds, val_ds


def start_run(cfg: Config, run_dir: Path, log: Callable[[str], None]) -> Run:
    """Data, model, schedule and optimizer of a run; resumed from its training state when one of this config exists."""
    acc = make_accelerator(cfg)
    split, train_ds, val_ds = fold_data(cfg)
    seed_everything(cfg.train.seed)
    raw = build_trainable(cfg)
    recipe = Recipe.from_config(cfg.train, groups=release_count(raw, cfg))
    start_events = recipe.start()
    if cfg.train.mode == "cached":
        log(f"cached mode: no backbone to release; the recipe runs warm-up, plateau, best-state reload and early "
            f"stopping only (stops when the lr floor {cfg.train.min_lr:g} is reached)")
    for e in start_events:
        if e.startswith("release:"):
            release_group(raw, int(e.split(":")[1]))
    raw.to(acc.device)
    optimizer = make_optimizer(raw, cfg, recipe.base_lr)
    best_state, history = None, []
    st = load_train_state(run_dir / STATE_FILE, config_hash(cfg), log)
    if st is not None:
        optimizer, best_state, history = _resume(st, raw, cfg, recipe)
        log(f"{run_dir}: resuming after epoch {recipe.epoch - 1}")
    model, optimizer = acc.prepare(raw, optimizer)
    return Run(cfg, run_dir, acc, split, train_ds, val_ds, model, optimizer, recipe, start_events, best_state, history)


def _resume(st: dict[str, Any], raw: nn.Module, cfg: Config, recipe: Recipe):
    """Put a saved training state back: the recipe, the released groups, the weights, a new optimizer with its
    saved state, and the RNG states. Returns (optimizer, best state, history)."""
    recipe.load_state_dict(st["recipe"])
    for g in range(recipe.released):
        release_group(raw, g)
    raw.load_state_dict(st["model"])
    optimizer = make_optimizer(raw, cfg, recipe.base_lr)
    optimizer.load_state_dict(st["optimizer"])
    restore_rng(st)
    return optimizer, st["best"] or None, st["history"]
