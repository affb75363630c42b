"""Reproducibility: the same seed gives identical demo metrics on CPU, and every result folder records
what produced it (config.yaml, the environment, the config hash, the git hash)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def two_runs(tiny_cfg, tiny_store, tmp_path_factory):
    """Two short trainings (2 epochs: the second starts from the reloaded best state) of the same config and seed
    into different result folders."""
    from rjcma.train.loop import train_one

    runs = []
    for name in ("a", "b"):
        results = tmp_path_factory.mktemp(f"repro_{name}")
        cfg = tiny_cfg.replace(results_dir=str(results), max_epochs=2, early_stop=2, device="cpu")
        metrics = train_one(cfg, run_dir=results / "run", progress=False, log=lambda *a: None)
        runs.append((cfg, results / "run", metrics))
    return runs


def _numbers(m: dict) -> dict:
    keep = ("metrics", "best_epoch", "epochs", "stop_reason", "targets", "train_windows", "config_hash")
    return {k: m[k] for k in keep}


def test_same_seed_gives_identical_metrics(two_runs):
    (_, da, ma), (_, db, mb) = two_runs
    assert _numbers(ma) == _numbers(mb)
    assert _numbers(json.loads((da / "metrics.json").read_text())) == _numbers(
        json.loads((db / "metrics.json").read_text()))
    assert np.isfinite(ma["metrics"]["mean_ccc"])
    # the per-frame predictions and the weights are the same bytes too
    for p in sorted((da / "predictions").glob("*.csv")):
        assert p.read_bytes() == (db / "predictions" / p.name).read_bytes()
    from safetensors.torch import load_file

    wa, wb = load_file(str(da / "model.safetensors")), load_file(str(db / "model.safetensors"))
    assert sorted(wa) == sorted(wb)
    assert all(wa[k].equal(wb[k]) for k in wa)


def test_another_seed_gives_other_numbers(two_runs, tmp_path):
    """Only the seed differs from the two runs above (same epochs, same data): the numbers must change."""
    from rjcma.train.loop import train_one

    cfg, _, m = two_runs[0]
    other = train_one(cfg.replace(seed=cfg.train.seed + 1, results_dir=str(tmp_path)),
                      run_dir=tmp_path / "run", progress=False, log=lambda *a: None)
    assert other["epochs"] == m["epochs"] and other["train_windows"] == m["train_windows"]
    assert other["metrics"]["mean_ccc"] != m["metrics"]["mean_ccc"]


def test_result_folder_records_what_produced_it(two_runs):
    from rjcma.config import Config
    from rjcma.train.results import config_hash

    cfg, run, m = two_runs[0]
    for f in ("config.yaml", "metrics.json", "history.csv", "model.safetensors", "model.json"):
        assert (run / f).is_file(), f
    saved = Config.from_yaml(run / "config.yaml")
    assert saved.to_dict() == cfg.to_dict()
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["config_hash"] == config_hash(cfg) == config_hash(saved)
    env = metrics["environment"]
    for k in ("rjcma", "git", "torch", "python", "device", "threads"):
        assert k in env, k
    if (REPO / ".git").exists():
        assert isinstance(env["git"], str) and len(env["git"]) >= 7
    info = json.loads((run / "model.json").read_text())
    assert Config.from_dict(info["config"]).to_dict() == cfg.to_dict()
    assert info["widths"]["K"] == cfg.K
