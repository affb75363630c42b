"""Figures of the gating chapter (notebook 06c_gating): what the temperature does to a gate, and a trained gate's
weights over one validation trial."""

from __future__ import annotations

import math
from typing import Mapping, Sequence

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import despine, legend_right, new_figure


def temperature_sweep(logits: Sequence[float], temperatures: Sequence[float], candidates: Sequence[str],
                      released: float = 0.1, dpi: int | None = None) -> Figure:
    """Left: the weights softmax(logits / T) of each candidate against T (log scale); right: their entropy, from 0
    (a hard choice, T → 0) to log n (the plain average, T → ∞). A dotted line marks the released T."""
    z = np.asarray(logits, dtype=np.float64)
    T = np.asarray(temperatures, dtype=np.float64)
    a = z[None, :] / T[:, None]
    w = np.exp(a - a.max(1, keepdims=True))
    w /= w.sum(1, keepdims=True)
    ent = -(w * np.log(np.clip(w, 1e-300, None))).sum(1)
    fig = new_figure(11.0, 3.6, dpi)
    axes = fig.subplots(1, 2)
    for i, c in enumerate(candidates):
        axes[0].plot(T, w[:, i], color=f"C{i}", label=f"{c} (logit {z[i]:+.2f})")
    axes[0].set_ylabel("weight w_i")
    axes[1].plot(T, ent, color="k", label="entropy of w")
    axes[1].axhline(math.log(len(z)), color="grey", ls="--", label=f"log n = {math.log(len(z)):.3f}")
    axes[1].set_ylabel("entropy (nats)")
    for ax in axes:
        ax.set_xscale("log")
        ax.axvline(released, color="grey", ls=":", label=f"released T = {released:g}")
        ax.set_xlabel("temperature T")
        ax.grid(alpha=0.3)
        legend_right(ax)
    despine(*axes)
    fig.suptitle("one gate's weights against its temperature: a hard choice as T → 0, the average as T → ∞")
    return fig


def gate_weights_over_time(weights: Mapping[str, np.ndarray], candidates: Sequence[str], fps: float,
                           labels: np.ndarray | None = None, no_face: np.ndarray | None = None, title: str = "",
                           dpi: int | None = None) -> Figure:
    """Per modality (one row each), the gate's weight of every candidate at each frame, stacked (they sum to one):
    the unattended X(0) in grey, the attended ones in colour. With ``labels`` (N, 2), a top row shows the trial's
    valence and arousal for orientation; with ``no_face`` (N,) bool, the frames without a face are marked under
    every row."""
    mods = list(weights)
    rows = len(mods) + (labels is not None)
    fig = new_figure(11.0, 1.2 + 1.7 * rows, dpi)
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    n = len(next(iter(weights.values())))
    t = np.arange(n) / fps
    if labels is not None:
        for j, name in enumerate(("valence", "arousal")):
            axes[0].plot(t, np.asarray(labels)[:n, j], lw=1, color=f"C{j}", label=name)
        axes[0].set_ylabel("label")
        axes[0].set_ylim(-1, 1)
        legend_right(axes[0])
    colours = ["0.75" if c == "X(0)" else f"C{i + 2}" for i, c in enumerate(candidates)]
    for ax, m in zip(axes[rows - len(mods):], mods):
        w = np.asarray(weights[m], dtype=np.float64)
        ax.stackplot(t, w.T, colors=colours, labels=list(candidates), linewidth=0)
        ax.set_xlim(t[0], t[-1])
        ax.set_ylabel(f"{m}\nweight")
        ax.set_ylim(0, 1)
        if no_face is not None and np.any(no_face):  # a band below the weights
            ax.fill_between(t, -0.09, -0.02, where=np.asarray(no_face)[:n], color="k", step="mid", label="no face")
            ax.set_ylim(-0.1, 1)
    legend_right(axes[rows - len(mods)])
    axes[-1].set_xlabel("time (s)")
    despine(*axes)
    fig.suptitle(title or "gate weights over time: which candidate each modality's gate takes")
    return fig
