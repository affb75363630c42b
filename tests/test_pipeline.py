"""`rjcma preprocess`: store layout and dtypes, alignment to annotation rows, resume, failures, CLI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from rjcma.data.abaw import load_corpus
from rjcma.data.annotations import read_labels
from rjcma.data.store import Store, feature_key
from rjcma.errors import RjcmaError
from rjcma.preprocess import pipeline as P


def test_store_layout_and_dtypes(tiny_store, tiny_cfg):
    store = Store(tiny_store)
    corpus = load_corpus(tiny_cfg)
    assert store.trials() == sorted(t.name for t in corpus.trials)
    for t in corpus.trials:
        meta = store.meta(t.name)
        N = meta["N"]
        if t.annotation is not None:
            labels = read_labels(t.annotation)
            assert N == len(labels)  # N = annotation rows
            np.testing.assert_array_equal(store.load(t.name, "labels"), labels)  # NaN where -5
        else:
            assert np.isnan(store.load(t.name, "labels")).all()
        expect = {
            "faces": (np.uint8, (N, 48, 48, 3)), "face_mask": (np.bool_, (N,)), "logmel": (np.float16, (N, 96, 64)),
            "labels": (np.float32, (N, 2)), feature_key(tiny_cfg, "visual"): (np.float16, (N, 512)),
            feature_key(tiny_cfg, "audio"): (np.float16, (N, 128)), "bert": (np.float16, (N, tiny_cfg.model.text_dim)),
        }
        for key, (dtype, shape) in expect.items():
            a = store.load(t.name, key)
            assert isinstance(a, np.memmap), key  # memory-mapped reads
            assert a.dtype == dtype and a.shape == shape, (t.name, key, a.dtype, a.shape)
            if a.dtype.kind == "f" and key != "labels":
                assert np.isfinite(a.astype(np.float32)).all(), (t.name, key)
        assert meta["complete"] and meta["fps"] > 0
        assert meta["encoders"]["visual"]["sha256"] and meta["encoders"]["audio"]["source"] in ("synthetic-pretrain", "seeded", "weights")
        assert (Path(tiny_store) / t.name / "words.csv").exists()


def test_faces_follow_jpg_names(tiny_store, tiny_cfg):
    """Defect 1 on the demo corpus: mask[k] is True exactly where cropped_aligned has (k+1).jpg."""
    store = Store(tiny_store)
    for t in load_corpus(tiny_cfg).trials:
        if t.faces_dir is None:
            continue
        N = store.meta(t.name)["N"]
        mask = np.asarray(store.load(t.name, "face_mask"))
        assert mask.tolist() == [(Path(t.faces_dir) / f"{k + 1:05d}.jpg").exists() for k in range(N)]
        faces = store.load(t.name, "faces")
        assert not np.asarray(faces[~mask]).any()


def test_shared_video_decoded_once(tiny_store, tiny_cfg):
    corpus = load_corpus(tiny_cfg)
    pairs = [t for t in corpus.trials if t.name.endswith(("_left", "_right"))]
    if len(pairs) < 2:
        pytest.skip("tiny corpus has no _left/_right pair")
    store = Store(tiny_store)
    a, b = pairs[0].name, pairs[1].name
    assert (store.video_dir(pairs[0].video_stem) / "audio.npy").exists()
    assert (Path(tiny_store) / a / "words.csv").read_text() == (Path(tiny_store) / b / "words.csv").read_text()


@pytest.fixture()
def store_copy(tiny_store, tiny_cfg, tmp_path):
    dst = tmp_path / "store"
    shutil.copytree(tiny_store, dst, copy_function=shutil.copy2)
    return tiny_cfg.replace(store=str(dst)), dst


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*.npy")) if "_" != p.parts[len(root.parts)][0]}


def test_rerun_skips_everything(store_copy):
    cfg, dst = store_copy
    before = {p: p.stat().st_mtime_ns for p in dst.rglob("*.npy")}
    r = P.preprocess_corpus(cfg, progress=False)
    assert r.ok and not r.done and len(r.skipped) == len(Store(dst).trials())
    assert before == {p: p.stat().st_mtime_ns for p in dst.rglob("*.npy")}


def test_resume_redoes_only_missing_work(store_copy):
    cfg, dst = store_copy
    store = Store(dst)
    name = store.trials()[0]
    ref = _snapshot(dst)
    (dst / name / "logmel.npy").unlink()  # as if killed before this file was renamed into place
    r = P.preprocess_corpus(cfg, progress=False)
    assert r.ok and r.done == [name]
    meta = store.meta(name)
    assert meta["complete"]
    assert _snapshot(dst) == ref  # identical results


def test_one_failing_trial_does_not_stop_the_others(store_copy, monkeypatch, capsys):
    cfg, dst = store_copy
    store = Store(dst)
    names = store.trials()
    victim = names[-1]
    for n in names:  # force the faces stage to rerun everywhere
        shutil.rmtree(dst / n)
    from rjcma.preprocess import route as R

    real = R.faces_from_folder

    def flaky(faces_dir, n_rows, size=48):
        if Path(faces_dir).name == victim:
            raise RuntimeError("simulated crash")
        return real(faces_dir, n_rows, size)

    monkeypatch.setattr(R, "faces_from_folder", flaky)
    r = P.preprocess_corpus(cfg, progress=False, stages="labels,faces")
    assert not r.ok and list(r.failed) == [victim] and "simulated crash" in r.failed[victim]
    assert sorted(r.done) == sorted(n for n in names if n != victim)
    assert (dst / victim / "labels.npy").exists()  # stages finished before the crash are kept
    monkeypatch.setattr(R, "faces_from_folder", real)
    r2 = P.preprocess_corpus(cfg, progress=False, stages="labels,faces")
    assert r2.ok and r2.done == [victim]  # only the missing work is redone


def test_cli_exit_status_and_errors(store_copy, monkeypatch):
    import argparse

    from rjcma.cli import preprocess as cli_preprocess

    cfg, dst = store_copy
    parser = argparse.ArgumentParser()
    cli_preprocess.add_preprocess_arguments(parser)
    args = parser.parse_args(["--corpus", cfg.data.corpus, "--store", str(dst), "--no-progress",
                              "--set", f"seq_len={cfg.K}", "--set", f"stride={cfg.data.stride}"])
    assert cli_preprocess.run_preprocess(args) == 0
    with pytest.raises(RjcmaError, match="shard"):
        P.preprocess_corpus(cfg, shard="3/2", progress=False)
    with pytest.raises(RjcmaError, match="unknown stage"):
        P.preprocess_corpus(cfg, stages="faces,nose", progress=False)
    monkeypatch.setattr(P, "preprocess_trial", lambda *a, **k: (_ for _ in ()).throw(RjcmaError("x.mp4: broken")))
    assert cli_preprocess.run_preprocess(args) == 1


def test_shards_partition_the_videos(tiny_cfg):
    corpus = load_corpus(tiny_cfg)
    stems = sorted({t.video_stem for t in corpus.trials})
    seen = []
    for i in range(2):
        keys = [k for j, k in enumerate(stems) if j % 2 == i]
        seen += keys
    assert sorted(seen) == stems
    assert P._parse_shard("1/2") == (1, 2)


def test_bad_video_is_reported_with_its_name(tiny_cfg, tmp_path):
    """A corrupt video fails its trial(s) with a message naming the file; other trials are processed."""
    corpus_src = Path(tiny_cfg.data.corpus)
    corpus = tmp_path / "corpus"
    shutil.copytree(corpus_src, corpus)
    vids = sorted(corpus.rglob("*.mp4"))
    vids[-1].write_bytes(vids[-1].read_bytes()[:300])  # truncated
    cfg = tiny_cfg.replace(corpus=str(corpus), store=str(tmp_path / "store"))
    r = P.preprocess_corpus(cfg, progress=False, stages="labels")
    assert not r.ok
    assert all(vids[-1].name in msg for msg in r.failed.values())
    assert r.done  # the other trials went on
