"""Every exercise of every notebook, as a student meets it: the cells are read from the notebook and run on small
made-up inputs (the notebooks' own data are not needed to judge a check). For each exercise:

* its check, run on the answer cell as it stands (``exN = None``), fails;
* the same check fails on a wrong answer;
* the folded solution passes its own check, and its value passes the visible check;
* the solution writes into its own variable (``solutionN``), never into the student's ``exN``.
"""

from __future__ import annotations

import ast
import json
import math
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import nbformat
import numpy as np
import pandas as pd
import pytest
import torch

from rjcma import paper_numbers, reference
from rjcma import results_tables as rt
from rjcma.config import load_config
from rjcma.data import abaw, annotations
from rjcma.data.words import Word
from rjcma.lessons import audio, checks, common, encoders, equations, inference, paper_vs_code, results, tcn, text
from rjcma.lessons import data as data_lessons
from rjcma.lessons import gating, training, visual
from rjcma.metrics import ccc
from rjcma.models.attention import RecursiveJointCrossModalAttention
from rjcma.models.gating import Gate
from rjcma.models.tcn import receptive_field
from rjcma.preprocess import speech
from rjcma.preprocess.decode import iter_video
from rjcma.train.results import config_hash, run_id

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted(p.stem for p in (REPO / "notebooks").glob("*.ipynb"))


@dataclass
class Exercise:
    answer: str  # the student's variable, exN
    solution_name: str  # the solution's variable, solutionN
    student: str
    check: str
    solution: str


def _last_expression(source: str) -> ast.expr:
    tree = ast.parse(source)
    assert tree.body and isinstance(tree.body[-1], ast.Expr), f"does not end with an expression:\n{source}"
    return tree.body[-1].value


def exercises_of(name: str) -> list[Exercise]:
    """The (answer, check, solution) cells after each exercise's text, with the structure every one must have."""
    nb = nbformat.read(REPO / "notebooks" / f"{name}.ipynb", as_version=4)
    texts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and "**Exercise" in c.source]
    out = []
    for n, i in enumerate(texts, 1):
        student, check, solution = nb.cells[i + 1 : i + 4]
        assert all(c.cell_type == "code" for c in (student, check, solution)), f"{name}: exercise {n}"
        last = ast.parse(student.source).body[-1]
        assert isinstance(last, ast.Assign) and isinstance(last.value, ast.Constant) and last.value.value is None, \
            f"{name}: exercise {n}'s answer cell does not end with `ex{n} = None`"
        answer = last.targets[0].id
        assert answer == f"ex{n}"
        call = _last_expression(check.source)
        assert len(ast.parse(check.source).body) == 1 and isinstance(call, ast.Call), f"{name}: one check call"
        assert isinstance(call.args[0], ast.Name) and call.args[0].id == answer, f"{name}: the check reads {answer}"
        assert "hide-cell" in solution.metadata.get("tags", []), f"{name}: exercise {n}'s solution is not folded"
        assert solution.metadata.get("jupyter", {}).get("source_hidden"), f"{name}: not folded in JupyterLab"
        stores = {node.id for node in ast.walk(ast.parse(solution.source))
                  if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store)}
        assert answer not in stores, f"{name}: exercise {n}'s solution writes into the student's {answer}"
        assert f"solution{n}" in stores, f"{name}: exercise {n}'s solution does not define solution{n}"
        out.append(Exercise(answer, f"solution{n}", student.source, check.source, solution.source))
    return out


def run_cell(source: str, ns: dict):
    """Run a cell's statements in ``ns``; the value of its last expression (what a notebook would show)."""
    tree = ast.parse(source)
    last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
    exec(compile(tree, "<cell>", "exec"), ns)  # noqa: S102 - the notebook's own cell
    return None if last is None else eval(compile(ast.Expression(last.value), "<cell>", "eval"), ns)  # noqa: S307


def wrong(value):
    """An answer that differs from ``value`` by more than any check's tolerance."""
    if isinstance(value, (bool, np.bool_)):
        return not value
    if isinstance(value, (int, np.integer)):
        return int(value) + 1
    if isinstance(value, (float, np.floating)):
        return float(value) + 0.5
    if isinstance(value, (tuple, list)):
        return type(value)([wrong(value[0]), *value[1:]])
    if isinstance(value, str):
        return value + "?"
    raise TypeError(f"no wrong answer for {value!r}")


# ---- small inputs, per notebook ---------------------------------------------------------------------------------
RNG = np.random.default_rng(0)


def _labels(n: int = 60) -> np.ndarray:
    y = RNG.uniform(-0.8, 0.8, size=(n, 2))
    y[5:12, 0] = np.nan
    return y


def _corpus(tmp: Path):
    trials = []
    for k, body in enumerate(("0.1,0.2\n-5,-5\n0.3,0.1\n", "-5,0.2\n0.4,0.4\n0.2,0.1\n0.0,0.0\n")):
        path = tmp / f"v{k}.txt"
        path.write_text("valence,arousal\n" + body)
        trials.append(SimpleNamespace(annotation=path))
    return SimpleNamespace(partition=lambda p: trials if p == "validation" else [])


def _fake_training(results: Path):
    """``train_or_reuse`` that writes a complete result folder where the package looks for one."""
    def train_or_reuse(cfg, kind, progress=True):
        run_dir = Path(cfg.train.results_dir) / cfg.profile / kind / run_id(cfg)
        run_dir.mkdir(parents=True)
        m = {"config_hash": config_hash(cfg), "metrics": {"valence": {"ccc": 0.31}, "arousal": {"ccc": 0.52}}}
        (run_dir / "metrics.json").write_text(json.dumps(m))
        return m, run_dir
    return train_or_reuse


def _video(path: Path, seconds: float = 4.0, fps: int = 25) -> Path:
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("libx264", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 64, 48, "yuv420p"
        for i in range(int(seconds * fps)):
            for p in vs.encode(av.VideoFrame.from_ndarray(np.full((48, 64, 3), 3 * i % 255, np.uint8), "rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
    return path


def _fake_predict(clip, bundle=None):
    n = sum(1 for _ in iter_video(clip))
    return SimpleNamespace(times=np.arange(n) / 25.0, preds=[np.zeros((n, 2))], warnings=[])


def _fake_rjcma_predict(clip, bundle=None):
    """What ``rjcma.predict`` returns (one row per frame and person, the JSON in ``attrs``), from the fake scorer."""
    res = _fake_predict(clip, bundle)
    df = pd.DataFrame({"frame": np.arange(len(res.times)), "time_s": res.times})
    df.attrs.update(frames=len(res.times), persons=len(res.preds), warnings=res.warnings)
    return df


def _comparison(tmp: Path) -> Path:
    """A results folder whose comparison summary ranks three fusions (what 11_results reads for its exercise 2)."""
    rows = [{"fusion": "jca", "mean": 0.3}, {"fusion": "rjcma-released", "mean": 0.45}, {"fusion": "rjcma", "mean": 0.5}]
    (tmp / "demo" / "compare").mkdir(parents=True)
    (tmp / "demo" / "compare" / "summary.json").write_text(json.dumps({"rows": rows}))
    return tmp / "demo"


def namespace(name: str, tmp: Path, monkeypatch) -> dict:
    cfg = load_config("demo").replace(results_dir=str(tmp / "results"), seq_len=16, stride=8)
    base = {"np": np, "common": common, "cfg": cfg}
    if name == "01_data":
        return {**base, "chapter": data_lessons, "abaw": abaw, "annotations": annotations, "K": 32, "S": 16, "dataset": _corpus(tmp)}
    if name == "02_visual":
        return {**base, "chapter": visual, "valid": np.array([0, 1, 1, 0, 1, 1], bool),
                "faces": RNG.integers(0, 256, (6, 4, 4, 3), dtype=np.uint8)}
    if name == "03_audio":
        return {**base, "chapter": audio, "fps": 30.0}
    if name == "04_text":
        words = [Word(0.1, 0.3, "note", punctuated="note:"), Word(0.4, 0.6, "go", punctuated="go!"),
                 Word(0.7, 0.9, "wait", punctuated="wait -")]
        return {**base, "chapter": text, "speech": speech, "words": words}
    if name == "05_encoders":
        part = np.r_[np.zeros(40, bool), np.ones(20, bool)]
        return {**base, "chapter": encoders, "feats": {"v": RNG.normal(size=(60, 5))}, "keys": {"visual": "v"},
                "labels": _labels(), "tr": ~part, "va": part, "probe": {}}
    if name == "06a_tcn":
        return {**base, "chapter": tcn, "receptive_field": receptive_field, "k": 5, "K": 300}
    if name == "06b_equations":
        dims_ref = [3, 4, 2]
        xs_ref = [x.double() for x in equations.correlated_inputs(6, dims_ref, 0)]
        block_ref = RecursiveJointCrossModalAttention(dims_ref, 6, 2, False).double().block_at(1)
        return {**base, "chapter": equations, "xs_ref": xs_ref, "dims_ref": dims_ref, "block_ref": block_ref,
                "params_ref": reference.params_of(block_ref), "dims": [4, 3, 2], "K": 8, "l": 2,
                "RecursiveJointCrossModalAttention": RecursiveJointCrossModalAttention}
    if name == "06c_gating":
        torch.manual_seed(0)
        rng = np.random.default_rng(6)
        w = rng.dirichlet([0.3, 0.3, 0.3, 0.3], size=40).astype(np.float32)
        w[:5] = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 5)]  # hard choices: weights exactly 0
        trace = gating.GateTrace("gated-rjcma", tmp, "t", 25.0, ["audio", "visual"],
                                 {"gate": {"candidates": ("X(0)", "X(1)", "X(2)", "X(3)"),
                                           "weights": {"audio": w[::-1].copy(), "visual": w}}}, _labels(40))
        return {**base, "chapter": gating, "torch": torch, "F": torch.nn.functional, "math": math, "trace": trace,
                "g_tiny": Gate(4, 3).double(), "x_tiny": torch.randn(1, 6, 4, dtype=torch.float64),
                "Z_tiny": [torch.randn(1, 6, 4, dtype=torch.float64) for _ in range(3)]}
    if name == "07_training":
        return {**base, "chapter": training, "ccc": ccc, "labels": _labels(), "pred": RNG.uniform(-0.5, 0.5, (60, 2)),
                "trial_ccc": {}}
    if name == "08_cross_validation":
        rows = [{"fold": f, "mean": m, "paper_mean": 0.5} for f, m in enumerate((0.4, 0.2, 0.35))]
        return {**base, "chapter": training, "rows": rows}
    if name == "09_ablation":
        return {**base, "chapter": training, "train_or_reuse": _fake_training(tmp), "best": {"l": 3, "mean": 0.4},
                "RecursiveJointCrossModalAttention": RecursiveJointCrossModalAttention}
    if name == "10_comparison":
        rows = [{"fusion": "rjcma", "mean": 0.5}, {"fusion": "rjca", "mean": 0.42}]
        return {**base, "chapter": training, "rows": rows, "train_or_reuse": _fake_training(tmp),
                "ours": rows[0]}
    if name == "11_results":
        t1 = rt.Table("Table 1", [], [], [], values={"valence": 0.31, "arousal": 0.5})
        return {**base, "chapter": results, "rt": rt, "t1": t1, "base": _comparison(tmp), "pm": paper_numbers.table1_mean()}
    if name == "12_inference":
        monkeypatch.setattr(inference, "predict_video", _fake_predict)
        res = SimpleNamespace(summary={"seconds": {"faces": 3.0, "audio": 1.0}, "duration_s": 8.0})
        return {**base, "chapter": inference, "video": _video(tmp / "demo.mp4"), "out_dir": tmp, "bundle": None,
                "predict_video": _fake_predict, "rjcma": SimpleNamespace(predict=_fake_rjcma_predict), "res": res, "secs": res.summary["seconds"], "video_seconds": 8.0}
    if name == "13_paper_vs_code":
        return {**base, "chapter": paper_vs_code, "dims": [4, 3, 3], "l": 2, "K": 8,
                "paper_fusion": RecursiveJointCrossModalAttention([4, 3, 3], 8, num_iterations=2)}
    raise KeyError(f"{name}: no small inputs for its exercises here; add them to namespace()")


# ---- the tests --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", NOTEBOOKS)
def test_every_check_fails_on_a_missing_or_wrong_answer_and_passes_the_solution(name, tmp_path, monkeypatch):
    found = exercises_of(name)
    assert 2 <= len(found) <= 3, f"{name}: {len(found)} exercises (two or three per chapter)"
    ns = namespace(name, tmp_path, monkeypatch)
    for ex in found:
        run_cell(ex.student, ns)
        assert ns[ex.answer] is None
        missing = run_cell(ex.check, ns)
        assert isinstance(missing, checks.Verdict) and not missing, f"{name} {ex.answer}: None passed: {missing}"
        own = run_cell(ex.solution, ns)
        assert isinstance(own, checks.Verdict) and own, f"{name}: the solution fails its own check: {own}"
        assert ns[ex.answer] is None, f"{name}: running the solution changed {ex.answer}"
        solution = ns[ex.solution_name]
        ns[ex.answer] = wrong(solution)
        bad = run_cell(ex.check, ns)
        assert not bad, f"{name} {ex.answer}: the wrong answer {ns[ex.answer]!r} passed: {bad}"
        ns[ex.answer] = solution
        good = run_cell(ex.check, ns)
        assert good, f"{name} {ex.answer}: the solution's value fails the visible check: {good}"


def test_check_value_rules():
    assert not checks.check_value("x", None, 1) and "no answer yet" in repr(checks.check_value("x", None, 1))
    assert checks.check_value("x", 1.0 + 1e-9, 1.0, 1e-6)
    assert not checks.check_value("x", 1.1, 1.0, 1e-6)
    assert not checks.check_value("x", (1, 2), (1, 2, 3), 0), "a pair is not a triple"
    assert not checks.check_value("x", "a", 1.0) and not checks.check_value("x", "b", "a")
    assert repr(checks.check_value("x", 2, 2, 0)).startswith("✓") and repr(checks.check_value("x", 3, 2, 0))[0] == "✗"
    assert wrong(True) is False and wrong((3, 4)) == (4, 4) and wrong([0.1]) == [0.6]
