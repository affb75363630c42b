"""Figures of the encoders chapter (notebook 05_encoders): the frozen features seen through a 2-D projection."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import new_figure


def pca_2d(X) -> tuple[np.ndarray, np.ndarray]:  # noqa: N803
    """First two principal components of the rows of ``X`` (numpy SVD) and their explained variance ratios."""
    X = np.asarray(X, dtype=np.float64)
    Xc = X - X.mean(axis=0, keepdims=True)
    _, S, Vt = np.linalg.svd(Xc, full_matrices=False)
    var = S**2 / max((S**2).sum(), 1e-12)
    return Xc @ Vt[:2].T, var[:2]


def feature_projections(features: dict, labels, title: str = "", dpi: int | None = None, max_points: int = 4000,
                        seed: int = 0) -> Figure:
    """For each named (N, d) feature matrix: its 2-D PCA coloured by valence (top row) and by arousal (bottom row)."""
    labels = np.asarray(labels, dtype=np.float32)
    names = list(features)
    fig = new_figure(3.6 * len(names), 6.4, dpi)
    axes = fig.subplots(2, len(names), squeeze=False)
    rng = np.random.default_rng(seed)
    idx = np.flatnonzero(~np.isnan(labels).any(axis=1))
    if len(idx) > max_points:
        idx = np.sort(rng.choice(idx, max_points, replace=False))
    for j, name in enumerate(names):
        Z, var = pca_2d(np.asarray(features[name], dtype=np.float32)[idx])
        for i, (target, cmap) in enumerate((("valence", "coolwarm"), ("arousal", "viridis"))):
            ax = axes[i, j]
            sc = ax.scatter(Z[:, 0], Z[:, 1], c=labels[idx, i], s=4, cmap=cmap, vmin=-1, vmax=1, alpha=0.8)
            ax.set_title(f"{name}: {target}", fontsize=9)
            ax.set_xlabel(f"PC1 ({var[0]:.0%} of the variance)", fontsize=8)
            ax.set_ylabel(f"PC2 ({var[1]:.0%})", fontsize=8)
            ax.tick_params(labelsize=7)
            fig.colorbar(sc, ax=ax, fraction=0.046, label=target)
    fig.suptitle(title or "encoder features (PCA) coloured by the labels", fontsize=10)
    return fig
