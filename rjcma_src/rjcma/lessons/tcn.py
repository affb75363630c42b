"""The TCN chapter (notebook 06a_tcn): a window of features to show, receptive fields measured from gradients, and
the exercises' checks."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from rjcma.data.store import Store, feature_key
from rjcma.errors import RjcmaError
from rjcma.lessons.checks import Verdict, check_value
from rjcma.models.tcn import TemporalConvNet, receptive_field


def synthetic_features(K: int, d: int, seed: int) -> np.ndarray:  # noqa: N803
    """(K, d) slow drifts, a step change halfway and frame noise: a stand-in for a window of encoder features."""
    rng = np.random.default_rng(seed)
    t = np.arange(K)[:, None]
    slow = np.sin(2 * np.pi * t / rng.uniform(60, 400, d) + rng.uniform(0, 2 * np.pi, d))
    step = (t >= K // 2) * rng.normal(0, 1, d)
    return (slow + step + 0.8 * rng.normal(size=(K, d))).astype(np.float32)


def feature_window(cfg, modality: str = "visual") -> tuple[np.ndarray, float | None, str]:
    """(K, d) features of one store trial (``book.show_trial`` or the first validation trial), with its fps and
    a description; a synthetic window of the configured width when there is no usable store."""
    K = cfg.K
    try:
        st = Store(cfg.data.store)
        key = feature_key(cfg, modality)
        names = [n for n in st.trials() if st.has(n, key)] if Path(cfg.data.store).is_dir() else []
        if names:
            val = [n for n in names if st.meta(n).get("partition") == "validation"]
            name = cfg.book.show_trial or (val or names)[0]
            feats = np.asarray(st.load(name, key), dtype=np.float32)[:K]
            if len(feats) < K:  # a short trial: repeat its last frame, for display only
                feats = np.concatenate([feats, np.repeat(feats[-1:], K - len(feats), 0)])
            return feats, float(st.meta(name).get("fps", 0)) or None, f"store trial {name}"
    except (RjcmaError, OSError, KeyError, ValueError) as e:  # an incomplete store: say so, use the synthetic
        print(f"store {cfg.data.store} not usable here ({e}); showing a synthetic sequence")
    d = cfg.model.input_dim(modality)
    return synthetic_features(K, d, cfg.train.seed), None, "synthetic sequence"


def lag1(s: np.ndarray) -> float:
    """Mean over channels of the lag-1 autocorrelation over time of a (T, C) sequence."""
    z = (s - s.mean(0)) / (s.std(0) + 1e-8)
    return float((z[1:] * z[:-1]).mean(0).mean())


def measured_receptive_field(channels: Sequence[int], kernel: int, length: int, seed: int = 0) -> tuple[int, bool]:
    """Frames with a non-zero gradient on the last output of a fresh TCN (eval, float64), and whether the last
    input frame is among them (causal: nothing later exists)."""
    torch.manual_seed(seed)
    net = TemporalConvNet(4, list(channels), kernel_size=kernel, dropout=0.0).double().eval()
    x = torch.randn(1, length, 4, dtype=torch.double, requires_grad=True)
    net(x)[0, -1].sum().backward()
    hit = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten()
    return int(hit.max() - hit.min() + 1), bool(hit.max() == length - 1)


def check_receptive_field(answer: int | None, kernel: int, levels: int) -> Verdict:
    """Exercise: R(k, L) by the formula, checked against the receptive field measured on a built TCN."""
    length = receptive_field(kernel, levels) + 10
    measured, _ = measured_receptive_field([4] * levels, kernel, length)
    return check_value(f"R(k={kernel}, L={levels})", answer, measured, 0,
                       "measured: frames with a non-zero gradient on the last output")


def check_levels_for(answer: int | None, kernel: int, K: int) -> Verdict:  # noqa: N803
    """Exercise: the fewest TCN levels whose receptive field covers a whole window of K frames."""
    L = 0
    while receptive_field(kernel, L) < K:
        L += 1
    return check_value(f"levels for R >= K = {K} (k = {kernel})", answer, L, 0, f"R = {receptive_field(kernel, L)}")
