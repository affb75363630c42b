"""A temporal filter for per-frame valence and arousal: the model's output made as smooth as the labels it imitates.

Aff-Wild2's annotators moved a joystick while they watched, so every label trace is smooth at 30 fps; the model
scores each frame from a window of K frames and its output can still jump from one frame to the next. A centred
moving average over ``width`` frames (:func:`smooth`) removes those jumps; its width is a hyperparameter like any
other and is chosen on validation predictions only (:func:`choose_width`), never on test data. Evaluation
(:mod:`rjcma.train.evaluation`) reports the smoothed scores beside the raw ones, and ``rjcma predict`` applies the
filter unless ``--no-smooth`` is given. :func:`roughness` measures what the filter is for: the mean absolute change
from one frame to the next.
"""

from __future__ import annotations

from typing import Iterable, Mapping

import numpy as np

from rjcma.metrics import ccc

WIDTHS_S = (0.0, 0.1, 0.2, 0.3, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)  # the widths tried on validation (seconds)
WIDTH_S = 1.5  # chosen on the demo's six validation folds (mean CCC 0.646 against 0.603 raw; benchmarks/RESULTS.md)


def width_frames(width_s: float, fps: float) -> int:
    """The odd number of frames nearest to ``width_s`` seconds at ``fps`` (1: no smoothing)."""
    n = int(round(float(width_s) * float(fps)))
    return max(1, n + 1 - n % 2) if n > 1 else 1


def smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Centred moving average of ``x`` (N,) or (N, C) over ``width`` frames along the first axis (float32).

    NaN frames (no prediction) neither count nor are filled; at the ends the window shrinks to the frames there are,
    so a constant sequence stays constant.
    """
    x = np.asarray(x, np.float32)
    if width <= 1 or len(x) < 2:
        return x.copy()
    flat = x.reshape(len(x), -1).astype(np.float64)
    ok = np.isfinite(flat)
    half = width // 2
    pad = ((half + 1, half), (0, 0))
    s = np.cumsum(np.pad(np.where(ok, flat, 0.0), pad), axis=0)
    c = np.cumsum(np.pad(ok.astype(np.float64), pad), axis=0)
    total, count = s[width:] - s[:-width], c[width:] - c[:-width]
    out = np.where(ok, total / np.maximum(count, 1.0), np.nan)
    return out.reshape(x.shape).astype(np.float32)


def roughness(x: np.ndarray) -> float:
    """Mean absolute change from one frame to the next over the finite pairs (NaN when there are none)."""
    x = np.asarray(x, np.float64)
    d = np.abs(np.diff(x, axis=0))
    d = d[np.isfinite(d)]
    return float(d.mean()) if d.size else float("nan")


def smoothed_scores(preds: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], fps: Mapping[str, float],
                    width_s: float, columns: Iterable[int] = (0, 1)) -> list[float]:
    """CCC per target (all trials' frames concatenated, the ABAW practice) of the predictions smoothed over
    ``width_s`` seconds; ``preds[name]`` (N, T) holds target j in column j, ``labels[name]`` in ``columns[j]``."""
    names = sorted(preds)
    sm = {n: smooth(preds[n], width_frames(width_s, fps[n])) for n in names}
    out = []
    for j, col in enumerate(columns):
        x = np.concatenate([sm[n][:, j] for n in names])
        y = np.concatenate([np.asarray(labels[n])[: len(sm[n]), col] for n in names])
        out.append(float(ccc(x, y)))
    return out


def choose_width(preds: Mapping[str, np.ndarray], labels: Mapping[str, np.ndarray], fps: Mapping[str, float],
                 widths: Iterable[float] = WIDTHS_S, columns: Iterable[int] = (0, 1)) -> tuple[float, dict]:
    """(the width, s, of the best mean CCC over the targets; {width: mean CCC}) on these (validation) predictions.
    Of equal scores the narrower width wins."""
    cols = list(columns)
    table = {float(w): float(np.mean(smoothed_scores(preds, labels, fps, w, cols))) for w in widths}
    best = max(table, key=lambda w: (round(table[w], 6), -w))
    return best, table
