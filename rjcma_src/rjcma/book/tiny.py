"""``rjcma book --tiny``: the whole book on a 4-video corpus with small windows, under ``_build/tiny/`` (a smoke run
in a few minutes; the tests build the same book)."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from rjcma.book.paths import BookPaths, repo_root
from rjcma.config import Config
from rjcma.data.synth import synthesize
from rjcma.errors import RjcmaError
from rjcma.preprocess.pipeline import preprocess_corpus
from rjcma.train.experiments import run_book_experiments

TINY = {
    "seq_len": 32,
    "stride": 16,
    "demo_videos": 4,
    "demo_seconds": 6.0,
    "demo_seed": 1,
}

# the tiny runs: one epoch, two folds, l = 1, 2. Every one is a notebook parameter, so the notebooks' configs are
# the runs' configs and they find every run done (a field the notebooks cannot set, e.g. early_stop, would give
# the runs another config hash, and the notebooks would train them all again)
TINY_TRAIN_SETS = ["max_epochs=1", "folds=0,1", "ablate_iterations=1,2"]


def tiny_config(cfg: Config, paths: BookPaths) -> Config:
    """The config of ``rjcma book --tiny``: a 4-video corpus and small windows under ``_build/tiny/``, named
    relative to the repository root (where the notebooks run), so the pages show no path of this machine."""
    base = paths.build / "tiny"
    if base.is_relative_to(paths.root):
        base = base.relative_to(paths.root)
    return cfg.replace(corpus=str(base / "corpus"), store=str(base / "store"), results_dir=str(base / "results"),
                       **TINY)


def ensure_tiny_data(cfg: Config) -> None:
    """Write the tiny corpus and its store if missing (the steps `make book` runs before the notebooks)."""
    with contextlib.chdir(repo_root()):  # the config's paths are relative to the repository root
        _write_tiny_data(cfg)


def _write_tiny_data(cfg: Config) -> None:
    corpus = Path(cfg.data.corpus)
    if not corpus.exists() or not any(corpus.iterdir()):
        print(f"tiny: writing a {cfg.book.demo_videos}-video corpus to {corpus}", flush=True)
        synthesize(corpus, videos=cfg.book.demo_videos, seconds=cfg.book.demo_seconds, seed=cfg.book.demo_seed)
    report = preprocess_corpus(cfg, progress=False)
    if not getattr(report, "ok", True):
        raise RjcmaError(f"{cfg.data.store}: preprocessing the tiny corpus failed: {report}")


def ensure_tiny_results(cfg: Config, echo: bool = True) -> None:
    """Every run the book reads, trained on the tiny store as `make book` trains them
    (:func:`rjcma.train.cv.run_book_experiments`; ``cfg`` is :func:`tiny_config`'s with :data:`TINY_TRAIN_SETS`).
    Runs already there are reused."""
    t0 = time.perf_counter()
    with contextlib.chdir(repo_root()):
        run_book_experiments(cfg, progress=False, log=lambda *a, **k: None)
    if echo:
        print(f"tiny: every run the book reads, in {time.perf_counter() - t0:.1f} s", flush=True)
