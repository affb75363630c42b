"""Figures of the text chapter (notebook 04_text): recognised words, word features, words spread over frames."""

from __future__ import annotations

import matplotlib
import numpy as np
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from matplotlib.font_manager import FontProperties
from matplotlib.textpath import TextPath

from rjcma.figures.style import legend_right, new_figure


def _envelope(ax, x: np.ndarray, sample_rate: float) -> None:
    """Min/max per 10 ms: keeps the waveform light to draw for long files."""
    hop = max(1, int(sample_rate // 100))
    n = len(x) // hop
    if n:
        env = x[: n * hop].reshape(n, hop)
        tt = (np.arange(n) + 0.5) * hop / sample_rate
        ax.fill_between(tt, env.min(1), env.max(1), color="0.55", lw=0)


def _label_lanes(ax, spans, labels, fontsize: float, max_lanes: int = 4,
                 pad_px: float = 5.0) -> tuple[list[int], list[float]]:
    """A lane (0 = top) and an x position (data units) for each span's label, so that no two labels of a lane
    overlap on the page and none is cut by the axes' edges. A label is centred on its span, moved inwards where it
    would stick out of the axes, and goes to the first lane whose last label ends before it starts (widths measured
    at the figure's size, with the layout done and the x limits set); when every lane is taken, to the lane whose
    last label ends first."""
    prop = FontProperties(size=fontsize)
    px_per_pt = ax.figure.dpi / 72
    to_px, to_data = ax.transData.transform, ax.transData.inverted().transform
    x0, x1 = ax.get_window_extent().intervalx
    ends = [-np.inf] * max_lanes
    lanes, xs = [], []
    for (s, e), text in zip(spans, labels):
        # the outline's width, plus 10 %: rendered at another dpi, glyph advances snap to whole pixels (7 pt text
        # came out 6 % wider at 110 dpi than at 100)
        half = 0.55 * TextPath((0, 0), text, prop=prop).get_extents().width * px_per_pt if text.strip() else 0.0
        mid = float(np.clip(to_px(((s + e) / 2, 0))[0], x0 + half + 4, max(x0 + half + 4, x1 - half - 4)))
        free = [k for k in range(max_lanes) if ends[k] + pad_px <= mid - half]
        k = free[0] if free else int(np.argmin(ends))
        ends[k] = mid + half
        lanes.append(k)
        xs.append(float(to_data((mid, 0))[0]))
    return lanes, xs


def _labelled_bars(ax, spans, labels, colors, fontsize: float = 7, max_lanes: int = 4) -> int:
    """One bar per span with its label, the bars of overlapping labels in lanes stacked downwards; the number of
    lanes used."""
    lanes, xs = _label_lanes(ax, spans, labels, fontsize, max_lanes)
    for (s, e), text, color, k, x in zip(spans, labels, colors, lanes, xs):
        ax.barh(-k, max(e - s, 1e-3), left=s, height=0.8, color=color, edgecolor="0.3", lw=0.3)
        ax.text(x, -k, text, ha="center", va="center", fontsize=fontsize, clip_on=True)
    used = max(lanes, default=0) + 1
    ax.set_yticks([])
    ax.set_ylim(-used + 0.4, 0.6)
    return used


def word_timeline(words, waveform, sample_rate, reference=None, title: str = "", dpi: int | None = None) -> Figure:
    """The waveform with one box per recognised word (start..end), labelled with its punctuated text and
    shaded by ASR confidence; ``reference``: optional (start, end, text) spans drawn underneath (e.g. the
    demo corpus's script). Words whose labels would overlap go to lanes below one another."""
    x = np.asarray(waveform, dtype=np.float32)
    t_end = max(len(x) / float(sample_rate), max((w.end for w in words), default=0.0))
    rows = 3 if reference else 2
    fig = new_figure(11, 1.9 * rows + 1.0, dpi)
    axes = fig.subplots(rows, 1, sharex=True,
                        gridspec_kw={"height_ratios": [2, 1.6] + ([1.2] if reference else [])})
    cmap = matplotlib.colormaps["viridis"]
    fig.colorbar(ScalarMappable(norm=Normalize(0, 1), cmap=cmap), ax=list(axes), label="ASR confidence",
                 fraction=0.025, pad=0.01)
    ax = axes[0]
    _envelope(ax, x, sample_rate)
    for w in words:
        ax.axvspan(w.start, w.end, color="tab:blue", alpha=0.12, lw=0)
    ax.set_ylabel("amplitude")
    axes[1].set_ylabel("words")
    if reference:
        axes[2].set_ylabel("script")
    for ax in axes[1:]:
        ax.set_yticks([])  # before the layout is made: tick labels would take room that the final figure gives back
    axes[-1].set_xlim(0, t_end)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title or "recognised words over the audio")
    fig.draw_without_rendering()  # the layout: the labels' lanes are chosen in the page's pixels
    _labelled_bars(axes[1], [(w.start, w.end) for w in words], [w.punctuated for w in words],
                   [cmap(w.confidence) for w in words])
    if reference:
        _labelled_bars(axes[2], [(s, e) for s, e, _ in reference], [t for _, _, t in reference],
                       ["0.85"] * len(reference), max_lanes=3)
    axes[-1].set_xlim(0, t_end)
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
