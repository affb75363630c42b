"""Evaluation of one model on one partition (paper §4.3): window predictions, merged back to one per frame, scored.

Overlapping window predictions are averaged per frame (:func:`rjcma.data.windows.merge_windows`); CCC, PCC and RMSE
are computed over all frames of the partition concatenated (the ABAW practice), plus the CCC of each trial.
"""

from __future__ import annotations

import contextlib
import csv
import io
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from rjcma.config import Config
from rjcma.data.dataset import make_loader
from rjcma.data.windows import merge_windows
from rjcma.io import atomic_write_text
from rjcma.metrics import all_metrics, ccc
from rjcma.train.smoothing import WIDTH_S, smoothed_scores

TARGET_COLUMNS = {"valence": 0, "arousal": 1}  # column of each target in labels.npy


@torch.no_grad()
def predict_windows(model: nn.Module, loader, device: torch.device, autocast=None) -> dict[str, list[tuple[int, np.ndarray]]]:
    """Run the model over a loader; ``{trial: [(start, (K, n_targets) prediction), ...]}``."""
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
    loader = make_loader(ds, cfg, train=False, epoch=0, batch_size=max(cfg.train.batch_size, 12))
    merged = merge_predictions(predict_windows(model, loader, device, autocast), ds.lengths, cfg.K)
    labels = {n: np.asarray(ds.store.load(n, "labels"), dtype=np.float32) for n in merged}
    metrics = score_predictions(merged, labels, list(cfg.targets))
    # ---- the smoothed output's CCC beside the raw one (rjcma.train.smoothing; the width was chosen on the demo's
    # validation folds, so on those folds it is not an unbiased figure: the inference chapter says where it is)
    fps = {n: float(ds.store.meta(n).get("fps") or 30.0) for n in merged}
    cols = [TARGET_COLUMNS[t] for t in cfg.targets]
    metrics["smoothed"] = {"width_s": WIDTH_S, **dict(zip(cfg.targets, smoothed_scores(merged, labels, fps, WIDTH_S,
                                                                                       cols)))}
    # ----
    return metrics, merged


def write_predictions(folder: Path, preds: dict[str, np.ndarray], targets: list[str]) -> None:
    """``predictions/<trial>.csv`` with columns frame,valence,arousal (empty where a target was not trained).

    Nine significant digits give every float32 prediction back bit for bit, so the CCC recomputed from these files
    (:mod:`rjcma.train.intervals`) is metrics.json's exactly."""
    for name, p in preds.items():
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="\n")
        w.writerow(["frame", "valence", "arousal"])
        for k in range(p.shape[0]):
            row = [k]
            for t in ("valence", "arousal"):
                row.append(f"{p[k, targets.index(t)]:.9g}" if t in targets else "")
            w.writerow(row)
        atomic_write_text(folder / "predictions" / f"{name}.csv", buf.getvalue())
