"""``rjcma info``: versions, whether a GPU is there, and every config field with its value in a profile."""

from __future__ import annotations

import argparse

from rjcma import __version__
from rjcma.config import iter_leaves, load_config


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="store_true", help="list every config field with its value in --profile")
    p.add_argument("--profile", default="demo", help="profile whose values --config lists (demo or paper)")


def run_info(args: argparse.Namespace) -> int:
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
