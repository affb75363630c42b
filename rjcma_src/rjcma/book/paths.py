"""Where the book's pieces are: the repository root, the build folders, and the notebooks the table of contents lists.

``_toc.yml`` is static and lists every notebook; the notebooks run in file-name order, which is also the order the
book is read in.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable

import yaml

from rjcma.errors import RjcmaError


def repo_root() -> Path:
    """The repository root: the folder holding ``_toc.yml`` (the package's checkout, else the cwd upwards)."""
    here = Path(__file__).resolve()
    candidates = [here.parents[3], Path.cwd(), *Path.cwd().parents]
    for c in candidates:
        if (c / "_toc.yml").is_file() and (c / "notebooks").is_dir():
            return c
    raise RjcmaError(f"{Path.cwd()}: no _toc.yml with a notebooks/ folder here or above; run from the repository root")


def package_root() -> Path:
    """The folder that holds the ``rjcma`` package (what a kernel or jupyter-book needs on its PYTHONPATH)."""
    return Path(__file__).resolve().parents[2]


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
    toc = root / "_toc.yml"
    if not toc.is_file():
        raise RjcmaError(f"{toc}: missing; the book's table of contents must exist")
    return list(_toc_files(yaml.safe_load(toc.read_text())))


def toc_notebooks(root: Path) -> list[str]:
    """Notebook names (``NN_name``) the toc lists, in run order (by file name: 01_data, 02_visual, ...)."""
    return sorted(Path(e).name for e in toc_entries(root) if e.startswith("notebooks/"))
