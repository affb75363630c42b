"""Figures of the equations chapter (notebook 06b_equations): C_m and H_m, what the recursion does, paper vs the
released fusion."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from rjcma.figures.style import legend_right, new_figure


def attention_heatmaps(C_list, H_list, names, title: str = "", dpi: int | None = None) -> Figure:  # noqa: N803
    """Top row: the joint cross-correlation matrices C_m (K×K, eqs 2–4); bottom row: the attention maps H_m.

    ``C_list[m]`` is (K, K) as in the paper (rows: time steps of X_m, columns: time steps of J); ``H_list[m]``
    is given time-major (K, d_m) as the package returns it and drawn in the paper's d_m × K layout.
    """
    M = len(names)
    fig = new_figure(3.6 * M, 6.6, dpi)
    axes = fig.subplots(2, M, squeeze=False)
    for m, name in enumerate(names):
        C = np.asarray(C_list[m])
        im = axes[0, m].imshow(C, cmap="RdBu_r", vmin=-1, vmax=1, aspect="auto", interpolation="nearest")
        axes[0, m].set_title(f"$C_{{{name[0]}}}$ ({C.shape[0]}×{C.shape[1]})")
        axes[0, m].set_xlabel("time step of J")
        axes[0, m].set_ylabel(f"time step of $X_{{{name[0]}}}$")
        fig.colorbar(im, ax=axes[0, m], fraction=0.046, label="tanh(·)")
        H = np.asarray(H_list[m]).T  # (d_m, K)
        im = axes[1, m].imshow(H, cmap="magma", aspect="auto", interpolation="nearest")
        axes[1, m].set_title(f"$H_{{{name[0]}}}$ ({H.shape[0]}×{H.shape[1]})")
        axes[1, m].set_xlabel("time step")
        axes[1, m].set_ylabel("feature")
        fig.colorbar(im, ax=axes[1, m], fraction=0.046, label="ReLU(·)")
    fig.suptitle(title or "joint cross-correlation C_m and attention maps H_m")
    return fig


def recursion_effect(stats: dict, names, dpi: int | None = None) -> Figure:
    """How features change over iterations: ‖X^(l)‖/‖X^(0)‖ (left) and cos(X^(l), X^(0)) (right).

    ``stats[variant][modality]`` is a dict with lists ``"norm_ratio"`` and ``"cosine"``, index 0 = the input.
    """
    fig = new_figure(11.5, 3.8, dpi)
    axes = fig.subplots(1, 2)
    styles = ["-", "--", ":", "-."]
    for v, (variant, per_mod) in enumerate(stats.items()):
        for m, name in enumerate(names):
            s = per_mod[name]
            x = list(range(len(s["norm_ratio"])))
            kw = dict(ls=styles[v % len(styles)], marker="o", color=f"C{m}", label=f"{variant}: {name}")
            axes[0].plot(x, s["norm_ratio"], **kw)
            axes[1].plot(x, s["cosine"], **kw)
    axes[0].set_ylabel(r"$\|X^{(l)}\| / \|X^{(0)}\|$")
    axes[1].set_ylabel(r"$\cos(X^{(l)}, X^{(0)})$")
    for ax in axes:
        ax.set_xlabel("iteration / layer l (0 = input)")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
    legend_right(axes[1], handlelength=3.5)  # long handles: the line style (paper / released) shows past the marker
    fig.suptitle("what each iteration does to the features: size and direction against the input")
    return fig


def residual_comparison(inputs, outputs: dict, names, dpi: int | None = None) -> Figure:
    """Per modality, what each variant adds to its input, X_out − X_in, as a (feature × time) heat map.

    ``inputs[m]`` and ``outputs[variant][m]`` are time-major (K, d_m) arrays.
    """
    variants = list(outputs)
    fig = new_figure(3.6 * len(names), 3.0 * len(variants) + 0.4, dpi)
    axes = fig.subplots(len(variants), len(names), squeeze=False)
    for m, name in enumerate(names):
        diffs = [np.asarray(outputs[v][m]) - np.asarray(inputs[m]) for v in variants]
        lim = max(float(np.abs(d).max()) for d in diffs) or 1.0
        for r, (v, diff) in enumerate(zip(variants, diffs)):
            im = axes[r, m].imshow(diff.T, cmap="RdBu_r", vmin=-lim, vmax=lim, aspect="auto", interpolation="nearest")
            axes[r, m].set_title(f"{v}: {name}", fontsize=9)
            axes[r, m].set_xlabel("time step")
            axes[r, m].set_ylabel("feature")
            fig.colorbar(im, ax=axes[r, m], fraction=0.046, label="added")
    fig.suptitle(r"what each variant adds to its input, $X_{out} - X_{in}$ (feature × time)")
    return fig
