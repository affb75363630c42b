"""Shared fixtures: a tiny demo corpus and its feature store, made once per test session.

Everything is generated here (no data is downloaded or shipped): ``rjcma synth`` writes four short videos in the
Aff-Wild2 layout and the demo profile's preprocessing turns them into a store.
"""

from __future__ import annotations

import os
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
# under `make test` (pytest-xdist, --dist loadgroup) they share a worker, so the book is built once and no two
# processes write _build/test/ at the same time
BOOK_MODULES = {"test_notebooks.py", "test_browser.py"}


def pytest_configure(config):
    """Under pytest-xdist, the controller makes the demo's stand-in encoders (cached per machine) before the
    workers start, with every core: otherwise the first two workers that need them would wait on each other."""
    if getattr(config.option, "numprocesses", None) and not hasattr(config, "workerinput"):
        import tempfile

        from rjcma.config import load_config
        from rjcma.encoders.build import encoder

        with tempfile.TemporaryDirectory() as store:
            cfg = load_config("demo").replace(store=store)
            encoder("visual", cfg), encoder("audio", cfg)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.path.name in BOOK_MODULES:
            item.add_marker(pytest.mark.xdist_group("book"))


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
    from rjcma.data.synth import synthesize

    out = tmp_path_factory.mktemp("tiny_corpus")
    return Path(synthesize(out, videos=TINY_VIDEOS, seconds=TINY_SECONDS, seed=TINY_SEED))


@pytest.fixture(scope="session")
def tiny_cfg(tiny_corpus, tmp_path_factory):
    from rjcma.config import load_config

    store = tmp_path_factory.mktemp("tiny_store")
    results = tmp_path_factory.mktemp("tiny_results")
    return load_config("demo").replace(
        corpus=str(tiny_corpus),
        store=str(store),
        results_dir=str(results),
        seq_len=TINY_K,
        stride=TINY_STRIDE,
        max_epochs=2,
        early_stop=2,
    )


@pytest.fixture(scope="session")
def tiny_store(tiny_cfg) -> Path:
    from rjcma.preprocess.pipeline import preprocess_corpus

    report = preprocess_corpus(tiny_cfg, progress=False)
    assert report.ok, f"preprocessing the tiny corpus failed: {report}"
    return Path(tiny_cfg.data.store)
