"""Windows of K frames over a trial, and their merge back to one value per frame (paper §4.2.1).

A trial of n frames is cut into windows of K frames (K = ``cfg.K``, 300 in the paper) starting every ``stride``
frames (200), plus one window aligned to the end (start n − K) when the regular starts miss the last frames.
A trial shorter than K gives one window, padded with zeros after its end; the mask marks the real frames.
:func:`merge_windows` averages the window predictions of every frame, so windowing a sequence and merging the
windows gives the sequence back exactly.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np


def window_starts(n: int, K: int, stride: int) -> list[int]:  # noqa: N803 - the paper's K
    """Starts 0, stride, 2·stride, … while a whole window fits, plus n − K if the last frames are not covered;
    ``[0]`` when n ≤ K."""
    if n < 1:
        raise ValueError(f"a trial needs at least one frame, got n={n}")
    if K < 1 or stride < 1:
        raise ValueError(f"K and stride must be >= 1, got K={K}, stride={stride}")
    if n <= K:
        return [0]
    starts = list(range(0, n - K + 1, stride))
    if starts[-1] != n - K:
        starts.append(n - K)  # the extra window aligned to the end
    return starts


def take_window(array: np.ndarray, start: int, K: int) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """Frames ``start … start+K−1`` of ``array`` (n, ...) → (window (K, ...), mask (K,) bool).

    Frames past the end are zeros with mask False. Works on memory-mapped arrays (reads only the window).
    """
    n = len(array)
    if not 0 <= start < n:
        raise ValueError(f"window start {start} outside a sequence of {n} frames")
    m = min(K, n - start)
    window = np.zeros((K,) + tuple(array.shape[1:]), dtype=array.dtype)
    window[:m] = array[start : start + m]
    mask = np.zeros(K, dtype=bool)
    mask[:m] = True
    return window, mask


def merge_windows(
    preds: Sequence[np.ndarray],
    starts: Sequence[int],
    n: int,
    K: int,  # noqa: N803
) -> np.ndarray:
    """Average overlapping window predictions ``(K, C)`` (or ``(K,)``) back to ``(n, C)``.

    Window i covers frames ``starts[i] … starts[i]+K−1``; its rows past frame n−1 (padding) are ignored.
    Every frame must be covered by at least one window.
    """
    if len(preds) != len(starts):
        raise ValueError(f"{len(preds)} windows but {len(starts)} starts")
    if not len(preds):
        raise ValueError("no windows to merge")
    first = np.asarray(preds[0])
    if first.shape[0] != K:
        raise ValueError(f"windows must have K={K} rows, got {first.shape[0]}")
    mean = np.zeros((n,) + first.shape[1:], dtype=np.float64)
    count = np.zeros(n, dtype=np.int64)
    tail = (1,) * (mean.ndim - 1)
    for p, s in zip(preds, starts):
        p = np.asarray(p)
        if p.shape != first.shape:
            raise ValueError(f"window shapes differ: {p.shape} vs {first.shape}")
        if not 0 <= s < n:
            raise ValueError(f"window start {s} outside a sequence of {n} frames")
        m = min(K, n - s)
        count[s : s + m] += 1
        # running mean: exact when the windows agree (so merging the windows of a sequence returns it bit for bit)
        mean[s : s + m] += (p[:m] - mean[s : s + m]) / count[s : s + m].reshape((m,) + tail)
    if not count.all():
        raise ValueError(f"frame {int(np.argmin(count))} is covered by no window")
    return mean.astype(np.result_type(first.dtype, np.float32), copy=False)


def index_windows(lengths: Mapping[str, int], K: int, stride: int) -> list[tuple[str, int]]:  # noqa: N803
    """Every window of every trial as (trial, start), trials in the mapping's order."""
    return [(name, s) for name, n in lengths.items() for s in window_starts(int(n), K, stride)]
