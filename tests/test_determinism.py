"""The same numbers on every run: preprocessing and training give the same bytes on one machine, however many
worker processes and threads run them.

The stages run in separate processes, as `make book` runs them: run A with 2 threads and one process at a time,
run B with 1 thread and two worker processes, A and B side by side. Compared: every ``.npy`` and ``.csv`` of the
two stores (words.csv, labels, faces, log-mel, text and frozen-encoder features), then the cross-validation result
folders trained on them with ``--jobs 1`` and ``--jobs 2`` (metrics, per-frame predictions, weights).
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

TINY = ["--set", "seq_len=32", "--set", "stride=16", "--set", "max_epochs=2", "--set", "early_stop=2"]


def _rjcma_side_by_side(commands: list[tuple[list[str], int]]) -> None:
    """Run every ``(args, threads)`` as its own `rjcma` process, all at once, and wait for them all (the runs share
    nothing but the corpus they read; each still computes with its own thread count)."""
    procs = []
    for args, threads in commands:
        env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads), HF_HUB_OFFLINE="1",
                   TRANSFORMERS_OFFLINE="1", TOKENIZERS_PARALLELISM="false")
        procs.append((args, subprocess.Popen([sys.executable, "-m", "rjcma.cli", *args], env=env, text=True,
                                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)))
    failed = []
    for args, p in procs:
        try:
            out, err = p.communicate(timeout=900)
        except subprocess.TimeoutExpired:
            p.kill()
            out, err = p.communicate()
        if p.returncode != 0:
            failed.append(f"rjcma {' '.join(args)} failed:\n{out[-2000:]}\n{err[-3000:]}")
    assert not failed, "\n".join(failed)


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """(store, results) of run A (2 threads, 1 process) and run B (1 thread, 2 worker processes)."""
    from rjcma.data.synth import synthesize

    root = tmp_path_factory.mktemp("determinism")
    corpus = Path(synthesize(root / "corpus", videos=4, seconds=4.0, seed=5, progress=False))
    runs, preprocess, cv = {}, [], []
    for name, threads, workers in (("a", 2, 1), ("b", 1, 2)):
        store, results = root / f"store_{name}", root / f"results_{name}"
        common = ["--profile", "demo", "--set", f"corpus={corpus}", "--set", f"store={store}"]
        preprocess.append((["preprocess", *common, "--workers", str(workers), "--no-progress"], threads))
        cv.append((["cv", *common, "--set", f"results_dir={results}", *TINY, "--folds", "0,1", "--jobs", str(workers),
                    "--quiet"], threads))
        runs[name] = (store, results / "demo" / "cv")
    _rjcma_side_by_side(preprocess)  # runs A and B at the same time: each is a process of its own either way
    _rjcma_side_by_side(cv)
    return runs


def _files(root: Path, suffixes: tuple[str, ...]) -> dict[str, Path]:
    return {str(p.relative_to(root)): p for p in sorted(root.rglob("*")) if p.is_file() and p.suffix in suffixes}


@pytest.mark.slow
def test_stores_are_the_same_bytes(two_runs):
    (sa, _), (sb, _) = two_runs["a"], two_runs["b"]
    fa, fb = _files(sa, (".npy", ".csv", ".safetensors")), _files(sb, (".npy", ".csv", ".safetensors"))
    assert sorted(fa) == sorted(fb)
    kinds = {Path(k).name for k in fa}
    assert {"words.csv", "labels.npy", "faces.npy", "logmel.npy", "bert.npy"} <= kinds, kinds
    assert any(Path(k).parent.name == "_encoders" for k in fa), "no encoder weights in the store"
    words = [p for k, p in fa.items() if Path(k).name == "words.csv" and "_videos" not in k]
    assert sum(len(p.read_text().splitlines()) - 1 for p in words) > 0, "no words recognised: nothing compared"
    differ = [k for k in fa if fa[k].read_bytes() != fb[k].read_bytes()]
    assert not differ, f"{len(differ)} of {len(fa)} store files differ between the runs, e.g. {differ[:5]}"


def _history(p: Path) -> list[dict[str, str]]:
    return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(p.open())]


@pytest.mark.slow
def test_training_gives_the_same_numbers_with_one_or_two_jobs(two_runs):
    (_, ra), (_, rb) = two_runs["a"], two_runs["b"]
    runs = sorted(d.name for d in ra.iterdir() if (d / "metrics.json").is_file())
    assert len(runs) == 2 and runs == sorted(d.name for d in rb.iterdir() if (d / "metrics.json").is_file())
    for run in runs:
        ma, mb = (json.loads((r / run / "metrics.json").read_text()) for r in (ra, rb))
        for k in ("metrics", "best_epoch", "epochs", "stop_reason", "train_windows", "config_hash"):
            assert ma[k] == mb[k], f"{run}: {k} differs between --jobs 1 and --jobs 2"
        # every run computed with train.threads (1) threads, whether alone with 2 cores or as one of two workers
        assert ma["environment"]["threads"] == mb["environment"]["threads"] == 1
        assert (ra / run / "model.safetensors").read_bytes() == (rb / run / "model.safetensors").read_bytes()
        assert _history(ra / run / "history.csv") == _history(rb / run / "history.csv")
        preds = sorted((ra / run / "predictions").glob("*.csv"))
        assert preds
        for p in preds:
            assert p.read_bytes() == (rb / run / "predictions" / p.name).read_bytes(), f"{run}: {p.name} differs"
    for summary in ("summary.json", "summary.csv"):
        a, b = (ra / summary).read_text(), (rb / summary).read_text()
        assert a.replace(str(ra.parents[1]), "") == b.replace(str(rb.parents[1]), ""), summary


# ---- the pinned sources of variation, checked directly (fast) --------------------------------------------------
def test_whisper_decodes_without_sampling(monkeypatch):
    """faster-whisper's default temperature fallback samples from an unseeded generator; decoding must not."""
    import numpy as np

    from rjcma.preprocess import speech

    seen: dict = {}

    class FakeModel:
        class model:
            is_multilingual = False

        def transcribe(self, x, **kw):
            seen.update(kw)
            return iter(()), None

    monkeypatch.setattr(speech, "load_whisper_model", lambda *a, **k: FakeModel())
    speech._transcribe_whisper(np.zeros(16000, np.float32), "unused", "cpu", None, 5)
    t = seen["temperature"]
    assert all(float(v) == 0.0 for v in (t if isinstance(t, (list, tuple)) else [t])), t


def test_stand_in_build_runs_with_fixed_threads(monkeypatch):
    import torch

    from rjcma.encoders import standins

    seen = []
    monkeypatch.setattr(standins, "_make_stand_in", lambda *a: seen.append(torch.get_num_threads()) or "built")
    before = torch.get_num_threads()
    for n in (1, 3):
        torch.set_num_threads(n)
        assert standins.make_stand_in("vggish", "seeded", 0) == "built"
        assert torch.get_num_threads() == n
    torch.set_num_threads(before)
    assert seen == [standins.STAND_IN_THREADS] * 2


def test_training_threads_are_pinned_and_restored():
    import torch

    from rjcma.runtime import fixed_threads

    before = torch.get_num_threads()
    with fixed_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    with fixed_threads(0):
        assert torch.get_num_threads() == before


def test_safetensors_files_are_the_same_bytes_in_every_process(tmp_path):
    """safetensors writes its metadata in a per-process hash order; our writer sorts it (weights files and their
    SHA-256 then repeat)."""
    code = ("import sys, torch; from rjcma.io import save_safetensors as save_file; "
            "save_file({'w': torch.arange(6.).reshape(2, 3), 'b': torch.zeros(3)}, sys.argv[1], "
            "{'encoder': 'ir50', 'init': 'seeded', 'seed': '0', 'version': '3', 'format': 'pt'})")
    files = [tmp_path / f"{i}.safetensors" for i in range(3)]
    for f in files:
        subprocess.run([sys.executable, "-c", code, str(f)], check=True, timeout=120)
    assert len({f.read_bytes() for f in files}) == 1
    from safetensors import safe_open

    with safe_open(str(files[0]), "pt") as fh:
        assert fh.metadata()["version"] == "3" and fh.get_tensor("w")[1, 2] == 5.0
