"""Figures of the inference chapter (notebook 12_inference) and the PNG that ``rjcma predict`` writes."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Circle

from rjcma.figures.style import despine, legend_above, legend_right, new_figure

COLOURS = {"valence": "#1f77b4", "arousal": "#d62728"}
PERSON_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2")
BLIND, NO_FACE = "0.82", "0.93"  # shading: neither a face nor sound (no value), no face only


def spans(mask, times) -> list[tuple[float, float]]:
    """(start, end) in seconds of each run of True in ``mask``."""
    m = np.asarray(mask, bool)
    if not m.any():
        return []
    d = np.diff(np.r_[0, m.astype(np.int8), 0])
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1) - 1
    step = float(np.median(np.diff(times))) if len(times) > 1 else 0.04
    return [(float(times[a]), float(times[b]) + step) for a, b in zip(starts, ends)]


def _shade(ax, blind, no_face, t) -> None:
    for i, (a, b) in enumerate(spans(blind, t)):
        ax.axvspan(a, b, color=BLIND, lw=0, zorder=0, label=None if i else "no face and no sound (no value)")
    for i, (a, b) in enumerate(spans(no_face & ~blind, t)):
        ax.axvspan(a, b, color=NO_FACE, lw=0, zorder=0, label=None if i else "no face (audio and text only)")


def _person_traces(ax, t, pred, labels, raw=None) -> None:
    for j, name in enumerate(("valence", "arousal")):
        if raw is not None and not np.isnan(raw[:, j]).all():
            ax.plot(t, raw[:, j], color=COLOURS[name], lw=0.6, alpha=0.35, label=f"{name} (raw model output)")
        if not np.isnan(pred[:, j]).all():
            ax.plot(t, pred[:, j], color=COLOURS[name], lw=1.1,
                    label=f"{name} (predicted{', smoothed' if raw is not None else ''})")
        if labels is not None and not np.isnan(labels[:, j]).all():
            n = min(len(t), len(labels))
            ax.plot(t[:n], labels[:n, j], color=COLOURS[name], lw=1, ls="--", alpha=0.7, label=f"{name} (label)")
    ax.set_ylim(-1.05, 1.05)
    ax.set_xlim(t[0] if len(t) else 0, t[-1] if len(t) > 1 else 1)
    ax.axhline(0, color="0.6", lw=0.6)


def _va_plane(ax, preds) -> None:
    for p, pred in enumerate(preds):
        ok = ~np.isnan(pred).any(axis=1)
        colour = PERSON_COLOURS[p % len(PERSON_COLOURS)]
        ax.plot(pred[ok, 0], pred[ok, 1], color=colour, lw=0.8, alpha=0.8, label=f"person {p}")
        if ok.any():
            ax.plot(pred[ok, 0][:1], pred[ok, 1][:1], "o", color=colour, ms=4)
    ax.add_patch(Circle((0, 0), 1.0, fill=False, color="0.7", lw=0.8))
    ax.axhline(0, color="0.6", lw=0.6)
    ax.axvline(0, color="0.6", lw=0.6)
    ax.set_xlim(-1.05, 1.05)
    ax.set_ylim(-1.05, 1.05)
    ax.set_aspect("equal")
    ax.set_xlabel("valence [−1, 1]")
    ax.set_ylabel("arousal [−1, 1]")
    ax.set_title("valence–arousal trajectory (dot: start)", fontsize=9)
    legend_right(ax)


def _raw(result, p: int):
    """Person ``p``'s raw model output where it differs from the (smoothed) prediction, else None."""
    raws = getattr(result, "raw", None)
    if not raws:
        return None
    raw = np.asarray(raws[p], float)
    return None if np.allclose(raw, np.asarray(result.preds[p], float), equal_nan=True) else raw


def prediction(result, labels=None, title: str = "", dpi: int | None = None) -> Figure:
    """One row per person: valence and arousal over time (``labels`` (N, 2), if given, dashed on the first person's
    row; the raw model output faint beside the smoothed one where the result was smoothed), the frames without a
    face or without any evidence shaded; right: every person's trajectory in the valence–arousal plane.
    ``result``: a :class:`rjcma.predict_outputs.PredictionResult`."""
    t = np.asarray(result.times, float)
    n_p = len(result.preds)
    fig = new_figure(12, 1.6 + 2.4 * n_p, dpi)
    gs = fig.add_gridspec(n_p, 2, width_ratios=[2.2, 1])
    lab = None if labels is None else np.asarray(labels, float)
    axes = []
    for p, pred in enumerate(result.preds):
        ax = fig.add_subplot(gs[p, 0], sharex=axes[0] if axes else None)
        faces = np.asarray(result.faces[p], bool)
        _shade(ax, ~(faces | np.asarray(result.speech, bool)), ~faces, t)
        raw = _raw(result, p)
        _person_traces(ax, t, np.asarray(pred, float), lab if p == 0 else None, raw)
        ax.set_ylabel(f"person {p}\nvalue [−1, 1]")
        ax.set_xlabel("time (s)")
        despine(ax)
        axes.append(ax)
    legend_above(axes[0], ncol=3)
    _va_plane(fig.add_subplot(gs[:, 1]), result.preds)
    fig.suptitle(title or f"{result.video.name}: valence and arousal per frame", fontsize=10)
    return fig
