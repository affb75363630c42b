"""A Sphinx extension (listed in ``_config.yml``) that stops ``jupyter-book build .`` on the repository itself.

The repository keeps its notebooks without outputs and ``_config.yml`` turns jupyter-book's own execution off:
`rjcma book` (``make book``) executes them with papermill and builds a copy of the tree in which they are the
executed ones. Built from the repository directly, the book would be pages of code with empty result cells, raw
``{glue:text}`` roles and missing figures, written over the good ``_build/html``. So when any notebook of the table
of contents has never been executed, the build stops at ``config-inited`` (before Sphinx reads or writes a page)
with one line saying what to run instead.
"""

from __future__ import annotations

import json
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.config import Config as SphinxConfig
from sphinx.errors import ConfigError

from rjcma.book.paths import toc_entries


def unexecuted_notebooks(srcdir: str | Path) -> list[str]:
    """The toc's notebooks under ``srcdir`` whose code cells have never run (no execution count, no output)."""
    srcdir = Path(srcdir)
    if not (srcdir / "_toc.yml").is_file():
        return []
    out = []
    for entry in toc_entries(srcdir):
        path = srcdir / f"{entry}.ipynb"
        if not path.is_file():
            continue
        try:
            cells = json.loads(path.read_text()).get("cells", [])
        except (OSError, ValueError):
            continue
        code = [c for c in cells if c.get("cell_type") == "code"]
        if code and not any(c.get("execution_count") or c.get("outputs") for c in code):
            out.append(str(path.relative_to(srcdir)))
    return out


def refuse_unexecuted(app: Sphinx, config: SphinxConfig) -> None:
    missing = unexecuted_notebooks(app.srcdir)
    if missing:
        raise ConfigError(
            f"{app.srcdir}: {len(missing)} notebook(s) have never been executed ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}); this book is built by `make book` (or `rjcma book`), "
            "which executes them with papermill and builds _build/html. Nothing was written."
        )


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", refuse_unexecuted, priority=0)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
