"""The paper profile's end-to-end training as two DDP processes (gloo, CPU), started by ``accelerate launch`` and by
``torchrun`` exactly as the book's Reproducing chapter writes them; each ends with one metrics.json written by the
main process, which records two processes."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import e2e_sets
from rjcma.runtime import cpu_bf16

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "RJCMA_WEIGHTS_DIR"}
    env.update(MPLBACKEND="Agg", TOKENIZERS_PARALLELISM="false", HF_HUB_OFFLINE="1", OMP_NUM_THREADS="1",
               ACCELERATE_DISABLE_RICH="1")
    return env


def _train_args(sets: list[str], run: Path, epochs: int) -> list[str]:
    sets = sets + [f"max_epochs={epochs}"]
    return ["-m", "rjcma.cli", "train", "--profile", "paper", *[a for s in sets for a in ("--set", s)],
            "--run-dir", str(run), "--quiet"]


def _check(run: Path, r: subprocess.CompletedProcess, epochs: int, released: int) -> dict:
    assert r.returncode == 0, (r.stdout[-2000:], r.stderr[-4000:])
    m = json.loads((run / "metrics.json").read_text())
    assert m["processes"] == 2 and m["mode"] == "end2end" and m["epochs"] == epochs
    assert m["released_groups"] == released
    # the paper's bf16 where the CPU has it natively; elsewhere it falls back to float32 (and says so)
    assert m["mixed_precision"] == ("bf16" if cpu_bf16() else "no") and m["fold_scheme"] == "released"
    assert (run / "model.safetensors").is_file() and len(list((run / "predictions").glob("*.csv"))) == 1
    assert not list(run.glob("*.tmp")) and not list(run.glob(".*.tmp"))
    return m


@pytest.mark.slow
def test_ddp_two_processes_with_accelerate_launch(paper_weights, paper_corpus, e2e_store, tmp_path):
    """One epoch: the launcher, the gloo process group and the main-process-only writes. (``--multi_gpu`` makes
    accelerate start the processes on a machine without GPUs; with several GPUs it is the default.)"""
    run = tmp_path / "accelerate"
    cmd = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--main_process_port", str(_free_port()), "--mixed_precision", "bf16", "--dynamo_backend", "no",
           *_train_args(e2e_sets(paper_weights, paper_corpus, e2e_store, tmp_path / "r"), run, 1)]
    _check(run, subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600), 1, 1)


@pytest.mark.slow
def test_ddp_two_processes_with_torchrun(paper_weights, paper_corpus, e2e_store, tmp_path):
    """Three epochs: the schedule releases group 1 after epoch 1 (a new optimizer, the model wrapped in DDP again
    with more trainable parameters), and epoch 2 trains with it across both processes (e2e_cfg in conftest.py)."""
    run = tmp_path / "torchrun"
    cmd = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(_free_port()),
           *_train_args(e2e_sets(paper_weights, paper_corpus, e2e_store, tmp_path / "r"), run, 3)]
    _check(run, subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=600), 3, 2)
