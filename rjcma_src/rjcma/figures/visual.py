"""Figures of the visual chapter (notebook 02_visual): face crops, the face mask, what the encoder sees."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import legend_right, new_figure


def face_strip(faces, mask, start: int = 0, n: int = 16, fps: float | None = None, title: str = "",
               dpi: int | None = None) -> Figure:
    """A row of ``n`` consecutive 48x48 face crops from row ``start``; masked rows (no face) framed in red."""
    n = max(1, min(n, len(faces) - start))
    cols = min(n, 12)
    rows = (n + cols - 1) // cols
    fig = new_figure(cols * 0.95, rows * 1.25 + 0.4, dpi)
    axes = fig.subplots(rows, cols, squeeze=False)
    for i, ax in enumerate(axes.ravel()):
        ax.set_xticks([])
        ax.set_yticks([])
        if i >= n:
            ax.axis("off")
            continue
        k = start + i
        ax.imshow(faces[k])
        ok = bool(mask[k])
        for s in ax.spines.values():
            s.set_edgecolor("tab:green" if ok else "tab:red")
            s.set_linewidth(2)
        label = f"row {k}" if fps is None else f"row {k}\n{k / fps:.2f} s"
        ax.set_xlabel(label + ("" if ok else " ✗"), fontsize=7, color="black" if ok else "tab:red")
    fig.suptitle(title or "face crops (row k = jpg k+1; red: no face, black frame)", fontsize=9)
    return fig


def face_mask_timeline(mask, labels=None, fps: float = 30.0, title: str = "", dpi: int | None = None) -> Figure:
    """Face mask over time beside the annotation validity (rows with −5 labels)."""
    t = np.arange(len(mask)) / fps
    fig = new_figure(9, 1.9, dpi)
    ax = fig.subplots()
    ax.fill_between(t, 0, np.asarray(mask, float), step="post", alpha=0.6, label="face found")
    if labels is not None:
        valid = ~np.isnan(np.asarray(labels)).any(axis=1)
        ax.fill_between(t, 1.1, 1.1 + 0.5 * valid, step="post", alpha=0.6, color="tab:orange", label="label valid")
    ax.set_yticks([])
    ax.set_ylabel("present")
    ax.set_xlabel("time (s)")
    legend_right(ax)
    fig.suptitle(title or "faces and labels over time", fontsize=9)
    return fig


def encoder_input(face, tensor, row: int, dpi: int | None = None) -> Figure:
    """A stored 48x48 crop beside the centre crop the visual encoder reads (``tensor``: (3, H, W), in [−1, 1])."""
    fig = new_figure(4.8, 2.8, dpi)
    axes = fig.subplots(1, 2)
    x = np.asarray(tensor, dtype=np.float32).transpose(1, 2, 0)
    axes[0].imshow(face)
    axes[0].set_title(f"stored {face.shape[0]}x{face.shape[1]}, row {row}", fontsize=8)
    axes[1].imshow((x * 0.5 + 0.5).clip(0, 1))
    axes[1].set_title(f"centre {x.shape[0]}x{x.shape[1]}, encoder input", fontsize=8)
    for a in axes:
        a.set_xticks([]), a.set_yticks([])
    fig.suptitle("what the visual encoder sees", fontsize=9)
    return fig
