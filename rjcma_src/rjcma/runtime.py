"""How the package computes on this machine: threads, precision, determinism switches (base layer).

Three facts decide whether two runs give the same bytes, and they live here, once:

* **Threads.** A float sum split over another number of threads rounds differently, so every stage whose bytes must
  not depend on the machine's load or worker count (training runs, frozen encoders, the text encoder, stand-in
  pretraining) runs inside :func:`fixed_threads`.
* **Precision.** ``auto`` and ``bf16`` settings resolve here: bf16 only where the hardware has native bf16 units
  (:func:`cpu_bf16`). Elsewhere bf16 autocast falls back to emulated kernels, many times slower than float32 (a toy
  end-to-end run on a 2-core AVX2 CPU finished no epoch in 20 minutes where float32 took about 100 s), so asking
  for ``bf16`` there warns once (:class:`EmulatedBf16Warning`) and runs float32; ``bf16-emulated``
  (:data:`BF16_EMULATED`) forces the emulation (to time or test it). The demo profile asks for float32 on every
  CPU, so its store and its numbers are the same arithmetic wherever they are built.
* **Determinism on a GPU**: :func:`deterministic_cuda`.

A CPU *without* native bf16 can be imitated on one that has it (to time or test that path) with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: :func:`cpu_bf16` then answers False, as on such a CPU.
"""

from __future__ import annotations

import contextlib
import os
import warnings
from pathlib import Path

PRECISIONS = ("fp32", "bf16")
BF16_EMULATED = "bf16-emulated"  # bf16 even where the CPU has no bf16 units (emulated kernels, many times slower)


class EmulatedBf16Warning(UserWarning):
    """bf16 was asked for on a CPU without native bf16; float32 runs instead."""


def usable_cpus() -> int:
    """CPU cores this process may run on (its affinity mask where the OS has one, else all cores)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def fixed_threads(n: int):
    """Run the block with ``n`` torch CPU threads (0: leave as is), then restore the count."""
    import torch

    before = torch.get_num_threads()
    if n > 0:
        torch.set_num_threads(int(n))
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _isa_capped() -> bool:
    """Whether the environment caps PyTorch / oneDNN below AVX-512 (how a CPU without bf16 units is imitated)."""
    aten = os.environ.get("ATEN_CPU_CAPABILITY", "").lower()
    onednn = os.environ.get("ONEDNN_MAX_CPU_ISA", "").upper()
    return aten in ("default", "avx2") or onednn in ("SSE41", "AVX", "AVX2", "AVX2_VNNI")


def cpu_bf16() -> bool:
    """Whether this CPU has native bf16 (AVX512-BF16 or AMX) that PyTorch may use (not capped by the environment)."""
    if _isa_capped():
        return False
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def cpu_name() -> str:
    """The CPU's model name (``/proc/cpuinfo``; else the platform's processor string, else "unknown CPU")."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform

    return platform.processor() or "unknown CPU"


def cpu_isa() -> str:
    """The widest vector extension PyTorch may use on this CPU: "AMX", "AVX512-BF16", "AVX-512", "AVX2" or "older
    than AVX2", with "(capped by the environment)" where ``ATEN_CPU_CAPABILITY`` / ``ONEDNN_MAX_CPU_ISA`` hold it at
    AVX2 or below (how the slow class is imitated)."""
    if _isa_capped():
        return "AVX2 (capped by the environment)"
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    for flag, name in (("amx_bf16", "AMX"), ("avx512_bf16", "AVX512-BF16"), ("avx512f", "AVX-512"), ("avx2", "AVX2")):
        if flag in flags:
            return name
    return "older than AVX2"


def arithmetic(mixed_precision: str, encoder_setting: str, cpu: bool = True) -> tuple[str, str]:
    """What training and the frozen encoders compute in on this machine for these settings: ("float32" or "bf16")
    for each, resolved as a run resolves them (:func:`training_precision`, :func:`encoder_precision`), without the
    fallback's warning."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", EmulatedBf16Warning)
        train = training_precision(mixed_precision, cpu)
        enc = encoder_precision(encoder_setting)
    return ("bf16" if train == "bf16" else "float32"), ("bf16" if enc == "bf16" else "float32")


def _bf16_on_cpu(setting: str, fp32: str) -> str:
    """``bf16`` asked for on the CPU: "bf16" where the CPU has native bf16, else a warning and ``fp32``."""
    if cpu_bf16():
        return "bf16"
    warnings.warn(
        f"{setting!r} asked for, but this CPU has no native bf16 (AVX512-BF16 or AMX): bf16 would run on emulated "
        "kernels, many times slower than float32 (a toy run finished no epoch in 20 minutes where float32 took "
        f"about 100 s), so float32 runs instead. Ask for {BF16_EMULATED!r} to force the emulation.",
        EmulatedBf16Warning,
        stacklevel=3,
    )
    return fp32


def training_precision(setting: str, cpu: bool) -> str:
    """``train.mixed_precision`` resolved for Accelerate ("no" or "bf16"): "auto" is "bf16" on a GPU with bf16 or a
    CPU with native bf16, else "no"; "bf16" on a CPU without native bf16 warns and is "no"; "bf16-emulated" is
    "bf16" anywhere."""
    if setting == BF16_EMULATED:
        return "bf16"
    if setting == "no":
        return "no"
    if cpu:
        if setting == "bf16":
            return _bf16_on_cpu(setting, "no")
        return "bf16" if cpu_bf16() else "no"
    if setting == "bf16":
        return "bf16"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "no"


def encoder_precision(setting: str) -> str:
    """``preprocess.encoder_precision`` resolved ("fp32" or "bf16"): "auto" is "bf16" where the CPU has it natively,
    else "fp32"; "bf16" on a CPU without native bf16 warns and is "fp32"; "bf16-emulated" is "bf16" anywhere."""
    if setting == BF16_EMULATED:
        return "bf16"
    if setting == "fp32":
        return "fp32"
    if setting == "bf16":
        return _bf16_on_cpu(setting, "fp32")
    return "bf16" if cpu_bf16() else "fp32"


def autocast(prec: str):
    """bf16 autocast on the CPU for ``prec == "bf16"``, else a no-op context."""
    if prec != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast("cpu", dtype=torch.bfloat16)


def deterministic_cuda() -> None:
    """Deterministic GPU kernels (cuBLAS needs its workspace fixed before its first call)."""
    import torch

    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)
