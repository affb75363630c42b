"""Six folds (paper §4.2.2, Table 1): fold 0 = official, the released rotation, subject-aware chunks, reuse."""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

import pytest

from rjcma.config import load_config
from rjcma.data.abaw import Corpus, Trial, find_corpus, video_stem_of
from rjcma.cli.data import add_folds_arguments, run_folds
from rjcma.data.folds import fold_table, folds_path, format_table, load_or_make_folds, make_folds, straddling
from rjcma.errors import RjcmaError


def make_corpus(train: list[str], val: list[str], subjects: dict[str, str] | None = None) -> Corpus:
    subjects = subjects or {}
    trials = [
        Trial(n, p, Path(f"/ann/{n}.txt"), None, None, video_stem_of(n), subjects.get(n, video_stem_of(n)))
        for names, p in ((train, "train"), (val, "validation"))
        for n in names
    ] + [Trial("test-1", "test", None, None, None, "test-1", "test-1")]
    return Corpus(Path("/corpus"), trials)


def names(prefix: str, n: int) -> list[str]:
    return [f"{prefix}{i:03d}" for i in range(n)]


@pytest.fixture
def paired():
    """40 train trials (incl. 6 left/right pairs), 8 validation trials, a subject map joining some videos."""
    train = names("t", 28) + [f"pair{i}_{side}" for i in range(6) for side in ("left", "right")]
    val = names("v", 7) + ["vp_left"]
    subjects = {"t001": "alice", "t017": "alice", "t025": "alice", "t003": "bob", "pair2_left": "bob",
                "v002": "carol", "t009": "carol"}  # carol straddles the official split
    lengths = {n: 100 + (i * 37) % 400 for i, n in enumerate(sorted(train + val))}
    return make_corpus(train, val, subjects), lengths


def test_fold_zero_is_the_official_split(paired):
    corpus, lengths = paired
    for scheme in ("subject", "released"):
        folds = make_folds(corpus, scheme=scheme, lengths=lengths)
        assert sorted(folds) == [0, 1, 2, 3, 4, 5]
        assert folds[0]["train"] == sorted(t.name for t in corpus.partition("train"))
        assert folds[0]["validation"] == sorted(t.name for t in corpus.partition("validation"))


def test_released_scheme_is_the_released_rotation():
    # the released code: 341 train trials sorted by name → chunks of 68, 68, 68, 68, 69; official
    # validation = chunk 6; fold f rolls the six chunks by f and validates on the last one.
    train, val = names("t", 341), names("v", 71)
    folds = make_folds(make_corpus(train[::-1], val), scheme="released")
    chunks = [train[0:68], train[68:136], train[136:204], train[204:272], train[272:341], val]
    for f in range(6):
        rolled = chunks[-f:] + chunks[:-f] if f else chunks  # np.roll(chunks, f)
        assert folds[f]["validation"] == sorted(rolled[5]), f
        assert folds[f]["train"] == sorted(n for c in rolled[:5] for n in c), f
    assert folds[1]["validation"] == train[272:341] and folds[5]["validation"] == train[0:68]


def test_released_scheme_splits_pairs_and_subject_scheme_does_not(paired):
    corpus, lengths = paired
    released = straddling(make_folds(corpus, scheme="released"), corpus)
    assert any(released[f] for f in range(1, 6))  # defect 9: pairs/subjects on both sides
    subject = straddling(make_folds(corpus, scheme="subject", lengths=lengths), corpus)
    assert all(not subject[f] for f in range(1, 6)), subject


def test_subject_scheme_never_splits_a_video_or_a_subject(paired):
    corpus, lengths = paired
    folds = make_folds(corpus, lengths=lengths)
    by = {t.name: t for t in corpus.trials}
    pool = {t.name for t in corpus.trials if t.partition != "test"}
    for f in range(1, 6):
        tr, va = set(folds[f]["train"]), set(folds[f]["validation"])
        assert tr | va == pool and not tr & va
        for key in ("video_stem", "subject"):
            assert not {getattr(by[n], key) for n in tr} & {getattr(by[n], key) for n in va}, (f, key)
    # the validation sets of folds 1-5 are disjoint chunks of the train set
    vals = [set(folds[f]["validation"]) for f in range(1, 6)]
    assert sum(map(len, vals)) == len(set().union(*vals))
    assert "test-1" not in pool


def test_subject_straddling_the_official_split_stays_with_validation(paired):
    corpus, lengths = paired
    folds = make_folds(corpus, lengths=lengths)
    # t009 is carol's, as is the official validation trial v002: in folds 1-5 it is always trained on
    assert all("t009" in folds[f]["train"] for f in range(1, 6))
    assert "t009" in folds[0]["train"]


def test_subject_map_argument_joins_trials(paired, tmp_path):
    corpus, lengths = paired
    m = tmp_path / "map.csv"
    m.write_text("trial,subject\nt000,zed\nt027,zed\n")
    folds = make_folds(corpus, subject_map=m, lengths=lengths)
    for f in range(1, 6):
        assert ("t000" in folds[f]["validation"]) == ("t027" in folds[f]["validation"])


def test_subject_chunks_are_balanced_and_deterministic(paired):
    corpus, lengths = paired
    a = make_folds(corpus, lengths=lengths)
    b = make_folds(corpus, lengths=dict(reversed(list(lengths.items()))))
    assert a == b
    frames = [sum(lengths[n] for n in a[f]["validation"]) for f in range(1, 6)]
    assert max(frames) - min(frames) <= max(lengths.values())  # greedy: within one group's size
    by_trials = make_folds(corpus, balance="trials", lengths=lengths)
    sizes = [len(by_trials[f]["validation"]) for f in range(1, 6)]
    assert max(sizes) - min(sizes) <= 3  # alice's group has 3 trials


def test_fewer_groups_than_chunks_repeat_cyclically():
    corpus = make_corpus(["a", "b_left", "b_right"], ["v"])
    with pytest.warns(UserWarning, match="only 2 train chunk"):
        folds = make_folds(corpus, lengths={"a": 10, "b_left": 10, "b_right": 10, "v": 10})
    assert len(folds) == 6 and all(folds[f]["validation"] for f in folds)
    assert make_folds(corpus, num_folds=1, lengths={}) == {0: folds[0]}


def test_bad_arguments(paired):
    corpus, _ = paired
    with pytest.raises(RjcmaError, match="unknown fold scheme"):
        make_folds(corpus, scheme="random")
    with pytest.raises(RjcmaError, match="no train trials"):
        make_folds(make_corpus([], ["v"]))


def test_fold_table(paired):
    corpus, lengths = paired
    folds = make_folds(corpus, lengths=lengths)
    rows = fold_table(folds, corpus, lengths)
    assert [r["fold"] for r in rows] == list(range(6))
    r0 = rows[0]
    assert r0["train_trials"] == 40 and r0["val_trials"] == 8
    assert r0["val_frames"] == sum(lengths[n] for n in folds[0]["validation"])
    assert r0["val_subjects"] == 8  # v000..v006 (v002 is carol's) and vp
    text = format_table(rows)
    assert text.splitlines()[0].split()[:2] == ["fold", "train"] and len(text.splitlines()) == 7
    md = format_table(rows, markdown=True)
    assert md.startswith("| fold |") and md.count("\n") == 7


# ---------------------------------------------------------------------------------------------------------------
# written once, reused; the CLI
# ---------------------------------------------------------------------------------------------------------------
@pytest.fixture
def small_corpus(tmp_path) -> Path:
    ann = tmp_path / "corpus" / "6th ABAW Annotations" / "VA_Estimation_Challenge"
    for part, trials in (("Train_Set", names("t", 9) + ["p_left", "p_right"]), ("Validation_Set", names("v", 2))):
        (ann / part).mkdir(parents=True)
        for i, n in enumerate(trials):
            (ann / part / f"{n}.txt").write_text("valence,arousal\n" + "0.1,0.2\n" * (20 + 3 * i))
    return tmp_path / "corpus"


def test_written_atomically_and_reused(small_corpus, tmp_path):
    cfg = load_config("demo").replace(corpus=str(small_corpus), store=str(tmp_path / "store"))
    corpus = find_corpus(small_corpus)
    folds = load_or_make_folds(corpus, cfg)
    path = folds_path(cfg)
    assert path == tmp_path / "store" / "folds.json" and path.is_file()
    assert not [p for p in path.parent.iterdir() if p.name.endswith(".tmp")]
    saved = json.loads(path.read_text())
    assert saved["scheme"] == "subject" and saved["num_folds"] == 6
    assert {int(k): v for k, v in saved["folds"].items()} == folds
    # reused: an edited file is read back as it is, not rebuilt
    saved["folds"]["1"]["validation"] = ["t000"]
    path.write_text(json.dumps(saved))
    mtime = os.stat(path).st_mtime_ns
    assert load_or_make_folds(corpus, cfg)[1]["validation"] == ["t000"]
    assert os.stat(path).st_mtime_ns == mtime


def test_a_folds_file_for_other_settings_is_refused(small_corpus, tmp_path):
    cfg = load_config("demo").replace(corpus=str(small_corpus), folds_file=str(tmp_path / "f.json"))
    corpus = find_corpus(small_corpus)
    load_or_make_folds(corpus, cfg)
    with pytest.raises(RjcmaError, match="'subject' folds but the config asks for 6 'released'"):
        load_or_make_folds(corpus, cfg.replace(fold_scheme="released"))
    extra = small_corpus / "6th ABAW Annotations/VA_Estimation_Challenge/Train_Set/t100.txt"
    extra.write_text("valence,arousal\n0,0\n")
    with pytest.raises(RjcmaError, match="made for other trials .1 new"):
        load_or_make_folds(find_corpus(small_corpus), cfg)
    (tmp_path / "f.json").write_text("{not json")
    with pytest.raises(RjcmaError, match="not a folds file"):
        load_or_make_folds(corpus, cfg)


def test_cli_prints_the_table(small_corpus, tmp_path, capsys):
    p = argparse.ArgumentParser()
    add_folds_arguments(p)
    args = p.parse_args(["--set", f"corpus={small_corpus}", "--set", f"store={tmp_path / 'st'}", "--scheme",
                         "released"])
    assert run_folds(args) == 0
    out = capsys.readouterr().out
    assert "released folds of" in out and "val frames" in out
    assert out.count("\n") >= 8
    assert "p_left" in (tmp_path / "st" / "folds.json").read_text()


def test_cli_error_is_one_line(tmp_path, capsys):
    from rjcma.cli import main

    rc = main(["folds", "--set", f"corpus={tmp_path / 'absent'}"])
    err = capsys.readouterr().err
    assert rc == 2 and "corpus folder not found" in err and err.count("\n") == 1


def test_run_folds_missing_corpus_raises_one_error(tmp_path):
    p = argparse.ArgumentParser()
    add_folds_arguments(p)
    with pytest.raises(RjcmaError, match="corpus folder not found"):
        run_folds(p.parse_args(["--corpus", str(tmp_path / "absent")]))
