"""Every run the book reads, trained in one pool (``rjcma experiments``, what ``make train`` and ``make book`` run).

The book's chapters read the cross-validation, the recursion ablation, the one-fold comparison, the six-fold check of
"fusion beats the best single modality" (:data:`FOLD_CHECK_MODELS`) and the exercises' runs. Training them as one
set, longest first, keeps every worker busy until the last run, where one experiment after another would leave
workers idle at the end of each.
"""

from __future__ import annotations

from typing import Any, Callable

from rjcma.config import Config
from rjcma.train.cv import (
    compare_models,
    plan_ablation,
    plan_compare,
    plan_configs,
    plan_cv,
    run_ablation,
    run_compare,
    run_cv,
)
from rjcma.train.pool import run_all

# the six-fold check of "fusion beats the best single modality" (the comparison chapter, `make train`)
FOLD_CHECK_MODELS = "unimodal:audio,unimodal:visual,unimodal:text,rjcma"


def plan_exercises(cfg: Config) -> list[Config]:
    """Runs the chapters' exercises read: the ablation chapter's l = 5 (one beyond Table 3) on the ablation fold."""
    return plan_configs(plan_ablation(cfg, [5]))


def book_experiments(cfg: Config) -> list[tuple[str, list[Config]]]:
    """Every run the book's chapters read, by experiment folder: cv, ablate, compare (fold 0), compare-folds (the
    six-fold check of :data:`FOLD_CHECK_MODELS`) and the exercises' runs."""
    check = compare_models(FOLD_CHECK_MODELS)
    return [("cv", plan_configs(plan_cv(cfg))), ("ablate", plan_configs(plan_ablation(cfg))),
            ("compare", plan_configs(plan_compare(cfg, 0))),
            ("compare-folds", plan_configs(plan_compare(cfg, models=check, folds=cfg.book.folds))),
            ("exercises", plan_exercises(cfg))]


def run_book_experiments(cfg: Config, progress: bool = True, log: Callable = print) -> dict[str, list[dict[str, Any]]]:
    """Train every run of :func:`book_experiments` in one pool of workers (longest first, so no worker idles while
    one experiment's last run finishes before the next experiment starts), then write each experiment's summary.

    The numbers are those of ``rjcma cv``, ``ablate`` and ``compare`` run one after another: every run pins its
    threads and seeds itself, and a run two experiments share is trained once."""
    plan = book_experiments(cfg)
    run_all([c for _, cs in plan for c in cs], [k for k, cs in plan for _ in cs], progress, log)
    quiet = lambda *a, **k: None  # noqa: E731 - every run is done: the calls below only read and write summaries
    return {"cv": run_cv(cfg, progress=False, log=quiet),
            "ablate": run_ablation(cfg, progress=False, log=quiet),
            "compare": run_compare(cfg, 0, progress=False, log=quiet),
            "compare-folds": run_compare(cfg, models=compare_models(FOLD_CHECK_MODELS), folds=cfg.book.folds,
                                         progress=False, log=quiet)}
