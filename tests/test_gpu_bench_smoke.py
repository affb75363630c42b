"""The benchmark scripts of the paper path in their CPU dry-run modes: ``benchmarks/gpu.sh --smoke`` runs every
section of the GPU benchmark at toy size and writes its JSON and RESULTS.md section; ``benchmarks/scale.py --smoke``
writes a small generated store and runs its epochs, model costs and projection. No GPU is needed or used."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from rjcma.runtime import cpu_bf16

ROOT = Path(__file__).resolve().parents[1]


def _env() -> dict[str, str]:
    return dict(os.environ, PY=sys.executable, CUDA_VISIBLE_DEVICES="", OMP_NUM_THREADS="2",
                TOKENIZERS_PARALLELISM="false")


@pytest.mark.slow
def test_gpu_benchmark_smoke_mode_writes_every_section(tmp_path):
    out = tmp_path / "gpu"
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), "--smoke", str(out)], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads((out / "gpu.json").read_text())
    assert res["smoke"] and not res["skipped"]
    # bf16 where the CPU has it natively; elsewhere the bf16 rows compute in float32 and say so (no emulated bf16)
    bf16 = "bf16" if cpu_bf16() else "fp32 (no native bf16)"
    assert {(f["variant"], f["precision"]) for f in res["fusion"]} == {
        (v, p) for v in ("paper RJCMA (l=3)", "released DCNLayer (2 layers)") for p in ("fp32", bf16)}
    assert len(res["cached"]) == 2 and all(c["windows_per_s"] > 0 and c["peak_gib"] > 0 for c in res["cached"])
    assert res["end2end"]["frames_per_s"] > 0 and len(res["encoders"]) == 2
    rec = res["recipe"]
    assert rec["epochs"] == 2 and len(rec["epoch_s"]) == 2 and rec["mixed_precision"] == ("bf16" if cpu_bf16() else "no")
    assert rec["projected_affwild2_fold_h"] > 0
    md = (out / "gpu.md").read_text()
    assert md.startswith("## GPU benchmark") and "smoke mode on CPU" in md and md.count("\n|") >= 12
    # without --smoke and without a GPU it refuses, and says how to run the dry run
    r = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh"), str(tmp_path / "none")], cwd=ROOT, env=_env(),
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 2 and "--smoke" in r.stderr


@pytest.mark.slow
def test_scale_benchmark_smoke_mode(tmp_path):
    out = tmp_path / "scale.json"
    r = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "scale.py"), "--smoke", "--json", str(out)],
                       cwd=ROOT, env=_env(), capture_output=True, text=True, timeout=900)
    assert r.returncode == 0, r.stderr[-3000:]
    res = json.loads(out.read_text())
    runs = res["epochs_by_size"]
    assert [e["trials_in_store_subset"] for e in runs] == [4, 8, 12]
    assert all(e["full_epoch"] and e["windows_read"] == e["train_windows"] > 0 for e in runs)
    assert runs[0]["train_windows"] < runs[-1]["train_windows"]
    assert all(e["windows_per_s"] > 0 and e["raw_windows_per_s"] > 0 and e["peak_rss_anon_MiB"] > 0 for e in runs)
    p = res["projection"]
    assert p["train_windows"] == runs[-1]["train_windows"] and p["cached_fold_h"] >= 0 and p["val_windows"] > 0
