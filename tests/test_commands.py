"""The training commands on the tiny store: train, cv, ablate, compare, export-test, each a short CPU run."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from rjcma.cli import main


@pytest.fixture(scope="module")
def sets(tiny_cfg, tiny_store, tmp_path_factory):
    results = tmp_path_factory.mktemp("cmd_results")
    return [
        f"corpus={tiny_cfg.data.corpus}", f"store={tiny_store}", f"results_dir={results}",
        f"seq_len={tiny_cfg.K}", f"stride={tiny_cfg.data.stride}", "max_epochs=1", "early_stop=1", "device=cpu",
    ], results


def _args(sets_):
    out = []
    for s in sets_:
        out += ["--set", s]
    return out + ["--quiet"]


def test_train_command_writes_folder_and_prints_where(sets, capsys):
    s, results = sets
    assert main(["train", "--fold", "0", "--target", "valence", "--fusion", "unimodal:visual"] + _args(s)) == 0
    out = capsys.readouterr().out
    assert "results:" in out
    run = Path(out.split("results:")[1].split()[0])
    m = json.loads((run / "metrics.json").read_text())
    assert m["targets"] == ["valence"] and m["fusion"] == "unimodal:visual"
    rows = list(csv.reader(open(next((run / "predictions").glob("*.csv")))))
    assert rows[0] == ["frame", "valence", "arousal"] and rows[1][2] == ""  # arousal not trained


def test_cv_ablate_compare_summaries(sets, capsys):
    s, results = sets
    assert main(["cv", "--folds", "0,1"] + _args(s)) == 0
    cv = json.loads((results / "demo" / "cv" / "summary.json").read_text())
    assert [r["fold"] for r in cv["rows"]] == [0, 1] and cv["rows"][1]["paper_valence"] == 0.585
    assert main(["ablate", "--iterations", "1,3", "--fold", "1"] + _args(s)) == 0
    ab = json.loads((results / "demo" / "ablate" / "summary.json").read_text())
    assert [r["l"] for r in ab["rows"]] == [1, 3]
    # l = 3 on fold 1 is the cv fold-1 model: reused, not retrained
    assert "/cv/" in ab["rows"][1]["runs"]
    assert main(["compare"] + _args(s)) == 0
    cmp_ = json.loads((results / "demo" / "compare" / "summary.json").read_text())
    fusions = [r["fusion"] for r in cmp_["rows"]]
    assert fusions == ["unimodal:audio", "unimodal:visual", "unimodal:text", "concat", "leader-follower", "jca", "rjca",
                       "rjcma-released", "rjcma", "grjca", "hgrjca", "dca", "gated-rjcma"]
    assert all(-1 <= r["valence"] <= 1 and -1 <= r["arousal"] <= 1 for r in cmp_["rows"])
    out = capsys.readouterr().out
    assert "compare (summary.json, summary.csv)" in out
    # the six-fold check (here two folds): rows are means over the folds, the RJCMA runs are the cv's
    assert main(["compare", "--folds", "0,1", "--models", "unimodal:visual,rjcma"] + _args(s)) == 0
    cf = json.loads((results / "demo" / "compare-folds" / "summary.json").read_text())
    assert cf["folds"] == [0, 1] and [r["fusion"] for r in cf["rows"]] == ["unimodal:visual", "rjcma"]
    for r in cf["rows"]:
        per = [float(x) for x in r["per_fold_valence"].split(";")]
        assert len(per) == 2 and abs(sum(per) / 2 - r["valence"]) < 1e-3
    assert "/cv/" in cf["rows"][1]["runs"] and "/compare/" in cf["rows"][0]["runs"]
    assert "compare-folds (summary.json, summary.csv)" in capsys.readouterr().out


def test_experiments_trains_what_is_missing_in_one_pool_and_rewrites_the_same_tables(sets, capsys):
    """`rjcma experiments` (make train): after the separate commands above, only the runs they did not train are
    trained (the six-fold check's other unimodal models on fold 1, the exercise's l = 5), each into its own
    experiment's folder; the cv, ablate and compare tables it writes are the ones the commands wrote."""
    from rjcma.config import load_config
    from rjcma.train.experiments import book_experiments
    from rjcma.train.results import run_id

    s, results = sets
    book = ["book.folds=0,1", "book.ablate_iterations=1,3"]
    before = {k: json.loads((results / "demo" / k / "summary.json").read_text())["rows"]
              for k in ("cv", "ablate", "compare")}
    plan = book_experiments(load_config("demo", s + book))
    assert [k for k, _ in plan] == ["cv", "ablate", "compare", "compare-folds", "exercises"]
    assert {c.model.num_iterations for c in plan[-1][1]} == {5}
    assert main(["experiments", "--jobs", "2"] + _args(s + book)) == 0
    out = capsys.readouterr().out
    assert "compare-folds+exercises: 3 runs on 2 worker processes" in out  # audio, text on fold 1; l = 5
    for k, rows in before.items():
        assert json.loads((results / "demo" / k / "summary.json").read_text())["rows"] == rows, k
    cf = json.loads((results / "demo" / "compare-folds" / "summary.json").read_text())["rows"]
    assert [r["fusion"] for r in cf] == ["unimodal:audio", "unimodal:visual", "unimodal:text", "rjcma"]
    ex = [c for c in plan[-1][1]]
    assert all((results / "demo" / "exercises" / run_id(c) / "metrics.json").is_file() for c in ex)


def test_a_chapter_trains_its_experiments_in_one_pool(sets, tmp_path, capsys):
    """What the ablation and comparison chapters call before their tables (`rjcma.lessons.building.train_together`):
    the runs of two experiments in one pool, a run listed in both trained once into the first one's folder, and
    nothing trained when they are all there."""
    from rjcma.config import load_config
    from rjcma.lessons import building
    from rjcma.train.cv import compare_models
    from rjcma.train.results import find_done

    s, _ = sets
    cfg = load_config("demo", s + [f"results_dir={tmp_path}", "jobs=2"])
    one = building.experiment_configs(cfg, "compare", fold=0, models=compare_models("unimodal:audio,unimodal:text"))
    check = building.experiment_configs(cfg, "compare", models=compare_models("unimodal:audio"), folds="0,1")
    groups = [("compare", one), ("compare-folds", check)]
    assert building.train_together(groups, "both") == 3  # audio on fold 0 is in both lists
    out = capsys.readouterr().out
    assert "both: 3 run(s) to train, 2 at a time" in out and "3 runs on 2 worker processes" in out
    where = [find_done(c) for c in one + check]
    assert all(where) and where[0] == where[2] and where[0].parent.name == "compare"
    assert where[3].parent.name == "compare-folds"
    assert building.train_together(groups, "both") == 0
    assert "nothing to train" in capsys.readouterr().out


def test_compare_unknown_model_is_one_line_error(sets, capsys):
    s, _ = sets
    assert main(["compare", "--models", "unimodal:smell"] + _args(s)) == 2
    err = capsys.readouterr().err
    assert "unimodal:smell" in err and "unimodal:audio" in err


def test_export_test_format(sets, tiny_store, capsys):
    from rjcma.config import load_config
    from rjcma.data.store import Store
    from rjcma.train.results import default_checkpoint

    s, results = sets
    cfg = load_config("demo", s)
    ck = default_checkpoint(cfg)
    if not (ck / "model.safetensors").exists():
        assert main(["cv", "--folds", "0"] + _args(s)) == 0
    st = Store(tiny_store)
    part = "test" if any(st.meta(n).get("partition") == "test" for n in st.trials()) else "validation"
    out = results / "sub.csv"
    assert main(["export-test", "--out", str(out), "--partition", part] + _args(s)) == 0
    lines = out.read_text().splitlines()
    assert lines[0] == "image_location,valence,arousal"
    trial, img = lines[1].split(",")[0].rsplit("/", 1)
    assert img == "00001.jpg" and st.meta(trial)["partition"] == part
    n = sum(int(st.meta(t)["N"]) for t in st.trials() if st.meta(t).get("partition") == part)
    assert len(lines) == 1 + n
    v, a = map(float, lines[1].split(",")[1:])
    assert -1 <= v <= 1 and -1 <= a <= 1


def test_missing_checkpoint_is_one_line_error(sets, tmp_path, capsys):
    s, _ = sets
    assert main(["export-test", "--checkpoint", str(tmp_path / "nope")] + _args(s)) == 2
    assert "no trained model here" in capsys.readouterr().err


@pytest.mark.usefixtures("one_thread")
def test_parallel_runs_match_serial_runs(sets, tmp_path, capsys):
    """cv with two worker processes writes the same table as one process: each run is trained alone, from its own
    seed, whichever worker takes it (up to float-sum order where a worker gets another thread count)."""
    s, _ = sets
    tables = {}
    for jobs in (1, 2):
        res = tmp_path / f"jobs{jobs}"
        sj = [x for x in s if not x.startswith("results_dir=")] + [f"results_dir={res}"]
        assert main(["cv", "--folds", "0,1", "--jobs", str(jobs)] + _args(sj)) == 0
        pooled = "runs on 2 worker processes" in capsys.readouterr().out
        assert pooled == (jobs == 2), "--jobs 2 must train in worker processes, --jobs 1 in this one"
        rows = json.loads((res / "demo" / "cv" / "summary.json").read_text())["rows"]
        tables[jobs] = [(r["fold"], r["valence"], r["arousal"]) for r in rows]
        assert all(f"jobs{jobs}" in r["runs"] for r in rows)
    assert [r[0] for r in tables[1]] == [0, 1]
    for a, b in zip(tables[1], tables[2]):
        assert a[0] == b[0] and abs(a[1] - b[1]) < 1e-3 and abs(a[2] - b[2]) < 1e-3
