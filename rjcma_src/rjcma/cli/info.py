"""``rjcma info``: versions, whether a GPU is there, and every config field with its value in a profile."""

from __future__ import annotations

import argparse

from rjcma import __version__
from rjcma.config import iter_leaves, load_config


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="store_true", help="list every config field with its value in --profile")
    p.add_argument("--profile", default="demo", help="profile whose values --config / --machine use (demo or paper)")
    p.add_argument("--machine", action="store_true",
                   help="one line: the arithmetic --profile computes in on this machine, and the CPU it runs on "
                        "(what `make book` prints under its time table)")


def machine_line(profile: str) -> str:
    """``--machine``: the arithmetic of ``profile``'s training and encoders here, the CPU (model, usable cores, widest
    vector extension, native bf16 or not) and torch, on one line."""
    import torch

    from rjcma.runtime import arithmetic, cpu_bf16, cpu_isa, cpu_name, usable_cpus

    cfg = load_config(profile)
    gpu = torch.cuda.is_available()
    cpu = cfg.train.device == "cpu" or (cfg.train.device == "auto" and not gpu)
    train, enc = arithmetic(cfg.train.mixed_precision, cfg.preprocess.encoder_precision, cpu)
    bf16 = "native bf16" if cpu_bf16() else "no native bf16"
    where = f"GPU {torch.cuda.get_device_name(0)}" if gpu and not cpu else "no GPU used"
    return (f"{profile} profile: training in {train}, encoders in {enc}; CPU {cpu_name()}, {usable_cpus()} usable "
            f"cores, {cpu_isa()}, {bf16}; {where}; torch {torch.__version__}")


def run_info(args: argparse.Namespace) -> int:
    if args.machine:
        print(machine_line(args.profile))
        return 0
    print(f"rjcma {__version__}")
    try:
        import torch

        print(f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}")
    except ImportError:  # pragma: no cover
        print("torch: not installed")
    if args.config:
        for k, v in iter_leaves(load_config(args.profile)):
            print(f"{k} = {v!r}")
    return 0
