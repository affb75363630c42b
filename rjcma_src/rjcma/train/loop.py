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

import contextlib
import csv
import io
import json
import os
import platform
import random
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rjcma import __version__
from rjcma.config import Config
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path, atomic_write_json, atomic_write_text
from rjcma.metrics import all_metrics, ccc
from rjcma.models.rjcma import build_model, fusion_modalities, keep_frozen_in_eval
from rjcma.preprocess import standins

TARGET_COLUMNS = {"valence": 0, "arousal": 1}
STATE_FILE = "train_state.pt"
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
        encoders["visual"] = standins.build_visual_encoder(cfg)
    if "audio" in mods:
        encoders["audio"] = standins.build_audio_encoder(cfg)
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
    from rjcma.stable_safetensors import save_file  # same weights -> same bytes

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


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": json.dumps(random.getstate()),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    v = json.loads(s["python"])
    random.setstate((v[0], tuple(v[1]), v[2]))
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@contextlib.contextmanager
def intra_op_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0: leave as is), then restore. A run's float sums are split over
    its threads, so a fixed count makes its numbers independent of how many runs share the machine."""
    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


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
@torch.no_grad()
def predict_windows(model: nn.Module, loader, device: torch.device, autocast=None) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Run the model over a loader; ``{trial: [(start, (K, n_targets) prediction), ...]}``."""
    import contextlib

    model.eval()
    out: dict[str, list[tuple[int, np.ndarray]]] = {}
    for batch in loader:
        batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
        with autocast() if autocast else contextlib.nullcontext():
            pred = model(batch)["pred"]  # (B, K, T)
        pred = pred.float().cpu().numpy()
        for b, (name, start) in enumerate(zip(batch["trial"], batch["start"].tolist())):
            out.setdefault(name, []).append((int(start), pred[b]))
    return out


def merge_predictions(windows: dict[str, list[tuple[int, np.ndarray]]], lengths: dict[str, int], K: int) -> dict[str, np.ndarray]:
    """Average overlapping window predictions back to one per frame: ``{trial: (N, n_targets)}``."""
    from rjcma.data.windows import merge_windows

    merged = {}
    for name, items in windows.items():
        items = sorted(items, key=lambda t: t[0])
        merged[name] = merge_windows([p for _, p in items], [s for s, _ in items], lengths[name], K)
    return merged


def score_predictions(preds: dict[str, np.ndarray], labels: dict[str, np.ndarray], targets: list[str]) -> dict[str, Any]:
    """Partition metrics (all frames concatenated, ABAW) and per-trial CCC for each target."""

    names = sorted(preds)
    out: dict[str, Any] = {}
    for j, t in enumerate(targets):
        col = TARGET_COLUMNS[t]
        x = np.concatenate([preds[n][:, j] for n in names])
        y = np.concatenate([labels[n][:, col] for n in names])
        m = all_metrics(x, y)
        m["per_trial"] = {n: _f(ccc(preds[n][:, j], labels[n][:, col])) for n in names}
        m["frames"] = int((~np.isnan(y)).sum())
        out[t] = m
    vals = [out[t]["ccc"] for t in targets]
    out["mean_ccc"] = float(np.mean(vals))
    return out


def _f(x: Any) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def evaluate(model: nn.Module, ds, cfg: Config, device: torch.device, autocast=None) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Validation metrics and the merged per-frame predictions of a WindowDataset."""
    from rjcma.data.dataset import make_loader

    loader = make_loader(ds, cfg, train=False, epoch=0, batch_size=max(cfg.train.batch_size, 12))
    merged = merge_predictions(predict_windows(model, loader, device, autocast), ds.lengths, cfg.K)
    labels = {n: np.asarray(ds.store.load(n, "labels"), dtype=np.float32) for n in merged}
    return score_predictions(merged, labels, list(cfg.targets)), merged


def write_predictions(folder: Path, preds: dict[str, np.ndarray], targets: list[str]) -> None:
    """``predictions/<trial>.csv`` with columns frame,valence,arousal (empty where a target was not trained)."""
    for name, p in preds.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["frame", "valence", "arousal"])
        for k in range(p.shape[0]):
            row = [k]
            for t in ("valence", "arousal"):
                row.append(f"{p[k, targets.index(t)]:.6f}" if t in targets else "")
            w.writerow(row)
        atomic_write_text(folder / "predictions" / f"{name}.csv", buf.getvalue())


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
    whatever else it runs, so the same config gives the same bytes (:func:`intra_op_threads`).
    """
    with intra_op_threads(int(cfg.train.threads)):
        return _train_one(cfg, run_dir, progress, log)


def _train_one(cfg: Config, run_dir: Path | str | None, progress: bool, log) -> dict[str, Any]:
    from accelerate import Accelerator
    from accelerate.utils import broadcast_object_list
    from tqdm.auto import tqdm

    from rjcma.data.dataset import WindowDataset, make_loader
    from rjcma.data.store import Store
    from rjcma.train.losses import ccc_loss
    from rjcma.train.recipe import Recipe

    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    done = is_complete(run_dir, cfg)
    if done is not None:
        log(f"{run_dir}: complete (config {done['config_hash']}), skipped")
        return done
    h = config_hash(cfg)
    targets = list(cfg.targets)
    cols = [TARGET_COLUMNS[t] for t in targets]

    # devices: Accelerate handles CPU/GPU, bf16 autocast and DDP (accelerate launch / torchrun)
    acc = Accelerator(mixed_precision=cfg.train.mixed_precision, cpu=cfg.train.device == "cpu"
                      or (cfg.train.device == "auto" and not torch.cuda.is_available()))
    device = acc.device
    main = acc.is_main_process
    if device.type == "cuda":  # deterministic kernels (cuBLAS needs its workspace fixed before its first call)
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.deterministic = True
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)

    # data
    store = Store(Path(cfg.data.store))
    split = fold_split(cfg)
    check_store(store, split["train"], "training")
    check_store(store, split["validation"], "validation")
    mods = input_modalities(cfg)
    train_ds = WindowDataset(store, split["train"], cfg, train=True, modalities=mods)
    val_ds = WindowDataset(store, split["validation"], cfg, train=False, text_stats=train_ds.text_stats, modalities=mods)

    # model and schedule
    seed_everything(cfg.train.seed)
    raw = build_trainable(cfg)
    groups = release_count(raw, cfg)
    recipe = Recipe.from_config(cfg.train, groups=groups)
    history: list[dict[str, Any]] = []
    start_events = recipe.start()
    if cfg.train.mode == "cached":
        log(f"cached mode: no backbone to release; the recipe runs warm-up, plateau, best-state reload and early "
            f"stopping only (stops when the lr floor {cfg.train.min_lr:g} is reached)")
    for e in start_events:
        if e.startswith("release:"):
            release_group(raw, int(e.split(":")[1]))
    raw.to(device)
    optimizer = make_optimizer(raw, cfg, recipe.base_lr)
    best_state: dict[str, torch.Tensor] | None = None

    # resume
    state_path = run_dir / STATE_FILE
    if state_path.exists():
        try:
            st = torch.load(state_path, map_location="cpu", weights_only=True)
        except Exception as ex:  # noqa: BLE001 - a damaged file: start over
            log(f"{state_path}: unreadable ({ex}); starting this run over")
            st = None
        if st is not None and st.get("config_hash") == h:
            recipe.load_state_dict(json.loads(st["recipe"]))
            for g in range(recipe.released):
                release_group(raw, g)
            raw.load_state_dict(st["model"])
            optimizer = make_optimizer(raw, cfg, recipe.base_lr)
            optimizer.load_state_dict(st["optimizer"])
            best_state = st["best"] or None
            history = json.loads(st["history"])
            _set_rng_state(st["rng"])
            log(f"{run_dir}: resuming after epoch {recipe.epoch - 1}")
        elif st is not None:
            log(f"{state_path}: written for another config; starting this run over")
    model, optimizer = acc.prepare(raw, optimizer)
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
        cfg.save(run_dir / "config.yaml")

    sampler_for = None
    if acc.num_processes > 1:
        from torch.utils.data import DistributedSampler

        def sampler_for(epoch: int):  # noqa: E306 - one shard per process, order from (seed, epoch)
            s = DistributedSampler(train_ds, num_replicas=acc.num_processes, rank=acc.process_index,
                                   shuffle=True, seed=int(cfg.train.seed))
            s.set_epoch(epoch)
            return s

    bar = tqdm(total=cfg.train.max_epochs, initial=recipe.epoch, desc=run_dir.name, disable=not (progress and main),
               leave=False)
    while not recipe.stopped:
        epoch = recipe.epoch
        t0 = time.time()
        if sampler_for is None:
            loader = make_loader(train_ds, cfg, train=True, epoch=epoch)
        else:
            from torch.utils.data import DataLoader

            from rjcma.data.dataset import collate

            train_ds.set_epoch(epoch)
            loader = DataLoader(train_ds, batch_size=cfg.train.batch_size, sampler=sampler_for(epoch),
                                num_workers=cfg.train.num_workers, collate_fn=collate)
        set_train_mode(_unwrap(model), True)
        n_steps = len(loader)
        losses = []
        for step, batch in enumerate(loader):
            lr = recipe.lr_for_step(step, n_steps)
            for g in optimizer.param_groups:
                g["lr"] = lr * g.get("lr_scale", 1.0)
            batch = {k: (v.to(device) if isinstance(v, torch.Tensor) else v) for k, v in batch.items()}
            out = model(batch)
            pred = out["pred"]  # (B, K, T)
            target = batch["labels"][..., cols]  # (B, K, T), NaN on invalid frames
            loss = ccc_loss(pred.float(), target, batch["mask"])  # eq. (16) over valid frames
            optimizer.zero_grad(set_to_none=True)
            acc.backward(loss)
            optimizer.step()
            losses.append(float(loss.detach()))
        metrics, _ = evaluate(_unwrap(model), val_ds, cfg, device, acc.autocast)
        score = metrics["mean_ccc"]
        if acc.num_processes > 1:
            score = broadcast_object_list([score])[0]
        d = recipe.end_epoch(score if np.isfinite(score) else float("-inf"))
        if d.improved:
            best_state = {k: v.detach().to("cpu").clone() for k, v in _unwrap(model).state_dict().items()}
        if d.release is not None:
            release_group(_unwrap(model), d.release)
        if d.reload_best and best_state is not None:
            _unwrap(model).load_state_dict(best_state)
        if d.release is not None:  # a new optimizer (and scheduler state in the recipe), lr reset
            raw_m = _unwrap(model)
            optimizer = make_optimizer(raw_m, cfg, recipe.base_lr)
            model, optimizer = acc.prepare(raw_m, optimizer)
        row = {
            "epoch": epoch,
            "lr": lr if n_steps else recipe.base_lr,
            "train_loss": round(float(np.mean(losses)), 6) if losses else None,
            "val_ccc_valence": round(metrics["valence"]["ccc"], 6) if "valence" in metrics else None,
            "val_ccc_arousal": round(metrics["arousal"]["ccc"], 6) if "arousal" in metrics else None,
            "val_ccc_mean": round(score, 6),
            "best": int(d.improved),
            "events": ";".join((start_events if epoch == 0 else []) + d.events),
            "seconds": round(time.time() - t0, 3),
        }
        history.append(row)
        if main:
            state = {
                "config_hash": h,
                "model": {k: v.detach().cpu() for k, v in _unwrap(model).state_dict().items()},
                "best": best_state or {},
                "optimizer": optimizer.state_dict(),
                "recipe": json.dumps(recipe.state_dict()),
                "history": json.dumps(history),
                "rng": _rng_state(),
            }
            with atomic_path(state_path) as tmp:
                torch.save(state, tmp)
            atomic_write_text(run_dir / "history.csv", history_csv(history))
        if d.stop:
            log(f"{run_dir.name}: stopped after epoch {epoch}: {d.stop_reason}")
        bar.set_postfix(ccc=f"{score:.3f}", best=f"{recipe.best_score:.3f}")
        bar.update(1)
        if os.environ.get("RJCMA_TEST_SLOW_EPOCH"):  # lets the resume test kill a run mid-training
            time.sleep(float(os.environ["RJCMA_TEST_SLOW_EPOCH"]))
    bar.close()

    # final: the best state (already loaded), evaluated once more; predictions, weights, metrics last
    final = _unwrap(model)
    if best_state is not None:
        final.load_state_dict(best_state)
    metrics, merged = evaluate(final, val_ds, cfg, device, acc.autocast)
    result = {
        "run": run_dir.name,
        "profile": cfg.profile,
        "fold": cfg.train.fold,
        "fold_scheme": cfg.data.fold_scheme,  # which partition "fold f" is (data/folds.py; Table 1 labels)
        "fusion": cfg.model.fusion,
        "num_iterations": cfg.model.num_iterations,
        "modalities": list(cfg.model.modalities),
        "mode": cfg.train.mode,
        "targets": targets,
        "metrics": metrics,
        "best_epoch": recipe.best_epoch,
        "epochs": recipe.epoch,
        "stop_reason": recipe.stop_reason,
        "released_groups": recipe.released,
        "train_trials": len(split["train"]),
        "validation_trials": len(split["validation"]),
        "train_windows": len(train_ds),
        "train_seconds": round(sum(r["seconds"] for r in history), 3),
        "environment": environment(device),
        "processes": acc.num_processes,  # > 1: DDP (accelerate launch / torchrun)
        "mixed_precision": str(acc.mixed_precision),
        "config_hash": h,
    }
    if main:
        write_predictions(run_dir, merged, targets)
        save_model(final, cfg, run_dir, train_ds.text_stats)
        atomic_write_json(run_dir / "metrics.json", result)
    acc.wait_for_everyone()
    return result
