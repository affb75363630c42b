"""Interruption: `kill -9` during `rjcma preprocess` and during `rjcma train`, rerun, and the final
store (byte-identical arrays) and metrics (identical numbers) equal an uninterrupted run.

Both commands run as subprocesses; SIGKILL is sent once a marker file shows the run is under way (a stage's array
for preprocessing, the first epoch's training state for training).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

RJCMA = [sys.executable, "-m", "rjcma.cli"]


# a pause after every epoch's checkpoint, added from outside the library (tests/slow_epochs/sitecustomize.py)
SLOW_EPOCHS = {"RJCMA_SLOW_EPOCH_S": "3",
               "PYTHONPATH": os.pathsep.join(filter(None, [str(Path(__file__).parent / "slow_epochs"),
                                                           os.environ.get("PYTHONPATH", "")]))}


def _env(**extra) -> dict[str, str]:
    env = dict(os.environ)
    env.update(MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", **extra)
    return env


def _kill_when(cmd: list[str], marker, env: dict, timeout: float = 240) -> bool:
    """Start ``cmd``; SIGKILL it as soon as ``marker()`` is true. Returns whether it was killed while running."""
    p = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    t0 = time.time()
    try:
        while time.time() - t0 < timeout:
            if p.poll() is not None:
                return False
            if marker():
                os.kill(p.pid, signal.SIGKILL)
                p.wait(30)
                assert p.returncode == -signal.SIGKILL
                return True
            time.sleep(0.05)
        raise AssertionError(f"no marker after {timeout} s: {cmd}")
    finally:
        if p.poll() is None:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(30)


def _link_encoders(src_store: Path, store: Path) -> None:
    """Hard links to the session store's stand-in encoders (a per-store cache); a rebuild in ``store`` would replace
    the links, never the session's files."""
    (store / "_encoders").mkdir(parents=True)
    for f in (src_store / "_encoders").iterdir():
        os.link(f, store / "_encoders" / f.name)


def _sets(cfg, store) -> list[str]:
    return ["--set", f"corpus={cfg.data.corpus}", "--set", f"store={store}", "--set", f"results_dir={cfg.train.results_dir}",
            "--set", f"seq_len={cfg.K}", "--set", f"stride={cfg.data.stride}"]


def _arrays(store: Path, trials: list[str]) -> dict[str, bytes]:
    out = {}
    for t in trials:
        for f in sorted((store / t).iterdir()):
            if not f.name.startswith(".") and f.suffix in (".npy", ".csv"):
                out[f"{t}/{f.name}"] = f.read_bytes()
    return out


def test_kill_during_preprocess_then_rerun_gives_the_same_store(tiny_cfg, tiny_store, tmp_path):
    from rjcma.data.store import Store

    store = tmp_path / "store"
    store.mkdir()
    # the stand-in encoders are a per-store cache that the uninterrupted run already built: reuse them
    _link_encoders(Path(tiny_store), store)
    cmd = [*RJCMA, "preprocess", *_sets(tiny_cfg, store), "--shard", "1/4", "--no-progress"]  # one video
    killed = _kill_when(cmd, lambda: any(store.glob("*/logmel.npy")), _env())
    assert killed, "preprocessing finished before it could be interrupted"
    assert not Store(store).trials()  # it really stopped part-way: the trial is not complete
    r = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    done = Store(store).trials()
    assert done, r.stdout
    want = _arrays(Path(tiny_store), done)
    got = _arrays(store, done)
    assert sorted(got) == sorted(want)
    for k in want:
        assert got[k] == want[k], f"{k} differs from the uninterrupted run"
    for t in done:
        assert Store(store).meta(t)["complete"] is True


def _numbers(m: dict) -> dict:
    return {k: m[k] for k in ("metrics", "best_epoch", "epochs", "stop_reason", "config_hash")}


def _history(run: Path) -> list[str]:
    return [r.rsplit(",", 1)[0] for r in (run / "history.csv").read_text().splitlines()]  # without the seconds


def test_kill_during_train_then_rerun_gives_the_same_metrics(tiny_cfg, tiny_store, tmp_path):
    """Run A uninterrupted; run B killed with SIGKILL after its first checkpoint, then rerun: it resumes, and its
    numbers, history and weights are A's. Four epochs with a warm-up epoch and no plateau patience, so the resumed
    part crosses the warm-up's end and the schedule's steps."""
    sets = [*_sets(tiny_cfg, tiny_store), "--set", "max_epochs=4", "--set", "early_stop=10", "--set", "warmup_epochs=1",
            "--set", "plateau_patience=0", "--set", "device=cpu", "--fold", "0"]
    env = _env(OMP_NUM_THREADS="1")
    ref, cut = tmp_path / "reference", tmp_path / "interrupted"
    r = subprocess.run([*RJCMA, "train", *sets, "--quiet", "--run-dir", str(ref)], env=env, capture_output=True,
                       text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    cmd = [*RJCMA, "train", *sets, "--quiet", "--run-dir", str(cut)]
    killed = _kill_when(cmd, lambda: (cut / "train_state.pt").exists(), dict(env, **SLOW_EPOCHS))
    assert killed, "training finished before it could be interrupted"
    assert (cut / "train_state.pt").exists() and not (cut / "metrics.json").exists()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout + r.stderr
    resumed = re.search(r"resuming after epoch (\d+)", r.stdout + r.stderr)
    assert resumed, r.stdout + r.stderr
    a = json.loads((ref / "metrics.json").read_text())
    b = json.loads((cut / "metrics.json").read_text())
    assert _numbers(a) == _numbers(b)
    assert int(resumed.group(1)) < a["epochs"] - 1, "the rerun trained no epoch after resuming"
    assert _history(ref) == _history(cut)
    from safetensors.torch import load_file

    wa, wb = load_file(str(ref / "model.safetensors")), load_file(str(cut / "model.safetensors"))
    assert sorted(wa) == sorted(wb) and all(wa[k].equal(wb[k]) for k in wa)
