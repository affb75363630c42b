"""What every notebook uses: its set-up, tables and glued numbers, source listings, the closing "outputs" table and
the readers of result folders."""

from __future__ import annotations

import csv
import math
import os
import re
import warnings
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import matplotlib
import numpy as np

from rjcma.config import Config, field_names, load_config
from rjcma.errors import RjcmaError
from rjcma.results_tables import markdown_table as _markdown_table

PARAMETER_TYPES = (str, int, float, bool, list)  # what a parameters cell may assign (literals)


# ---- set-up ----------------------------------------------------------------------------------------------------
def notebook_parameters(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The values of a notebook's parameters cell: the names of ``namespace`` that are config fields and hold a
    literal (every name of a parameters cell is a config field, which the book's tests check)."""
    fields = field_names()
    return {k: v for k, v in namespace.items() if k in fields and isinstance(v, PARAMETER_TYPES)}


def setup(namespace: Mapping[str, Any], **derived: Any) -> Config:
    """The config a notebook starts from: its ``profile``, then the other values of its parameters cell (a notebook
    passes ``globals()``), then ``derived`` values it computes from them.

    Also sets the figures' resolution (``figure_dpi``), keeps progress bars quiet about missing notebook widgets
    (they fall back to a text bar) and prints a warning as its category and message, without the path of the
    kernel's temporary file for the cell.
    """
    params = notebook_parameters(namespace)
    profile = params.pop("profile", "demo")
    warnings.filterwarnings("ignore", message="IProgress not found")
    warnings.formatwarning = _warning_line  # a warning says what happened, not where this kernel keeps its cells
    cfg = load_config(profile).replace(**{**params, **derived})
    matplotlib.rcParams["figure.dpi"] = cfg.book.figure_dpi
    return cfg


def _warning_line(message: Warning | str, category: type[Warning], *_: Any, **__: Any) -> str:
    return f"{category.__name__}: {message}\n"


def progress() -> bool:
    """Progress bars for a reader running the notebook; none in the book's pages (`rjcma book` sets TQDM_DISABLE,
    which tqdm applies only where a caller does not pass ``disable`` itself)."""
    return os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


def pick_trial(corpus, name: str = "", partitions: Sequence[str] = ("validation",), where=None):
    """The trial a chapter shows: ``name`` if given, else the first trial of ``partitions`` (in that order) that
    satisfies ``where``, else the first that does."""
    if name:
        return corpus.by_name(name)
    ok = [t for t in corpus.trials if where is None or where(t)]
    for p in partitions:
        found = [t for t in ok if t.partition == p]
        if found:
            return found[0]
    if not ok:
        raise RjcmaError(f"{corpus.root}: no trial to show here")
    return ok[0]


# ---- tables, text and code --------------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A pipe table (what :func:`show_table` displays)."""
    return _markdown_table(list(header), [list(r) for r in rows])


def show_markdown(text: str) -> None:
    from IPython.display import Markdown, display  # the book extra (a notebook kernel has it)

    display(Markdown(text))


def show_table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> None:
    """Display rows as a table (rendered as an HTML table in the book and in JupyterLab)."""
    show_markdown((f"{caption}\n\n" if caption else "") + markdown_table(header, rows))


def show_python(source: str) -> None:
    """Display Python source as a highlighted code block (``inspect.getsource`` of what a chapter explains)."""
    show_markdown(f"```python\n{source.rstrip()}\n```")


def docstring_markdown(doc: str) -> str:
    """A docstring written for Sphinx (reST roles, double backquotes) as Markdown a reader can read: ``:func:`x` ``
    and ``:mod:`rjcma.y` `` become code spans, ````x```` becomes `x`."""
    text = re.sub(r":(mod|func|data|class|meth|attr|obj):`~?([^`]+)`", r"`\2`", doc)
    return re.sub(r"``([^`]+)``", r"`\1`", text)


def f3(x: Any) -> str:
    """Three decimals, or a dash for a missing number."""
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.3f}"


def show_ccc_rows(rows: list[dict[str, Any]], key: str, cols: Sequence[str] = ("valence", "arousal", "mean")) -> None:
    """Rows of ``rjcma cv | ablate | compare`` (validation CCC) beside the paper's, where the paper has the row."""
    header = [key, *(f"{c} (ours)" for c in cols), *(f"{c} (paper)" for c in cols)]
    show_table(header, [[r[key], *(f3(r[c]) for c in cols), *(f3(r.get(f"paper_{c}")) for c in cols)] for r in rows])


def show_outputs(items: dict[str, str]) -> None:
    """The closing table of a chapter: each output (a path or a name) and what it is; paths say whether they
    exist. Paths are shown relative to the folder they share, which the caption names."""
    paths = {k: Path(k) for k in items if "/" in k or Path(k).suffix}
    common = Path(os.path.commonpath([str(p) for p in paths.values()])) if paths else None
    if common is not None and common in paths.values():
        common = common.parent
    rows = []
    for what, desc in items.items():
        p = paths.get(what)
        if p is None:
            rows.append([what, desc, ""])
            continue
        shown = p.relative_to(common) if common is not None and str(common) not in ("", ".") else p
        rows.append([f"`{shown}`", desc, "yes" if p.exists() else "not yet"])
    where = f" (in `{common}`)" if common is not None and str(common) not in ("", ".") else ""
    # "on disk", not "written": a chapter that only reads (the results chapter) lists what it read
    show_table([f"output{where}", "what it is", "on disk"], rows)


def glue_all(values: dict[str, Any]) -> None:
    """Glue each value under its name for the chapter's text (``{glue:text}`name```), without displaying it."""
    from myst_nb import glue  # the book extra

    for k, v in values.items():
        glue(k, v, display=False)


# ---- result folders --------------------------------------------------------------------------------------------
def read_history(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``history.csv`` (one per epoch)."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; the run did not finish (rerun `rjcma train`)")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_predictions(run_dir: str | Path, trial: str) -> np.ndarray:
    """(N, 2) valence, arousal predicted for each frame of a validation trial (``predictions/<trial>.csv``)."""
    path = Path(run_dir) / "predictions" / f"{trial}.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; {trial} is not a validation trial of this run")
    return np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64).reshape(-1, 3)[:, 1:3]
