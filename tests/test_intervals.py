"""Intervals of the comparison and ablation tables (train/intervals.py) on runs trained on the tiny store: the CCC
read back from the prediction files is metrics.json's, rows carry intervals, differences to RJCMA are paired, and
the several-fold rows are means over the folds."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from rjcma.errors import RjcmaError
from rjcma.metrics import ccc
from rjcma.train import intervals as iv


@pytest.fixture(scope="module")
def trained(tiny_cfg, tiny_store, tmp_path_factory):
    """Unimodal visual and RJCMA on folds 0 and 1 (one epoch each), as `rjcma compare --folds 0,1`, the one-fold
    comparison, the cross-validation of those folds and an ablation l = 1, 3 on fold 1 (all but l = 1 reuse)."""
    from rjcma.train.cv import compare_models, run_ablation, run_compare, run_cv

    results = tmp_path_factory.mktemp("interval_results")
    cfg = tiny_cfg.replace(results_dir=str(results), max_epochs=1, early_stop=1, device="cpu", jobs=1)
    quiet = dict(progress=False, log=lambda *a, **k: None)
    models = compare_models("unimodal:visual,rjcma")
    run_compare(cfg, models=models, folds="0,1", **quiet)
    run_compare(cfg, 0, models=models, **quiet)
    run_cv(cfg, folds="0,1", **quiet)
    run_ablation(cfg, iterations="1,3", fold=1, **quiet)
    return results / cfg.profile


def _summary(exp):
    return json.loads((exp / "summary.json").read_text())


def _rjcma_run(trained):
    """The RJCMA run of the one-fold comparison (trained by the several-fold one, and reused)."""
    row = next(r for r in _summary(trained / "compare")["rows"] if r["fusion"] == "rjcma")
    return row["runs"]


def test_read_back_ccc_is_metrics_json(trained):
    """Every run's CCC recomputed from predictions/<trial>.csv and the store, with the evaluation's own code, is
    its metrics.json CCC up to the six decimals the files hold."""
    for exp in ("compare", "compare-folds"):
        table = iv.summary_intervals(trained / exp)
        rows = _summary(trained / exp)["rows"]
        assert [r.label for r in table.rows] == [r["model"] for r in rows]
        for row, srow in zip(table.rows, rows):
            assert set(row.targets) == {"valence", "arousal"}
            for t, ti in row.targets.items():
                assert abs(ti.ccc.estimate - ti.stored) <= iv.STORED_TOLERANCE
                assert ti.stored == pytest.approx(srow[t], abs=5e-5)  # the summary rounds to 4 decimals
                assert ti.ccc.estimate == pytest.approx(np.mean(list(ti.per_fold.values())), abs=1e-15)
    run = iv.read_run(_rjcma_run(trained))
    frames = iv.fold_frames(run)
    x = np.concatenate([run.preds[n][:, 0] for n in frames.trials])
    y = np.concatenate([frames.labels[n][:, 0] for n in frames.trials])
    assert abs(ccc(x, y) - run.stored["valence"]) <= iv.STORED_TOLERANCE


def test_predictions_written_with_round_trip_precision_read_back_exactly(tmp_path):
    p = np.random.default_rng(0).standard_normal((50, 2)).astype(np.float32)
    text = "frame,valence,arousal\n" + "".join(f"{k},{a:.9g},{b:.9g}\n" for k, (a, b) in enumerate(p))
    (tmp_path / "t.csv").write_text(text)
    assert np.array_equal(iv._read_predictions(tmp_path / "t.csv", ["valence", "arousal"]), p)
    assert np.array_equal(iv._read_predictions(tmp_path / "t.csv", ["arousal"])[:, 0], p[:, 1])
    (tmp_path / "u.csv").write_text("frame,valence,arousal\n0,0.5,\n")
    with pytest.raises(RjcmaError, match="u.csv: a row lacks a number for arousal"):
        iv._read_predictions(tmp_path / "u.csv", ["arousal"])


def test_one_fold_rows_have_intervals_and_paired_differences_to_rjcma(trained):
    table = iv.summary_intervals(trained / "compare")
    assert table.reference == "RJCMA paper (A+V+T)" and table.level == 0.95 and table.resamples == 2000
    assert table.units[0]["kind"] == "block" and table.units[0]["count"] >= 2  # the tiny fold has one trial
    ref, uni = table.row("RJCMA paper (A+V+T)"), table.row("unimodal visual")
    for t in ("valence", "arousal"):
        assert ref.targets[t].diff is None
        for ti in (ref.targets[t], uni.targets[t]):
            assert ti.ccc.low - 1e-12 <= ti.ccc.estimate <= ti.ccc.high + 1e-12  # estimate: two-pass; ends: sums
        d = uni.targets[t].diff
        assert d.estimate == pytest.approx(uni.targets[t].ccc.estimate - ref.targets[t].ccc.estimate, abs=1e-15)
        assert d.low - 1e-12 <= d.estimate <= d.high + 1e-12 and d.excludes_zero == (d.low > 0 or d.high < 0)
    assert iv.summary_intervals(trained / "compare") == table  # seeded: the same numbers again


def test_several_folds_are_means_with_a_stratified_bootstrap(trained):
    table = iv.summary_intervals(trained / "compare-folds")
    assert sorted(table.units) == [0, 1]
    ref, uni = table.row("RJCMA paper (A+V+T)"), table.row("unimodal visual")
    for t in ("valence", "arousal"):
        r, u = ref.targets[t], uni.targets[t]
        assert sorted(u.per_fold) == [0, 1] and u.folds_better == sum(u.per_fold[f] > r.per_fold[f] for f in (0, 1))
        assert u.diff.estimate == pytest.approx(u.ccc.estimate - r.ccc.estimate, abs=1e-15)
        assert u.ccc.low - 1e-12 <= u.ccc.estimate <= u.ccc.high + 1e-12
    # a row against itself: exactly zero, on every resample
    runs = ref.runs
    same = iv.table_intervals({"a": runs, "b": runs}, reference="a")
    d = same.row("b").targets["valence"].diff
    assert (d.estimate, d.low, d.high, d.excludes_zero) == (0.0, 0.0, 0.0, False)
    with pytest.raises(RjcmaError, match="same folds"):
        iv.table_intervals({"a": runs, "b": runs[:1]}, reference="a")


def test_cv_and_ablation_summaries(trained):
    cv = iv.summary_intervals(trained / "cv")
    assert [r.label for r in cv.rows] == ["fold 0", "fold 1"] and cv.reference is None
    assert all(ti.diff is None for r in cv.rows for ti in r.targets.values())
    ab = iv.summary_intervals(trained / "ablate")
    assert [r.label for r in ab.rows] == ["l=1", "l=3"] and ab.reference == "l=3"
    assert ab.row("l=1").targets["arousal"].diff is not None


def test_write_summary_intervals(trained):
    out = iv.write_summary_intervals(trained / "compare")
    assert out == trained / "compare" / "summary_intervals.json"
    text = out.read_text()
    assert "NaN" not in text
    info = json.loads(text)
    assert info["kind"] == "compare" and info["summary_config_hash"] == _summary(trained / "compare")["config_hash"]
    assert [r["label"] for r in info["rows"]] == [r["model"] for r in _summary(trained / "compare")["rows"]]
    row = info["rows"][0]["targets"]["valence"]
    assert set(row) >= {"ccc", "stored", "diff", "per_fold"} and set(row["diff"]) >= {"low", "high", "excludes_zero"}


def test_changed_labels_and_missing_files_are_one_line_errors(trained, tiny_store, tmp_path):
    run_dir = _rjcma_run(trained)
    run = iv.read_run(run_dir)
    store = tmp_path / "store"
    for n in run.trials:
        shutil.copytree(tiny_store / n, store / n)
        labels = np.load(store / n / "labels.npy")
        np.save(store / n / "labels.npy", labels[::-1].copy())  # other labels, same length
    with pytest.raises(RjcmaError, match="changed since the run"):
        iv.table_intervals({"x": [run_dir]}, store=store)
    copy = tmp_path / "run"
    shutil.copytree(run_dir, copy)
    (copy / "predictions" / f"{run.trials[0]}.csv").unlink()
    with pytest.raises(RjcmaError, match="missing"):
        iv.read_run(copy)
    with pytest.raises(RjcmaError, match="reference row"):
        iv.table_intervals({"x": [run_dir]}, reference="y")


def test_published_family_numbers_name_their_source_and_our_fusions():
    """The family's published numbers, printed beside these intervals, each name the text they come from and the
    fusions of ours they stand beside."""
    from rjcma import paper_numbers
    from rjcma.fusions import FUSIONS

    for m in paper_numbers.FAMILY_METHODS:
        assert m["source"] and m["method"] and set(m["fusions"]) <= set(FUSIONS)
        assert all(0 < m[k] < 1 for k in ("val_valence", "val_arousal", "test_valence", "test_arousal"))
