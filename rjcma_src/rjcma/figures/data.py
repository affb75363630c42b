"""Figures of the data chapter (notebook 01_data) and of the demo corpus's design (``rjcma.data.synth``)."""

from __future__ import annotations

import numpy as np
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import MaxNLocator, MultipleLocator

from rjcma.data.windows import window_starts
from rjcma.figures.style import despine, legend_right, new_figure

TARGET_COLOURS = {"valence": "tab:blue", "arousal": "tab:red"}


def _nan_runs(mask) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs where ``mask`` is True."""
    m = np.concatenate(([False], np.asarray(mask, bool), [False]))
    edges = np.flatnonzero(m[1:] != m[:-1])
    return list(zip(edges[0::2], edges[1::2]))


def va_traces(labels, fps: float, title: str = "", dpi: int | None = None) -> Figure:
    """Valence and arousal of one trial over time; the frames annotated −5 (NaN) are shaded grey."""
    y = np.asarray(labels, dtype=np.float32)
    t = np.arange(len(y)) / float(fps)
    fig = new_figure(11, 4.4, dpi)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, col, name in zip(axes, (0, 1), ("valence", "arousal")):
        ax.plot(t, y[:, col], color=TARGET_COLOURS[name], lw=1, label=name)
        for i, (a, b) in enumerate(_nan_runs(np.isnan(y[:, col]))):
            ax.axvspan(a / fps, b / fps, color="0.85", lw=0, label=None if i else "−5 (not annotated)")
        ax.set_ylim(-1.05, 1.05)
        ax.axhline(0, color="0.6", lw=0.5)
        ax.set_ylabel(f"{name} [−1, 1]")
        legend_right(ax)
    axes[-1].set_xlabel(f"time (s); frame k at k / fps, fps = {fps:g}")
    fig.suptitle(title or f"{len(y)} annotated frames, {int(np.isnan(y[:, 0]).sum())} marked −5")
    return fig


def va_histogram(labels, bins: int = 40, title: str = "", dpi: int | None = None) -> Figure:
    """2-D histogram of (valence, arousal) over all annotated frames (log colour scale)."""
    y = np.asarray(labels, dtype=np.float32).reshape(-1, 2)
    y = y[~np.isnan(y).any(axis=1)]
    fig = new_figure(5.4, 4.6, dpi)
    ax = fig.subplots()
    h = ax.hist2d(y[:, 0], y[:, 1], bins=bins, range=[[-1, 1], [-1, 1]], cmap="viridis", norm=LogNorm(), cmin=1)
    fig.colorbar(h[3], ax=ax, label="frames per bin")
    ax.axhline(0, color="w", lw=0.5)
    ax.axvline(0, color="w", lw=0.5)
    ax.set_xlabel("valence [−1, 1]")
    ax.set_ylabel("arousal [−1, 1]")
    ax.set_aspect("equal")
    for axis in (ax.xaxis, ax.yaxis):  # ticks every 0.5: at 0.25 the x labels ran into each other
        axis.set_major_locator(MultipleLocator(0.5))
    fig.suptitle(title or f"{len(y):,} annotated frames")
    return fig


def _draw_windows(ax, starts: list[int], n: int, K: int, stride: int) -> None:  # noqa: N803
    for i, s in enumerate(starts):
        real = min(K, n - s)
        extra = s % stride != 0
        ax.barh(i, real, left=s, height=0.6, color="tab:orange" if extra else "tab:blue", alpha=0.8)
        if real < K:
            ax.barh(i, K - real, left=s + real, height=0.6, color="none", edgecolor="0.5", hatch="///", lw=0.5)
        ax.text(s + 2, i, f"start {s}", va="center", fontsize=7, color="w")
    ax.axvline(n, color="k", lw=0.8)
    ax.set_ylim(len(starts) - 0.5, -0.5)
    ax.set_yticks([])
    ax.set_ylabel("windows")
    # the legend names only what this trial's windows show
    handles = [Patch(color="tab:blue", alpha=0.8, label=f"every {stride} frames")]
    if any(s % stride for s in starts):
        handles.append(Patch(color="tab:orange", alpha=0.8, label="aligned to the end"))
    if any(n - s < K for s in starts):
        handles.append(Patch(facecolor="none", edgecolor="0.5", hatch="///", label="padding (masked)"))
    handles.append(Line2D([], [], color="k", lw=0.8, label="end of the trial"))
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0, fontsize=7,
              frameon=False)


def window_tiling(n: int, K: int, stride: int, sequence=None, merged=None, title: str = "",  # noqa: N803
                  dpi: int | None = None) -> Figure:
    """How windows of K frames (stride ``stride``, one extra aligned to the end) tile a trial of n frames, how many
    windows cover each frame, and — given ``sequence`` and ``merged`` — the merge of the windows back onto it."""
    starts = window_starts(n, K, stride)
    rows = 3 if sequence is not None else 2
    ratios = [max(2, len(starts)) * 0.35, 1] + ([2] if rows == 3 else [])
    fig = new_figure(11, 1.6 + sum(ratios) * 0.55, dpi)
    axes = fig.subplots(rows, 1, sharex=True, gridspec_kw={"height_ratios": ratios})
    _draw_windows(axes[0], starts, n, K, stride)
    count = np.zeros(n, int)
    for s in starts:
        count[s : s + K] += 1
    axes[1].step(np.arange(n), count, where="post", color="0.3")
    axes[1].set_ylabel("windows\nper frame")
    axes[1].set_ylim(0, count.max() + 0.5)
    axes[1].yaxis.set_major_locator(MaxNLocator(integer=True))  # a count of windows
    if rows == 3:
        ax = axes[2]
        ax.plot(np.arange(n), np.asarray(sequence), color="0.6", lw=3, label="sequence")
        if merged is not None:
            ax.plot(np.arange(n), np.asarray(merged), color="tab:green", lw=1, ls="--", label="windows merged back")
        legend_right(ax)
        ax.set_ylabel("value")
    axes[-1].set_xlabel("frame")
    axes[-1].set_xlim(0, max(n, K) + 1)
    fig.suptitle(title or f"n = {n} frames, K = {K}, stride {stride}: {len(starts)} window{'s' * (len(starts) != 1)}")
    return fig


# the parts of one synthetic target: (column of SYNTH_TRUTH/<trial>.csv, design part, legend, colour)
_SYNTH_PARTS = {
    "valence": [("face", "face", "face part (mouth, brows)", "tab:orange"),
                ("words", "words", "word part", "tab:green"),
                ("heard_word_level", "words", "level of the last adjective heard", "tab:olive")],
    "arousal": [("prosody", "prosody", "prosody part (pitch, loudness)", "tab:purple"),
                ("heard_prosody", "prosody", "prosody of the current utterance", "tab:pink"),
                ("motion", "motion", "motion part (eyes, blinks, head)", "tab:brown"),
                ("words_a", "words", "arousal word part", "tab:green"),
                ("heard_word_arousal", "words", "arousal level of the last adjective heard", "tab:olive")],
}


def synth_signal_design(cols: dict, design: dict, title: str = "", dpi: int | None = None) -> Figure:
    """How one synthetic trial's labels are made (``rjcma.data.synth``): each latent part scaled by its weight in
    the target (so the parts plus the residual add up to the latent), what the channels show, and the written
    label (the latent delayed by the annotator's lag, plus noise; gaps are −5 rows).

    ``cols``: the arrays of ``SYNTH_TRUTH/<trial>.csv`` (:func:`rjcma.data.synth.truth.read_truth_trial`);
    ``design``: ``SYNTH_TRUTH.json["design"]``.
    """
    t = np.asarray(cols["time"])
    valid = np.asarray(cols["valid"]) > 0.5
    fig = new_figure(12, 5.8, dpi)
    axes = fig.subplots(2, 1, sharex=True)
    for ax, (target, parts) in zip(axes, _SYNTH_PARTS.items()):
        mean, std = design["latent_mean"][target], design["latent_std"][target]
        shares = design["shares"][target]
        for key, part, label, color in parts:
            w = std * np.sqrt(shares[part])
            ls = "--" if key.startswith("heard") else "-"
            ax.plot(t, mean + w * np.asarray(cols[key]), ls, color=color, lw=1.0,
                    label=f"mean + {label} ({shares[part]:.0%} of the variance)")
        ax.plot(t, cols[f"{target}_latent"], color="0.55", lw=1.0, label=f"latent {target} (all parts + residual)")
        ax.plot(t, np.where(valid, cols[target], np.nan), color="k", lw=1.6, label="label (lagged + noise)")
        lo, hi = -1.05, 1.05
        speaking = np.asarray(cols["speaking"]) > 0
        ax.fill_between(t, lo, hi, where=speaking, color="tab:blue", alpha=0.07, lw=0, label="this subject speaks")
        hidden = np.asarray(cols["face_event"]) > 0
        ax.fill_between(t, lo, hi, where=hidden, color="tab:red", alpha=0.2, lw=0, label="face hidden (no jpg)")
        ax.set_ylim(lo, hi)
        ax.set_ylabel(f"{target} [−1, 1]")
        legend_right(ax)
        despine(ax)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title or "synthetic trial: latent parts, channels and label")
    return fig


def synth_ceilings(truth: dict, dpi: int | None = None) -> Figure:
    """Designed and measured CCC ceilings of the demo corpus per modality (``SYNTH_TRUTH.json``)."""
    measured = truth["measured_ceiling_ccc"]
    designed = truth["designed_ceiling_ccc"]
    fig = new_figure(12, 3.8, dpi)
    axes = fig.subplots(1, 2, sharey=True)
    names = ["visual", "audio", "text", "all", "oracle_latent"]
    for ax, target in zip(axes, ("valence", "arousal")):
        m = measured[target]
        x = np.arange(len(names))
        bars = ax.bar(x, [m[k] for k in names], color=["tab:orange", "tab:purple", "tab:green", "tab:blue", "0.6"])
        ax.bar_label(bars, fmt="%.2f", fontsize=8)
        ax.set_xticks(x, ["visual", "audio", "text", "all three", "latent\n(oracle)"], fontsize=8)
        ax.set_xlabel("signals the linear predictor reads")
        d = designed[target]
        ax.axhline(d["all"], color="tab:blue", ls="--", lw=1, label=f"designed, all parts ({d['all']:.2f})")
        for k, v in d.items():
            if k != "all":
                ax.axhline(v, color="0.4", ls=":", lw=1, label=f"designed, {k} only ({v:.2f})")
        ax.set_ylim(0, 1.05)
        ax.set_title(f"{target}: best linear predictor from rendered signals", fontsize=9)
        legend_right(ax)
        despine(ax)
    axes[0].set_ylabel("CCC (train + validation)")
    fig.suptitle("demo corpus: designed and measured CCC ceilings")
    return fig
