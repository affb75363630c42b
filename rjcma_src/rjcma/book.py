"""`rjcma book`: run every notebook with papermill, then build the Jupyter Book (the book's chapter *Running this book*).

The notebooks in ``notebooks/`` are sources without outputs. Each has one cell tagged ``parameters`` whose names
are config fields (:func:`rjcma.config.field_names`); the runner injects the profile's value of each field,
executes the notebook with the repository root as working directory into ``_build/executed/notebooks/`` and
stops at the first failure, naming the notebook and the cell. Then it assembles a build tree in ``_build/src/``
(``_config.yml``, ``_toc.yml``, ``book/``, the executed notebooks and a local copy of MathJax 3) and runs
``jupyter-book build`` with warnings as errors; the HTML lands in ``_build/html/``.

``_toc.yml`` is static and lists every notebook; a listed notebook that is missing is an error.

The command line is :mod:`rjcma.cli.book` (``rjcma book``, ``rjcma lab``).
"""

from __future__ import annotations

import ast
import contextlib
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

from rjcma.config import Config
from rjcma.errors import RjcmaError

KERNEL_NAME = "python3"
TIMEOUT_PER_CELL_S = 900
MATHJAX_ENTRY = "tex-chtml.js"  # the MathJax 3 component the book loads (relative to _static/mathjax/)

# values used by `rjcma book --tiny` (a smoke run of the whole book in a couple of minutes)
TINY = {
    "seq_len": 32,
    "stride": 16,
    "demo_videos": 4,
    "demo_seconds": 6.0,
    "demo_seed": 1,
}

# seconds each notebook ran in the demo profile's `make book` (idle 2-core machine, two at a time; the book's chapter
# *Running this book*): the start order of side-by-side runs when a notebook has no executed copy yet. Longest first,
# so that no long notebook starts last and runs alone; the figures order the runs and nothing else.
DEMO_SECONDS = {
    "02_visual": 52, "12_inference": 32, "04_text": 15, "13_paper_vs_code": 14, "05_encoders": 13,
    "06b_equations": 11, "06a_tcn": 10, "07_training": 8, "08_cross_validation": 8, "09_ablation": 8,
    "10_comparison": 7, "01_data": 6, "03_audio": 5, "11_results": 4,
}


# ---- locations -----------------------------------------------------------------------------------
def repo_root() -> Path:
    """The repository root: the folder holding ``_toc.yml`` (the package's checkout, else the cwd upwards)."""
    here = Path(__file__).resolve()
    candidates = [here.parents[2], *[p for p in [Path.cwd(), *Path.cwd().parents]]]
    for c in candidates:
        if (c / "_toc.yml").is_file() and (c / "notebooks").is_dir():
            return c
    raise RjcmaError(f"{Path.cwd()}: no _toc.yml with a notebooks/ folder here or above; run from the repository root")


@dataclass
class BookPaths:
    root: Path
    build: Path  # _build/
    executed: Path  # _build/executed/  (holds notebooks/NN_name.ipynb)
    src: Path  # _build/src/       (the tree jupyter-book builds)
    html: Path  # _build/html/

    @classmethod
    def default(cls, root: Path | None = None, build: Path | None = None) -> "BookPaths":
        root = Path(root) if root else repo_root()
        build = Path(build) if build else root / "_build"
        return cls(root=root, build=build, executed=build / "executed", src=build / "src", html=build / "html")


# ---- the table of contents -----------------------------------------------------------------------
def _toc_files(node: Any) -> Iterable[str]:
    if isinstance(node, dict):
        for k, v in node.items():
            if k in ("file", "root") and isinstance(v, str):
                yield v
            else:
                yield from _toc_files(v)
    elif isinstance(node, list):
        for v in node:
            yield from _toc_files(v)


def toc_entries(root: Path) -> list[str]:
    """Every file the toc lists (without suffix), in reading order."""
    import yaml

    toc = root / "_toc.yml"
    if not toc.is_file():
        raise RjcmaError(f"{toc}: missing; the book's table of contents must exist")
    return list(_toc_files(yaml.safe_load(toc.read_text())))


def toc_notebooks(root: Path) -> list[str]:
    """Notebook names (``NN_name``) the toc lists, in run order (by file name: 01_data, 02_visual, ...)."""
    return sorted(Path(e).name for e in toc_entries(root) if e.startswith("notebooks/"))


# ---- parameters ----------------------------------------------------------------------------------
def parameters_cells(nb: Any) -> list[int]:
    return [i for i, c in enumerate(nb.cells) if "parameters" in c.get("metadata", {}).get("tags", [])]


def notebook_parameters(path: str | Path) -> dict[str, Any]:
    """Names and literal values of the (single) ``parameters`` cell; RjcmaError if it breaks the rules."""
    import nbformat

    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    idx = parameters_cells(nb)
    if len(idx) != 1:
        raise RjcmaError(f"{path}: needs exactly one cell tagged 'parameters', found {len(idx)}")
    src = nb.cells[idx[0]].source
    try:
        tree = ast.parse(src)
    except SyntaxError as e:
        raise RjcmaError(f"{path}: parameters cell line {e.lineno}: {e.msg}") from None
    out: dict[str, Any] = {}
    for stmt in tree.body:
        if isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and stmt.value is not None:
            target, value = stmt.target, stmt.value
        elif isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            target, value = stmt.targets[0], stmt.value
        else:
            raise RjcmaError(
                f"{path}: parameters cell line {stmt.lineno}: only `name = literal` assignments are allowed"
            )
        try:
            out[target.id] = ast.literal_eval(value)
        except ValueError:
            raise RjcmaError(
                f"{path}: parameters cell line {stmt.lineno}: `{target.id}` must be a literal (number, string, "
                "bool, list...); derive other values in the next cell"
            ) from None
    return out


def parameter_values(cfg: Config, names: Iterable[str], source: str = "notebook") -> dict[str, Any]:
    """The config's value for each parameter name (bare config field names only)."""
    from rjcma.config import leaf_fields

    lf = leaf_fields()
    out: dict[str, Any] = {}
    for name in names:
        if "." in name or name not in lf:
            raise RjcmaError(
                f"{source}: parameter {name!r} is not a config field; rename it to one of "
                "`rjcma info --config` (bare name) or derive it in the next cell"
            )
        section, fname = lf[name]
        value = cfg.profile if section == "profile" else getattr(getattr(cfg, section), fname)
        out[name] = list(value) if isinstance(value, (list, tuple)) else value
    return out


# ---- kernel --------------------------------------------------------------------------------------
def ensure_kernel() -> None:
    """Make the ``python3`` kernelspec resolve to this interpreter (the venv's), or fail saying how to fix it."""
    share = Path(sys.prefix) / "share" / "jupyter"
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(share) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join([str(share), *([paths] if paths else [])])
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel

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


# ---- execution -----------------------------------------------------------------------------------
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
        import nbformat

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
def _kernel_env():
    """Environment the kernels inherit (set for the duration of the run, then restored).

    Inline matplotlib figures (a caller's ``MPLBACKEND=Agg`` would make ``plt.show()`` draw nothing), no network,
    no progress bars in the pages, and the package importable from this checkout.
    """
    pkg_root = str(Path(__file__).resolve().parents[1])
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
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(
            str(src),
            str(dst),
            parameters=params,
            kernel_name=KERNEL_NAME,
            cwd=str(cwd),
            progress_bar=False,
            log_output=False,
            execution_timeout=TIMEOUT_PER_CELL_S,
        )
    except PapermillExecutionError as e:
        where = _cell_label(dst, getattr(e, "exec_count", None))
        evalue = str(getattr(e, "evalue", "")).strip().splitlines()
        raise RjcmaError(
            f"{src}: {where} failed: {e.ename}: {evalue[0] if evalue else ''} — the traceback is in {dst}"
        ) from None


def run_notebooks(
    cfg: Config,
    paths: BookPaths,
    only: list[str] | None = None,
    stop_on_error: bool = True,
    echo: bool = True,
    jobs: int = 1,
    require_all: bool = True,
) -> list[NotebookRun]:
    """Execute the toc's notebooks (or ``only`` those) in order into ``paths.executed/notebooks/``."""
    ensure_kernel()
    names = toc_notebooks(paths.root)
    missing = [n for n in names if not (paths.root / "notebooks" / f"{n}.ipynb").is_file()]
    if missing and not require_all:  # tests: run what exists, report the rest per notebook
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

    def run_one(i: int, name: str) -> NotebookRun:
        src = paths.root / "notebooks" / f"{name}.ipynb"
        dst = paths.executed / "notebooks" / f"{name}.ipynb"
        tmp = dst.with_name(f".{dst.stem}.running.ipynb")
        run = NotebookRun(name=name, output=dst)
        if echo:
            print(f"[{i}/{len(names)}] {name} ...", flush=True)
        t0 = time.perf_counter()
        try:
            run.parameters = parameter_values(cfg, notebook_parameters(src), source=str(src))
            try:
                execute_notebook(src, tmp, run.parameters, paths.root)
                os.replace(tmp, dst)
            except RjcmaError:
                if tmp.exists():  # keep the failed copy (with its traceback) where the message says
                    os.replace(tmp, dst)
                raise
            run.ok = True
        except RjcmaError as e:
            run.error = str(e).replace(str(tmp), str(dst))
        finally:
            run.seconds = time.perf_counter() - t0
        if echo:
            print(f"      {name}: {'ok' if run.ok else 'FAILED'} in {run.seconds:.1f} s", flush=True)
        return run

    with _kernel_env():
        seconds = {n: expected_seconds(paths, n) for n in names} if jobs > 1 else {}
        return _run_all_notebooks(names, run_one, jobs, stop_on_error, echo, seconds)


def expected_seconds(paths: BookPaths, name: str) -> float:
    """How long notebook ``name`` is expected to run: its last executed copy's papermill duration, else
    :data:`DEMO_SECONDS`, else 0. Only the start order of side-by-side runs uses it."""
    import json

    try:
        nb = json.loads((paths.executed / "notebooks" / f"{name}.ipynb").read_text())
        return float(nb["metadata"]["papermill"]["duration"])
    except (OSError, ValueError, KeyError, TypeError):
        return float(DEMO_SECONDS.get(name, 0.0))


def _run_all_notebooks(names, run_one, jobs: int, stop_on_error: bool, echo: bool,
                       seconds: dict[str, float] | None = None) -> list[NotebookRun]:
    runs: list[NotebookRun] = []
    if jobs <= 1:
        for i, name in enumerate(names, 1):
            runs.append(run_one(i, name))
            if not runs[-1].ok and stop_on_error:
                if echo:
                    print(timing_table(runs))
                raise RjcmaError(runs[-1].error)
    else:  # independent notebooks side by side (make book, tests), the longest first; results in the toc's order
        from concurrent.futures import ThreadPoolExecutor

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


# ---- MathJax (offline) ---------------------------------------------------------------------------
def mathjax_dir() -> Path:
    """A local MathJax 3 folder (with ``tex-chtml.js`` and its fonts); RjcmaError saying how to get one."""
    import importlib.util

    candidates: list[Path] = []
    if os.environ.get("RJCMA_MATHJAX_DIR"):
        candidates.append(Path(os.environ["RJCMA_MATHJAX_DIR"]))
    spec = importlib.util.find_spec("sphinx-mathjax-offline")  # PyPI package that ships MathJax 3 (book extra)
    if spec and spec.submodule_search_locations:
        candidates += [Path(p) / "static" / "mathjax" for p in spec.submodule_search_locations]
    for c in candidates:
        if (c / MATHJAX_ENTRY).is_file() and (c / "output" / "chtml" / "fonts" / "woff-v2").is_dir():
            return c
    raise RjcmaError(
        "MathJax 3 not found for the offline book; run: "
        f"{sys.executable} -m pip install sphinx-mathjax-offline   (or set RJCMA_MATHJAX_DIR to a MathJax 3 es5 folder)"
    )


# ---- building ------------------------------------------------------------------------------------
def prepare_source(paths: BookPaths) -> Path:
    """Assemble ``_build/src``: config, toc, chapters, executed notebooks and ``_static/mathjax``."""
    root, src = paths.root, paths.src
    names = toc_notebooks(root)
    missing = [n for n in names if not (paths.executed / "notebooks" / f"{n}.ipynb").is_file()]
    if missing:
        raise RjcmaError(
            f"{paths.executed / 'notebooks'}: no executed copy of "
            + ", ".join(missing)
            + "; run `rjcma book` without --only (or with --only for those)"
        )
    if src.exists():
        shutil.rmtree(src)
    src.mkdir(parents=True)
    for f in ("_config.yml", "_toc.yml"):
        shutil.copy2(root / f, src / f)
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (src / "notebooks").mkdir()
    for n in names:
        shutil.copy2(paths.executed / "notebooks" / f"{n}.ipynb", src / "notebooks" / f"{n}.ipynb")
    # copied by Sphinx to <html>/_static/mathjax/ (html_static_path in _config.yml); not under the source's
    # `_static/`, whose .js files jupyter-book would add as <script> tags to every page
    shutil.copytree(mathjax_dir(), src / "_offline_static" / "mathjax")
    return src


def _jupyter_book() -> list[str]:
    exe = Path(sys.executable).parent / "jupyter-book"
    if exe.exists():
        return [str(exe)]
    found = shutil.which("jupyter-book")
    if not found:
        raise RjcmaError(f"jupyter-book not installed; run: {sys.executable} -m pip install 'jupyter-book>=1,<2'")
    return [found]


def build_book(paths: BookPaths, echo: bool = True) -> tuple[Path, str]:
    """``jupyter-book build`` of ``_build/src`` with -W -n --keep-going; the HTML goes to ``_build/html``.

    Returns (index.html, the build log). RjcmaError listing the warnings if there were any.
    """
    src = paths.src
    out = paths.build / "jb"
    if out.exists():
        shutil.rmtree(out)
    cmd = [*_jupyter_book(), "build", str(src), "--path-output", str(out), "--builder", "html", "-W", "-n",
           "--keep-going", "--quiet"]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(Path(__file__).resolve().parents[1]),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(src))
    log = proc.stdout + proc.stderr
    (paths.build).mkdir(parents=True, exist_ok=True)
    (paths.build / "book-build.log").write_text(log)
    warnings = [ln for ln in log.splitlines() if "WARNING" in ln or "ERROR" in ln]
    built = out / "_build" / "html"
    if proc.returncode != 0 or warnings or not (built / "index.html").is_file():
        shown = "\n".join(warnings[:30]) or log[-3000:]
        raise RjcmaError(
            f"{paths.build / 'book-build.log'}: jupyter-book build failed (exit {proc.returncode}, "
            f"{len(warnings)} warning(s)); fix these:\n{shown}"
        )
    if paths.html.exists():
        shutil.rmtree(paths.html)
    os.replace(built, paths.html)
    shutil.rmtree(out, ignore_errors=True)
    return paths.html / "index.html", log


# ---- tiny mode and the whole job -----------------------------------------------------------------
def tiny_config(cfg: Config, paths: BookPaths) -> Config:
    """The config of ``rjcma book --tiny``: a 4-video corpus and small windows under ``_build/tiny/``."""
    base = paths.build / "tiny"
    return cfg.replace(
        corpus=str(base / "corpus"),
        store=str(base / "store"),
        results_dir=str(base / "results"),
        **TINY,
    )


def ensure_tiny_data(cfg: Config) -> None:
    """Write the tiny corpus and its store if missing (the steps `make book` runs before the notebooks)."""
    corpus = Path(cfg.data.corpus)
    if not corpus.exists() or not any(corpus.iterdir()):
        from rjcma.data.synth import synthesize

        print(f"tiny: writing a {cfg.book.demo_videos}-video corpus to {corpus}", flush=True)
        synthesize(corpus, videos=cfg.book.demo_videos, seconds=cfg.book.demo_seconds, seed=cfg.book.demo_seed)
    from rjcma.preprocess.pipeline import preprocess_corpus

    report = preprocess_corpus(cfg, progress=False)
    if not getattr(report, "ok", True):
        raise RjcmaError(f"{cfg.data.store}: preprocessing the tiny corpus failed: {report}")


# the tiny runs: one epoch, two folds, l = 1, 2. Every one is a notebook parameter, so the notebooks' configs are
# the runs' configs and they find every run done (a field the notebooks cannot set, e.g. early_stop, would give
# the runs another config hash, and the notebooks would train them all again)
TINY_TRAIN_SETS = ["max_epochs=1", "folds=0,1", "ablate_iterations=1,2"]


def ensure_tiny_results(cfg: Config, echo: bool = True) -> None:
    """Every run the book reads, trained on the tiny store as `make book` trains them
    (:func:`rjcma.train.cv.run_book_experiments`; ``cfg`` is :func:`tiny_config`'s with :data:`TINY_TRAIN_SETS`).
    Runs already there are reused."""
    from rjcma.train.cv import run_book_experiments

    t0 = time.perf_counter()
    run_book_experiments(cfg, progress=False, log=lambda *a, **k: None)
    if echo:
        print(f"tiny: every run the book reads, in {time.perf_counter() - t0:.1f} s", flush=True)


def run_all(
    cfg: Config,
    paths: BookPaths,
    only: list[str] | None = None,
    build: bool = True,
    stop_on_error: bool = True,
    echo: bool = True,
) -> tuple[list[NotebookRun], Path | None]:
    runs = run_notebooks(cfg, paths, only=only, stop_on_error=stop_on_error, echo=echo)
    if echo:
        print(timing_table(runs), flush=True)
    index = None
    if build:
        t0 = time.perf_counter()
        prepare_source(paths)
        index, _ = build_book(paths, echo=echo)
        if echo:
            print(f"book built in {time.perf_counter() - t0:.1f} s", flush=True)
    return runs, index


# ---- JupyterLab ----------------------------------------------------------------------------------
LAB_STARTUP = """# written by `rjcma lab`: kernels started from JupyterLab work in the repository root,
# as under `rjcma book` (papermill), so the notebooks' relative paths (data/demo_corpus, results/...) resolve.
import os as _os

if _os.environ.get("RJCMA_ROOT"):
    _os.chdir(_os.environ["RJCMA_ROOT"])
"""


def lab(extra: list[str] | None = None) -> int:
    """Start JupyterLab on notebooks/ with this environment's kernel, the package importable and cwd = repo root."""
    root = repo_root()
    ensure_kernel()  # also puts this environment's share/jupyter first on JUPYTER_PATH
    ipydir = root / "_build" / "ipython"
    startup = ipydir / "profile_default" / "startup" / "00-rjcma-root.py"
    startup.parent.mkdir(parents=True, exist_ok=True)
    startup.write_text(LAB_STARTUP)
    env = dict(os.environ, RJCMA_ROOT=str(root), IPYTHONDIR=str(ipydir))
    env.pop("MPLBACKEND", None)  # inline figures
    exe = Path(sys.executable).parent / "jupyter-lab"
    if not exe.exists():
        raise RjcmaError(f"JupyterLab not installed; run: {sys.executable} -m pip install jupyterlab")
    cmd = [str(exe), f"--ServerApp.root_dir={root}", "notebooks/", *(extra or [])]
    if hasattr(os, "geteuid") and os.geteuid() == 0 and "--allow-root" not in cmd:
        cmd.append("--allow-root")  # containers and CI often run as root
    print("rjcma lab:", " ".join(cmd), flush=True)
    os.chdir(root)
    os.execve(str(exe), cmd, env)
    return 0  # pragma: no cover - execve does not return
