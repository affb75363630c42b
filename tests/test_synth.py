"""The demo corpus generator (`rjcma synth`): organisers' layout, real mp4 files, determinism, design.

Most checks run on the shared ``tiny_corpus`` fixture (4 videos × ~6 s, seed 1); one more tiny corpus is written
for the determinism check.
"""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest

from rjcma.data.synth import synthesize
from rjcma.data.synth.design import WORD_TAU
from rjcma.data.synth.layout import TRUTH_DIR, TRUTH_JSON, VIDEOS_DIR
from rjcma.data.synth.plan import plan_corpus
from rjcma.data.synth.truth import read_truth, read_truth_trial
from rjcma.errors import RjcmaError
from rjcma.layout import ANNOTATIONS_DIR, CROP, FACES_DIR, SUBJECT_MAP_NAME, TEST_LIST_DIR, TEST_LIST_NAME, VA_DIR

ANN = Path(ANNOTATIONS_DIR) / VA_DIR
TEST_LIST = Path(TEST_LIST_DIR) / TEST_LIST_NAME


def _labels(path: Path) -> tuple[str, np.ndarray]:
    lines = path.read_text().splitlines()
    return lines[0], np.array([[float(x) for x in line.split(",")] for line in lines[1:]])


def _annotations(root: Path) -> dict[str, Path]:
    out = {}
    for part in ("Train_Set", "Validation_Set"):
        for p in sorted((root / ANN / part).glob("*.txt")):
            out[p.stem] = p
    return out


def _truth(root: Path) -> dict:
    return json.loads((root / TRUTH_JSON).read_text())


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


# ---- layout ---------------------------------------------------------------------------------------------------
def test_layout_partitions_and_test_list(tiny_corpus: Path):
    root = tiny_corpus
    train = sorted(p.stem for p in (root / ANN / "Train_Set").glob("*.txt"))
    val = sorted(p.stem for p in (root / ANN / "Validation_Set").glob("*.txt"))
    test = (root / TEST_LIST).read_text().split()
    assert len(train) >= 1 and len(val) >= 1 and len(test) == 1
    assert not set(train) & set(val) and not set(test) & set(train + val)
    videos = {p.stem for p in (root / VIDEOS_DIR).glob("*.mp4")}
    assert len(videos) == 4
    for name in train + val + test:
        stem = re.sub(r"_(left|right)$", "", name)
        assert stem in videos, f"no video for {name}"
        assert (root / FACES_DIR / name).is_dir(), f"no face folder for {name}"
    # test trials have video and crops but no annotations anywhere
    assert not list(root.rglob(f"{test[0]}.txt"))
    assert list((root / FACES_DIR / test[0]).glob("*.jpg"))
    # subject map covers every trial, written as "trial,subject"
    rows = list(csv.reader((root / SUBJECT_MAP_NAME).open()))
    assert rows[0] == ["trial", "subject"]
    assert sorted(r[0] for r in rows[1:]) == sorted(train + val + test)


def test_left_right_pair(tiny_corpus: Path):
    ann = _annotations(tiny_corpus)
    left = [n for n in ann if n.endswith("_left")]
    assert len(left) == 1
    stem = left[0][: -len("_left")]
    assert f"{stem}_right" in ann
    assert (tiny_corpus / VIDEOS_DIR / f"{stem}.mp4").is_file()
    assert not (tiny_corpus / VIDEOS_DIR / f"{stem}_left.mp4").exists()
    for side in ("left", "right"):
        assert list((tiny_corpus / FACES_DIR / f"{stem}_{side}").glob("*.jpg"))
    _, a = _labels(ann[f"{stem}_left"])
    _, b = _labels(ann[f"{stem}_right"])
    assert a.shape == b.shape and not np.allclose(a, b), "the two subjects must have their own labels"


def test_shared_audio_words_follow_the_quieter_subject_less(tmp_path: Path):
    """The data chapter's table of the two-subject video: the words heard (one audio track, both speakers) follow the
    subject who speaks less far worse than they follow a single subject's own words, and the table's rows say so.
    Trials of the demo's length and seed (the tiny corpus's 6 s trials may hold no valence adjective at all)."""
    from rjcma.config import load_config
    from rjcma.lessons.data import shared_audio_cues

    book = load_config("demo").book
    corpus = synthesize(tmp_path / "c", videos=4, seconds=book.demo_seconds, seed=book.demo_seed, progress=False)
    header, rows, values = shared_audio_cues(corpus)
    pair = sorted(k for k in values if k != "single")
    assert len(pair) == 2 and all(k.endswith(("_left", "_right")) for k in pair), values
    speaks = {r[0]: float(r[2].rstrip("%")) for r in rows if r[0] in values}
    quiet, talker = sorted(pair, key=lambda k: speaks[k])
    assert speaks[quiet] < speaks[talker]
    assert values[quiet] < values["single"] - 0.2 and values[quiet] < values[talker], values
    assert rows[-1][-1] == f"{values['single']:.2f}" and len(header) == len(rows[0])
    assert shared_audio_cues(tmp_path / "no such corpus") is None


def test_annotation_files(tiny_corpus: Path):
    starts, middles = 0, 0
    for name, path in _annotations(tiny_corpus).items():
        header, lab = _labels(path)
        assert header == "valence,arousal"
        assert lab.shape[1] == 2 and len(lab) > 50
        invalid = (lab == -5).all(1)
        assert ((lab == -5).any(1) == invalid).all(), f"{name}: -5 must mark both columns"
        v = lab[~invalid]
        assert np.abs(v).max() <= 1.0 and v.std(0).min() > 0.01
        starts += bool(invalid[0])
        inner = invalid.copy()
        if invalid[0]:
            inner[: np.argmin(invalid)] = False
        middles += bool(inner.any())
    assert starts >= 1, "one trial must start with a run of -5 rows"
    assert middles >= 1, "some trial must have -5 rows in the middle"


def test_face_crops_one_based_with_gaps(tiny_corpus: Path):
    import cv2

    ann = _annotations(tiny_corpus)
    truth = {t["name"]: t for v in _truth(tiny_corpus)["videos"] for t in v["trials"]}
    missing_total = 0
    for name, path in ann.items():
        n = len(_labels(path)[1])
        files = sorted((tiny_corpus / FACES_DIR / name).iterdir())
        assert all(re.fullmatch(r"\d{5}\.jpg", f.name) for f in files)
        idx = [int(f.stem) for f in files]
        assert min(idx) >= 1 and max(idx) <= n, "jpgs are 1-based: 00001.jpg is annotation row 0"
        missing = n - len(idx)
        assert missing == truth[name]["missing_jpgs"]
        missing_total += missing
        img = cv2.imread(str(files[0]))
        assert img.shape == (CROP, CROP, 3)
    assert missing_total > 0, "a few frames must have no jpg (face turned away/occluded)"


def test_missing_jpgs_are_frames_without_a_face(tiny_corpus: Path):
    """The truth table marks turned-away/occluded frames; exactly those rows have no jpg."""
    for name in _annotations(tiny_corpus):
        with (tiny_corpus / TRUTH_DIR / f"{name}.csv").open() as f:
            ev = np.array([int(r["face_event"]) for r in csv.DictReader(f)])
        have = {int(p.stem) - 1 for p in (tiny_corpus / FACES_DIR / name).glob("*.jpg")}
        assert have == set(np.flatnonzero(ev == 0).tolist())


# ---- videos (ffprobe-level, with PyAV) ---------------------------------------------------------------------------
def test_mp4_streams_fps_and_lengths(tiny_corpus: Path):
    import av

    ann = _annotations(tiny_corpus)
    rows = {re.sub(r"_(left|right)$", "", n): len(_labels(p)[1]) for n, p in ann.items()}
    rates = set()
    for mp4 in sorted((tiny_corpus / VIDEOS_DIR).glob("*.mp4")):
        with av.open(str(mp4)) as c:
            assert c.format.name.startswith("mov"), mp4
            v, a = c.streams.video[0], c.streams.audio[0]
            assert v.codec_context.name == "h264" and a.codec_context.name == "aac"
            fps = float(v.average_rate)
            assert 25 <= fps <= 30
            rates.add(round(fps, 2))
            n_frames = sum(1 for _ in c.decode(video=0))
            v_dur = n_frames / fps
        with av.open(str(mp4)) as c:
            a = c.streams.audio[0]
            n_samples = sum(fr.samples for fr in c.decode(audio=0))
            a_dur = n_samples / a.codec_context.sample_rate
        assert abs(a_dur - v_dur) < 0.1, f"{mp4.name}: audio {a_dur:.3f} s vs video {v_dur:.3f} s"
        if mp4.stem in rows:
            assert n_frames == rows[mp4.stem], f"{mp4.name}: decoded frames != annotation rows"
    assert len(rates) >= 2, f"frame rates should differ across videos, got {rates}"


def test_reader_sees_the_same_corpus(tiny_corpus: Path):
    from rjcma.data.abaw import find_corpus
    from rjcma.data.annotations import read_labels

    corpus = find_corpus(tiny_corpus, subject_map=tiny_corpus / SUBJECT_MAP_NAME)
    parts = {p: len(corpus.partition(p)) for p in ("train", "validation", "test")}
    assert parts["train"] >= 3 and parts["validation"] >= 1 and parts["test"] == 1
    pair = [t for t in corpus.trials if t.name.endswith(("_left", "_right"))]
    assert len(pair) == 2 and pair[0].video == pair[1].video and pair[0].video is not None
    unannotated = 0
    for t in corpus.trials:
        assert t.video is not None and t.faces_dir is not None
        if t.annotation is not None:
            lab = read_labels(t.annotation)
            _, raw = _labels(t.annotation)  # the file's numbers, read plainly
            assert lab.dtype == np.float32
            np.testing.assert_array_equal(lab, np.where(raw == -5, np.nan, raw).astype(np.float32))
            unannotated += int(np.isnan(lab).any(axis=1).sum())
    assert unannotated > 0, "the generator writes runs of -5 rows; the reader must turn them into NaN"


# ---- design and truth ---------------------------------------------------------------------------------------------
def test_truth_file_and_ceilings(tiny_corpus: Path):
    truth = _truth(tiny_corpus)
    assert truth["generator"]["seed"] == 1
    designed = truth["designed_ceiling_ccc"]
    for target, parts in designed.items():
        singles = [v for k, v in parts.items() if k != "all"]
        assert parts["all"] < 1.0 and parts["all"] > max(singles) + 0.15, f"{target} must need two modalities"
    measured = truth["measured_ceiling_ccc"]
    for target in ("valence", "arousal"):
        m = measured[target]
        assert 0 < m["all"] < m["oracle_latent"] < 1.0
        assert m["all"] >= max(m["visual"], m["audio"], m["text"]) - 1e-6
        assert set(truth["measured_ceiling_ccc_validation"][target]) == set(m)


def test_labels_follow_the_latent_with_lag(tiny_corpus: Path):
    """The written label is the latent delayed by the annotator's lag (plus small noise), not the latent itself."""
    truth = {t["name"]: t for v in _truth(tiny_corpus)["videos"] for t in v["trials"]}
    name = next(iter(_annotations(tiny_corpus)))
    with (tiny_corpus / TRUTH_DIR / f"{name}.csv").open() as f:
        rows = list(csv.DictReader(f))
    t = np.array([float(r["time"]) for r in rows])
    lat = np.array([float(r["valence_latent"]) for r in rows])
    lab = np.array([float(r["valence"]) for r in rows])
    lag = truth[name]["annotator_lag_s"]
    delayed = np.interp(t - lag, t, lat)
    ok = t > lag + 0.1
    err_delayed = np.abs(np.clip(delayed, -1, 1) - lab)[ok].mean()
    err_now = np.abs(np.clip(lat, -1, 1) - lab)[ok].mean()
    assert err_delayed < 0.06 and err_delayed < err_now


def test_lexicon_words_follow_the_intended_word_parts(tiny_corpus: Path):
    """Spoken adjectives are picked from the valence x arousal lexicon by the levels of the intended word parts at
    the time they are said; the truth file keeps the reference transcript with (estimated) word times."""
    truth = _truth(tiny_corpus)
    lex = {w: tuple(float(x) for x in cell.split(",")) for cell, ws in truth["design"]["lexicon"].items() for w in ws}
    levels, w_at = [], []
    for v in truth["videos"]:
        spoken = " ".join(u["text"] for u in v["utterances"]).replace(",", "").replace(".", "").split()
        assert [w["word"] for w in v["words"]] == spoken
        cache: dict[str, dict] = {}
        for w in v["words"]:
            if w["valence_level"] is None:
                assert w["word"] not in lex and w["arousal_level"] is None
                continue
            assert lex[w["word"]] == (w["valence_level"], w["arousal_level"])
            if w["speaker"] not in cache:
                with (tiny_corpus / TRUTH_DIR / f"{w['speaker']}.csv").open() as f:
                    rows = list(csv.DictReader(f))
                cache[w["speaker"]] = {k: np.array([float(r[k]) for r in rows])
                                       for k in ("time", "words_intent", "words_a_intent")}
            c = cache[w["speaker"]]
            t_mid = 0.5 * (w["start"] + w["end"])
            levels.append((w["valence_level"], w["arousal_level"]))
            w_at.append((np.interp(t_mid, c["time"], c["words_intent"]),
                         np.interp(t_mid, c["time"], c["words_a_intent"])))
    assert len(levels) >= 10
    levels, w_at = np.array(levels), np.array(w_at)
    # quantisation (5 and 3 levels) and estimated word times keep these below 1
    assert np.corrcoef(levels[:, 0], w_at[:, 0])[0, 1] > 0.7
    assert np.corrcoef(levels[:, 1], w_at[:, 1])[0, 1] > 0.6


def test_label_word_parts_are_the_spoken_adjectives(tiny_corpus: Path):
    """The word parts in the labels are what each subject said (generator v6): the level of the last adjective that
    subject finished, held and low-passed (WORD_TAU), up to the corpus z-score; the partner's words do not count."""
    import math

    truth = _truth(tiny_corpus)
    checked = 0
    for v in truth["videos"]:
        for tr in v["trials"]:
            with (tiny_corpus / TRUTH_DIR / f"{tr['name']}.csv").open() as f:
                rows = list(csv.DictReader(f))
            c = {k: np.array([float(r[k]) for r in rows]) for k in ("time", "words", "words_a", "words_intent")}
            t = c["time"]
            a = math.exp(-(t[1] - t[0]) / WORD_TAU)
            for part, key in (("words", "valence_level"), ("words_a", "arousal_level")):
                held = np.zeros(len(t))
                for w in v["words"]:
                    if w["speaker"] == tr["name"] and w[key] is not None:
                        held[t >= w["end"]] = w[key]
                if held.std() == 0:
                    continue
                lowpassed, acc = np.zeros(len(t)), 0.0
                for k, x in enumerate(held):
                    acc = a * acc + (1 - a) * x
                    lowpassed[k] = acc
                # the lag state before frame 0 is not in the truth file: compare from 3 lag times on
                ok = t > 3 * WORD_TAU
                assert np.corrcoef(lowpassed[ok], c[part][ok])[0, 1] > 0.99, (tr["name"], part)
                checked += 1
            assert not np.allclose(c["words"], c["words_intent"])
    assert checked >= 4


# ---- determinism, arguments, CLI --------------------------------------------------------------------------------
def test_same_seed_same_bytes(tiny_corpus: Path, tmp_path: Path):
    """Same seed → identical labels, jpgs, truth files and (same FFmpeg/x264 build) mp4 bytes, serial or parallel;
    a new seed differs."""
    g = _truth(tiny_corpus)["generator"]
    # rendered by two worker processes this time: the output must not depend on it
    again = synthesize(tmp_path / "again", videos=g["videos"], seconds=g["seconds"], seed=g["seed"],
                       progress=False, workers=2)
    a, b = _all_files(tiny_corpus), _all_files(again)
    assert sorted(a) == sorted(b)
    differ = [k for k in a if a[k] != b[k]]
    assert not differ, f"not reproducible: {differ[:5]}"
    # a rerun into a finished corpus with the same arguments does nothing
    stamp = (again / TRUTH_JSON).stat().st_mtime_ns
    synthesize(again, videos=g["videos"], seconds=g["seconds"], seed=g["seed"], progress=False)
    assert (again / TRUTH_JSON).stat().st_mtime_ns == stamp
    # another seed gives other latents (planning only; rendering is what the comparison above covers)
    a1 = plan_corpus(g["videos"], g["seconds"], g["seed"])[1].trials[0].latents["valence"]
    a2 = plan_corpus(g["videos"], g["seconds"], g["seed"])[1].trials[0].latents["valence"]
    b = plan_corpus(g["videos"], g["seconds"], g["seed"] + 1)[1].trials[0].latents["valence"]
    assert np.array_equal(a1, a2) and (a1.shape != b.shape or not np.allclose(a1, b))


def test_bad_arguments(tmp_path: Path):
    with pytest.raises(RjcmaError, match="videos"):
        synthesize(tmp_path / "x", videos=3, seconds=6.0, seed=1, progress=False)
    with pytest.raises(RjcmaError, match="seconds"):
        synthesize(tmp_path / "x", videos=4, seconds=1.0, seed=1, progress=False)
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "thesis.tex").write_text("mine")
    with pytest.raises(RjcmaError, match="not a demo corpus"):
        synthesize(tmp_path / "busy", videos=4, seconds=2.0, seed=1, progress=False)
    assert (tmp_path / "busy" / "thesis.tex").read_text() == "mine"


def test_cli_arguments_and_one_line_error(tmp_path: Path):
    import argparse

    from rjcma.cli.data import add_synth_arguments, run_synth

    parser = argparse.ArgumentParser(prog="rjcma synth")
    add_synth_arguments(parser)
    args = parser.parse_args(["--out", str(tmp_path / "c"), "--videos", "2"])
    assert (args.videos, args.seconds, args.seed) == (2, 24.0, 7)
    with pytest.raises(RjcmaError) as e:
        run_synth(args)
    assert "\n" not in str(e.value) and "--videos must be >= 4" in str(e.value)
    assert not (tmp_path / "c").exists(), "nothing is written for bad arguments"


def test_design_figures(tiny_corpus: Path):
    from rjcma.figures import data as figures

    truth = read_truth(tiny_corpus)
    name = next(iter(_annotations(tiny_corpus)))
    fig = figures.synth_signal_design(read_truth_trial(tiny_corpus, name), truth["design"], title=name)
    assert len(fig.axes) == 2 and all(ax.lines for ax in fig.axes)
    fig2 = figures.synth_ceilings(truth)
    assert len(fig2.axes) == 2
    with pytest.raises(RjcmaError, match="rjcma synth"):
        read_truth_trial(tiny_corpus, "no-such-trial")


def test_modalities_carry_complementary_parts(tiny_corpus: Path):
    """By design no modality holds more than a part of a target, and all three together hold much more; the R² of the
    labels from each modality's parts is recorded per corpus and a bigger set of parts never explains less."""
    truth = _truth(tiny_corpus)
    designed, measured = truth["designed_explained_variance"], truth["explained_variance"]
    for target in ("valence", "arousal"):
        singles = [designed[target][m] for m in ("visual", "audio", "text")]
        assert max(singles) <= 0.4 and designed[target]["all"] >= max(singles) + 0.35, target
        m = measured[target]
        assert 0 < m["all"] < 1 and all(m["all"] >= m[k] - 1e-9 for k in ("visual", "audio", "text")), target
    assert measured["valence"]["audio"] < 0.1, "the voice carries no valence part"
    assert set(truth["design"]["modalities"]) == {"visual", "audio", "text"}


def test_the_face_does_not_show_the_voices_arousal_part(tiny_corpus: Path):
    """The voice's arousal part P is heard, not seen: speaking rate and pauses are drawn per utterance (not from P),
    and the mouth follows the speech before its loudness gain, so within a trial the mouth opening while the subject
    speaks barely follows P (up to version 6 rate, pauses and mouth all followed P)."""
    truth = _truth(tiny_corpus)
    utts = [u for v in truth["videos"] for u in v["utterances"]]
    speed_r = np.corrcoef([u["speed_wpm"] for u in utts], [u["prosody"] for u in utts])[0, 1]
    assert abs(speed_r) < 0.6, f"speaking rate follows P (r = {speed_r:.2f})"
    rs = []
    for v in truth["videos"]:
        for tr in v["trials"]:
            with (tiny_corpus / TRUTH_DIR / f"{tr['name']}.csv").open() as f:
                rows = list(csv.DictReader(f))
            mouth, p, speaking = (np.array([float(r[k]) for r in rows]) for k in ("mouth", "prosody", "speaking"))
            sel = (speaking > 0) & (mouth > 0.05)
            if sel.sum() > 20:
                rs.append(np.corrcoef(mouth[sel], p[sel])[0, 1])
    assert rs and abs(float(np.mean(rs))) < 0.25, f"the mouth follows P (mean within-trial r = {np.mean(rs):.2f})"
