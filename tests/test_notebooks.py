"""Notebook hygiene, the runner, and the book built from notebooks executed with tiny parameters."""

from __future__ import annotations

import ast
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest
import yaml

from _book_build import REPO, built_book
from rjcma.book.execute import NotebookRun, expected_seconds, run_all_notebooks, run_notebooks, run_one
from rjcma.book.facts import NOTEBOOK_SECONDS
from rjcma.book.parameters import merge_injected, notebook_parameters, parameter_values, parameters_cells
from rjcma.book.paths import BookPaths, toc_entries, toc_notebooks
from rjcma.config import field_names, load_config
from rjcma.errors import RjcmaError

NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))
TOC_NOTEBOOKS = toc_notebooks(REPO)
EXPECTED = [
    "01_data", "02_visual", "03_audio", "04_text", "05_encoders", "06a_tcn", "06b_equations", "06c_gating",
    "07_training", "08_cross_validation", "09_ablation", "10_comparison", "11_results", "12_inference", "13_paper_vs_code",
]


# ---- the table of contents ---------------------------------------------------------------------------------------
def test_toc_lists_every_stage_in_numbered_parts():
    toc = yaml.safe_load((REPO / "_toc.yml").read_text())
    assert toc["format"] == "jb-book" and toc["root"] == "book/intro"
    captions = [p["caption"] for p in toc["parts"]]
    assert captions == [
        "Introduction", "Data", "Preprocessing", "Model", "Training and results", "Inference on your own video",
        "Reproducing on Aff-Wild2", "Paper vs released code", "References",
    ]
    assert all(p.get("numbered") for p in toc["parts"][:-1])
    assert sorted(TOC_NOTEBOOKS) == EXPECTED
    for entry in toc_entries(REPO):
        if not entry.startswith("notebooks/"):
            assert (REPO / f"{entry}.md").is_file(), f"_toc.yml lists {entry} but {entry}.md is missing"


@pytest.mark.parametrize("name", EXPECTED)
def test_listed_notebook_exists(name):
    assert (REPO / "notebooks" / f"{name}.ipynb").is_file(), f"notebooks/{name}.ipynb is listed in _toc.yml"


def test_no_notebook_outside_the_toc():
    assert set(NOTEBOOKS) <= set(TOC_NOTEBOOKS), f"not in _toc.yml: {set(NOTEBOOKS) - set(TOC_NOTEBOOKS)}"


def test_config_is_offline_and_never_executes():
    conf = yaml.safe_load((REPO / "_config.yml").read_text())
    assert conf["execute"]["execute_notebooks"] == "off"
    sphinx = conf["sphinx"]["config"]
    assert sphinx["mathjax_path"] == "mathjax/tex-chtml.js"
    assert sphinx["nb_ipywidgets_js"] == {}
    assert conf["launch_buttons"]["thebe"] is False
    assert not any(conf["launch_buttons"].get(k) for k in ("binderhub_url", "jupyterhub_url", "colab_url"))
    assert "http" not in json.dumps(sphinx)
    assert conf["bibtex_bibfiles"] == ["book/references.bib"]


# ---- hygiene of each source --------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_hygiene(name):
    path = REPO / "notebooks" / f"{name}.ipynb"
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.get("kernelspec", {}).get("name") == "python3", "kernelspec python3 missing"
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {i + 1} has outputs (run nbstripout)"
            assert cell.execution_count is None, f"cell {i + 1} has an execution count (run nbstripout)"
    first = nb.cells[0]
    assert first.cell_type == "markdown" and first.source.lstrip().startswith("# "), "first cell: a '# title'"
    idx = parameters_cells(nb)
    assert len(idx) == 1, f"{len(idx)} cells tagged 'parameters' (need exactly one)"
    params = notebook_parameters(path)  # literals only, or RjcmaError
    assert params, "the parameters cell assigns nothing"
    unknown = set(params) - field_names()
    assert not unknown, f"parameters that are not config fields: {sorted(unknown)}"
    # the derive cell follows the parameters cell
    assert idx[0] + 1 < len(nb.cells) and nb.cells[idx[0] + 1].cell_type == "code"
    # every parameter receives a value of the right kind from the demo profile
    demo = parameter_values(load_config("demo"), params)
    for k, v in params.items():
        assert isinstance(demo[k], type(v)) or (isinstance(v, (int, float)) and isinstance(demo[k], (int, float))), (
            f"parameter {k} = {v!r} but the config gives {demo[k]!r}"
        )


@pytest.mark.skipif(shutil.which("nbstripout") is None and not (Path(sys.executable).parent / "nbstripout").exists(),
                    reason="nbstripout not installed")
def test_nbstripout_verify():
    exe = Path(sys.executable).parent / "nbstripout"
    exe = str(exe) if exe.exists() else "nbstripout"
    paths = [str(REPO / "notebooks" / f"{n}.ipynb") for n in NOTEBOOKS]
    proc = subprocess.run([exe, "--verify", *paths], capture_output=True, text=True)
    assert proc.returncode == 0, f"nbstripout would change: {proc.stdout}{proc.stderr}"


# ---- the parameter rules (unit) ----------------------------------------------------------------------------------
def _write_nb(path: Path, params_src: str, body: str = "x = 1", tag: bool = True) -> Path:
    from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

    p = new_code_cell(params_src)
    if tag:
        p.metadata["tags"] = ["parameters"]
    nb = new_notebook(cells=[new_markdown_cell("# t"), p, new_code_cell(body)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)
    return path


def test_parameters_must_be_literals_and_config_fields(tmp_path):
    ok = _write_nb(tmp_path / "ok.ipynb", "seq_len = 300  # K\nprofile: str = 'demo'\n")
    assert notebook_parameters(ok) == {"seq_len": 300, "profile": "demo"}
    bad = _write_nb(tmp_path / "bad.ipynb", "seq_len = 3 * 100\n")
    with pytest.raises(RjcmaError, match=r"bad.ipynb: parameters cell line 1: `seq_len` must be a literal"):
        notebook_parameters(bad)
    none = _write_nb(tmp_path / "none.ipynb", "seq_len = 1", tag=False)
    with pytest.raises(RjcmaError, match="exactly one cell tagged 'parameters'"):
        notebook_parameters(none)
    with pytest.raises(RjcmaError, match="'window' is not a config field"):
        parameter_values(load_config("demo"), ["window"])
    vals = parameter_values(load_config("paper").replace(seq_len=400), ["seq_len", "profile", "tcn_audio"])
    assert vals == {"seq_len": 400, "profile": "paper", "tcn_audio": [256, 256, 256, 256]}


@pytest.mark.slow
def test_runner_names_notebook_and_cell_on_failure(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: notebooks/01_x\n- file: notebooks/02_y\n")
    _write_nb(root / "notebooks" / "01_x.ipynb", "seq_len = 1\n", body="print('K =', seq_len)\nraise ValueError('boom')")
    _write_nb(root / "notebooks" / "02_y.ipynb", "seq_len = 1\n")
    paths = BookPaths.default(root=root)
    with pytest.raises(RjcmaError) as e:
        run_notebooks(load_config("demo").replace(seq_len=7, stride=3), paths, echo=False)
    msg = str(e.value)
    assert "01_x.ipynb" in msg and "cell 3 of the source" in msg and "ValueError: boom" in msg
    executed = nbformat.read(paths.executed / "notebooks" / "01_x.ipynb", as_version=4)
    assert any("K = 7" in o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.outputs)
    assert not (paths.executed / "notebooks" / "02_y.ipynb").exists(), "the runner must stop at the first failure"


def test_side_by_side_runs_start_longest_first_and_report_in_toc_order(tmp_path):
    import threading

    names = ["01_a", "02_b", "03_c", "04_d", "05_e"]
    seconds = {"01_a": 1, "02_b": 2, "04_d": 9, "05_e": 5}  # 03_c: never ran, 0
    started, lock, both = [], threading.Lock(), threading.Barrier(2, timeout=30)

    def run_one(i, name):
        with lock:
            started.append((i, name))
            first_two = len(started) <= 2
        if first_two:  # the first two runs are side by side: neither worker takes a third before both started
            both.wait()
        return NotebookRun(name=name, output=tmp_path / name, ok=True)

    runs = run_all_notebooks(names, run_one, jobs=2, stop_on_error=True, echo=False, seconds=seconds)
    assert [r.name for r in runs] == names, "the timing table lists the notebooks in the toc's order"
    assert [n for _, n in started][:2] == ["04_d", "05_e"], started  # the two longest start first
    assert dict((n, i) for i, n in started) == {n: k for k, n in enumerate(names, 1)}, "numbered by toc position"
    # the expected durations: the last executed copy's papermill duration, else the demo figure, else 0
    paths = BookPaths.default(root=tmp_path, build=tmp_path / "_build")
    assert expected_seconds(paths, "12_inference") == NOTEBOOK_SECONDS["12_inference"]
    assert expected_seconds(paths, "99_new") == 0.0
    nb = nbformat.v4.new_notebook(metadata={"papermill": {"duration": 3.5}})
    (paths.executed / "notebooks").mkdir(parents=True)
    nbformat.write(nb, paths.executed / "notebooks" / "12_inference.ipynb")
    assert expected_seconds(paths, "12_inference") == 3.5
    assert set(NOTEBOOK_SECONDS) == set(EXPECTED), "NOTEBOOK_SECONDS names every notebook of the book"


# ---- every notebook with tiny parameters, and the book -----------------------------------------------------------
@pytest.fixture(scope="session")
def book(tiny_cfg, tiny_store):
    return built_book(tiny_cfg, tiny_store)


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_notebook_runs_with_tiny_parameters(book, name):
    run = book.runs.get(name)
    assert run is not None, f"notebooks/{name}.ipynb was not run (missing source)"
    assert run.ok, run.error
    nb = nbformat.read(run.output, as_version=4)
    # one parameters cell on the page, holding the values the notebook ran with (papermill's cell merged into it)
    assert not [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])]
    own = parameters_cells(nb)
    assert len(own) == 1
    tree = ast.parse(nb.cells[own[0]].source)
    assigned = {s.targets[0].id: ast.literal_eval(s.value) for s in tree.body if isinstance(s, ast.Assign)}
    assert assigned == run.parameters
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.outputs if o.output_type == "error"]
    # the exercises as the page shows them: every check says what it expects, every folded solution passes
    shown = {"check": [], "solution": []}
    for c in nb.cells:
        if c.cell_type == "code" and c.source.startswith("chapter.check_"):
            shown["check"].append(_shown_text(c))
        elif c.cell_type == "code" and "hide-cell" in c.metadata.get("tags", []) and "chapter.check_" in c.source:
            shown["solution"].append(_shown_text(c))
    assert len(shown["check"]) == len(shown["solution"]) >= 2, shown
    assert all(t.startswith("✗") and "no answer yet" in t for t in shown["check"]), shown["check"]
    assert all(t.startswith("✓") for t in shown["solution"]), shown["solution"]


def _shown_text(cell) -> str:
    """What a cell's last expression showed (text/plain of its execute_result)."""
    results = [o for o in cell.outputs if o.output_type == "execute_result"]
    return results[-1]["data"]["text/plain"] if results else ""


@pytest.mark.slow
def test_book_builds_without_warnings(book):
    assert not book.build_error, book.build_error
    html = book.paths.html
    for entry in toc_entries(REPO):
        page = html / f"{entry}.html" if entry != "book/intro" else html / "book" / "intro.html"
        assert page.is_file(), f"{page} not built"
    assert (html / "_static" / "mathjax" / "tex-chtml.js").is_file()


@pytest.mark.slow
def test_built_pages_reference_no_external_resource(book):
    assert not book.build_error, book.build_error
    bad = []
    for page in book.paths.html.rglob("*.html"):
        text = page.read_text(errors="replace")
        for m in re.finditer(r"<(script|link|img|iframe|source)\b[^>]*?\b(src|href)=\"(https?:)?//[^\"]+\"", text):
            tag = m.group(0)
            if m.group(1) == "link" and re.search(r"rel=\"(canonical|author|license)\"", tag):
                continue
            bad.append(f"{page.relative_to(book.paths.html)}: {tag[:160]}")
    assert not bad, "external resources:\n" + "\n".join(bad[:20])
    # every executed page shows its parameters once: the notebook's cell with the values it ran with
    for name in TOC_NOTEBOOKS:
        page = book.paths.html / "notebooks" / f"{name}.html"
        if page.exists() and name in book.runs and book.runs[name].ok:
            text = re.sub(r"<[^>]+>", "", page.read_text())
            assert text.count("# parameters") == 1 and "# Parameters" not in text, name


@pytest.mark.slow
def test_book_time_budget(book):
    total = book.seconds_train + book.seconds_notebooks + book.seconds_build
    print(f"tiny training {book.seconds_train:.1f} s + notebooks {book.seconds_notebooks:.1f} s + build {book.seconds_build:.1f} s")
    for r in book.runs.values():
        print(f"  {r.name:<22} {r.seconds:6.1f} s {'ok' if r.ok else 'FAILED'}")
    assert total < 600


# ---- the results tables (11_results) -----------------------------------------------------------------------------
def _fake_run(root: Path, kind: str, name: str, fold: int, fusion: str, l: int, v: float, a: float, mods=None):
    d = root / "demo" / kind / name
    d.mkdir(parents=True)
    mods = mods or ["audio", "visual", "text"]
    metrics = {
        "profile": "demo", "fold": fold, "fusion": fusion, "num_iterations": l, "modalities": mods,
        "mode": "cached", "targets": ["valence", "arousal"],
        "metrics": {"valence": {"ccc": v}, "arousal": {"ccc": a}, "mean_ccc": (v + a) / 2},
        "environment": {"git": "abc1234", "device": "cpu"},
    }
    (d / "metrics.json").write_text(json.dumps(metrics))
    (d / "config.yaml").write_text(yaml.safe_dump({"data": {"corpus": "data/demo_corpus"}}))


def test_results_tables_come_from_result_folders(tmp_path):
    from rjcma import paper_numbers
    from rjcma import results_tables as rt

    assert rt.find_runs(tmp_path, "demo") == []
    empty = rt.table1([])
    assert empty.values["valence"] is None and "—" in empty.markdown()
    _fake_run(tmp_path, "cv", "r0", 0, "rjcma", 3, 0.40, 0.60)
    _fake_run(tmp_path, "cv", "r0b", 0, "rjcma", 3, 0.50, 0.70)  # a second seed: averaged
    _fake_run(tmp_path, "cv", "r1", 1, "rjcma", 3, 0.30, 0.20)
    _fake_run(tmp_path, "ablate", "l1", 1, "rjcma", 1, 0.10, 0.30)
    _fake_run(tmp_path, "compare", "jca", 0, "jca", 1, 0.20, 0.40, mods=["audio", "visual"])
    runs = rt.find_runs(tmp_path, "demo")
    assert len(runs) == 5
    t1 = rt.table1(runs)
    assert t1.rows[0][:5] == ["Fold 0 (official)", "0.450", "0.650", "0.550", 2]
    assert t1.rows[0][5:] == [f"{paper_numbers.TABLE1_FOLDS[0][k]:.3f}" for k in ("valence", "arousal", "mean")]
    assert t1.values["valence"] == pytest.approx((0.45 + 0.30) / 2)
    line = rt.provenance(t1.runs)
    assert "profile **demo**" in line and "data/demo_corpus" in line and "abc1234" in line and "3 run(s)" in line
    assert len(rt.table4().rows) == len(paper_numbers.TABLE4_TEST)


def test_results_tables_follow_the_experiment_summaries(tmp_path):
    from rjcma import results_tables as rt

    _fake_run(tmp_path, "cv", "rjcma_f0", 0, "rjcma", 3, 0.40, 0.60)
    _fake_run(tmp_path, "cv", "stale_f0", 0, "rjcma", 3, 0.99, 0.99)  # not in the summary: an older config
    _fake_run(tmp_path, "compare", "jca", 0, "jca", 1, 0.20, 0.40, mods=["audio", "visual"])
    cv_dir, cmp_dir = tmp_path / "demo" / "cv", tmp_path / "demo" / "compare"
    (cv_dir / "summary.json").write_text(json.dumps({"rows": [{"fold": 0, "runs": str(cv_dir / "rjcma_f0")}]}))
    (cmp_dir / "summary.json").write_text(json.dumps({"rows": [
        {"fusion": "jca", "runs": str(cmp_dir / "jca")},
        {"fusion": "rjcma", "runs": str(cv_dir / "rjcma_f0")},  # reused from the cross-validation
    ]}))
    runs = rt.find_runs(tmp_path, "demo")
    assert sorted((r.kind, r.name) for r in runs) == [("compare", "jca"), ("compare", "rjcma_f0"), ("cv", "rjcma_f0")]
    assert rt.table1(runs).rows[0][1] == "0.400"


def test_papermills_values_are_written_into_the_one_parameters_cell(tmp_path):
    from nbformat.v4 import new_code_cell

    nb = nbformat.read(_write_nb(tmp_path / "p.ipynb", 'seq_len = 300  # K\ncorpus = "data/x"  # where\n'),
                       as_version=4)
    injected = new_code_cell('# Parameters\nseq_len = 32\ncorpus = "_build/t/corpus"\nstride = 16\n')
    injected.metadata["tags"] = ["injected-parameters"]
    nb.cells.insert(2, injected)
    assert merge_injected(nb)
    assert [c for c in nb.cells if "injected-parameters" in c.metadata.get("tags", [])] == []
    assert nb.cells[1].source == 'seq_len = 32  # K\ncorpus = "_build/t/corpus"  # where\nstride = 16'
    assert not merge_injected(nb), "nothing to merge the second time"


def test_jupyter_book_on_the_repository_stops_before_writing(tmp_path):
    """`jupyter-book build .` on notebooks without outputs: the guard names them and says to run `make book`."""
    from sphinx.errors import ConfigError

    from rjcma.book.guard import refuse_unexecuted, unexecuted_notebooks

    assert unexecuted_notebooks(REPO) == [f"notebooks/{n}.ipynb" for n in TOC_NOTEBOOKS]

    class App:
        srcdir = REPO

    with pytest.raises(ConfigError, match=r"make book.*Nothing was written"):
        refuse_unexecuted(App(), None)
    conf = yaml.safe_load((REPO / "_config.yml").read_text())
    assert "rjcma.book.guard" in conf["sphinx"]["config"]["extensions"]


def test_inline_math_keeps_the_punctuation_touching_it():
    """The book's extension puts an inline equation and the punctuation that touches it in one ``nowrap`` node (the
    browser test checks the built pages); spaced text and display math are left alone."""
    from docutils import nodes

    from rjcma.book.nowrap import bind_math_punctuation

    para = nodes.paragraph("", "", nodes.Text("at each step "), nodes.math("", "t"), nodes.Text(", weighs them ("),
                           nodes.math("", r"d \times K"), nodes.Text("), then "), nodes.math("", "x"),
                           nodes.Text(" and more"))
    doc = nodes.document(None, None)
    doc += para
    doc += nodes.math_block("", "y = x,")
    assert bind_math_punctuation(doc) == 2
    assert para.astext() == r"at each step t, weighs them (d \times K), then x and more"  # the text is unchanged
    boxes = [c for c in para.children if isinstance(c, nodes.inline)]
    assert [b.astext() for b in boxes] == ["t,", r"(d \times K),"] and all(b["classes"] == ["nowrap"] for b in boxes)
    assert bind_math_punctuation(doc) == 0  # applied twice, nothing more is wrapped
    # the text beside the math equals an earlier text of the paragraph: the one beside the math is split
    para2 = nodes.paragraph("", "", nodes.strong("", "bold"), nodes.Text(", "), nodes.math("", "a"),
                            nodes.Text(", "), nodes.math("", "b"))
    doc += para2
    assert bind_math_punctuation(doc) == 1
    assert para2.astext() == "bold, a, b"
    assert [c.astext() for c in para2.children] == ["bold", ", ", "a,", " ", "b"]
    conf = yaml.safe_load((REPO / "_config.yml").read_text())
    assert "rjcma.book.nowrap" in conf["sphinx"]["config"]["extensions"]
    assert "span.nowrap" in (REPO / "_static" / "rjcma.css").read_text()


@pytest.mark.slow
def test_jupyter_book_build_dot_leaves_the_book_alone(tmp_path):
    """The command a Jupyter Book user types, on a copy of the repository with a book already built: it fails
    with the guard's message and `_build/html` keeps its bytes."""
    exe = Path(sys.executable).parent / "jupyter-book"
    if not exe.exists():
        pytest.skip("jupyter-book not installed")
    copy = tmp_path / "repo"
    copy.mkdir()
    for part in ("_config.yml", "_toc.yml", "book", "notebooks", "_static"):
        src = REPO / part
        (shutil.copytree if src.is_dir() else shutil.copy2)(src, copy / part)
    (copy / "_build" / "html").mkdir(parents=True)
    (copy / "_build" / "html" / "index.html").write_text("the good book")
    env = dict(__import__("os").environ, PYTHONPATH=str(REPO / "rjcma_src"))
    proc = subprocess.run([str(exe), "build", "."], cwd=copy, capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode != 0
    assert "make book" in proc.stdout + proc.stderr
    assert (copy / "_build" / "html" / "index.html").read_text() == "the good book"
    assert sorted(p.name for p in (copy / "_build" / "html").iterdir()) == ["index.html"]


# ---- what the pages offer a reader -------------------------------------------------------------------------------
SUGGESTION = re.compile(r"^(\w+)\s*=.*#.*\btry (\"[^\"]*\"|[\w.+-]+)")


def suggested_overrides() -> list[tuple[str, str, object]]:
    """(notebook, parameter, value) for every `try VALUE` a parameters cell suggests to a reader."""
    out = []
    for name in EXPECTED:
        nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
        for line in nb.cells[parameters_cells(nb)[0]].source.splitlines():
            m = SUGGESTION.match(line)
            if m:
                out.append((name, m.group(1), ast.literal_eval(m.group(2))))
    return out


def test_the_notebooks_suggest_overrides():
    found = suggested_overrides()
    assert ("01_data", "fold_scheme", "released") in found and len(found) >= 4, found


@pytest.mark.slow
@pytest.mark.parametrize("name,parameter,value", suggested_overrides())
def test_every_suggested_override_runs(book, tmp_path, name, parameter, value):
    """Each `try VALUE` of a parameters cell, run under papermill with the tiny book's other values."""
    import contextlib

    from rjcma.book.execute import ensure_kernel, kernel_environment
    from rjcma.config import Config

    cfg = book.cfg.replace(**{parameter: value})
    assert isinstance(cfg, Config)
    paths = BookPaths.default(root=REPO, build=tmp_path)
    ensure_kernel()
    with kernel_environment(), contextlib.chdir(REPO):
        run = run_one(cfg, paths, name)
    assert run.ok, run.error
    assert run.parameters[parameter] == value


@pytest.mark.slow
@pytest.mark.parametrize("name", EXPECTED)
def test_every_figure_is_drawn(book, name):
    """A cell that draws a figure (its last line calls `figures.`, or it displays one) shows a PNG with something
    in it, and no cell prints a bare `<Figure ...>` instead of the picture."""
    import io

    import numpy as np
    from PIL import Image

    run = book.runs.get(name)
    assert run is not None and run.ok, run.error if run else name
    nb = nbformat.read(run.output, as_version=4)
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "code":
            continue
        # a figure's text/plain ("<Figure size ...>") is only the fallback of its PNG; shown alone, it is the bug
        bare = [o.get("text", "") if o.output_type == "stream" else o.get("data", {}).get("text/plain", "")
                for o in cell.outputs if o.output_type == "stream" or "image/png" not in o.get("data", {})]
        assert not any(re.search(r"<Figure size [^>]* with \d+ Axes>", str(t)) for t in bare), f"cell {i}: {bare}"
        lines = [ln for ln in cell.source.splitlines() if ln.strip() and not ln.startswith((" ", ")"))]
        draws = bool(lines) and lines[-1].startswith("figures.") or "display(figures." in cell.source
        pngs = [o["data"]["image/png"] for o in cell.outputs if "image/png" in o.get("data", {})]
        if draws:
            assert pngs, f"{name} cell {i} draws a figure but shows none:\n{cell.source[:200]}"
        for png in pngs:
            pixels = np.asarray(Image.open(io.BytesIO(__import__("base64").b64decode(png))).convert("L"), float)
            assert pixels.std() > 5 and min(pixels.shape) > 100, f"{name} cell {i}: an empty or tiny figure"
