"""Figures of the training chapters (notebooks 07-10): the schedule, one run's history and predictions, the
cross-validation, the ablation and the comparison."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma.figures.style import LEGEND_FONT, MAX_WIDTH, despine, legend_right, new_figure

TARGET_COLOURS = {"valence": "C0", "arousal": "C1", "mean": "k"}
# an event of epoch e is drawn where it takes effect, at the end of that epoch (x = e + 1)
EVENT_STYLES = {"release": ("C3", "-", "release (end of its epoch)"),
                "plateau": ("C2", "--", "plateau: lr × factor (end of its epoch)"), "stop": ("k", ":", "stop")}


def schedule(sim: list[dict], n_steps: int, title: str = "", dpi: int | None = None) -> Figure:
    """The learning rate of every step of a simulated schedule (rows of :func:`rjcma.train.recipe.simulate`), with
    its releases and plateau reductions."""
    fig = new_figure(11, 2.9, dpi)
    ax = fig.subplots()
    lrs = np.concatenate([r["lrs"] for r in sim])
    ax.semilogy(np.arange(len(lrs)) / n_steps, lrs, label="lr of each step")
    for r in sim:
        for ev in r["events"]:
            kind = ev.split(":")[0]
            if kind in ("release", "plateau"):
                colour, ls, label = EVENT_STYLES[kind]
                ax.axvline(r["epoch"] + 1, color=colour, ls=ls, lw=0.8, label=label)
    handles, labels = ax.get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    ax.legend(seen.values(), seen.keys(), loc="upper left", bbox_to_anchor=(1.01, 1.0), borderaxespad=0.0,
              fontsize=7, frameon=False)
    ax.set_xlabel("epoch")
    ax.set_ylabel("learning rate")
    fig.suptitle(title or "learning rate per step on a made-up metric sequence")
    return fig


def _column(rows, k: str) -> np.ndarray:
    return np.array([float(r[k]) if r.get(k) not in ("", None) else np.nan for r in rows])


def training_history(rows, title: str = "", dpi: int | None = None) -> Figure:
    """Loss, validation CCC and learning rate over epochs (history.csv rows as dicts); release/plateau/stop events
    marked as vertical lines."""
    ep = np.array([int(r["epoch"]) for r in rows])
    fig = new_figure(MAX_WIDTH, 3.9, dpi)  # three panels across the book's column, their legends under them
    axes = fig.subplots(1, 3)
    axes[0].plot(ep, _column(rows, "train_loss"), "o-", label="train loss (1 − CCC)")
    axes[0].set_ylabel("loss (1 − CCC)")
    axes[0].set_title("training loss", fontsize=9)
    for k in ("valence", "arousal", "mean"):
        y = _column(rows, f"val_ccc_{k}")
        if np.isfinite(y).any():
            axes[1].plot(ep, y, "o-", color=TARGET_COLOURS[k], label=k)
    axes[1].set_ylabel("CCC")
    axes[1].set_title("validation CCC", fontsize=9)
    axes[2].semilogy(ep, _column(rows, "lr"), "o-", label="lr")
    axes[2].set_ylabel("learning rate")
    axes[2].set_title("learning rate (end of epoch)", fontsize=9)
    for r in rows:
        for ev in str(r.get("events", "")).split(";"):
            kind = ev.split(":")[0]
            if kind in EVENT_STYLES:
                for ax in axes:
                    ax.axvline(int(r["epoch"]) + 0.5, color=EVENT_STYLES[kind][0], ls=EVENT_STYLES[kind][1], lw=0.8,
                               alpha=0.7)
    for colour, ls, label in EVENT_STYLES.values():
        axes[2].plot([], [], color=colour, ls=ls, label=label)
    for ax in axes:
        ax.set_xlabel("epoch")
    for ax in axes[1:]:
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.22), borderaxespad=0.0, fontsize=LEGEND_FONT,
                  frameon=False)
    fig.suptitle(title or "one training run, epoch by epoch")
    return fig


def prediction_vs_labels(pred, labels, targets=("valence", "arousal"), fps: float = 30.0, title: str = "",
                         dpi: int | None = None) -> Figure:
    """Per-frame predictions (N, 2) against labels (N, 2) (NaN gaps left blank) for one trial."""
    pred, labels = np.asarray(pred, float), np.asarray(labels, float)
    t = np.arange(len(labels)) / fps
    fig = new_figure(11, 2.4 * len(targets) + 0.4, dpi)
    axes = fig.subplots(len(targets), 1, sharex=True, squeeze=False)[:, 0]
    for ax, (j, name) in zip(axes, enumerate(targets)):
        ax.plot(t, labels[:, j], color="0.3", lw=1.2, label="label")
        if np.isfinite(pred[:, j]).any():
            ax.plot(t, pred[:, j], color=f"C{j}", lw=1.2, label="prediction")
        ax.set_ylabel(f"{name} [−1, 1]")
        ax.set_ylim(-1.05, 1.05)
        legend_right(ax)
    axes[-1].set_xlabel("time (s)")
    fig.suptitle(title or "merged per-frame predictions against the labels")
    return fig


def per_fold_comparison(rows, dpi: int | None = None) -> Figure:
    """Per-fold validation CCC of each model of a ``compare --folds`` summary (rows with ``per_fold_<target>``):
    one panel per target, folds on x, RJCMA drawn thick, each model's mean over the folds as a dashed line. Each
    panel has its own legend under it, with that target's means (one legend for both would show one target's)."""
    targets = [t for t in ("valence", "arousal") if rows and f"per_fold_{t}" in rows[0]]
    fig = new_figure(4.4 * max(1, len(targets)), 4.4, dpi)
    axes = fig.subplots(1, max(1, len(targets)), sharey=True, squeeze=False)[0]
    folds = str(rows[0]["fold"]).split(",") if rows else []
    for ax, t in zip(axes, targets):
        for i, r in enumerate(rows):
            vals = [float(x) for x in r[f"per_fold_{t}"].split(";")]
            ours = r["fusion"] == "rjcma"
            color = "k" if ours else f"C{i}"
            ax.plot(range(len(vals)), vals, "o-", color=color, lw=2.2 if ours else 1.0, ms=4,
                    label=f"{r['model']} (mean {r[t]:.2f})")
            ax.axhline(r[t], color=color, ls="--", lw=0.8, alpha=0.7)
        ax.set_xticks(range(len(folds)), folds)
        ax.set_xlabel("fold")
        ax.set_title(f"{t}: validation CCC per fold", fontsize=10)
        ax.axhline(0, color="0.5", lw=0.5)
        despine(ax)
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.16), borderaxespad=0.0, ncol=1,
                  fontsize=LEGEND_FONT + 1, frameon=False)
    axes[0].set_ylabel("CCC")
    fig.suptitle("every fold: the unimodal models and RJCMA (dashed: mean over the folds)")
    return fig


def ccc_bars(rows, key: str, title: str = "", paper: bool = True, dpi: int | None = None) -> Figure:
    """Grouped bars of valence/arousal CCC per row (cv/ablate/compare summaries), the paper's numbers as markers.
    Many rows (a comparison) lie on their side, one per line, so that their names stay readable at the column's
    width."""
    labels = [str(r[key]) for r in rows]
    x = np.arange(len(rows))
    side = len(rows) > 6
    fig = new_figure(7.5, 0.42 * len(rows) + 1.4, dpi) if side else new_figure(7.5, 3.6, dpi)
    ax = fig.subplots()
    for j, t in enumerate(("valence", "arousal")):
        pos, vals = x + (j - 0.5) * 0.38, [r[t] for r in rows]
        if side:
            ax.barh(pos, vals, height=0.36, color=TARGET_COLOURS[t], label=f"{t} (ours)")
        else:
            ax.bar(pos, vals, width=0.36, color=TARGET_COLOURS[t], label=f"{t} (ours)")
        pv = [r.get(f"paper_{t}") for r in rows] if paper else []
        at = [(p_, v) for p_, v in zip(pos, pv) if v is not None]
        if at:
            ps, vs = zip(*at)
            ax.plot(*((vs, ps) if side else (ps, vs)), "k|" if side else "k_", ms=12 if side else 18, mew=2,
                    label="paper" if j == 0 else None)
    if side:
        ax.set_yticks(x, labels)
        ax.invert_yaxis()  # the table's order, top to bottom
        ax.set_ylabel(key)
        ax.set_xlabel("validation CCC")
        ax.axvline(0, color="0.5", lw=0.5)
    else:
        ax.set_xticks(x, labels)
        ax.set_xlabel(key)
        ax.set_ylabel("validation CCC")
        ax.axhline(0, color="0.5", lw=0.5)
    legend_right(ax)
    fig.suptitle(title or f"validation CCC per {key}")
    return fig


def recursion_ablation(rows, title: str = "", dpi: int | None = None) -> Figure:
    """Validation CCC against the number of recursions l (rows of ``rjcma ablate``), the paper's where it has them."""
    fig = new_figure(7.2, 3.4, dpi)
    ax = fig.subplots()
    ls = [r["l"] for r in rows]
    for t, c in TARGET_COLOURS.items():
        ax.plot(ls, [r[t] for r in rows], "o-", color=c, label=f"{t} (ours)")
        pv = [r.get(f"paper_{t}") for r in rows]
        if pv and all(v is not None for v in pv):
            ax.plot(ls, pv, "x--", color=c, alpha=0.6, label=f"{t} (paper)")
    ax.set_xlabel("recursions l")
    ax.set_ylabel("validation CCC")
    ax.set_xticks(ls)
    legend_right(ax)
    fig.suptitle(title or "validation CCC by the number of recursions")
    return fig
