"""Figures of the text chapter (notebook 04_text): recognised words, word features, words spread over frames."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from rjcma.figures.style import legend_right, new_figure


def _envelope(ax, x: np.ndarray, sample_rate: float) -> None:
    """Min/max per 10 ms: keeps the waveform light to draw for long files."""
    hop = max(1, int(sample_rate // 100))
    n = len(x) // hop
    if n:
        env = x[: n * hop].reshape(n, hop)
        tt = (np.arange(n) + 0.5) * hop / sample_rate
        ax.fill_between(tt, env.min(1), env.max(1), color="0.55", lw=0)


def word_timeline(words, waveform, sample_rate, reference=None, title: str = "", dpi: int | None = None) -> Figure:
    """The waveform with one box per recognised word (start..end), labelled with its punctuated text and
    shaded by ASR confidence; ``reference``: optional (start, end, text) spans drawn underneath (e.g. the
    demo corpus's script)."""
    x = np.asarray(waveform, dtype=np.float32)
    t_end = max(len(x) / float(sample_rate), max((w.end for w in words), default=0.0))
    rows = 3 if reference else 2
    fig = new_figure(11, 1.6 * rows + 1.0, dpi)
    axes = fig.subplots(rows, 1, sharex=True,
                        gridspec_kw={"height_ratios": [2, 1.2] + ([0.8] if reference else [])})
    ax = axes[0]
    _envelope(ax, x, sample_rate)
    for w in words:
        ax.axvspan(w.start, w.end, color="tab:blue", alpha=0.12, lw=0)
    ax.set_ylabel("amplitude")
    ax = axes[1]
    cmap = matplotlib.colormaps["viridis"]
    for i, w in enumerate(words):
        y = i % 2
        ax.barh(y, max(w.end - w.start, 1e-3), left=w.start, height=0.8, color=cmap(w.confidence), edgecolor="k",
                lw=0.3)
        ax.text((w.start + w.end) / 2, y, w.punctuated, ha="center", va="center", fontsize=7, clip_on=True)
    ax.set_yticks([])
    ax.set_ylim(-0.6, 1.6)
    ax.set_ylabel("words")
    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=list(axes), label="ASR confidence",
                 fraction=0.025, pad=0.01)
    if reference:
        ax = axes[2]
        for s, e, txt in reference:
            ax.barh(0, e - s, left=s, height=0.8, color="0.85", edgecolor="0.4", lw=0.4)
            ax.text((s + e) / 2, 0, txt, ha="center", va="center", fontsize=7, clip_on=True)
        ax.set_yticks([])
        ax.set_ylabel("script")
    axes[-1].set_xlim(0, t_end)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title or "recognised words over the audio")
    return fig


def word_features(vectors, words, max_words: int = 40, title: str = "", dpi: int | None = None) -> Figure:
    """Heat map of per-word feature vectors (rows: words, columns: dimensions), clipped at ±3 standard deviations."""
    v = np.asarray(vectors, dtype=np.float32)[:max_words]
    labels = [w.punctuated for w in words][:max_words]
    fig = new_figure(11, 0.18 * max(len(v), 4) + 1.6, dpi)
    ax = fig.subplots()
    if len(v):
        z = (v - v.mean(0)) / (v.std(0) + 1e-6)
        im = ax.imshow(np.clip(z, -3, 3), aspect="auto", cmap="RdBu_r", vmin=-3, vmax=3, interpolation="nearest")
        fig.colorbar(im, ax=ax, label="z-score per dimension", fraction=0.025, pad=0.01)
        ax.set_yticks(range(len(labels)))
        ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel(f"feature dimension (d = {v.shape[1] if v.ndim == 2 else 0})")
    ax.set_ylabel("word")
    fig.suptitle(title or "word features: sum of the last four hidden layers, pieces averaged")
    return fig


def words_on_frames(word_index, frame_vectors, fps: float, title: str = "", dpi: int | None = None) -> Figure:
    """How words spread over video frames: the word each frame takes (−1: none) and the (N, d) frame
    features (first 64 dimensions) with zeros where nobody speaks."""
    idx = np.asarray(word_index)
    f = np.asarray(frame_vectors, dtype=np.float32)
    t = np.arange(len(idx)) / float(fps)
    fig = new_figure(11, 4.4, dpi)
    axes = fig.subplots(2, 1, sharex=True, gridspec_kw={"height_ratios": [1, 2]})
    ax = axes[0]
    ax.step(t, np.where(idx >= 0, idx, np.nan), where="post", color="tab:blue", lw=1, label="word of the frame")
    ax.fill_between(t, 0, 1, where=idx < 0, transform=ax.get_xaxis_transform(), color="0.9", step="post", lw=0,
                    label="no word (zeros)")
    ax.set_ylabel("word index")
    legend_right(ax)
    ax = axes[1]
    d = min(64, f.shape[1]) if f.ndim == 2 else 0
    if d:
        lim = float(np.percentile(np.abs(f[:, :d]), 99)) or 1.0
        im = ax.imshow(f[:, :d].T, aspect="auto", cmap="RdBu_r", vmin=-lim, vmax=lim, interpolation="nearest",
                       extent=(0, len(idx) / float(fps), d, 0))
        fig.colorbar(im, ax=ax, label="feature value", fraction=0.025, pad=0.01)
    ax.set_ylabel(f"dimension 0..{d - 1}")
    ax.set_xlabel("time (s)")
    fig.suptitle(title or f"words → frames (frame k at t = k/fps, fps = {fps:g})")
    return fig
