"""The temporal filter of the model's output (rjcma.train.smoothing): a centred moving average that leaves missing
frames alone, its width chosen on validation predictions."""

from __future__ import annotations

import numpy as np
import pytest

from rjcma.metrics import ccc
from rjcma.train import smoothing as S


def test_moving_average_is_centred_and_shrinks_at_the_ends():
    x = np.arange(10, dtype=np.float32)
    y = S.smooth(x, 3)
    assert np.allclose(y[1:-1], x[1:-1])  # a straight line stays where it is
    assert y[0] == pytest.approx(0.5) and y[-1] == pytest.approx(8.5)  # the window shrinks to the frames there are
    rng = np.random.default_rng(0)
    z = rng.standard_normal((50, 2)).astype(np.float32)
    want = np.stack([np.convolve(z[:, j], np.ones(5) / 5, mode="valid") for j in range(2)], 1)
    assert np.allclose(S.smooth(z, 5)[2:-2], want, atol=1e-6)
    assert np.array_equal(S.smooth(z, 1), z)


def test_missing_frames_neither_count_nor_are_filled():
    x = np.array([1.0, np.nan, 3.0, 3.0, np.nan], np.float32)
    y = S.smooth(x, 3)
    assert np.isnan(y[1]) and np.isnan(y[4])
    assert y[0] == pytest.approx(1.0) and y[2] == pytest.approx(3.0) and y[3] == pytest.approx(3.0)


def test_width_in_frames_is_odd():
    assert S.width_frames(1.0, 30) == 31 and S.width_frames(0.1, 30) == 3 and S.width_frames(0.0, 30) == 1
    assert S.width_frames(0.5, 25) == 13


def test_the_width_is_chosen_where_it_helps():
    """Smooth labels, predictions that follow them with frame-to-frame noise: smoothing helps and a width > 0 is
    chosen; predictions equal to the labels choose no smoothing."""
    rng = np.random.default_rng(1)
    t = np.arange(900) / 30
    labels = {f"t{k}": np.stack([np.sin(t / (2 + k)), np.cos(t / (3 + k))], 1).astype(np.float32) for k in range(3)}
    noisy = {n: (y + 0.4 * rng.standard_normal(y.shape)).astype(np.float32) for n, y in labels.items()}
    fps = dict.fromkeys(labels, 30.0)
    w, table = S.choose_width(noisy, labels, fps)
    assert w > 0 and table[w] > table[0.0] + 0.1
    assert S.roughness(S.smooth(noisy["t0"], S.width_frames(w, 30))) < S.roughness(noisy["t0"])
    assert S.choose_width(labels, labels, fps)[0] == 0.0
    raw = S.smoothed_scores(noisy, labels, fps, 0.0)
    assert raw[0] == pytest.approx(float(ccc(np.concatenate([noisy[n][:, 0] for n in sorted(noisy)]),
                                             np.concatenate([labels[n][:, 0] for n in sorted(labels)]))))
