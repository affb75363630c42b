"""The paper profile on CPU with models and data the tests make (see conftest.py of this folder).

Covers: one resolution rule for every model name (explicit path, then ``weights_dir``, then ``$RJCMA_WEIGHTS_DIR``);
the paper profile refusing to run without a punctuation model unless told ``none``; paper-profile preprocessing with
the released IR-50 / torchvggish checkpoint layouts, Vosk, BERT and the punctuation model; end-to-end training in
which all three backbone groups are released, the best state is reloaded, and a run killed (SIGKILL) after a
release resumes to identical metrics; bf16 autocast; the fold scheme in metrics.json.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from conftest import TEXT_DIM, e2e_sets, paper_sets

RJCMA = [sys.executable, "-m", "rjcma.cli"]


def _env(**extra) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RJCMA_WEIGHTS_DIR"}
    env.update(MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="2", **extra)
    return env


def _sets(items: list[str]) -> list[str]:
    return [a for s in items for a in ("--set", s)]


# ---- one resolution rule ------------------------------------------------------------------------------------------
@pytest.mark.slow  # the paper weights (and store) fixtures
def test_every_model_name_resolves_by_one_rule(paper_weights, paper_cfg, tmp_path, monkeypatch):
    from rjcma.assets import resolve_asset
    from rjcma.errors import MissingAssetError
    from rjcma.encoders.build import weights_file
    from rjcma.models import text_encoder
    from rjcma.models.backbones import IR50_FILE, VGGISH_FILE
    from rjcma.preprocess import punctuation, speech

    wd, p = paper_weights, paper_cfg.preprocess
    # the paper profile's bare names, found through --set weights_dir alone ($RJCMA_WEIGHTS_DIR is unset)
    assert "RJCMA_WEIGHTS_DIR" not in os.environ
    assert speech.resolve_backend(p.asr_backend, p.asr_model, p.weights_dir) == ("vosk", str(wd / p.asr_model))
    assert text_encoder.resolve_model_dir(p.text_model, p.weights_dir) == wd / "bert-base-uncased"
    assert punctuation.punctuation_plan(p.punctuation_model, p.weights_dir) == str(wd / p.punctuation_model)
    assert weights_file(paper_cfg, "ir50") == wd / IR50_FILE and weights_file(paper_cfg, "vggish") == wd / VGGISH_FILE

    # order: an explicit path, then weights_dir, then $RJCMA_WEIGHTS_DIR
    other = tmp_path / "env_weights"
    other.mkdir()
    os.symlink(wd / "bert-base-uncased", other / "bert-base-uncased")
    monkeypatch.setenv("RJCMA_WEIGHTS_DIR", str(other))
    assert text_encoder.resolve_model_dir("bert-base-uncased", wd) == wd / "bert-base-uncased"
    assert text_encoder.resolve_model_dir("bert-base-uncased", "") == other / "bert-base-uncased"
    assert text_encoder.resolve_model_dir(str(wd / "bert-base-uncased"), other) == wd / "bert-base-uncased"
    with pytest.raises(MissingAssetError) as e:
        weights_file(paper_cfg.replace(weights_dir=str(tmp_path / "empty")), "ir50")
    msg = str(e.value)
    # one line: the file, every place searched, and where it is obtained
    assert "\n" not in msg and str(tmp_path / "empty" / IR50_FILE) in msg and str(other / IR50_FILE) in msg
    assert "released RJCMA code" in msg
    monkeypatch.delenv("RJCMA_WEIGHTS_DIR")
    with pytest.raises(MissingAssetError, match="weights_dir and \\$RJCMA_WEIGHTS_DIR.*huggingface-cli"):
        punctuation.punctuation_plan("fullstop-punctuation-multilang-large", "")
    with pytest.raises(MissingAssetError, match=str(tmp_path / "nowhere" / "vosk-model-en-us-0.22")):
        speech.resolve_backend("vosk", "vosk-model-en-us-0.22", tmp_path / "nowhere")
    with pytest.raises(MissingAssetError, match="alphacephei"):
        resolve_asset("vosk-model-en-us-0.22", tmp_path, what="Vosk model", hint="see alphacephei")


@pytest.mark.slow  # the paper weights (and store) fixtures
def test_paper_profile_refuses_to_skip_punctuation_silently(paper_weights, paper_corpus, tmp_path, capsys):
    from rjcma.cli import main
    from rjcma.config import load_config
    from rjcma.preprocess.punctuation import punctuation_plan

    assert load_config("paper").preprocess.punctuation_model  # the paper restores punctuation (§4.2.1)
    sets = paper_sets(paper_weights, paper_corpus, tmp_path / "store", tmp_path / "results")
    rc = main(["preprocess", "--profile", "paper", *_sets(sets), "--set", "punctuation_model=", "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and len(err.splitlines()) == 1, err
    assert "punctuation_model" in err and "=none" in err and "huggingface-cli download" in err
    assert not any((tmp_path / "store").glob("*/meta.json"))  # refused before any trial
    rc = main(["preprocess", "--profile", "paper", *_sets(sets), "--set", "punctuation_model=no-such-model",
               "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert rc == 2 and str(paper_weights / "no-such-model") in err
    # told to skip it: allowed, and the reason is recorded
    assert punctuation_plan("none") is None and punctuation_plan("skip", asr_punctuates=False) is None
    assert punctuation_plan("", asr_punctuates=True) is None  # Whisper writes punctuation itself (the demo)


# ---- paper-profile preprocessing ----------------------------------------------------------------------------------
@pytest.mark.slow  # the paper weights (and store) fixtures
def test_paper_profile_preprocessing(paper_store, paper_cfg, paper_weights):
    from rjcma.data.store import Store
    from rjcma.encoders.build import file_sha256
    from rjcma.models.backbones import IR50_FILE, VGGISH_FILE

    store = Store(paper_store)
    trials = store.trials()
    assert len(trials) == 5  # 4 videos, one of them a _left/_right pair
    words_total, punctuated = 0, 0
    for name in trials:
        meta = store.meta(name)
        N = meta["N"]
        enc = meta["encoders"]
        assert enc["visual"]["source"] == "weights" and enc["visual"]["path"] == str(paper_weights / IR50_FILE)
        assert enc["visual"]["sha256"] == file_sha256(paper_weights / IR50_FILE)
        assert enc["audio"]["path"] == str(paper_weights / VGGISH_FILE)
        v, a, t = store.load(name, "ir50"), store.load(name, "vggish"), store.load(name, "bert")
        assert v.shape == (N, 512) and a.shape == (N, 128) and t.shape == (N, TEXT_DIM)
        assert all(x.dtype == np.float16 and np.isfinite(x).all() for x in (v, a, t))
        # the released IR-50 output is L2-normalised: every encoded frame (every 20th, feature_stride) has norm 1
        rows = np.unique(np.r_[np.arange(0, N, paper_cfg.preprocess.feature_stride), N - 1])
        assert np.allclose(np.linalg.norm(v[rows].astype(np.float32), axis=1), 1.0, atol=0.01)
        asr = meta["stages"]["speech"]["asr"] if "stages" in meta and "speech" in meta["stages"] else None
        if asr is not None:
            assert asr["backend"] == "vosk" and asr["model_dir"] == str(paper_weights / "vosk-model-en-us-0.22")
            assert asr["punctuation_model"] == str(paper_weights / "fullstop-punctuation-multilang-large")
        words = store.load(name, "words")
        words_total += len(words)
        punctuated += sum(w.punctuated != w.word for w in words)
    # the Korean Vosk model hears words in espeak-ng's English, and the punctuation model marks some of them
    assert words_total > 0 and punctuated > 0


def test_punctuation_is_not_doubled_on_marked_words():
    """Vosk writes some tokens with brackets (``[4]``); the restored mark is added once, the brackets kept once."""
    from rjcma.data.words import Word
    from rjcma.preprocess.punctuation import realign

    ws = [Word(0, 1, "[4]"), Word(1, 2, "so"), Word(2, 3, "'ok'")]
    assert [w.punctuated for w in realign(ws, [("[4]", ":"), ("so", "0"), ("'ok'", ".")])] == ["[4]:", "so", "'ok'."]


@pytest.mark.slow  # the paper weights (and store) fixtures
def test_paper_folds_are_the_released_chunks(paper_store, paper_cfg):
    """The paper profile's default folds are the released code's name-sorted chunks: fold f = the paper's fold f."""
    from rjcma.data.abaw import load_corpus
    from rjcma.data.folds import _released_chunks, make_folds

    assert paper_cfg.data.fold_scheme == "released"
    corpus = load_corpus(paper_cfg)
    with pytest.warns(UserWarning, match="repeat chunks"):  # 3 train trials for 5 chunks
        folds = make_folds(corpus, "released", 6)
    train = sorted(t.name for t in corpus.partition("train"))
    chunks = _released_chunks(train, 5)
    for f in range(1, 6):
        assert folds[f]["validation"] == sorted(chunks[(len(chunks) - f) % len(chunks)])


# ---- end-to-end training ------------------------------------------------------------------------------------------
def _history(run: Path) -> list[dict[str, str]]:
    with open(run / "history.csv") as f:
        return list(csv.DictReader(f))


def _train_cmd(sets: list[str], run: Path) -> list[str]:
    return [*RJCMA, "train", "--profile", "paper", *_sets(sets), "--run-dir", str(run), "--quiet"]


@pytest.fixture(scope="module")
def e2e_run(paper_weights, paper_corpus, e2e_store, tmp_path_factory):
    """The uninterrupted end-to-end run (a subprocess, like the killed one, so both use the same threads)."""
    results = tmp_path_factory.mktemp("e2e_full")
    sets = e2e_sets(paper_weights, paper_corpus, e2e_store, results)
    run = results / "full"
    r = subprocess.run(_train_cmd(sets, run), env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    return sets, run


@pytest.mark.slow
def test_end2end_releases_every_group_and_reloads_the_best_state(e2e_run, paper_weights):
    import torch
    from safetensors.torch import load_file

    from rjcma.models.backbones import IR50_FILE, VGGISH_FILE

    _sets_, run = e2e_run
    m = json.loads((run / "metrics.json").read_text())
    assert m["mode"] == "end2end" and m["fold_scheme"] == "released" and m["processes"] == 1
    assert m["released_groups"] == 3 and m["epochs"] == 4 and m["best_epoch"] == 0
    events = [r["events"] for r in _history(run)]
    assert events[0].startswith("release:0") and "release:1" in events[1] and "release:2" in events[3]
    assert all("reload" in e for e in events[1:]) and "stop" in events[3]
    losses = [float(r["train_loss"]) for r in _history(run)]
    assert len(set(losses)) > 1  # the backbones and the fusion train inside each epoch

    final = load_file(str(run / "model.safetensors"))
    ir = {k.removeprefix("backbone."): v for k, v in torch.load(paper_weights / IR50_FILE, weights_only=True).items()}
    vg = torch.load(paper_weights / VGGISH_FILE, weights_only=True)

    def vis(k):
        return next(v for n, v in final.items() if n.startswith("encoders.visual") and n.endswith("." + k))

    def aud(k):
        return next(v for n, v in final.items() if n.startswith("encoders.audio") and n.endswith("." + k))

    # the final model is the best state, epoch 0, when only group 0 was trainable: group 0 moved away from the
    # checkpoint, group 1 (IR-50 stage 4, VGGish FC 4096->4096) and the never-released input layer did not,
    # although group 1 trained for two epochs after its release
    assert not torch.equal(vis("output_layer.3.weight"), ir["output_layer.3.weight"])
    assert not torch.equal(aud("embeddings.4.weight"), vg["embeddings.4.weight"])
    assert torch.equal(vis("body.23.res_layer.1.weight"), ir["body.23.res_layer.1.weight"])
    assert torch.equal(aud("embeddings.2.weight"), vg["embeddings.2.weight"])
    assert torch.equal(vis("input_layer.0.weight"), ir["input_layer.0.weight"])


@pytest.mark.slow
def test_end2end_killed_after_a_release_resumes_to_identical_metrics(e2e_run, tmp_path):
    import torch
    from safetensors.torch import load_file

    sets, full = e2e_run
    run = tmp_path / "killed"
    cmd = _train_cmd(sets, run)
    p = subprocess.Popen(cmd, env=_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    killed = False
    try:
        t0 = time.time()
        while time.time() - t0 < 600 and p.poll() is None:
            h = run / "history.csv"
            if h.exists() and any("release:1" in r["events"] for r in _history(run)):
                os.kill(p.pid, signal.SIGKILL)  # the epoch that released group 1 is checkpointed
                p.wait(30)
                killed = True
                break
            time.sleep(0.05)
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(30)
    assert killed and p.returncode == -signal.SIGKILL, "the run ended before the kill"
    assert not (run / "metrics.json").exists()
    st = torch.load(run / "train_state.pt", map_location="cpu", weights_only=True)
    recipe = json.loads(st["recipe"])
    assert recipe["released"] >= 2 and not recipe["stopped"]
    # the release epoch did not improve: it ended by loading the best state back
    assert all(torch.equal(st["model"][k], st["best"][k]) for k in st["best"])

    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    a, b = json.loads((full / "metrics.json").read_text()), json.loads((run / "metrics.json").read_text())
    assert a["metrics"] == b["metrics"] and a["epochs"] == b["epochs"] and a["released_groups"] == 3
    strip = [{k: v for k, v in row.items() if k != "seconds"} for row in _history(full)]
    assert strip == [{k: v for k, v in row.items() if k != "seconds"} for row in _history(run)]
    wa, wb = load_file(str(full / "model.safetensors")), load_file(str(run / "model.safetensors"))
    assert wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.mark.slow
def test_end2end_bf16_autocast(e2e_cfg, e2e_run, tmp_path):
    """The paper profile trains under bf16 autocast (through Accelerate; the e2e runs above). The same first epoch in
    fp32 gives a loss that differs from the bf16 one only in the low digits: autocast was on, and harmless."""
    from rjcma.runtime import cpu_bf16
    from rjcma.train.loop import train_one

    if not cpu_bf16():
        pytest.skip("this CPU has no native bf16: the paper profile's bf16 falls back to float32 here (tested in "
                    "test_loop), and no test computes in emulated bf16")
    _sets_, full = e2e_run
    assert e2e_cfg.train.mixed_precision == "bf16"
    assert json.loads((full / "metrics.json").read_text())["mixed_precision"] == "bf16"
    m = train_one(e2e_cfg.replace(max_epochs=1, mixed_precision="no"), run_dir=tmp_path / "fp32", progress=False,
                  log=lambda *a: None)
    l16 = float(_history(full)[0]["train_loss"])
    l32 = float(_history(tmp_path / "fp32")[0]["train_loss"])
    assert m["mixed_precision"] == "no" and np.isfinite(l16) and l16 != l32 and abs(l16 - l32) < 0.05


def test_table1_names_the_fold_scheme(tmp_path):
    """Table 1 says which partitions 'fold f (ours)' are: the released chunks (comparable with the paper's fold f)
    or the subject-aware folds (not), read from metrics.json."""
    import yaml

    from rjcma import results_tables as rt

    def run(scheme, fold, v):
        d = tmp_path / scheme / "demo" / "cv" / f"r{fold}"
        d.mkdir(parents=True)
        (d / "metrics.json").write_text(json.dumps({
            "profile": "demo", "fold": fold, "fold_scheme": scheme, "fusion": "rjcma", "num_iterations": 3,
            "modalities": ["audio", "visual", "text"], "mode": "cached", "targets": ["valence", "arousal"],
            "metrics": {"valence": {"ccc": v}, "arousal": {"ccc": v}, "mean_ccc": v}, "environment": {}}))
        (d / "config.yaml").write_text(yaml.safe_dump({"data": {"corpus": "c", "fold_scheme": scheme}}))

    for scheme in ("released", "subject"):
        run(scheme, 0, 0.4)
        run(scheme, 1, 0.5)
        t = rt.table1(rt.find_runs(tmp_path / scheme, "demo"))
        assert f"'{scheme}' scheme" in t.title
        assert t.rows[0][0] == "Fold 0 (official)"
        label = {"released": "Fold 1 (released chunks)", "subject": "Fold 1 (subject-aware, not the paper's)"}
        assert t.rows[1][0] == label[scheme] and t.rows[2][0] == "Fold 2"  # no run of fold 2: no claim
        assert ("fold f is the paper's fold f" in t.note) == (scheme == "released")
