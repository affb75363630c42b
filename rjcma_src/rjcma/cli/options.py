"""Options every command group shares: the config (``--profile``, ``--set``) and ``--quiet``."""

from __future__ import annotations

import argparse
from typing import Any

from rjcma.config import Config, load_config


def config_options(p: argparse.ArgumentParser, profile_help: str = "config profile (demo or paper)") -> None:
    """``--profile NAME`` and repeatable ``--set KEY=VALUE``."""
    p.add_argument("--profile", default="demo", help=profile_help)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field, e.g. --set max_epochs=5 (repeatable; `rjcma info --config` lists them)")


def config_from(args: argparse.Namespace, **over: Any) -> Config:
    """The config of ``--profile`` and ``--set``, then ``over`` (fields whose value is None are left as they are)."""
    cfg = load_config(args.profile, args.set)
    over = {k: v for k, v in over.items() if v is not None}
    return cfg.replace(**over) if over else cfg
