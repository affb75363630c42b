"""Building the HTML book from the executed notebooks: the source tree in ``_build/src`` (config, toc, chapters,
executed notebooks, a local MathJax 3) and ``jupyter-book build`` with warnings as errors into ``_build/html``."""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import yaml

from rjcma.book.facts import substitutions
from rjcma.book.paths import BookPaths, package_root, toc_notebooks
from rjcma.errors import RjcmaError

MATHJAX_ENTRY = "tex-chtml.js"  # the MathJax 3 component the book loads (relative to _static/mathjax/)
STYLE_DIR = "_static"  # the book's own stylesheet (rjcma.css: the column width at laptop sizes), in the repository


def mathjax_dir() -> Path:
    """A local MathJax 3 folder (with ``tex-chtml.js`` and its fonts); RjcmaError saying how to get one."""
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


def prepare_source(paths: BookPaths) -> Path:
    """Assemble ``_build/src``: config, toc, chapters, executed notebooks, the book's stylesheet and
    ``_offline_static/mathjax``."""
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
    shutil.copy2(root / "_toc.yml", src / "_toc.yml")
    conf = yaml.safe_load((root / "_config.yml").read_text())
    # the facts the chapters show through {{ name }} (rjcma.book.facts), from the profiles and the measured times
    conf.setdefault("parse", {})["myst_substitutions"] = substitutions()
    (src / "_config.yml").write_text(yaml.safe_dump(conf, sort_keys=False, allow_unicode=True))
    shutil.copytree(root / "book", src / "book", ignore=shutil.ignore_patterns(".ipynb_checkpoints"))
    (src / "notebooks").mkdir()
    for n in names:
        shutil.copy2(paths.executed / "notebooks" / f"{n}.ipynb", src / "notebooks" / f"{n}.ipynb")
    # copied by Sphinx to <html>/_static/ (html_static_path in _config.yml); not under the source's `_static/`,
    # whose every .js file (MathJax's hundreds) jupyter-book would add as a <script> tag to every page
    shutil.copytree(mathjax_dir(), src / "_offline_static" / "mathjax")
    for css in sorted((root / STYLE_DIR).glob("*.css")):  # html_css_files in _config.yml
        shutil.copy2(css, src / "_offline_static" / css.name)
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
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(package_root()),
                                                       os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=str(src))
    log = proc.stdout + proc.stderr
    paths.build.mkdir(parents=True, exist_ok=True)
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
