"""`rjcma info --machine`: the line under `make book`'s time table that says which arithmetic ran on which CPU."""

from __future__ import annotations

import warnings

import pytest

from rjcma import runtime
from rjcma.cli import main


def test_an_environment_cap_reads_as_avx2(monkeypatch):
    monkeypatch.setenv("ATEN_CPU_CAPABILITY", "avx2")
    assert runtime.cpu_isa() == "AVX2 (capped by the environment)"


def test_the_widest_extension_is_named(monkeypatch):
    monkeypatch.delenv("ATEN_CPU_CAPABILITY", raising=False)
    monkeypatch.delenv("ONEDNN_MAX_CPU_ISA", raising=False)
    isa = runtime.cpu_isa()
    flags = open("/proc/cpuinfo").read().split() if runtime.Path("/proc/cpuinfo").exists() else []
    if "avx512f" not in flags and "avx2" in flags:
        assert isa == "AVX2"
    assert isa in ("AMX", "AVX512-BF16", "AVX-512", "AVX2", "older than AVX2", "unknown")


@pytest.mark.parametrize("native", [False, True])
def test_arithmetic_is_resolved_as_a_run_resolves_it(monkeypatch, native):
    monkeypatch.setattr(runtime, "cpu_bf16", lambda: native)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the fallback's warning is for runs, not for this description
        asked = runtime.arithmetic("bf16", "bf16")
        auto = runtime.arithmetic("auto", "auto")
        demo = runtime.arithmetic("no", "fp32")
    want = ("bf16", "bf16") if native else ("float32", "float32")
    assert asked == want and auto == want
    assert demo == ("float32", "float32")
    assert runtime.arithmetic("bf16-emulated", "bf16-emulated") == ("bf16", "bf16")


def test_info_machine_prints_the_demo_path(capsys):
    assert main(["info", "--machine", "--profile", "demo"]) == 0
    line = capsys.readouterr().out.strip()
    assert "\n" not in line
    assert line.startswith("demo profile: training in float32, encoders in float32; CPU ")
    assert f"{runtime.usable_cpus()} usable cores" in line and "torch " in line
    assert ("no native bf16" in line) == (not runtime.cpu_bf16())
