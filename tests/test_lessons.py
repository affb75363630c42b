"""The notebooks as lessons: one set of defaults (the demo profile's) taken once by ``common.setup``, the reading
rules of the book's chapters (hidden set-up, short cells, lines that fit the page, headings numbered once, cited
equations, a closing outputs section with glued numbers, exercises with folded solutions and a check; each check is
run in tests/test_exercises.py), what the training and inference chapters show, and the helpers of
``rjcma.lessons``. Static checks of the notebook sources plus small unit tests; nothing here executes a notebook.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import nbformat
import numpy as np
import pytest
import yaml

from rjcma.book.parameters import notebook_parameters, parameter_values, parameters_cells
from rjcma.book.paths import toc_entries, toc_notebooks
from rjcma.config import field_names, load_config
from rjcma.errors import RjcmaError
from rjcma.lessons import building, common, tcn, training, visual
from rjcma.lessons import data as data_lessons
from rjcma.models.attention import RecursiveJointCrossModalAttention
from test_exercises import exercises_of

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
MAX_CELL_LINES = 25  # a code cell a reader takes in at a glance
MAX_LINE = 86  # characters of a code line that fit the book's code cells at 1280 px without scrolling


def _nb(name: str):
    return nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code"]


def _markdown(nb) -> str:
    return "\n\n".join(c.source for c in nb.cells if c.cell_type == "markdown")


# ---- one set of defaults -----------------------------------------------------------------------------------------
def wrong_defaults(path: Path) -> dict:
    """Parameters whose default differs from the demo profile's value: {name: (notebook, profile)}."""
    params = notebook_parameters(path)
    demo = parameter_values(load_config("demo"), params, source=str(path))
    return {k: (v, demo[k]) for k, v in params.items() if v != demo[k]}


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameter_defaults_are_the_demo_profile(name):
    """A student who runs a notebook by hand sees what the book (papermill, demo profile) shows."""
    wrong = wrong_defaults(REPO / "notebooks" / f"{name}.ipynb")
    assert not wrong, "defaults that differ from the demo profile (notebook, profile): " + ", ".join(
        f"{k} = {a!r} vs {b!r}" for k, (a, b) in wrong.items())


def test_the_check_would_catch_a_wrong_default(tmp_path):
    nb = _nb("01_data")
    i = parameters_cells(nb)[0]
    src = nb.cells[i].source
    assert "stride = 150" in src
    nb.cells[i].source = src.replace("stride = 150", "stride = 200")
    path = tmp_path / "01_data.ipynb"
    nbformat.write(nb, path)
    assert wrong_defaults(path) == {"stride": (200, 150)}


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
    assert "common.glue_all(" in after and "common.show_outputs(" in after
    ex_i = next(i for i, h in heads if h == "## Exercises")
    tasks = [c for c in nb.cells[ex_i:] if c.cell_type == "markdown" and "**Exercise" in c.source]
    assert 2 <= len(tasks) <= 3, f"{len(tasks)} exercises (two or three per chapter)"
    for t in tasks:
        assert ":class: dropdown" in t.source, "an exercise without a folded solution text"
    assert len(exercises_of(name)) == len(tasks), "each exercise: an answer cell, a check, a folded solution"


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
    assert "def show_table" not in code and "|---" not in code, "hand-built markdown table: use common.show_table"
    assert "csv.DictReader" not in code, "read result folders with common.read_history / read_predictions"


# ---- the set-up: parameters taken once -----------------------------------------------------------------------
def _bound_by_imports(source: str) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(source.replace("%matplotlib inline", ""))):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
    return names


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_parameters_are_taken_once_by_the_setup(name):
    """No notebook rebuilds its parameters into a dict of its own: ``common.setup(globals())`` takes the values of
    the parameters cell, so no import before it may bind a config field's name."""
    nb = _nb(name)
    p = parameters_cells(nb)[0]
    code = [c.source for c in nb.cells[p + 1 :] if c.cell_type == "code"]
    assert not any(re.search(r"params\s*=\s*dict\(|params\.update\(", c) for c in code), "a parameters dict"
    at = next(i for i, c in enumerate(code) if "common.setup(globals()" in c)
    assert sum(c.count("common.setup(") for c in code) == 1
    clash = set().union(*(_bound_by_imports(c) for c in code[: at + 1])) & field_names()
    assert not clash, f"imports that bind config field names (setup would read them as parameters): {clash}"


def test_setup_reads_the_parameters_and_nothing_else():
    import types

    namespace = {"profile": "demo", "seq_len": 48, "stride": 12, "fold": 2, "folds": types.ModuleType("folds"),
                 "In": [""], "np": np, "_": None}
    cfg = common.setup(namespace)
    assert (cfg.K, cfg.data.stride, cfg.train.fold) == (48, 12, 2)
    assert cfg.book.folds == load_config("demo").book.folds, "a module named like a field is no parameter"
    assert common.setup(namespace, stride=6).data.stride == 6


# ---- what the training and inference chapters show -------------------------------------------------------------
def test_the_training_chapter_shows_the_loop_before_running_it():
    nb = _nb("07_training")
    code = [(i, c) for i, c in enumerate(nb.cells) if c.cell_type == "code"]
    shown = [(i, c) for i, c in code if "inspect.getsource(loop.fit)" in c.source]
    assert len(shown) == 1, "07_training shows rjcma.train.loop.fit once"
    i_shown, cell = shown[0]
    assert "hide-input" in cell.metadata.get("tags", []), "the listing's code cell is hidden, its output shown"
    first_run = min(i for i, c in code if "train_or_reuse(" in c.source)
    assert i_shown < first_run, "the loop is shown before the chapter runs it"


PUBLIC_FOR_INFERENCE = ("rjcma.lessons", "rjcma.figures", "rjcma.scoring", "rjcma.predict_outputs", "rjcma.bundle")


def test_the_inference_chapter_only_calls_the_package():
    """No training, no figure code and no internals in 12_inference: what it needs, the package offers."""
    nb = _nb("12_inference")
    for c in _code_cells(nb):
        tree = ast.parse(c.source.replace("%matplotlib inline", ""))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("rjcma"):
                assert node.module.startswith(PUBLIC_FOR_INFERENCE), f"12_inference imports {node.module}"
            assert not isinstance(node, (ast.FunctionDef, ast.ClassDef)), "12_inference defines code of its own"
        assert "train_one" not in c.source and "import matplotlib" not in c.source


# ---- rjcma.lessons ---------------------------------------------------------------------------------------------
def test_markdown_table_and_checks():
    t = common.markdown_table(["a", "b"], [[1, "x"], [2, "y"]])
    assert t.splitlines() == ["| a | b |", "|---|---|", "| 1 | x |", "| 2 | y |"]
    assert data_lessons.check_windows((8, 700), n=1000, K=300, stride=100)  # 0, 100, ..., 700 ends at 1000
    assert data_lessons.check_windows((9, 710), n=1010, K=300, stride=100)  # plus one aligned to the end
    wrong = data_lessons.check_windows((9, 700), n=1000, K=300, stride=100)
    assert not wrong and "expected (8, 700)" in repr(wrong)
    assert tcn.check_receptive_field(121, kernel=5, levels=4)
    assert not tcn.check_receptive_field(120, kernel=5, levels=4)
    assert tcn.check_levels_for(6, kernel=5, K=300) and not tcn.check_levels_for(5, kernel=5, K=300)


def test_block_parameters_are_what_a_recursion_adds_to_the_module():
    """The check's formula against the parameters counted on the module (l = 2 minus l = 1)."""
    dims, K = [4, 6, 5], 12

    def count(l: int) -> int:  # noqa: E741
        return sum(p.numel() for p in RecursiveJointCrossModalAttention(dims, K, l).parameters())

    added = count(2) - count(1)
    assert training.check_block_parameters(added, dims, K)
    assert not training.check_block_parameters(added - 1, dims, K)


def test_released_face_rows_drift():
    valid = np.array([False, False, True, True, False, True])
    rows = visual.released_face_rows(valid)
    assert rows.tolist() == [-1, -1, 0, 1, -1, 2]
    assert visual.check_face_drift(3, valid) and not visual.check_face_drift(0, valid)


def test_readers_name_the_missing_file(tmp_path):
    with pytest.raises(RjcmaError, match="history.csv: missing"):
        common.read_history(tmp_path)
    (tmp_path / "history.csv").write_text("epoch,loss\n1,0.5\n2,0.4\n")
    assert [r["epoch"] for r in common.read_history(tmp_path)] == ["1", "2"]
    (tmp_path / "predictions").mkdir()
    (tmp_path / "predictions" / "t.csv").write_text("frame,valence,arousal\n0,0.1,0.2\n1,0.3,\n")
    p = common.read_predictions(tmp_path, "t")
    assert p.shape == (2, 2) and p[0, 1] == pytest.approx(0.2) and np.isnan(p[1, 1])


def test_estimate_line_scales_with_cores(monkeypatch):
    monkeypatch.setattr(building, "usable_cpus", lambda: 4)
    line = building.estimate_line("the corpus", 60.0, "synthesize")
    assert "about 30 s here (4 cores)" in line


def test_paper_profile_does_not_invent_a_corpus(tmp_path):
    cfg = load_config("paper").replace(corpus=str(tmp_path / "affwild2"))
    with pytest.raises(RjcmaError, match="corpus not found"):
        building.ensure_corpus(cfg)
    assert not (tmp_path / "affwild2").exists()


def test_the_face_strip_shows_both_sides_of_the_first_gap():
    from rjcma.lessons.visual import first_gap_rows

    mask = np.ones(600, bool)
    mask[492:512] = False  # a 20-row gap, as in the demo's first validation trial
    mask[530:540] = False
    assert first_gap_rows(mask) == (487, 30)  # rows 487-516: 5 with a face, the gap, 5 with a face
    assert first_gap_rows(mask, most=24) == (487, 24)
    assert first_gap_rows(np.ones(10, bool)) == (0, 10)
    end_gap = np.ones(20, bool)
    end_gap[17:] = False
    assert first_gap_rows(end_gap) == (12, 8)
