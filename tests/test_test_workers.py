"""`make test`'s two pytest-xdist workers: the book's two modules run in one of them, so the book is built once,
and every other module's tests share a worker, so its module-scoped fixtures are built once.

Both modules read one built book (`_book_build.py`, once per worker process). pytest-xdist's own ``xdist_group``
marks did not group them under pytest 9.2 (its group suffix went to a node id pytest no longer reads), and both
workers built the book into `_build/test/` at the same time; `tests/conftest.py`'s scheduler hook groups them by
file name. Checked here on stand-in modules of the same names, run by pytest-xdist in a process of its own.
"""

from __future__ import annotations

import collections
import os
import subprocess
import sys
from pathlib import Path

CONFTEST = Path(__file__).with_name("conftest.py")

# the hook alone, loaded from tests/conftest.py under another module name (its other hooks build the tiny store)
HOOK_ONLY = f'''
import importlib.util
spec = importlib.util.spec_from_file_location("rjcma_tests_conftest", {str(CONFTEST)!r})
mod = importlib.util.module_from_spec(spec)
spec.loader.exec_module(mod)
pytest_xdist_make_scheduler = mod.pytest_xdist_make_scheduler
'''

WHERE = '''
import os
import pytest


@pytest.mark.parametrize("i", range({n}))
def test_where(i):
    with open(os.environ["WHERE_LOG"], "a") as f:
        f.write(f"{{__name__}} {{os.environ['PYTEST_XDIST_WORKER']}}\\n")
'''


def _book_modules() -> set[str]:
    """BOOK_MODULES of tests/conftest.py (by path: ``conftest`` may name tests/paper's in this process)."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("rjcma_tests_conftest", CONFTEST)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return set(mod.BOOK_MODULES)


def test_the_book_modules_share_one_worker(tmp_path):
    BOOK_MODULES = _book_modules()  # noqa: N806 - the conftest's name
    (tmp_path / "conftest.py").write_text(HOOK_ONLY)
    modules = sorted(BOOK_MODULES) + ["test_other_a.py", "test_other_b.py"]
    for name in modules:
        (tmp_path / name).write_text(WHERE.format(n=6))
    log = tmp_path / "where.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_", "RJCMA_TEST_"))}
    env["WHERE_LOG"] = str(log)
    r = subprocess.run([sys.executable, "-m", "pytest", "-q", "-n", "2", "--dist", "loadgroup", "-p", "no:cacheprovider",
                        "-p", "no:randomly", str(tmp_path)], cwd=tmp_path, env=env, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    workers = collections.defaultdict(set)
    for line in log.read_text().splitlines():
        module, worker = line.split()
        workers[module].add(worker)
    assert set(workers) == {Path(m).stem for m in modules}, workers
    book = set().union(*(workers[Path(m).stem] for m in BOOK_MODULES))
    assert len(book) == 1, f"the book's modules ran on {sorted(book)}"
    split = {m: sorted(w) for m, w in workers.items() if len(w) > 1}
    assert not split, f"a module's tests ran on several workers (its module fixtures built on each): {split}"
    # the modules are still spread over both workers
    assert len(set().union(*workers.values())) == 2, workers
