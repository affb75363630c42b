"""Train and validate one model on one fold (paper §4.2.2–4.2.3): a plain PyTorch loop.

* Hugging Face Accelerate places the model, runs bf16 autocast (``train.mixed_precision=bf16``) and wraps the
  model in DDP when started by ``accelerate launch`` / ``torchrun``; on one CPU it is a no-op wrapper.
* Adam (weight decay ``train.weight_decay``) over the *trainable* parameters only; loss 1 − CCC over the valid
  frames of each window (eq. 16), averaged over targets when one model predicts both.
* The schedule (warm-up, ReduceLROnPlateau, gradual release of the backbone layer groups, best state reloaded
  every epoch, early stopping) is :class:`rjcma.train.recipe.Recipe`; this file only executes its decisions.
* Frozen backbone modules stay in eval mode (their batch-norm statistics do not drift, unlike the released
  code's: the book's chapter *Paper vs released code*).
* Evaluation merges overlapping window predictions per frame (:func:`rjcma.data.windows.merge_windows`) and computes
  CCC/PCC/RMSE over all frames of the partition concatenated (the ABAW practice) plus per-trial CCC.
* After every epoch a training-state checkpoint is written atomically (model, best model, optimizer, recipe,
  RNG states, history); rerunning after an interruption (even ``kill -9``) resumes from it and, on CPU, ends with
  the same numbers as an uninterrupted run. Data order and augmentation depend on (seed, epoch) only.

Result folder (the book's chapter *Data format*): ``config.yaml``, ``history.csv``, ``predictions/<trial>.csv``, ``model.safetensors`` +
``model.json``, and last ``metrics.json`` — a folder whose metrics.json carries the current config hash is complete
and is skipped on rerun.
"""

from __future__ import annotations

import csv
import io
import json
import platform
import random
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from rjcma import __version__
from rjcma.config import Config
from rjcma.data.dataset import WindowDataset, collate, make_loader
from rjcma.data.store import Store
from rjcma.encoders.build import build_audio_encoder, build_visual_encoder
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path, atomic_write_json, atomic_write_text
from rjcma.models.rjcma import build_model, fusion_modalities, keep_frozen_in_eval
from rjcma.runtime import deterministic_cuda, fixed_threads, training_precision
from rjcma.train.checkpoint import STATE_FILE, load_train_state, restore_rng, save_train_state
from rjcma.train.evaluation import (  # noqa: F401 - re-exported: evaluation used to live here
    TARGET_COLUMNS,
    evaluate,
    merge_predictions,
    predict_windows,
    score_predictions,
    write_predictions,
)
from rjcma.train.losses import ccc_loss
from rjcma.train.recipe import Recipe

# config fields that do not change the numbers (excluded from the result-folder hash); `threads` does (sums split
# over another number of threads), `jobs` does not (every run computes with `threads` threads: train_one)
HASH_EXCLUDE = ("results_dir", "run_name", "num_workers", "corpus", "annotations_root", "faces_root", "videos_root",
                "store", "folds_file", "repeats", "jobs")


def config_hash(cfg: Config) -> str:
    """Hash of everything that changes a training run's numbers (data, preprocess, model, train sections)."""
    return cfg.section_hash("data", "preprocess", "model", "train", exclude=HASH_EXCLUDE)


# ---- model assembly --------------------------------------------------------------------------------------------
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


def input_modalities(cfg: Config) -> list[str]:
    """The modalities the configured fusion reads (the dataset loads only these)."""
    return fusion_modalities(cfg)


def layer_groups(model: nn.Module) -> list[list[nn.Parameter]]:
    """The release groups (paper §4.2.2, in release order): group g holds layer group g of every backbone (visual and audio)."""
    encoders = getattr(model, "encoders", None)
    if not encoders:
        return []
    from rjcma.models.backbones import layer_groups as backbone_groups

    groups: list[list[nn.Parameter]] = []
    for enc in encoders.values():
        inner = getattr(enc, "encoder", enc)  # FrameEncoder wraps the backbone
        for g, items in enumerate(backbone_groups(inner)):
            while len(groups) <= g:
                groups.append([])
            for it in items:
                groups[g] += list(it.parameters()) if isinstance(it, nn.Module) else [it]
    return groups


def set_train_mode(model: nn.Module, train: bool = True) -> None:
    """``model.train(train)``, frozen encoders and their frozen batch-norm layers kept in eval mode
    (:func:`rjcma.models.rjcma.keep_frozen_in_eval`, also applied by ``RJCMAModel.train``; re-applied here for any
    wrapper such as DDP)."""
    model.train(train)
    if not train:
        return
    for enc in getattr(model, "encoders", {}).values() if hasattr(model, "encoders") else []:
        keep_frozen_in_eval(enc)


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


# ---- checkpoints ---------------------------------------------------------------------------------------------------
def _widths(cfg: Config) -> dict[str, Any]:
    m = cfg.model
    return {
        "K": cfg.K,
        "fusion": m.fusion,
        "modalities": list(m.modalities),
        "dims": {x: m.input_dim(x) for x in m.modalities},
        "tcn": {x: m.tcn_channels(x) for x in m.modalities},
        "num_iterations": m.num_iterations,
        "head_hidden": m.head_hidden,
        "targets": list(cfg.targets),
        "mode": cfg.train.mode,
    }


def save_model(model: nn.Module, cfg: Config, out_dir: str | Path, text_stats: dict | None = None) -> Path:
    """``model.safetensors`` (weights) + ``model.json`` (config, widths, text statistics), both atomic."""
    from rjcma.io import save_safetensors as save_file  # same weights -> same bytes

    out = Path(out_dir)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in _unwrap(model).state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_file(state, str(tmp), metadata={"format": "pt", "rjcma": __version__})
    info = {
        "rjcma_version": __version__,
        "config": cfg.to_dict(),
        "widths": _widths(cfg),
        "text_stats": None if text_stats is None else {k: np.asarray(v).tolist() for k, v in text_stats.items()},
    }
    atomic_write_json(out / "model.json", info)
    return out / "model.safetensors"


def load_model(path: str | Path, cfg: Config | None = None) -> tuple[nn.Module, Config, dict | None]:
    """Load ``model.safetensors`` + ``model.json`` (a folder or either file). Returns (model in eval mode, config,
    text statistics). With ``cfg`` given, K and the widths must agree or an RjcmaError says what differs."""
    from safetensors.torch import load_file

    p = Path(path)
    folder = p if p.is_dir() else p.parent
    wfile, jfile = folder / "model.safetensors", folder / "model.json"
    for f in (wfile, jfile):
        if not f.exists():
            raise RjcmaError(f"{f}: missing; give a result folder written by `rjcma train` (model.safetensors + model.json)")
    info = json.loads(jfile.read_text())
    saved = Config.from_dict(info["config"])
    if cfg is not None:
        want, have = _widths(cfg), info.get("widths", _widths(saved))
        diff = [f"{k}: checkpoint {have.get(k)!r} vs config {want[k]!r}" for k in want if k != "mode" and have.get(k) != want[k]]
        if diff:
            raise RjcmaError(f"{wfile}: checkpoint does not match the config ({'; '.join(diff)}); "
                             "use the matching --profile/--set or another checkpoint")
        use = cfg
    else:
        use = saved
    model = build_trainable(use)
    state = load_file(str(wfile))
    own = model.state_dict()
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state if k in own and state[k].shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if bad or missing or extra:
        raise RjcmaError(
            f"{wfile}: weights do not fit the model built from the config (shape differs: {bad[:3]}; "
            f"missing: {missing[:3]}; unexpected: {extra[:3]}); use the config the checkpoint was trained with"
        )
    model.load_state_dict(state)
    model.eval()
    ts = info.get("text_stats")
    ts = None if ts is None else {k: np.asarray(v, dtype=np.float32) for k, v in ts.items()}
    return model, use, ts


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model






def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)



# ---- folds and data ------------------------------------------------------------------------------------------------
def fold_split(cfg: Config, fold: int | None = None) -> dict[str, list[str]]:
    """Train/validation trial names of a fold from the folds file (written once and reused)."""
    from rjcma.data.abaw import load_corpus
    from rjcma.data.folds import folds_path, load_or_make_folds

    fold = cfg.train.fold if fold is None else fold
    ff = folds_path(cfg)
    folds = None
    if ff.is_file():  # written once by `rjcma folds`/the first run and reused (no corpus scan per run)
        try:
            folds = json.loads(ff.read_text())["folds"]
        except (ValueError, KeyError, TypeError):
            folds = None
    if folds is None:
        folds = load_or_make_folds(load_corpus(cfg), cfg)
    folds = {int(k): v for k, v in folds.items()}
    if fold not in folds:
        raise RjcmaError(f"{ff}: fold {fold} not in the folds file (has {sorted(folds)}); choose --fold in that range")
    return {k: list(v) for k, v in folds[fold].items()}


def check_store(store: Any, names: list[str], where: str) -> None:
    have = set(store.trials())
    missing = [n for n in names if n not in have]
    if missing:
        raise RjcmaError(
            f"{store.root}: {len(missing)} {where} trial(s) missing or incomplete in the store (e.g. {missing[0]}); "
            "run `rjcma preprocess` with the same --profile first"
        )


# ---- evaluation ------------------------------------------------------------------------------------------------------












# ---- environment -----------------------------------------------------------------------------------------------------
def environment(device: torch.device) -> dict[str, Any]:
    git = ""
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5,
                             cwd=Path(__file__).resolve().parent).stdout.strip()
    except Exception:  # noqa: BLE001 - best effort
        pass
    dev = str(device)
    if device.type == "cuda":
        dev += f" ({torch.cuda.get_device_name(device)})"
    return {
        "rjcma": __version__,
        "git": git or None,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "device": dev,
        "threads": torch.get_num_threads(),
    }


# ---- history ----------------------------------------------------------------------------------------------------------
HISTORY_FIELDS = ["epoch", "lr", "train_loss", "val_ccc_valence", "val_ccc_arousal", "val_ccc_mean", "best", "events", "seconds"]


def history_csv(rows: list[dict[str, Any]]) -> str:
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=HISTORY_FIELDS, lineterminator="\n", extrasaction="ignore")
    w.writeheader()
    for r in rows:
        w.writerow({k: ("" if r.get(k) is None else r.get(k)) for k in HISTORY_FIELDS})
    return buf.getvalue()


# ---- the run --------------------------------------------------------------------------------------------------------
def run_id(cfg: Config) -> str:
    """Folder name of a run: fusion, modalities, l, target, fold, seed (the one naming rule of result folders)."""
    mc = cfg.model
    mods = "".join(m[0] for m in mc.modalities)
    return f"{mc.fusion.replace(':', '-')}_{mods}_l{mc.num_iterations}_{cfg.train.target}_fold{cfg.train.fold}_s{cfg.train.seed}"


def default_run_dir(cfg: Config, kind: str = "train") -> Path:
    """``<results_dir>/<profile>/<kind>/<train.run_name or run_id>``."""
    return Path(cfg.train.results_dir) / cfg.profile / kind / (cfg.train.run_name or run_id(cfg))


def is_complete(run_dir: Path, cfg: Config) -> dict[str, Any] | None:
    """The metrics of a finished result folder with the same config hash, else None."""
    f = Path(run_dir) / "metrics.json"
    if not f.exists():
        return None
    try:
        m = json.loads(f.read_text())
    except ValueError:
        return None
    return m if m.get("config_hash") == config_hash(cfg) else None


def train_one(cfg: Config, run_dir: str | Path | None = None, progress: bool = True, log=print) -> dict[str, Any]:
    """Train one model on ``cfg.train.fold`` for ``cfg.targets`` and write the result folder; returns metrics.json.

    A complete folder (metrics.json with this config hash) is returned as is; a folder with a training-state
    checkpoint of this config is resumed. The run computes with ``train.threads`` CPU threads, wherever and next to
    whatever else it runs, so the same config gives the same bytes (:func:`rjcma.runtime.fixed_threads`).
    """
    with fixed_threads(int(cfg.train.threads)):
        return _train_one(cfg, run_dir, progress, log)


@dataclass
class Run:
    """What one training run holds while it fits: the accelerator, the data, the model and its schedule."""

    cfg: Config
    run_dir: Path
    acc: Any  # accelerate.Accelerator
    split: dict[str, list[str]]
    train_ds: Any  # rjcma.data.dataset.WindowDataset
    val_ds: Any
    model: nn.Module  # wrapped by acc.prepare (DDP when several processes)
    optimizer: torch.optim.Optimizer
    recipe: Recipe
    start_events: list[str]
    best_state: dict[str, torch.Tensor] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)

    @property
    def net(self) -> nn.Module:  # the model without its DDP wrapper
        return _unwrap(self.model)


def make_accelerator(cfg: Config):
    """Accelerate handles CPU/GPU, bf16 autocast and DDP (``accelerate launch`` / ``torchrun``)."""
    from accelerate import Accelerator
    from accelerate.state import AcceleratorState

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


def start_run(cfg: Config, run_dir: Path, log) -> Run:
    """Data, model, schedule and optimizer of a run; resumed from its training state when one of this config exists."""
    acc = make_accelerator(cfg)
    store = Store(Path(cfg.data.store))
    split = fold_split(cfg)
    check_store(store, split["train"], "training")
    check_store(store, split["validation"], "validation")
    mods = input_modalities(cfg)
    train_ds = WindowDataset(store, split["train"], cfg, train=True, modalities=mods)
    val_ds = WindowDataset(store, split["validation"], cfg, train=False, text_stats=train_ds.text_stats, modalities=mods)
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
        recipe.load_state_dict(st["recipe"])
        for g in range(recipe.released):
            release_group(raw, g)
        raw.load_state_dict(st["model"])
        optimizer = make_optimizer(raw, cfg, recipe.base_lr)
        optimizer.load_state_dict(st["optimizer"])
        best_state, history = st["best"] or None, st["history"]
        restore_rng(st)
        log(f"{run_dir}: resuming after epoch {recipe.epoch - 1}")
    model, optimizer = acc.prepare(raw, optimizer)
    return Run(cfg, run_dir, acc, split, train_ds, val_ds, model, optimizer, recipe, start_events, best_state, history)


def train_loader(run: Run, epoch: int):
    """The epoch's training batches: order from (seed, epoch); one shard per process under DDP."""
    cfg, ds, acc = run.cfg, run.train_ds, run.acc
    if acc.num_processes == 1:
        return make_loader(ds, cfg, train=True, epoch=epoch)
    sampler = DistributedSampler(ds, num_replicas=acc.num_processes, rank=acc.process_index, shuffle=True,
                                 seed=int(cfg.train.seed))
    sampler.set_epoch(epoch)
    ds.set_epoch(epoch)
    return DataLoader(ds, batch_size=cfg.train.batch_size, sampler=sampler, num_workers=cfg.train.num_workers,
                      collate_fn=collate)


def train_epoch(run: Run, epoch: int) -> tuple[list[float], float]:
    """One pass over the training windows; returns (the batch losses, the last learning rate)."""
    cols = [TARGET_COLUMNS[t] for t in run.cfg.targets]
    loader = train_loader(run, epoch)
    set_train_mode(run.net, True)
    n_steps, losses, lr = len(loader), [], run.recipe.base_lr
    for step, batch in enumerate(loader):
        lr = run.recipe.lr_for_step(step, n_steps)  # linear warm-up within the epoch after a release
        for g in run.optimizer.param_groups:
            g["lr"] = lr * g.get("lr_scale", 1.0)
        batch = {k: (v.to(run.acc.device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        pred = run.model(batch)["pred"]  # (B, K, T)
        target = batch["labels"][..., cols]  # (B, K, T), NaN on invalid frames
        loss = ccc_loss(pred.float(), target, batch["mask"])  # eq. (16) over valid frames
        run.optimizer.zero_grad(set_to_none=True)
        run.acc.backward(loss)
        run.optimizer.step()
        losses.append(float(loss.detach()))
    return losses, lr


def apply_decision(run: Run, d) -> None:
    """Carry out the recipe's end-of-epoch decision: keep the best state, release a group, reload the best."""
    if d.improved:
        run.best_state = {k: v.detach().to("cpu").clone() for k, v in run.net.state_dict().items()}
    if d.release is not None:
        release_group(run.net, d.release)
    if d.reload_best and run.best_state is not None:
        run.net.load_state_dict(run.best_state)
    if d.release is not None:  # a new optimizer over the released parameters (the recipe resets the lr)
        raw = run.net
        run.model, run.optimizer = run.acc.prepare(raw, make_optimizer(raw, run.cfg, run.recipe.base_lr))


def history_row(run: Run, epoch: int, losses: list[float], lr: float, metrics: dict, score: float, d,
                seconds: float) -> dict[str, Any]:
    """One row of ``history.csv``."""
    return {
        "epoch": epoch,
        "lr": lr,
        "train_loss": round(float(np.mean(losses)), 6) if losses else None,
        "val_ccc_valence": round(metrics["valence"]["ccc"], 6) if "valence" in metrics else None,
        "val_ccc_arousal": round(metrics["arousal"]["ccc"], 6) if "arousal" in metrics else None,
        "val_ccc_mean": round(score, 6),
        "best": int(d.improved),
        "events": ";".join((run.start_events if epoch == 0 else []) + d.events),
        "seconds": round(seconds, 3),
    }


def save_epoch(run: Run) -> None:
    """After every epoch (main process): the training state, then history.csv, both atomic."""
    if run.acc.is_main_process:
        save_train_state(run.run_dir / STATE_FILE, config_hash(run.cfg), run.net.state_dict(), run.best_state,
                         run.optimizer.state_dict(), run.recipe.state_dict(), run.history)
        atomic_write_text(run.run_dir / "history.csv", history_csv(run.history))


def result_of(run: Run, metrics: dict[str, Any]) -> dict[str, Any]:
    """``metrics.json``: the scores, the schedule's outcome, the data sizes and the environment."""
    cfg, acc, recipe = run.cfg, run.acc, run.recipe
    return {
        "run": run.run_dir.name,
        "profile": cfg.profile,
        "fold": cfg.train.fold,
        "fold_scheme": cfg.data.fold_scheme,  # which partition "fold f" is (data/folds.py; Table 1 labels)
        "fusion": cfg.model.fusion,
        "num_iterations": cfg.model.num_iterations,
        "modalities": list(cfg.model.modalities),
        "mode": cfg.train.mode,
        "targets": list(cfg.targets),
        "metrics": metrics,
        "best_epoch": recipe.best_epoch,
        "epochs": recipe.epoch,
        "stop_reason": recipe.stop_reason,
        "released_groups": recipe.released,
        "train_trials": len(run.split["train"]),
        "validation_trials": len(run.split["validation"]),
        "train_windows": len(run.train_ds),
        "train_seconds": round(sum(r["seconds"] for r in run.history), 3),
        "environment": environment(acc.device),
        "processes": acc.num_processes,  # > 1: DDP (accelerate launch / torchrun)
        "mixed_precision": str(acc.mixed_precision),
        "config_hash": config_hash(cfg),
    }


def _train_one(cfg: Config, run_dir: Path | str | None, progress: bool, log) -> dict[str, Any]:
    """The fit loop: train an epoch, validate, let the recipe decide, checkpoint; then the final evaluation."""
    from accelerate.utils import broadcast_object_list

    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    done = is_complete(run_dir, cfg)
    if done is not None:
        log(f"{run_dir}: complete (config {done['config_hash']}), skipped")
        return done
    run = start_run(cfg, run_dir, log)
    recipe, acc = run.recipe, run.acc
    if acc.is_main_process:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")
    bar = tqdm(total=cfg.train.max_epochs, initial=recipe.epoch, desc=run_dir.name,
               disable=not (progress and acc.is_main_process), leave=False)
    while not recipe.stopped:
        epoch, t0 = recipe.epoch, time.time()
        losses, lr = train_epoch(run, epoch)
        metrics, _ = evaluate(run.net, run.val_ds, cfg, acc.device, acc.autocast)
        score = metrics["mean_ccc"]
        if acc.num_processes > 1:  # every process takes the main process's decision
            score = broadcast_object_list([score])[0]
        d = recipe.end_epoch(score if np.isfinite(score) else float("-inf"))
        apply_decision(run, d)
        run.history.append(history_row(run, epoch, losses, lr, metrics, score, d, time.time() - t0))
        save_epoch(run)
        if d.stop:
            log(f"{run_dir.name}: stopped after epoch {epoch}: {d.stop_reason}")
        bar.set_postfix(ccc=f"{score:.3f}", best=f"{recipe.best_score:.3f}")
        bar.update(1)
    bar.close()

    # the best state, evaluated once more; predictions, weights, and metrics.json last (it marks the run complete)
    if run.best_state is not None:
        run.net.load_state_dict(run.best_state)
    metrics, merged = evaluate(run.net, run.val_ds, cfg, acc.device, acc.autocast)
    result = result_of(run, metrics)
    if acc.is_main_process:
        write_predictions(run_dir, merged, list(cfg.targets))
        save_model(run.net, cfg, run_dir, run.train_ds.text_stats)
        atomic_write_json(run_dir / "metrics.json", result)
    acc.wait_for_everyone()
    return result
