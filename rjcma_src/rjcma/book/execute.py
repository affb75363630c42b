"""Executing the notebooks: the kernel, the environment the kernels inherit, papermill runs (one at a time or side
by side) and their timing table. A failure names the notebook and the cell of its source."""

from __future__ import annotations

import contextlib
import json
import os
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from rjcma.book.facts import NOTEBOOK_SECONDS
from rjcma.book.parameters import merge_injected, notebook_parameters, parameter_values
from rjcma.book.paths import BookPaths, package_root, toc_notebooks
from rjcma.config import Config
from rjcma.errors import RjcmaError

KERNEL_NAME = "python3"
TIMEOUT_PER_CELL_S = 900

def ensure_kernel() -> None:
    """Make the ``python3`` kernelspec resolve to this interpreter (the venv's), or fail saying how to fix it."""
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel  # the book extra

    share = Path(sys.prefix) / "share" / "jupyter"
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(share) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(share), *([paths] if paths else [])])
    try:
        spec = KernelSpecManager().get_kernel_spec(KERNEL_NAME)
    except NoSuchKernel:
        raise RjcmaError(
            f"no Jupyter kernel named {KERNEL_NAME!r}; run: {sys.executable} -m ipykernel install --sys-prefix "
            f"--name {KERNEL_NAME} --display-name 'Python 3'   (make setup does this)"
        ) from None
    exe = spec.argv[0]
    if exe in ("python", "python3"):  # ipykernel's built-in spec: the current interpreter
        return
    try:
        same = Path(exe).resolve() == Path(sys.executable).resolve() or os.path.samefile(exe, sys.executable)
    except OSError:
        same = False
    if not same:
        raise RjcmaError(
            f"{spec.resource_dir}/kernel.json: kernel {KERNEL_NAME!r} runs {exe}, not this environment's "
            f"{sys.executable}; run: {sys.executable} -m ipykernel install --sys-prefix --name {KERNEL_NAME}"
        )


@dataclass
class NotebookRun:
    name: str
    seconds: float = 0.0
    ok: bool = False
    error: str = ""
    output: Path | None = None
    parameters: dict[str, Any] = field(default_factory=dict)


def _cell_label(nb_path: Path, exec_count: int | None) -> str:
    """'cell 3 of the source (`first line`)' for the cell that failed (found by its execution count)."""
    added = ("injected-parameters", "papermill-error-cell-tag")  # cells papermill adds to the executed copy
    try:
        import nbformat  # the book extra

        nb = nbformat.read(nb_path, as_version=4)
        src_index = 0
        for cell in nb.cells:
            if any(t in cell.get("metadata", {}).get("tags", []) for t in added):
                continue
            src_index += 1
            if cell.cell_type == "code" and exec_count is not None and cell.get("execution_count") == exec_count:
                first = next((ln for ln in cell.source.splitlines() if ln.strip()), "").strip()
                return f"cell {src_index} of the source (`{first[:70]}`)"
    except Exception:  # noqa: BLE001 - best effort, the message still names the notebook
        pass
    return f"the cell executed as [{exec_count}]"


@contextlib.contextmanager
def kernel_environment():
    """Environment the kernels inherit (set for the duration of the run, then restored).

    Inline matplotlib figures (a caller's ``MPLBACKEND=Agg`` would make a notebook draw nothing), no network,
    no progress bars in the pages, and the package importable from this checkout.
    """
    pkg_root = str(package_root())
    parts = [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    values = {
        "MPLBACKEND": "module://matplotlib_inline.backend_inline",
        "PYTHONPATH": os.pathsep.join([pkg_root, *[p for p in parts if p != pkg_root]]),
        "PYDEVD_DISABLE_FILE_VALIDATION": "1",
        "HF_HUB_OFFLINE": "1",  # nothing is downloaded at run time
        "TRANSFORMERS_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
        "TQDM_DISABLE": "1",  # progress bars belong in terminals, not in the book's pages
        "HF_HUB_DISABLE_PROGRESS_BARS": "1",
        "TRANSFORMERS_VERBOSITY": "error",
        "PYTHONWARNINGS": "ignore:IProgress not found",
    }
    saved = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def execute_notebook(src: Path, dst: Path, params: dict[str, Any], cwd: Path) -> None:
    """Run one notebook with papermill; RjcmaError naming the notebook and the failing cell."""
    import papermill as pm  # the book extra
    from papermill.exceptions import PapermillExecutionError

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(src), str(dst), parameters=params, kernel_name=KERNEL_NAME, cwd=str(cwd),
                            progress_bar=False, log_output=False, execution_timeout=TIMEOUT_PER_CELL_S)
    except PapermillExecutionError as e:
        where = _cell_label(dst, getattr(e, "exec_count", None))
        evalue = str(getattr(e, "evalue", "")).strip().splitlines()
        raise RjcmaError(
            f"{src}: {where} failed: {e.ename}: {evalue[0] if evalue else ''} — the traceback is in {dst}"
        ) from None
    import nbformat  # the book extra

    nb = nbformat.read(str(dst), as_version=4)
    if merge_injected(nb):  # the page shows one parameters cell, with the values it ran with
        nbformat.write(nb, str(dst))


def notebooks_to_run(paths: BookPaths, only: list[str] | None, require_all: bool) -> list[str]:
    """The toc's notebooks (or ``only`` those), in order; a listed notebook without a source is an error unless
    ``require_all`` is False (tests run what exists)."""
    names = toc_notebooks(paths.root)
    missing = [n for n in names if not (paths.root / "notebooks" / f"{n}.ipynb").is_file()]
    if missing and not require_all:
        names = [n for n in names if n not in missing]
    elif missing:
        raise RjcmaError(
            f"{paths.root / '_toc.yml'}: lists notebook(s) that do not exist: "
            + ", ".join(f"notebooks/{n}.ipynb" for n in missing)
        )
    if only:
        unknown = [o for o in only if o not in names]
        if unknown:
            raise RjcmaError(f"--only {','.join(unknown)}: not in _toc.yml; choose from {', '.join(names)}")
        names = [n for n in names if n in only]
    return names


def run_one(cfg: Config, paths: BookPaths, name: str) -> NotebookRun:
    """Execute one notebook into ``paths.executed/notebooks/``; a failed copy (with its traceback) is kept there."""
    src = paths.root / "notebooks" / f"{name}.ipynb"
    dst = paths.executed / "notebooks" / f"{name}.ipynb"
    tmp = dst.with_name(f".{dst.stem}.running.ipynb")
    run = NotebookRun(name=name, output=dst)
    t0 = time.perf_counter()
    try:
        run.parameters = parameter_values(cfg, notebook_parameters(src), source=str(src))
        try:
            execute_notebook(src, tmp, run.parameters, paths.root)
            os.replace(tmp, dst)
        except RjcmaError:
            if tmp.exists():  # keep the failed copy where the message says
                os.replace(tmp, dst)
            raise
        run.ok = True
    except RjcmaError as e:
        run.error = str(e).replace(str(tmp), str(dst))
    finally:
        run.seconds = time.perf_counter() - t0
    return run


def run_notebooks(cfg: Config, paths: BookPaths, only: list[str] | None = None, stop_on_error: bool = True,
                  echo: bool = True, jobs: int = 1, require_all: bool = True) -> list[NotebookRun]:
    """Execute the toc's notebooks (or ``only`` those) in order into ``paths.executed/notebooks/``."""
    ensure_kernel()
    names = notebooks_to_run(paths, only, require_all)

    def one(i: int, name: str) -> NotebookRun:
        if echo:
            print(f"[{i}/{len(names)}] {name} ...", flush=True)
        run = run_one(cfg, paths, name)
        if echo:
            print(f"      {name}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.1f} s", flush=True)
        return run

    with kernel_environment():
        seconds = {n: expected_seconds(paths, n) for n in names} if jobs > 1 else {}
        return run_all_notebooks(names, one, jobs, stop_on_error, echo, seconds)


def expected_seconds(paths: BookPaths, name: str) -> float:
    """How long notebook ``name`` is expected to run: its last executed copy's papermill duration, else
    :data:`rjcma.book.facts.NOTEBOOK_SECONDS`, else 0. Only the start order of side-by-side runs uses it."""
    try:
        nb = json.loads((paths.executed / "notebooks" / f"{name}.ipynb").read_text())
        return float(nb["metadata"]["papermill"]["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return float(NOTEBOOK_SECONDS.get(name, 0.0))


def run_all_notebooks(names: list[str], run_one: Callable[[int, str], NotebookRun], jobs: int, stop_on_error: bool,
                      echo: bool, seconds: dict[str, float] | None = None) -> list[NotebookRun]:
    """``run_one(position, name)`` for every notebook: in order, or ``jobs`` side by side with the longest first;
    the runs come back in the toc's order."""
    runs: list[NotebookRun] = []
    if jobs <= 1:
        for i, name in enumerate(names, 1):
            runs.append(run_one(i, name))
            if not runs[-1].ok and stop_on_error:
                if echo:
                    print(timing_table(runs))
                raise RjcmaError(runs[-1].error)
        return runs
    seconds = seconds or {}
    order = sorted(range(len(names)), key=lambda i: -seconds.get(names[i], 0.0))  # stable: ties in toc order
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futures = {i: pool.submit(run_one, i + 1, names[i]) for i in order}
        runs = [futures[i].result() for i in range(len(names))]
    failed = [r for r in runs if not r.ok]
    if failed and stop_on_error:
        raise RjcmaError(failed[0].error)
    return runs


def timing_table(runs: list[NotebookRun]) -> str:
    lines = [f"{'notebook':<24} {'status':<7} {'seconds':>8}", "-" * 41]
    for r in runs:
        lines.append(f"{r.name:<24} {'ok' if r.ok else 'FAILED':<7} {r.seconds:>8.1f}")
    lines.append("-" * 41)
    lines.append(f"{'total':<24} {'':<7} {sum(r.seconds for r in runs):>8.1f}")
    return "\n".join(lines)
