"""Figures of the TCN chapter (notebook 06a_tcn): the dilation cone, receptive fields, a window before and after,
causality."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import despine, legend_right, new_figure
from rjcma.models.tcn import receptive_field


def _cone(kernel_size: int, dil: list[int], T: int) -> tuple[list[set[int]], list[tuple[int, int, int]]]:  # noqa: N803
    """Backwards from the last output: the active time steps of each row and the edges (s, t, row) between them."""
    rows = len(dil) + 1
    active: list[set[int]] = [set() for _ in range(rows)]
    active[-1] = {T - 1}
    edges = []
    for r in range(rows - 1, 0, -1):
        for t in active[r]:
            for j in range(kernel_size):
                s = t - j * dil[r - 1]
                if s >= 0:
                    active[r - 1].add(s)
                    edges.append((s, t, r))
    return active, edges


def dilation_diagram(kernel_size: int, levels: int, steps: int | None = None, dpi: int | None = None) -> Figure:
    """Which inputs feed the last output of a causal dilated TCN: one row per convolution, edges of the cone.

    Rows: the input, then two convolutions per level (dilation 2**i, kernel ``kernel_size``). Every node is a time
    step; the edges drawn are the connections that reach the last output, so the bottom row's coloured nodes are
    its receptive field (:func:`rjcma.models.tcn.receptive_field`).
    """
    R = receptive_field(kernel_size, levels)
    T = steps or min(R + 6, 140)
    dil = [2**i for i in range(levels) for _ in (0, 1)]  # two convolutions per level
    rows = len(dil) + 1
    fig = new_figure(min(13, 3.5 + 0.09 * T), 1.4 + 0.55 * rows, dpi)
    ax = fig.subplots()
    active, edges = _cone(kernel_size, dil, T)
    for s, t, r in edges:
        ax.plot([s, t], [r - 1, r], color="tab:blue", lw=0.6, alpha=0.5, zorder=1)
    for r in range(rows):
        ax.scatter(range(T), [r] * T, s=9, c=["tab:orange" if t in active[r] else "0.82" for t in range(T)], zorder=2)
    labels = ["input"] + [f"level {i // 2 + 1} conv {i % 2 + 1} (d={d})" for i, d in enumerate(dil)]
    ax.set_yticks(range(rows), labels, fontsize=8)
    ax.set_ylabel("layer")
    ax.set_xlabel("time step (frame)")
    fig.suptitle(f"causal dilated TCN, kernel {kernel_size}, {levels} levels: the last output sees {R} frames "
                 "(orange)", fontsize=10)
    despine(ax)
    return fig


def receptive_fields(kernel_sizes=(3, 5, 7), max_levels: int = 6, marks: dict | None = None, K: int | None = None,  # noqa: N803
                     dpi: int | None = None) -> Figure:
    """Receptive field (frames) against the number of levels for several kernels.

    ``marks``: ``{label: (kernel_size, levels, measured_frames)}`` drawn as points (e.g. the configured TCN and the
    released one, measured from gradients); ``K``: the window length, drawn as a horizontal line.
    """
    fig = new_figure(7.6, 3.9, dpi)
    ax = fig.subplots()
    L = list(range(1, max_levels + 1))
    for k in kernel_sizes:
        ax.plot(L, [receptive_field(k, n) for n in L], marker="o", ms=3, label=f"kernel {k}: 1+2(k-1)(2^L-1)")
    for i, (label, (_k, n, measured)) in enumerate((marks or {}).items()):
        # the first mark filled and large, the others hollow on top of it: two TCNs of one receptive field (the
        # profile's and the released one) both stay visible
        style = {"s": 160} if i == 0 else {"s": 80, "facecolors": "none", "edgecolors": f"C{3 + i}", "linewidths": 1.6}
        ax.scatter([n], [measured], marker="*Ds^"[i % 4], zorder=3 + i, label=f"{label} (measured)", **style)
    if K:
        ax.axhline(K, color="0.4", ls="--", lw=1, label=f"window K = {K}")
    ax.set_yscale("log", base=2)
    ax.set_xlabel("levels L (dilations 1, 2, …, 2^(L-1))")
    ax.set_ylabel("receptive field (frames)")
    legend_right(ax)
    ax.grid(alpha=0.3)
    fig.suptitle("receptive field of a TCN by kernel and depth")
    return fig


def before_after(x, outputs: dict, fps: float | None = None, channels: int = 64, dpi: int | None = None) -> Figure:
    """Heat maps of a feature sequence ``x`` (K, d) and of TCN outputs ``{label: (K, c)}``, plus a few channels.

    Each map shows at most ``channels`` channels, standardised per channel over time so their dynamics compare.
    """
    seqs = {"input features": np.asarray(x, dtype=np.float32), **{k: np.asarray(v) for k, v in outputs.items()}}
    n = len(seqs)
    fig = new_figure(4.4 * n + 1.2, 5.8, dpi)
    axes = np.asarray(fig.subplots(2, n, gridspec_kw={"height_ratios": [2, 1]})).reshape(2, n)
    unit = "time (s)" if fps else "frame"
    for j, (label, s) in enumerate(seqs.items()):
        shape = tuple(s.shape)
        s = s[:, :channels]
        z = (s - s.mean(0)) / (s.std(0) + 1e-6)
        t = np.arange(len(s)) / fps if fps else np.arange(len(s))
        im = axes[0, j].imshow(z.T, aspect="auto", cmap="RdBu_r", vmin=-2.5, vmax=2.5, interpolation="nearest",
                               extent=[t[0], t[-1], s.shape[1] - 0.5, -0.5])
        axes[0, j].set_title(f"{label}\n{shape}", fontsize=9)
        axes[0, j].set_ylabel("channel")
        axes[0, j].set_xlabel(unit)
        for c in range(min(3, s.shape[1])):
            axes[1, j].plot(t, z[:, c], lw=0.9, label=f"channel {c}")
        axes[1, j].set_xlabel(unit)
        axes[1, j].set_ylabel("standardised")
    fig.colorbar(im, ax=axes[0, :].tolist(), label="standardised value", fraction=0.025)
    legend_right(axes[1, -1])
    fig.suptitle("one window before and after the TCN (each channel standardised over time)")
    return fig


def causality(diffs: dict, t0: int, rfs: dict | None = None, dpi: int | None = None) -> Figure:
    """|Δ output| per frame after perturbing the input at frame ``t0``: zero before t0 (causal), non-zero for a
    receptive field after it. ``diffs``: ``{label: (K,)}``; ``rfs``: ``{label: receptive field}`` shaded."""
    fig = new_figure(9.5, 3.2, dpi)
    ax = fig.subplots()
    colours, n = {}, 0
    for label, d in diffs.items():
        d = np.asarray(d)
        colours[label] = ax.plot(np.arange(len(d)), d / (d.max() + 1e-12), lw=1.2, label=label)[0].get_color()
        n = max(n, len(d))
    shared: dict[int, list[str]] = {}  # one shading per receptive field: equal ones would hide each other
    for label in diffs:
        if rfs and label in rfs:
            shared.setdefault(int(rfs[label]), []).append(label)
    for rf, labels in shared.items():
        ax.axvspan(t0, min(n - 1, t0 + rf - 1), color=colours[labels[0]], alpha=0.08,
                   label=f"{' and '.join(labels)}: receptive field after t0 ({rf} frames)")
    ax.axvline(t0, color="k", lw=0.8, ls=":", label=f"input changed at frame {t0}")
    ax.set_xlabel("output frame")
    ax.set_ylabel("|Δ output| / max (symlog)")
    ax.set_yscale("symlog", linthresh=1e-4)
    ax.set_ylim(0, 1.6)
    legend_right(ax)
    fig.suptitle("causality: an input change reaches only later outputs")
    return fig
