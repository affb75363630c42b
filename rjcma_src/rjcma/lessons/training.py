"""The training chapters (notebooks 07-10): the line that says what a run trains, and the exercises' checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rjcma import results_tables as rt
from rjcma.book.verdicts import ablation_verdict, comparison_verdict, fold_by_fold_verdict
from rjcma.config import Config
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import show_markdown
from rjcma.metrics import ccc
from rjcma.train.results import find_done

TARGETS = ("valence", "arousal")


def results_base(cfg: Config) -> Path:
    """``<results_dir>/<profile>``: where the chapters' runs and summaries are."""
    return Path(cfg.train.results_dir) / cfg.profile


def describe(cfg: Config) -> str:
    """One line on what this chapter's runs train: window, mode, target, learning rate, epochs, where."""
    t = cfg.train
    return (f"profile {cfg.profile}: K={cfg.K}, stride {cfg.data.stride}, mode {t.mode}, target {t.target}, "
            f"lr {t.lr:g} (floor {t.min_lr:g}), at most {t.max_epochs} epochs; results under {results_base(cfg)}")


def show_experiment(exp_dir: str | Path, title: str = "", published: bool = False) -> rt.Table | None:
    """An experiment's table with every CCC's 95 % interval and each row's paired difference to the reference
    (:func:`rjcma.results_tables.interval_table`), then what the numbers say, in words
    (:mod:`rjcma.book.verdicts`)."""
    table = rt.interval_table(exp_dir, title, published)
    if table is None:
        show_markdown(f"*No summary in `{exp_dir}` yet: run the experiment first.*")
        return None
    show_markdown((f"**{title}**\n\n" if title else "") + table.markdown())
    show_markdown(f"*{table.note}*")
    if table.values:
        words = ablation_verdict(table.values) if table.header[0] == "recursions" else comparison_verdict(table.values)
        show_markdown("\n\n".join(words))
    return table


def show_fold_differences(exp_dir: str | Path) -> rt.Table | None:
    """The six-fold check fold by fold: RJCMA minus the best single modality on every fold and target, the count of
    folds where RJCMA is ahead (:func:`rjcma.results_tables.fold_differences`), and what that count says, in words
    (:func:`rjcma.book.verdicts.fold_by_fold_verdict`)."""
    table = rt.fold_differences(exp_dir)
    if table is None:
        show_markdown(f"*No six-fold summary with RJCMA and the unimodal models in `{exp_dir}` yet: run the check "
                      "first.*")
        return None
    show_markdown(f"**{table.title}**\n\n" + table.markdown())
    show_markdown(f"*{table.note}*")
    show_markdown("\n\n".join(fold_by_fold_verdict(table.values)))
    return table


def check_ccc(answer: float | None, pred: np.ndarray, labels: np.ndarray, what: str = "CCC") -> Verdict:
    """Exercise: a CCC by eq. 15, against :func:`rjcma.metrics.ccc` (NaN labels are skipped)."""
    return check_value(what, answer, float(ccc(np.asarray(pred, float), np.asarray(labels, float))), 1e-6)


def check_best(answer: Any, rows: list[dict[str, Any]], key: str, by: str = "mean", lowest: bool = False) -> Verdict:
    """Exercise: the row of a results table with the highest (or lowest) ``by`` column."""
    pick = (min if lowest else max)(rows, key=lambda r: r[by])
    return check_value(f"{'lowest' if lowest else 'highest'} {by} CCC", answer, pick[key], 0, f"{by} {pick[by]:.3f}")


def check_fold_spread(answer: float | None, rows: list[dict[str, Any]]) -> Verdict:
    """Exercise: the (population) standard deviation across folds of the mean CCC."""
    return check_value("std of the fold means", answer, float(np.std([r["mean"] for r in rows])), 1e-9)


def check_run_mean(answer: float | None, run: Config) -> Verdict:
    """Exercise: the mean validation CCC (valence, arousal) of the trained run of config ``run``, read from the
    metrics.json of its complete result folder (anywhere under ``results/<profile>/``)."""
    done = find_done(run)
    if done is None:
        return failed(f"no complete run of this configuration under {results_base(run)} yet; train it first "
                      "(the solution shows how)")
    m = json.loads((done / "metrics.json").read_text())
    want = float(np.mean([m["metrics"][t]["ccc"] for t in TARGETS]))
    return check_value(f"mean CCC of {done.name}", answer, want, 1e-9)


def check_block_parameters(answer: int | None, dims: Sequence[int], K: int) -> Verdict:  # noqa: N803
    """Exercise: parameters of one joint cross-modal attention block (what each recursion adds)."""
    d = sum(dims)
    want = d * d + d + sum(dm * d + 2 * K * K for dm in dims)  # FC of eq. 1; W_jm, W_cm, W_hm per modality
    return check_value("parameters per recursion", answer, want, 0, "FC (d x d + d) + per modality d_m x d + 2 K x K")


def check_gain(answer: float | None, rows: list[dict[str, Any]], fusion: str, baseline: str) -> Verdict:
    """Exercise: the mean CCC of ``fusion`` minus that of ``baseline`` in a comparison table."""
    by = {r["fusion"]: r for r in rows}
    missing = [f for f in (fusion, baseline) if f not in by]
    if missing:
        return failed(f"no row for {', '.join(missing)} in this table")
    return check_value(f"{fusion} minus {baseline}, mean CCC", answer, by[fusion]["mean"] - by[baseline]["mean"], 1e-9)


def median_halfwidth(table: rt.Table | None) -> float:
    """The median half-width of a table's CCC intervals (every row and target): how far a number can move."""
    rows = (table.values if table else {}).get("rows", [])
    widths = [(t["ccc"]["high"] - t["ccc"]["low"]) / 2 for r in rows for t in r.get("targets", {}).values()
              if t["ccc"].get("high") is not None and t["ccc"].get("low") is not None]
    return float(np.median(widths)) if widths else float("nan")


def units_text(table: rt.Table | None) -> str:
    """What a table's intervals resample, e.g. ``12 blocks of 160 frames (fold 0)``."""
    units = (table.values if table else {}).get("units", {})
    parts = [f"{u['count']} {u['kind']}s" + (f" of {u['block_frames']} frames" if u.get("block_frames") else "")
             + f" (fold {f})" for f, u in units.items()]
    return ", ".join(parts) or "no intervals"
