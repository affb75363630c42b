"""Figures of the results chapter (notebook 11_results): this run's numbers beside the paper's Tables 1 and 3."""

from __future__ import annotations

import numpy as np
from matplotlib.figure import Figure

from rjcma import paper_numbers
from rjcma.figures.style import legend_right, new_figure
from rjcma.results_tables import Table, ccc_by


def table1_folds(table: Table, dpi: int | None = None) -> Figure:
    """Validation CCC per fold: the paper's Table 1 as bars, this run's folds (``table.runs``) as dots."""
    folds = list(paper_numbers.TABLE1_FOLDS)
    x = np.arange(len(folds))
    ours = ccc_by(table.runs, lambda r: r.fold)
    fig = new_figure(9.5, 3.4, dpi)
    ax = fig.subplots()
    for j, (target, colour) in enumerate((("valence", "tab:blue"), ("arousal", "tab:orange"))):
        ours_v = [np.mean(ours.get(f, {}).get(target, [np.nan])) for f in folds]
        paper_v = [paper_numbers.TABLE1_FOLDS[f][target] for f in folds]
        ax.bar(x + (j - 0.5) * 0.38, paper_v, 0.36, color=colour, alpha=0.35, label=f"{target} (paper)")
        ax.plot(x + (j - 0.5) * 0.38, ours_v, "o", color=colour, label=f"{target} (ours)")
    ax.set_xticks(x, [f"fold {f}" for f in folds])
    ax.set_xlabel("validation fold")
    ax.set_ylabel("CCC")
    ax.set_ylim(min(0.0, ax.get_ylim()[0]), 1.0)
    legend_right(ax)
    fig.suptitle("Table 1: paper (bars) and this run (dots); a missing dot = no run")
    return fig


def table3_recursions(rows: list[dict], profile: str, dpi: int | None = None) -> Figure:
    """Mean CCC against the number of recursions l: the paper's Table 3 (fold 1) and this run's ablation (the rows
    of its ``summary.json``)."""
    ls = sorted(paper_numbers.TABLE3_RECURSIONS)
    fig = new_figure(7.5, 3.2, dpi)
    ax = fig.subplots()
    ax.plot(ls, [paper_numbers.TABLE3_RECURSIONS[l_]["mean"] for l_ in ls], "s--", color="grey",
            label=f"paper (fold {paper_numbers.TABLE3_FOLD})")
    ours = sorted((r["l"], r["mean"]) for r in rows)
    folds = sorted({r.get("fold") for r in rows})
    ax.plot([l_ for l_, _ in ours], [m for _, m in ours], "o-", color="tab:green",
            label=f"ours ({profile}, fold {', '.join(map(str, folds))})")
    ax.set_xticks(sorted(set(ls) | {l_ for l_, _ in ours}))
    ax.set_xlabel("recursions l")
    ax.set_ylabel("mean CCC (valence, arousal)")
    legend_right(ax)
    fig.suptitle("Table 3: effect of the recursion")
    return fig
