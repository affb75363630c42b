"""The training chapters (notebooks 07-10): the line that says what a run trains, and the exercises' checks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from rjcma.config import Config
from rjcma.lessons.checks import Verdict, check_value, failed
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
