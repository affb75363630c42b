"""The comparison and ablation tables with their intervals (rjcma.results_tables.interval_table) and the verdicts in
words under them (rjcma.book.verdicts), on fabricated summaries: every CCC shows its interval, a difference whose
paired interval excludes zero is marked, and two tables with opposite outcomes give opposite verdicts."""

from __future__ import annotations

import json


def _interval(est, low, high):
    return {"estimate": est, "low": low, "high": high, "level": 0.95}


def _intervals_file(exp, summary_rows, cells, reference, units):
    """A summary.json and the summary_intervals.json written for it (rjcma.train.intervals' format)."""
    exp.mkdir(parents=True, exist_ok=True)
    (exp / "summary.json").write_text(json.dumps({"kind": exp.name, "config_hash": "h1", "fold": 0,
                                                  "rows": summary_rows}))
    rows = []
    for label, per_target in cells.items():
        targets = {}
        for t, (ccc, diff) in per_target.items():
            targets[t] = {"ccc": _interval(*ccc), "stored": ccc[0], "per_fold": {"0": ccc[0]}}
            if diff is not None:
                targets[t]["diff"] = _interval(*diff) | {"excludes_zero": diff[1] > 0 or diff[2] < 0}
        rows.append({"label": label, "runs": [], "folds": [0], "targets": targets})
    (exp / "summary_intervals.json").write_text(json.dumps({
        "kind": exp.name, "summary_config_hash": "h1", "reference": reference, "level": 0.95, "resamples": 2000,
        "seed": 3407, "units": {"0": units}, "rows": rows}))


def _comparison(tmp_path, visual_ccc, diff):
    """A fold-0 comparison of unimodal visual against RJCMA (0.40 [0.30, 0.50]) on both targets."""
    rows = [{"model": "unimodal visual", "fusion": "unimodal:visual", "modalities": "visual", "mean": visual_ccc},
            {"model": "RJCMA paper (A+V+T)", "fusion": "rjcma", "modalities": "audio+visual+text", "mean": 0.4}]
    both = lambda a, b: {"valence": (a, b), "arousal": (a, b)}  # noqa: E731
    _intervals_file(tmp_path / "compare", rows, {
        "unimodal visual": both((visual_ccc, visual_ccc - 0.1, visual_ccc + 0.1), diff),
        "RJCMA paper (A+V+T)": both((0.40, 0.30, 0.50), None),
    }, "RJCMA paper (A+V+T)", {"kind": "trial", "count": 12, "block_frames": None, "decorrelation_lag": None})
    return tmp_path / "compare"


def test_interval_table_shows_every_interval_and_marks_differences(tmp_path):
    from rjcma import paper_numbers
    from rjcma import results_tables as rt

    exp = _comparison(tmp_path, 0.20, (-0.20, -0.30, -0.10))
    t = rt.interval_table(exp, "fold 0", published=True)
    assert t.header[:5] == ["method · modalities", "valence [95 % interval]", "Δ to RJCMA", "arousal [95 % interval]",
                            "Δ to RJCMA"]
    visual, rjcma = t.rows[0], t.rows[1]
    assert visual[:4] == ["unimodal visual (TCN + head) · V", "0.200<br>[0.10, 0.30]",
                          "**−0.200**<br>[−0.30, −0.10]", "0.200<br>[0.10, 0.30]"]
    assert rjcma[2] == "" and rjcma[5:] == ["0.455 / 0.652", "paper, Table 2"]
    others = [m for m in paper_numbers.TABLE2_METHODS if m["fusion"] not in ("rjcma", "unimodal:visual")]
    assert len(t.rows) == 2 + len(others), "the paper's rows we did not train follow ours"
    assert not any("[" in r[0] and "]" in r[0] for r in t.rows), "the paper's reference numbers are written out"
    assert "12 trials" in t.note
    assert rt.interval_table(tmp_path / "missing", "x") is None
    (exp / "summary_intervals.json").write_text((exp / "summary_intervals.json").read_text().replace('"h1"', '"h0"'))
    assert rt.read_summary(exp)[1] is None, "intervals written for another summary are not shown"


def test_verdicts_follow_the_numbers(tmp_path):
    """Two fabricated comparisons with opposite outcomes give opposite verdicts, from the numbers alone."""
    from rjcma import results_tables as rt
    from rjcma.book.verdicts import ablation_verdict, comparison_verdict

    ahead = comparison_verdict(rt.interval_table(_comparison(tmp_path / "a", 0.20, (-0.20, -0.30, -0.10)), "").values)
    behind = comparison_verdict(rt.interval_table(_comparison(tmp_path / "b", 0.60, (0.20, 0.10, 0.30)), "").values)
    tie = comparison_verdict(rt.interval_table(_comparison(tmp_path / "c", 0.42, (0.02, -0.05, 0.09)), "").values)
    text = {k: " ".join(v) for k, v in (("ahead", ahead), ("behind", behind), ("tie", tie))}
    assert "It is ahead, by more than the noise, of unimodal visual (by 0.200)" in text["ahead"]
    assert "supports the paper's claim" in text["ahead"] and "against" not in text["ahead"]
    assert "it is beaten by unimodal visual (by 0.200)" in text["behind"]
    assert "goes against the paper's claim" in text["behind"] and "supports" not in text["behind"]
    assert "cannot tell RJCMA from the best single modality" in text["tie"]
    assert all("0.400 (95 % interval 0.300 to 0.500)" in t for t in text.values())
    assert "resample the validation trials (fold 0: 12)" in text["ahead"]
    rows = [{"l": 1, "fold": 1, "mean": 0.3}, {"l": 3, "fold": 1, "mean": 0.4}]
    _intervals_file(tmp_path / "ablate", rows, {
        "l=1": {"valence": ((0.30, 0.2, 0.4), (-0.1, -0.15, -0.05))}, "l=3": {"valence": ((0.40, 0.3, 0.5), None)},
    }, "l=3", {"kind": "block", "count": 9, "block_frames": 160, "decorrelation_lag": 80})
    words = " ".join(ablation_verdict(rt.interval_table(tmp_path / "ablate", "").values))
    assert "l = 3 scores 0.400" in words and "ahead, by more than the noise, of l = 1" in words
    assert "the choice of l matters" in words and "blocks of 160 consecutive frames" in words
    assert "With only 9 resampling units" in words, "a fold with few units: the verdict says it is only a hint"
    assert "resampling unit" not in text["ahead"], "12 trials are enough units for no such caution"


def _fold_check(exp, rjcma, audio, visual, text):
    """A compare-folds summary (rjcma.train.cv's format): per target, each model's CCC on folds 0..5."""
    exp.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, fusion, per in (("unimodal audio", "unimodal:audio", audio), ("unimodal visual", "unimodal:visual",
                              visual), ("unimodal text", "unimodal:text", text),
                              ("RJCMA paper (A+V+T)", "rjcma", rjcma)):
        row = {"model": name, "fusion": fusion, "fold": "0,1,2,3,4,5"}
        for t, vals in per.items():
            row[t] = sum(vals) / len(vals)
            row[f"per_fold_{t}"] = ";".join(f"{v:.4f}" for v in vals)
        rows.append(row)
    (exp / "summary.json").write_text(json.dumps({"kind": "compare-folds", "config_hash": "h2",
                                                  "folds": [0, 1, 2, 3, 4, 5], "rows": rows}))
    return exp


def test_fold_differences_pair_each_fold_with_its_best_single_modality(tmp_path):
    from rjcma.results_tables import fold_differences

    low = [0.1] * 6
    # the visual model is best on folds 0-2, the audio model on folds 3-5; RJCMA beats visual everywhere but falls
    # below audio on fold 4: a comparison with the best modality *on average* would miss that fold
    visual = [0.50, 0.50, 0.50, 0.30, 0.30, 0.30]
    audio = [0.30, 0.30, 0.30, 0.52, 0.60, 0.52]
    rjcma = [0.55, 0.56, 0.57, 0.55, 0.58, 0.56]
    exp = _fold_check(tmp_path / "compare-folds", {"valence": rjcma, "arousal": [v - 0.2 for v in rjcma]},
                      {"valence": audio, "arousal": low}, {"valence": visual, "arousal": [0.2] * 6},
                      {"valence": low, "arousal": low})
    table = fold_differences(exp)
    v = table.values
    assert v["folds"] == [0, 1, 2, 3, 4, 5]
    assert v["best_valence"] == ["visual"] * 3 + ["audio"] * 3
    assert v["ahead_valence"] == 5 and v["diff_valence"][4] < 0
    assert abs(v["diff_valence"][0] - 0.05) < 1e-9
    assert v["ahead_arousal"] == 6 and v["best_arousal"] == ["visual"] * 6
    assert len(table.rows) == 7 and "5 of 6" in table.rows[-1][3] and "6 of 6" in table.rows[-1][6]
    assert fold_differences(tmp_path / "nothing") is None


def test_fold_by_fold_verdict_says_plainly_when_the_fusion_is_not_ahead(tmp_path):
    from rjcma.book.verdicts import fold_by_fold_verdict
    from rjcma.results_tables import fold_differences

    uni = {"valence": [0.5] * 6, "arousal": [0.5] * 6}
    low = {"valence": [0.1] * 6, "arousal": [0.1] * 6}
    wins = _fold_check(tmp_path / "a", {"valence": [0.6] * 6, "arousal": [0.6, 0.6, 0.6, 0.6, 0.6, 0.4]},
                       low, uni, low)
    words = " ".join(fold_by_fold_verdict(fold_differences(wins).values))
    assert "ahead of the best single modality on 6 of 6 folds" in words and "on 5 of 6 folds" in words
    assert "fold 5 (−0.100, visual)" in words and "probability 0.02" in words and "probability 0.11" in words
    assert "beats the best single modality on valence and arousal fold by fold" in words and "not" not in words.split(
        "What to conclude")[1]
    loses = _fold_check(tmp_path / "b", {"valence": [0.6] * 6, "arousal": [0.6, 0.4, 0.6, 0.4, 0.6, 0.4]},
                        low, uni, low)
    words = " ".join(fold_by_fold_verdict(fold_differences(loses).values))
    assert "on 3 of 6 folds" in words and "is **not** ahead of the best single modality fold by fold on arousal" in words
    assert "on valence it does" in words
