"""`rjcma` command line: one entry point, sub-commands implemented in their own modules.

Every sub-command module exposes ``add_<name>_arguments(parser)`` and ``run_<name>(args) -> int``; this file
only wires them up, prints expected failures (:class:`RjcmaError`) as one line and exits non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rjcma import __version__
from rjcma.errors import RjcmaError

# sub-command -> (module, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("rjcma.data.synth", "write the offline demo corpus in the Aff-Wild2 layout"),
    "folds": ("rjcma.data.folds", "build (or show) the six cross-validation folds of a corpus"),
    "preprocess": ("rjcma.preprocess.pipeline", "corpus -> per-trial feature store (resumable)"),
    "train": ("rjcma.train.commands", "train one model on one fold"),
    "cv": ("rjcma.train.commands", "six-fold cross-validation (Table 1 analogue)"),
    "ablate": ("rjcma.train.commands", "number of recursions l (Table 3 analogue)"),
    "compare": ("rjcma.train.commands", "fusion baselines (Table 2 analogue)"),
    "experiments": ("rjcma.train.commands", "every run the book reads (cv, ablate, compare, six-fold check) in one pool"),
    "export-test": ("rjcma.train.commands", "write test-set predictions in the ABAW submission format"),
    "predict": ("rjcma.predict_cli", "valence/arousal for your own video(s)"),
    "book": ("rjcma.book", "run the notebooks (papermill) and build the book (jupyter-book)"),
    "info": ("rjcma.cli", "versions, available backends and the config fields"),
}


def _fn(name: str) -> str:
    return name.replace("-", "_")


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="store_true", help="list every config field with its default")
    p.add_argument("--profile", default="demo")


def run_info(args: argparse.Namespace) -> int:
    from rjcma.config import iter_leaves, load_config

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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rjcma", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action="version", version=f"rjcma {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        mod = importlib.import_module(module)
        getattr(mod, f"add_{_fn(name)}_arguments")(p)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 1
    module = COMMANDS[args.command][0]
    try:
        run = getattr(importlib.import_module(module), f"run_{_fn(args.command)}")
        return int(run(args) or 0)
    except RjcmaError as e:
        if getattr(args, "debug", False):
            raise
        print(f"rjcma {args.command}: error: {e}", file=sys.stderr)
        return e.exit_code
    except (FileNotFoundError, PermissionError, IsADirectoryError, NotADirectoryError) as e:
        if getattr(args, "debug", False):
            raise
        print(f"rjcma {args.command}: error: {e.filename or ''}: {e.strerror}; check the path", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"rjcma {args.command}: interrupted; rerun the same command to resume", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
