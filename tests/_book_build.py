"""The one expensive step of the book tests, shared by test_notebooks.py and test_browser.py: as `make book` does it,
every run the book reads trained first (`rjcma experiments`: one pool of workers), then every notebook executed with
tiny parameters (the session's tiny corpus/store/results, K = 32, the tiny runs' epochs, folds and l values of
`rjcma book --tiny`), finding those runs done, and the book built from the executed copies.

It runs once per session (memoised here, because both test modules request it) into ``_build/test/`` of the
repository (git-ignored), so the screenshots and the built book can be inspected after a run. As in `make book`, the
notebooks see the corpus, store and results through paths relative to the repository root (``_build/test/data/...``,
links to the session's tiny corpus and store), so no page shows a path of the machine that built it.
"""

from __future__ import annotations

import contextlib
import os
import shutil
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
    cfg: object = None  # the config the notebooks ran with (tiny values, paths relative to the repository)
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
    data = BUILD / "data"
    shutil.rmtree(data, ignore_errors=True)
    (data / "results").mkdir(parents=True)
    for name, target in (("corpus", tiny_cfg.data.corpus), ("store", tiny_store)):
        os.symlink(Path(target).resolve(), data / name, target_is_directory=True)
    rel = {k: str((data / k).relative_to(REPO)) for k in ("corpus", "store", "results")}
    cfg = profile.replace(corpus=rel["corpus"], store=rel["store"], results_dir=rel["results"], seq_len=tiny_cfg.K,
                          stride=tiny_cfg.data.stride)
    cfg = cfg.with_sets(TINY_TRAIN_SETS).replace(early_stop=profile.train.early_stop)
    t0 = time.perf_counter()
    with contextlib.chdir(REPO):  # the relative paths are the notebooks' (they run in the repository root)
        run_book_experiments(cfg, progress=False, log=lambda *a, **k: None)  # make book's training step
    seconds_train = time.perf_counter() - t0
    paths = BookPaths.default(build=BUILD)
    t0 = time.perf_counter()
    runs = run_notebooks(cfg, paths, stop_on_error=False, echo=False, jobs=JOBS, require_all=False)
    out = BookBuild(paths=paths, runs={r.name: r for r in runs}, seconds_notebooks=time.perf_counter() - t0,
                    seconds_train=seconds_train, cfg=cfg)
    t0 = time.perf_counter()
    try:
        prepare_source(paths)
        out.index, _ = build_book(paths, echo=False)
    except RjcmaError as e:
        out.build_error = str(e)
    out.seconds_build = time.perf_counter() - t0
    _CACHE["book"] = out
    return out
