"""Train and validate one model on one fold (paper §4.2.2–4.2.3): a plain PyTorch loop that reads top to bottom.

:func:`fit` trains an epoch, validates, lets the recipe decide and checkpoints, until the recipe stops; then it
evaluates the best state once more and writes the result folder. Its steps are the small functions below it:

* :func:`train_epoch` — one Adam step per batch over the *trainable* parameters; loss 1 − CCC over the valid frames
  of each window (eq. 16), averaged over targets when one model predicts both. Data order and augmentation depend
  on (seed, epoch) only.
* :func:`validate` — window predictions merged back to one per frame; CCC/PCC/RMSE over all frames of the partition
  concatenated (the ABAW practice) plus per-trial CCC (:mod:`rjcma.train.evaluation`).
* The recipe (:class:`rjcma.train.recipe.Recipe`: warm-up, ReduceLROnPlateau, gradual release of the backbone layer
  groups, best state reloaded every epoch, early stopping) decides; :func:`apply_decision` carries it out.
* :func:`save_epoch` — the training state (model, best model, optimizer, recipe, RNG states, history) and
  ``history.csv``, atomically after every epoch. Rerunning after an interruption (even ``kill -9``) resumes from it
  and, on CPU, ends with the same numbers as an uninterrupted run.
* :func:`finish` — ``predictions/<trial>.csv``, ``model.safetensors`` + ``model.json``, and last ``metrics.json``:
  a folder whose metrics.json carries the current config hash is complete and is skipped on rerun.

Frozen backbone modules stay in eval mode (their batch-norm statistics do not drift, unlike the released code's:
the book's chapter *Paper vs released code*). The parts the loop uses live beside it: the run record and how a run
starts or resumes (:mod:`rjcma.train.run`), the model and its optimizer (:mod:`rjcma.train.trainable`), the saved
model (:mod:`rjcma.train.saved_model`), result-folder names and records (:mod:`rjcma.train.results`).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from accelerate.utils import broadcast_object_list
from torch.utils.data import DataLoader, DistributedSampler
from tqdm.auto import tqdm

from rjcma.config import Config
from rjcma.data.dataset import collate, make_loader
from rjcma.io import atomic_write_json, atomic_write_text
from rjcma.runtime import fixed_threads
from rjcma.train.checkpoint import STATE_FILE, save_train_state
from rjcma.train.evaluation import TARGET_COLUMNS, evaluate, write_predictions
from rjcma.train.losses import ccc_loss
from rjcma.train.recipe import Decision
from rjcma.train.results import config_hash, default_run_dir, environment, history_csv, is_complete
from rjcma.train.run import Run, start_run
from rjcma.train.saved_model import save_model
from rjcma.train.trainable import make_optimizer, release_group, set_train_mode


def train_one(cfg: Config, run_dir: str | Path | None = None, progress: bool = True,
              log: Callable[..., Any] = print) -> dict[str, Any]:
    """Train one model on ``cfg.train.fold`` for ``cfg.targets`` and write the result folder; returns metrics.json.

    A complete folder (metrics.json with this config hash) is returned as is; a folder with a training-state
    checkpoint of this config is resumed. The run computes with ``train.threads`` CPU threads, wherever and next to
    whatever else it runs, so the same config gives the same bytes (:func:`rjcma.runtime.fixed_threads`).
    """
    run_dir = Path(run_dir) if run_dir else default_run_dir(cfg)
    with fixed_threads(int(cfg.train.threads)):
        done = is_complete(run_dir, cfg)
        if done is not None:
            log(f"{run_dir}: complete (config {done['config_hash']}), skipped")
            return done
        return fit(cfg, run_dir, progress, log)


def fit(cfg: Config, run_dir: Path, progress: bool = True, log: Callable[..., Any] = print) -> dict[str, Any]:
    """The fit loop: train an epoch, validate, let the recipe decide, checkpoint; then the final evaluation."""
    run = start_run(cfg, run_dir, log)  # data, model, recipe, optimizer; resumed from train_state.pt if there
    write_config(run)
    bar = epoch_bar(run, progress)
    while not run.recipe.stopped:
        epoch, t0 = run.recipe.epoch, time.time()
        losses, lr = train_epoch(run, epoch)
        metrics, _ = validate(run)
        score = agreed_score(run, metrics["mean_ccc"])
        d = run.recipe.end_epoch(score if np.isfinite(score) else float("-inf"))  # best? release? reload? stop?
        apply_decision(run, d)
        run.history.append(history_row(run, epoch, losses, lr, metrics, score, d, time.time() - t0))
        save_epoch(run)
        if d.stop:
            log(f"{run_dir.name}: stopped after epoch {epoch}: {d.stop_reason}")
        bar.set_postfix(ccc=f"{score:.3f}", best=f"{run.recipe.best_score:.3f}")
        bar.update(1)
    bar.close()
    return finish(run)


# ---- the steps of fit, in the order it calls them ------------------------------------------------------------------
def write_config(run: Run) -> None:
    """``config.yaml`` first (main process): the folder records what produced it from the first epoch on."""
    if run.acc.is_main_process:
        run.run_dir.mkdir(parents=True, exist_ok=True)
        run.cfg.save(run.run_dir / "config.yaml")


def epoch_bar(run: Run, progress: bool) -> tqdm:
    """A progress bar over the epochs (main process only), starting at the resumed epoch."""
    return tqdm(total=run.cfg.train.max_epochs, initial=run.recipe.epoch, desc=run.run_dir.name,
                disable=not (progress and run.acc.is_main_process), leave=False)


def train_loader(run: Run, epoch: int) -> DataLoader:
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


def validate(run: Run) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Metrics of the validation trials and their merged per-frame predictions."""
    return evaluate(run.net, run.val_ds, run.cfg, run.acc.device, run.acc.autocast)


def agreed_score(run: Run, score: float) -> float:
    """The main process's validation score, so that every process takes the same decision under DDP."""
    if run.acc.num_processes > 1:
        score = broadcast_object_list([score])[0]
    return score


def apply_decision(run: Run, d: Decision) -> None:
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


def history_row(run: Run, epoch: int, losses: list[float], lr: float, metrics: dict[str, Any], score: float,
                d: Decision, seconds: float) -> dict[str, Any]:
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


def finish(run: Run) -> dict[str, Any]:
    """The best state, evaluated once more; predictions, weights, and metrics.json last (it marks the run complete)."""
    if run.best_state is not None:
        run.net.load_state_dict(run.best_state)
    metrics, merged = validate(run)
    result = metrics_record(run, metrics)
    if run.acc.is_main_process:
        write_predictions(run.run_dir, merged, list(run.cfg.targets))
        save_model(run.net, run.cfg, run.run_dir, run.train_ds.text_stats)
        atomic_write_json(run.run_dir / "metrics.json", result)
    run.acc.wait_for_everyone()
    return result


def metrics_record(run: Run, metrics: dict[str, Any]) -> dict[str, Any]:
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
