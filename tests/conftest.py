"""Shared fixtures: a tiny demo corpus and its feature store, made once per test session.

Everything is generated here (no data is downloaded or shipped): ``rjcma synth`` writes four short videos in the
Aff-Wild2 layout and the demo profile's preprocessing turns them into a store.
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("MPLBACKEND", "Agg")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs two worker processes: each (and every process it starts: CLI runs, notebook kernels) gets its
    # share of the cores, or four OpenMP teams spin on two cores and every torch call waits on the others
    _share = max(1, (os.cpu_count() or 1) // int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
    for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(_var, str(_share))

TINY_VIDEOS = 4
TINY_SECONDS = 6.0
TINY_SEED = 1
TINY_K = 32
TINY_STRIDE = 16

# the modules that read the one built book (tests/_book_build.py builds it once per process into _build/test/):
# under `make test` (pytest-xdist, --dist loadgroup) they run in one worker (pytest_xdist_make_scheduler below), so
# the book is built once and no two processes write _build/test/ at the same time
BOOK_MODULES = {"test_notebooks.py", "test_browser.py"}

# under pytest-xdist, the folder where the controller made the tiny corpus and store for every worker
SHARED_TINY = "RJCMA_TEST_SHARED_TINY"
_XDIST_CONTROLLER: list[bool] = []  # non-empty in the pytest-xdist controller (set by pytest_configure)


def _tiny_config(corpus, store, results):
    from rjcma.config import load_config

    return load_config("demo").replace(corpus=str(corpus), store=str(store), results_dir=str(results), seq_len=TINY_K,
                                       stride=TINY_STRIDE, max_epochs=2, early_stop=2)


def pytest_configure(config):
    """Under pytest-xdist, the controller makes, with every core and before the workers start, what each worker
    would otherwise make for itself: the demo's stand-in encoders (cached per machine) and the session's tiny corpus
    and store (read-only for the tests; each worker keeps its own results folder). Made by each worker, they would
    cost twice the CPU time."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        _XDIST_CONTROLLER.append(True)
        import tempfile

        from rjcma.config import load_config
        from rjcma.data.synth import synthesize
        from rjcma.encoders.build import encoder
        from rjcma.preprocess.pipeline import preprocess_corpus

        with tempfile.TemporaryDirectory() as store:
            cfg = load_config("demo").replace(store=store)
            encoder("visual", cfg), encoder("audio", cfg)
        shared = Path(tempfile.mkdtemp(prefix="rjcma-tiny-"))
        config.add_cleanup(lambda: shutil.rmtree(shared, ignore_errors=True))
        corpus = Path(synthesize(shared / "corpus", videos=TINY_VIDEOS, seconds=TINY_SECONDS, seed=TINY_SEED,
                                 progress=False))
        report = preprocess_corpus(_tiny_config(corpus, shared / "store", shared / "results"), workers=2,
                                   progress=False)
        assert report.ok, f"preprocessing the tiny corpus failed: {report}"
        os.environ[SHARED_TINY] = str(shared)  # the workers start after this, with this environment


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config, log):
    """``--dist loadgroup`` with one group per test module, and the book's modules as one group. A module's tests then
    share one worker, so its module-scoped fixtures are built once: scheduled test by test, the two tests of
    ``test_determinism.py`` ran on both workers at once, and each worker made the fixture's two stores (88 s of
    setup each). pytest-xdist's own ``xdist_group`` marks cannot do this here: pytest-xdist 3.8 writes the group as
    an ``@group`` suffix into ``item._nodeid``, which pytest 9.2 no longer reads (``nodeid`` comes from
    ``item._id``), so the marks group nothing and both workers built the book."""
    if config.getvalue("dist") != "loadgroup":
        return None
    from xdist.scheduler import LoadGroupScheduling

    class BookGroup(LoadGroupScheduling):
        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "book" if module.rsplit("/", 1)[-1] in BOOK_MODULES else module

    return BookGroup(config, log)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny tensors: one intra-op thread avoids oversubscribing a 2-core machine (use via ``usefixtures``)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="session")
def tiny_corpus(tmp_path_factory) -> Path:
    if os.environ.get(SHARED_TINY):
        return Path(os.environ[SHARED_TINY]) / "corpus"
    from rjcma.data.synth import synthesize

    out = tmp_path_factory.mktemp("tiny_corpus")
    return Path(synthesize(out, videos=TINY_VIDEOS, seconds=TINY_SECONDS, seed=TINY_SEED))


@pytest.fixture(scope="session")
def tiny_cfg(tiny_corpus, tmp_path_factory):
    shared = os.environ.get(SHARED_TINY)
    store = Path(shared) / "store" if shared else tmp_path_factory.mktemp("tiny_store")
    return _tiny_config(tiny_corpus, store, tmp_path_factory.mktemp("tiny_results"))


@pytest.fixture(scope="session")
def tiny_store(tiny_cfg) -> Path:
    """The tiny corpus's store: made here, or (under pytest-xdist) by the controller for every worker; the
    workers only read it."""
    if os.environ.get(SHARED_TINY):
        return Path(tiny_cfg.data.store)
    from rjcma.preprocess.pipeline import preprocess_corpus

    report = preprocess_corpus(tiny_cfg, progress=False)
    assert report.ok, f"preprocessing the tiny corpus failed: {report}"
    return Path(tiny_cfg.data.store)


# ---- where a worker's time went: RJCMA_TEST_TIMELINE=FILE appends "worker, start|end, epoch seconds, test id" per
# test (tab-separated), to see which worker finished last and with what (pytest's --durations has no worker)
_TIMELINE = os.environ.get("RJCMA_TEST_TIMELINE")


def _timeline(event: str, nodeid: str) -> None:
    if _TIMELINE and not _XDIST_CONTROLLER:
        with open(_TIMELINE, "a") as f:
            f.write(f"{os.environ.get('PYTEST_XDIST_WORKER', 'main')}\t{event}\t{time.time():.2f}\t{nodeid}\n")


def pytest_runtest_logstart(nodeid, location):
    _timeline("start", nodeid)


def pytest_runtest_logfinish(nodeid, location):
    _timeline("end", nodeid)
