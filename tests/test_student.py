"""The test that is the student: a fresh copy of the repository with no ``data/``, ``results/`` or ``_build/``, every
notebook executed in file order with papermill and its *default* parameters (nothing injected, no ``make book``
first), the kernel importing the copy's package with the copy as working directory, as ``make lab`` starts it.
Each notebook must build what it needs (corpus, store, runs) through the package and succeed.

It trains the whole demo (about a quarter of an hour on 2 cores), so it is opt-in:
``RJCMA_STUDENT_TEST=1 .venv/bin/python -m pytest tests/test_student.py -s --basetemp=SOME_EMPTY_FOLDER`` (a
basetemp of its own: pytest removes all but the last three temporary folders of a user, which other pytest runs
on the same machine would otherwise do to the copy while it runs). The stand-in encoder weights are
read from the per-user cache when they are there (``RJCMA_STUDENT_FRESH_CACHE=1`` uses an empty cache, which adds
their one-off pretraining). The time of each notebook is printed and written to ``_build/student/timings.json``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
LEFT_OUT = ("data", "results", "_build", ".venv", "build")

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(os.environ.get("RJCMA_STUDENT_TEST") != "1",
                       reason="the student run trains the whole demo (~15 min); set RJCMA_STUDENT_TEST=1"),
]


def fresh_copy(dst: Path) -> Path:
    """The files a clone has (tracked, plus new files git does not ignore), without data, results or builds."""
    out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                         capture_output=True, check=True).stdout.decode()
    for rel in filter(None, out.split("\0")):
        src = REPO / rel
        if rel.split("/")[0] in LEFT_OUT or not src.is_file():  # deleted in the work tree, or generated
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dst / rel)
    return dst


@pytest.mark.timeout(5400)
def test_a_student_runs_every_notebook_in_order(tmp_path, monkeypatch):
    from rjcma.book.execute import ensure_kernel, execute_notebook
    from rjcma.book.paths import toc_notebooks

    clone = fresh_copy(tmp_path / "clone")
    assert not any((clone / d).exists() for d in ("data", "results")), "the copy must start without data"
    monkeypatch.setenv("PYTHONPATH", str(clone / "rjcma_src"))  # the kernel imports the copy's package
    monkeypatch.setenv("MPLBACKEND", "module://matplotlib_inline.backend_inline")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    if os.environ.get("RJCMA_STUDENT_FRESH_CACHE") == "1":
        monkeypatch.setenv("RJCMA_CACHE", str(tmp_path / "cache"))
    ensure_kernel()
    names = toc_notebooks(clone)
    assert names == sorted(p.stem for p in (clone / "notebooks").glob("*.ipynb"))
    timings: dict[str, float] = {}
    for name in names:
        t0 = time.perf_counter()
        execute_notebook(clone / "notebooks" / f"{name}.ipynb", clone / "_build" / "student" / f"{name}.ipynb",
                         {}, clone)  # RjcmaError naming the notebook and the cell if it fails
        timings[name] = round(time.perf_counter() - t0, 1)
        print(f"{name:<22} {timings[name]:7.1f} s", flush=True)
    print(f"{'total':<22} {sum(timings.values()):7.1f} s")
    report = REPO / "_build" / "student" / "timings.json"
    report.parent.mkdir(parents=True, exist_ok=True)
    report.write_text(json.dumps({"seconds": timings, "total_s": round(sum(timings.values()), 1),
                                  "cpus": os.cpu_count()}, indent=1) + "\n")
    # what the notebooks built, through the package, in the copy
    assert (clone / "data" / "demo_corpus" / "SYNTH_TRUTH.json").is_file()
    assert any((clone / "data" / "demo_store").glob("*/meta.json"))
    for kind in ("cv", "ablate", "compare", "compare-folds"):
        assert (clone / "results" / "demo" / kind / "summary.json").is_file(), f"results/demo/{kind} missing"
