"""The gating chapter's helpers (rjcma.lessons.gating): the exercises' checks against the gate's limits, the
published numbers beside ours, and, on trained tiny runs, the gate weights read back over a validation trial and
the family's table with its intervals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from rjcma import paper_numbers
from rjcma.data.dataset import WindowDataset, collate
from rjcma.errors import RjcmaError
from rjcma.lessons import gating as chapter
from rjcma.models.gating import Gate
from rjcma.train.saved_model import load_model

pytestmark = pytest.mark.usefixtures("one_thread")


def _tiny_gate(n: int = 3, d: int = 4, K: int = 7, seed: int = 0):
    torch.manual_seed(seed)
    gate = Gate(d, n).double()
    x = torch.randn(2, K, d, dtype=torch.float64)
    Z = [torch.randn(2, K, d, dtype=torch.float64) for _ in range(n)]  # noqa: N806 - the paper's Z
    return gate, x, Z


def test_cold_choice_is_the_argmax_of_the_logits():
    gate, x, Z = _tiny_gate()
    with torch.no_grad():
        logits = x[0] @ gate.weight.T + gate.bias
    want = tuple(int(i) for i in logits.argmax(-1))
    assert len(set(want)) > 1, "a gate that picks one candidate everywhere would not test the per-step answer"
    ok = chapter.check_cold_choice(want, gate, x, Z)
    assert ok and "ReLU of that candidate" in ok.message
    gap = float(ok.message.split("to ")[-1])
    assert gap < 1e-6, ok.message  # at T = 1e-4 the output is the chosen candidate, through the ReLU
    assert chapter.check_cold_choice(list(want), gate, x, Z) and chapter.check_cold_choice(torch.tensor(want), gate, x, Z)
    assert not chapter.check_cold_choice(None, gate, x, Z)
    wrong = ((want[0] + 1) % 3,) + want[1:]
    assert not chapter.check_cold_choice(wrong, gate, x, Z)
    assert not chapter.check_cold_choice(want[:-1], gate, x, Z), "one index short"
    assert not chapter.check_cold_choice("abc", gate, x, Z)
    assert gate.temperature == 0.1, "the check must not change the student's gate"


def test_entropy_limits():
    n = 4
    assert chapter.entropy(np.eye(n)).tolist() == [0.0] * n
    assert chapter.entropy(np.full((2, n), 1 / n)) == pytest.approx([math.log(n)] * 2)
    gate, x, Z = _tiny_gate(n=n)
    with torch.no_grad():
        hot = chapter.cold_copy(gate, chapter.HOT).weights(x).numpy()
        cold = chapter.cold_copy(gate, chapter.COLD).weights(x).numpy()
    assert chapter.entropy(hot) == pytest.approx(np.full(hot.shape[:2], math.log(n)), abs=1e-3)
    assert chapter.entropy(cold).max() < 1e-6


def _trace(w: np.ndarray) -> chapter.GateTrace:
    cands = tuple(f"X({i})" for i in range(w.shape[1]))
    return chapter.GateTrace("gated-rjcma", Path("run"), "t", 25.0, ["visual"],
                             {"gate": {"candidates": cands, "weights": {"visual": w}}}, np.zeros((len(w), 2)))


def test_entropies_check_and_gate_summary():
    w = np.array([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5], [0.2, 0.3, 0.5]], dtype=np.float32)
    trace = _trace(w)
    measured = float(np.mean([0.0, math.log(2), -(0.2 * math.log(0.2) + 0.3 * math.log(0.3) + 0.5 * math.log(0.5))]))
    assert chapter.check_entropies((math.log(3), measured), trace)
    assert not chapter.check_entropies(None, trace)
    assert not chapter.check_entropies((math.log(2), measured), trace)
    assert not chapter.check_entropies((math.log(3), measured + 0.01), trace)
    assert not chapter.check_entropies(math.log(3), trace)
    header, rows = chapter.gate_summary(trace)
    assert rows == [["gate", "visual", "X(0): 0.400", "X(1): 0.267", "X(2): 0.333", "0.667",
                     f"{measured / math.log(3):.3f}"]]
    assert len(header) == len(rows[0])
    assert chapter.attended_weight(trace) == {"visual": pytest.approx(0.6)}


def test_attended_weight_with_and_without_a_face():
    w = np.array([[0.9, 0.1], [0.8, 0.2], [0.1, 0.9], [0.3, 0.7]], dtype=np.float32)
    trace = _trace(w)
    with pytest.raises(RjcmaError, match="no face mask"):
        chapter.attended_by_face(trace)
    trace.face = np.array([True, True, False, False])
    header, rows, values = chapter.attended_by_face(trace)
    assert values == {"visual": (pytest.approx(0.15), pytest.approx(0.8))}
    assert rows == [["visual", 2, "0.150", 2, "0.800"]] and len(header) == 5
    trace.face = np.ones(4, bool)
    assert chapter.attended_by_face(trace)[2]["visual"][1] is None, "no frame without a face: no number"


def test_published_numbers_come_from_paper_numbers():
    fam = paper_numbers.FAMILY_METHODS[0]
    for f in ("grjca", "hgrjca"):
        assert chapter.published(f) == (fam["val_valence"], fam["val_arousal"], fam["source"])
    t2 = next(m for m in paper_numbers.TABLE2_METHODS if m["fusion"] == "rjcma")
    assert chapter.published("rjcma")[:2] == (t2["val_valence"], t2["val_arousal"])
    assert chapter.published("dca")[:2] == (None, None)
    v, a, source = chapter.published("gated-rjcma")
    assert (v, a) == (None, None) and "from no paper" in source
    assert set(chapter.FAMILY) == {"rjca", "grjca", "hgrjca", "dca", "rjcma", "gated-rjcma"}


# ---- on trained tiny runs ----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def tiny_runs(tiny_cfg, tiny_store):
    cfg = tiny_cfg.replace(max_epochs=1, early_stop=1)
    old = chapter.FAMILY
    chapter.FAMILY = ("rjcma", "gated-rjcma")  # two of the rows: the table's reference and a gated one
    try:
        runs = chapter.family_runs(cfg, progress=False, log=lambda *a, **k: None)
    finally:
        chapter.FAMILY = old
    return cfg, runs


@pytest.mark.slow
def test_gate_trace_reads_the_models_gates_over_a_validation_trial(tiny_runs):
    cfg, runs = tiny_runs
    assert list(runs) == ["rjcma", "gated-rjcma"] and all(len(d) == 1 for d in runs.values())
    run = runs["gated-rjcma"][0]
    trace = chapter.gate_trace(run, cfg.data.store)
    metrics = json.loads((run / "metrics.json").read_text())
    assert trace.trial == sorted(metrics["metrics"]["valence"]["per_trial"])[0]
    g = trace.gates["gate"]
    L = cfg.model.num_iterations
    assert g["candidates"] == tuple(f"X({i})" for i in range(L + 1))
    assert trace.modalities == ["audio", "visual", "text"]
    N = len(trace.labels)
    assert trace.face is not None and trace.face.shape == (N,) and trace.face.dtype == bool
    for m in trace.modalities:
        w = g["weights"][m]
        assert w.shape == (N, L + 1)
        np.testing.assert_allclose(w.sum(1), 1.0, atol=1e-5)
    # the first frames are covered by the first window only: their weights are that window's, run here directly
    model, mcfg, stats = load_model(run)
    ds = WindowDataset(cfg.data.store, [trace.trial], mcfg, train=False, text_stats=stats,
                       modalities=trace.modalities)
    with torch.no_grad():
        first = model(collate([ds[0]]))["gates"]["gate"]["weights"]
    S = min(cfg.data.stride, N)
    for m, w in zip(trace.modalities, first):
        np.testing.assert_allclose(g["weights"][m][:S], w[0, :S].numpy(), rtol=0, atol=1e-6)
    with pytest.raises(RjcmaError, match="has no gates"):
        chapter.gate_trace(runs["rjcma"][0], cfg.data.store)
    with pytest.raises(RjcmaError, match="not one of the run's validation trials"):
        chapter.gate_trace(run, cfg.data.store, "no-such-trial")


@pytest.mark.slow
def test_family_table_reads_the_runs_with_intervals(tiny_runs):
    cfg, runs = tiny_runs
    header, rows, values = chapter.family_table(runs, cfg.data.store)
    assert [r[0] for r in rows] == ["RJCMA, paper's equations · A+V+T", "gated RJCMA (ours, not from any paper) · A+V+T"]
    assert all(len(r) == len(header) for r in rows)
    assert rows[0][3:5] == ["reference", "reference"] and rows[1][3].count("[") == 1
    for f, r in zip(runs, rows):
        m = json.loads((runs[f][0] / "metrics.json").read_text())["metrics"]
        for t in ("valence", "arousal"):
            assert values[f][t] == pytest.approx(m[t]["ccc"], abs=1e-5)
        assert values[f]["mean"] == pytest.approx((values[f]["valence"] + values[f]["arousal"]) / 2)
        est, low, high = (float(x) for x in r[1].replace("[", "").replace("]", "").replace(",", "").split())
        assert low <= est <= high
    assert rows[0][5] == f"{chapter.published('rjcma')[0]:.3f} / {chapter.published('rjcma')[1]:.3f}"
    diff = values["gated-rjcma"]["diff_valence"]
    assert diff == pytest.approx(values["gated-rjcma"]["valence"] - values["rjcma"]["valence"], abs=1e-9)
