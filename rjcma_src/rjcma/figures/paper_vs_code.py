"""Figures of the chapter *Paper vs released code* (notebook 13_paper_vs_code)."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import legend_right, new_figure


def correlation_layouts(C_paper, C_released, dpi: int | None = None) -> Figure:  # noqa: N803
    """The visual correlation matrix of one iteration: over time steps in the paper (K × K), over features in the
    released fusion (d_v × d)."""
    fig = new_figure(10, 3.8, dpi)
    axes = fig.subplots(1, 2)
    panels = [(C_paper, "paper: C_v over time steps (K × K)", "time step of J", "time step of X_v"),
              (C_released, "released: C_v over features (d_v × d)", "joint feature", "visual feature")]
    for ax, (C, title, xl, yl) in zip(axes, panels):
        im = ax.imshow(np.asarray(C), cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto")
        ax.set_title(title, fontsize=9)
        ax.set_xlabel(xl)
        ax.set_ylabel(yl)
    fig.colorbar(im, ax=list(axes), shrink=0.8, label="tanh(·)")
    fig.suptitle("one iteration's correlation matrix, paper and released code")
    return fig


def last_word_features(frames, released_frames, words, fps: float, dpi: int | None = None) -> Figure:
    """Norm of the frame-level word features over time, ours against the released code's (whose last word has no
    vector); each word written at its span."""
    fig = new_figure(10, 2.6, dpi)
    ax = fig.subplots()
    t = np.arange(len(frames)) / fps
    ax.plot(t, np.linalg.norm(frames, axis=1), label="ours", lw=2)
    ax.plot(t, np.linalg.norm(released_frames, axis=1), "--", label="released", lw=1.5)
    for w in words:
        ax.text((w.start + w.end) / 2, 0.05, w.word, ha="center", fontsize=8, transform=ax.get_xaxis_transform(),
                bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0, "alpha": 0.85}, zorder=4)  # not struck
    ax.set_xlabel("time (s)")
    ax.set_ylabel("‖word feature‖")
    legend_right(ax)
    fig.suptitle("the last word's frames: a feature in ours, zeros in the released code")
    return fig
