"""The notebooks as lessons: one set of defaults (the demo profile's), the reading rules of the book's chapters
(hidden set-up, short cells, lines that fit the page, headings numbered once, cited equations, a closing outputs
section with glued numbers, exercises with hidden solutions and a check), and the helpers of ``rjcma.lessons``.
Static checks of the notebook sources plus small unit tests; nothing here executes a notebook.
"""

from __future__ import annotations

import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from rjcma import lessons
from rjcma.book.parameters import notebook_parameters, parameter_values, parameters_cells
from rjcma.book.paths import toc_entries, toc_notebooks
from rjcma.config import load_config

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
MAX_CELL_LINES = 25  # a code cell a reader takes in at a glance
MAX_LINE = 86  # characters of a code line that fit the book's code cells at 1440 px without scrolling


def _nb(name: str):
    return nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# ---- one set of defaults -----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameter_defaults_are_the_demo_profile(name):
    """A student who runs a notebook by hand sees what the book (papermill, demo profile) shows."""
    params = notebook_parameters(REPO / "notebooks" / f"{name}.ipynb")
    demo = parameter_values(load_config("demo"), params, source=name)
    wrong = {k: (v, demo[k]) for k, v in params.items() if v != demo[k]}
    assert not wrong, "defaults that differ from the demo profile (notebook, profile): " + ", ".join(
        f"{k} = {a!r} vs {b!r}" for k, (a, b) in wrong.items())


def test_the_check_would_catch_a_wrong_default(tmp_path):
    nb = _nb("01_data")
    i = parameters_cells(nb)[0]
    nb.cells[i].source = nb.cells[i].source.replace("stride = 100", "stride = 200")
    path = tmp_path / "01_data.ipynb"
    nbformat.write(nb, path)
    params = notebook_parameters(path)
    assert params["stride"] != parameter_values(load_config("demo"), ["stride"])["stride"]


# ---- reading order -----------------------------------------------------------------------------------------------
def test_chapters_are_read_in_the_order_their_files_run():
    listed = [Path(e).name for e in toc_entries(REPO) if e.startswith("notebooks/")]
    assert listed == toc_notebooks(REPO) == NOTEBOOKS, f"toc order {listed} vs file order {NOTEBOOKS}"


def test_landing_and_instructors_pages():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    assert "book/instructors" in toc_entries(REPO)
    intro = (REPO / "book" / "intro.md").read_text()
    for needle in ("make lab", "{doc}`reproducing`", "{doc}`inference`", "{doc}`instructors`"):
        assert needle in intro, f"book/intro.md does not point a reader at {needle}"
    inst = (REPO / "book" / "instructors.md").read_text()
    for name in NOTEBOOKS:
        assert name in inst, f"book/instructors.md does not list {name}"
    assert toc["root"] == "book/intro"


# ---- the reading rules of each notebook --------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_setup_hidden_cells_short_lines_fit(name):
    nb = _nb(name)
    p = parameters_cells(nb)[0]
    setup = nb.cells[p + 1]
    assert "hide-input" in setup.metadata.get("tags", []), "the set-up cell after the parameters is not hidden"
    for i, c in enumerate(nb.cells):
        if c.cell_type != "code":
            continue
        lines = c.source.rstrip("\n").splitlines()
        assert len(lines) <= MAX_CELL_LINES, f"cell {i + 1}: {len(lines)} lines (at most {MAX_CELL_LINES})"
        long = [ln for ln in lines if len(ln) > MAX_LINE]
        assert not long, f"cell {i + 1}: {len(long)} line(s) over {MAX_LINE} characters, e.g. {long[0][:60]}"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_headings_are_numbered_by_the_book_only(name):
    bad = re.findall(r"(?m)^#{1,6} +\d+(\.\d+)*\.? ", _markdown(_nb(name)))
    assert not bad, "a heading carries its own number; the book numbers sections"


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_closing_outputs_and_exercises(name):
    nb = _nb(name)
    heads = [(i, c.source.lstrip().splitlines()[0]) for i, c in enumerate(nb.cells)
             if c.cell_type == "markdown" and c.source.lstrip().startswith("## ")]
    titles = [h for _, h in heads]
    assert "## Outputs" in titles and titles[-1] == "## Exercises", f"closing sections: {titles[-3:]}"
    out_i = next(i for i, h in heads if h == "## Outputs")
    assert "{glue:" in nb.cells[out_i].source, "the Outputs section glues no number into its text"
    after = "\n".join(c.source for c in nb.cells[out_i:] if c.cell_type == "code")
    assert "lessons.glue_all(" in after and "lessons.show_outputs(" in after
    ex_i = next(i for i, h in heads if h == "## Exercises")
    rest = nb.cells[ex_i:]
    tasks = [c for c in rest if c.cell_type == "markdown" and "**Exercise" in c.source]
    assert 2 <= len(tasks) <= 3, f"{len(tasks)} exercises (two or three per chapter)"
    for t in tasks:
        assert ":class: dropdown" in t.source, "an exercise without a folded solution text"
    hidden = [c for c in rest if c.cell_type == "code" and "hide-input" in c.metadata.get("tags", [])]
    assert len(hidden) >= len(tasks), "each exercise needs a solution cell hidden in the book"
    assert all(c.metadata.get("jupyter", {}).get("source_hidden") for c in hidden), \
        "solution cells are also folded in JupyterLab (metadata jupyter.source_hidden)"
    checks = [c for c in rest if c.cell_type == "code" and "lessons.check" in c.source
              and "hide-input" not in c.metadata.get("tags", [])]
    assert len(checks) >= len(tasks), "each exercise needs a visible check cell"


def _book_sources() -> dict[str, str]:
    out = {f"notebooks/{n}": _markdown(_nb(n)) for n in NOTEBOOKS}
    for md in (REPO / "book").glob("*.md"):
        out[f"book/{md.stem}"] = md.read_text()
    return out


def test_every_labelled_equation_is_cited():
    src = _book_sources()
    labels = {lab: page for page, text in src.items() for lab in re.findall(r"(?m)^:label: *(\S+)", text)}
    assert labels, "no labelled equation found"
    cited = set(re.findall(r"\{eq\}`([^`]+)`", "\n".join(src.values())))
    missing = sorted(f"{lab} ({page})" for lab, page in labels.items() if lab not in cited)
    assert not missing, "labelled equations never cited with {eq}: " + ", ".join(missing)


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_shared_helpers_are_not_copied(name):
    code = "\n".join(c.source for c in _code_cells(_nb(name)))
    assert "def show_table" not in code and "|---" not in code, "hand-built markdown table: use lessons.show_table"
    assert "csv.DictReader" not in code, "read result folders with lessons.read_history / read_predictions"


# ---- rjcma.lessons ---------------------------------------------------------------------------------------------
def test_markdown_table_and_checks(capsys):
    t = lessons.markdown_table(["a", "b"], [[1, "x"], [2, "y"]])
    assert t.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]
    lessons.check_windows((8, 700), n=1000, K=300, stride=100)  # 0, 100, ..., 700 ends at 1000
    lessons.check_windows((9, 710), n=1010, K=300, stride=100)  # plus one aligned to the end
    assert "✓" in capsys.readouterr().out
    with pytest.raises(lessons.CheckFailed, match="expected"):
        lessons.check_windows((9, 700), n=1000, K=300, stride=100)
    with pytest.raises(lessons.CheckFailed, match="no answer yet"):
        lessons.check_value("x", None, 1)
    lessons.check_receptive_field(121, kernel=5, levels=4)
    with pytest.raises(lessons.CheckFailed):
        lessons.check_receptive_field(120, kernel=5, levels=4)
    lessons.check_levels_for(6, kernel=5, K=300)
    lessons.check_block_parameters(3 * 64 * 192 + 192 * 192 + 192 + 6 * 300 * 300, [64, 64, 64], 300)


def test_released_face_rows_drift():
    valid = np.array([False, False, True, True, False, True])
    rows = lessons.released_face_rows(valid)
    assert rows.tolist() == [-1, -1, 0, 1, -1, 2]
    lessons.check_face_drift(3, valid)
    with pytest.raises(lessons.CheckFailed):
        lessons.check_face_drift(0, valid)


def test_readers_name_the_missing_file(tmp_path):
    from rjcma.errors import RjcmaError

    with pytest.raises(RjcmaError, match="history.csv: missing"):
        lessons.read_history(tmp_path)
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    assert [r["epoch"] for r in lessons.read_history(tmp_path)] == ["1", "2"]
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "t.csv").write_text("frame,valence,arousal\n0,0.1,0.2\n1,0.3,\n")
    p = lessons.read_predictions(tmp_path, "t")
    assert p.shape == (2, 2) and p[0, 1] == pytest.approx(0.2) and np.isnan(p[1, 1])


def test_estimate_line_scales_with_cores(monkeypatch):
    monkeypatch.setattr(lessons, "usable_cpus", lambda: 4)
    line = lessons.estimate_line("the corpus", 60.0, "synthesize")
    assert "about 30 s here (4 cores)" in line


def test_paper_profile_does_not_invent_a_corpus(tmp_path):
    from rjcma.errors import RjcmaError

    cfg = load_config("paper").replace(corpus=str(tmp_path / "affwild2"))
    with pytest.raises(RjcmaError, match="corpus not found"):
        lessons.ensure_corpus(cfg)
