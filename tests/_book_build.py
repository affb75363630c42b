"""The one expensive step of the book tests, shared by test_notebooks.py and test_browser.py: as `make book` does it,
every run the book reads trained first (`rjcma experiments`: one pool of workers), then every notebook executed with
tiny parameters (the session's tiny corpus/store/results, K = 32, the tiny runs' epochs, folds and l values of
`rjcma book --tiny`), finding those runs done, and the book built from the executed copies.

It runs once per session (memoised here, because both test modules request it) into ``_build/test/`` of the
repository (git-ignored), so the screenshots and the built book can be inspected after a run.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUILD = REPO / "_build" / "test"
JOBS = 2  # notebooks side by side (they are independent once the store and results exist)


@dataclass
class BookBuild:
    paths: object
    runs: dict = field(default_factory=dict)  # name -> NotebookRun
    index: Path | None = None
    build_error: str = ""
    seconds_train: float = 0.0
    seconds_notebooks: float = 0.0
    seconds_build: float = 0.0


_CACHE: dict[str, BookBuild] = {}


def built_book(tiny_cfg, tiny_store) -> BookBuild:
    if "book" in _CACHE:
        return _CACHE["book"]
    from rjcma.book.build import build_book, prepare_source
    from rjcma.book.execute import run_notebooks
    from rjcma.book.paths import BookPaths
    from rjcma.book.tiny import TINY_TRAIN_SETS
    from rjcma.config import load_config
    from rjcma.errors import RjcmaError
    from rjcma.train.experiments import run_book_experiments

    # The notebooks' config is the profile's with their parameters: early_stop is none of them, so the runs trained
    # here keep the profile's (with one epoch it never acts); any other value would give them another config hash
    # than the notebooks', which would then train every run again.
    profile = load_config(tiny_cfg.profile)
    cfg = profile.replace(corpus=tiny_cfg.data.corpus, store=str(tiny_store), results_dir=tiny_cfg.train.results_dir,
                          seq_len=tiny_cfg.K, stride=tiny_cfg.data.stride)
    cfg = cfg.with_sets(TINY_TRAIN_SETS).replace(early_stop=profile.train.early_stop)
    t0 = time.perf_counter()
    run_book_experiments(cfg, progress=False, log=lambda *a, **k: None)  # make book's training step
    seconds_train = time.perf_counter() - t0
    paths = BookPaths.default(build=BUILD)
    t0 = time.perf_counter()
    runs = run_notebooks(cfg, paths, stop_on_error=False, echo=False, jobs=JOBS, require_all=False)
    out = BookBuild(paths=paths, runs={r.name: r for r in runs}, seconds_notebooks=time.perf_counter() - t0,
                    seconds_train=seconds_train)
    t0 = time.perf_counter()
    try:
        prepare_source(paths)
        out.index, _ = build_book(paths, echo=False)
    except RjcmaError as e:
        out.build_error = str(e)
    out.seconds_build = time.perf_counter() - t0
    _CACHE["book"] = out
    return out
