"""How the package computes on this machine: threads, precision, determinism switches (base layer).

Three facts decide whether two runs give the same bytes, and they live here, once:

* **Threads.** A float sum split over another number of threads rounds differently, so every stage whose bytes must
  not depend on the machine's load or worker count (training runs, frozen encoders, the text encoder, stand-in
  pretraining) runs inside :func:`fixed_threads`.
* **Precision.** ``auto`` settings resolve here: bf16 only where the hardware has native bf16 units
  (:func:`cpu_bf16`); elsewhere bf16 autocast falls back to slow emulated kernels.
* **Determinism on a GPU**: :func:`deterministic_cuda`.

A CPU *without* native bf16 can be imitated on one that has it (to time or test that path) with
``ATEN_CPU_CAPABILITY=avx2 ONEDNN_MAX_CPU_ISA=AVX2``: :func:`cpu_bf16` then answers False, as on such a CPU.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

PRECISIONS = ("fp32", "bf16")


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


def training_precision(setting: str, cpu: bool) -> str:
    """``train.mixed_precision`` resolved for Accelerate: "auto" is "bf16" on a GPU with bf16 or a CPU with native
    bf16, else "no"."""
    if setting != "auto":
        return setting
    if cpu:
        return "bf16" if cpu_bf16() else "no"
    import torch

    return "bf16" if torch.cuda.is_bf16_supported() else "no"


def encoder_precision(setting: str) -> str:
    """``preprocess.encoder_precision`` resolved: "auto" is "bf16" where the CPU has it natively, else "fp32"."""
    if setting != "auto":
        return setting
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
