"""The ``rjcma`` command: one entry point; each command group's options and handler live in a module of this package.

A command module exposes ``add_<name>_arguments(parser)`` and ``run_<name>(args) -> int``; argument parsing lives
only in this package, over the library. This module wires the commands up (modules are imported only for the
command that runs, so ``rjcma --help`` is fast), prints expected failures (:class:`~rjcma.errors.RjcmaError`) as one
line naming the file, and exits non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from rjcma import __version__
from rjcma.errors import RjcmaError

# command -> (module, help)
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("rjcma.cli.data", "write the offline demo corpus in the Aff-Wild2 layout"),
    "folds": ("rjcma.cli.data", "build (or show) the six cross-validation folds of a corpus"),
    "preprocess": ("rjcma.cli.preprocess", "corpus -> per-trial feature store (resumable)"),
    "train": ("rjcma.cli.train", "train one model on one fold"),
    "cv": ("rjcma.cli.train", "six-fold cross-validation (Table 1 analogue)"),
    "ablate": ("rjcma.cli.train", "number of recursions l (Table 3 analogue)"),
    "compare": ("rjcma.cli.train", "fusion baselines (Table 2 analogue)"),
    "experiments": ("rjcma.cli.train", "every run the book reads (cv, ablate, compare, six-fold check) in one pool"),
    "export-test": ("rjcma.cli.train", "write test-set predictions in the ABAW submission format"),
    "predict": ("rjcma.cli.predict", "valence/arousal for your own video(s)"),
    "book": ("rjcma.cli.book", "run the notebooks (papermill) and build the book (jupyter-book)"),
    "lab": ("rjcma.cli.book", "JupyterLab on notebooks/, started in the repository root (what `make lab` runs)"),
    "info": ("rjcma.cli.info", "versions, available backends and the config fields"),
}


# command -> one example a reader can run (shown under the command's --help)
EXAMPLES: dict[str, str] = {
    "synth": "rjcma synth --out data/demo_corpus",
    "folds": "rjcma folds --profile demo",
    "preprocess": "rjcma preprocess --profile demo --workers 2",
    "train": "rjcma train --profile demo --fold 0",
    "cv": "rjcma cv --profile demo",
    "ablate": "rjcma ablate --profile demo --iterations 1,2,3,4",
    "compare": "rjcma compare --profile demo --folds 0,1,2,3,4,5 --models unimodal:visual,rjcma",
    "experiments": "rjcma experiments --profile demo",
    "export-test": "rjcma export-test --profile paper --set corpus=/data/affwild2",
    "predict": "rjcma predict my_video.mp4 --out predictions/",
    "book": "rjcma book --profile demo --only 11_results",
    "lab": "rjcma lab",
    "info": "rjcma info --config --profile paper",
}
DESCRIPTION = """Reproduce "Recursive Joint Cross-Modal Attention for Multimodal Fusion in Dimensional Emotion Recognition"
(RJCMA): valence and arousal per video frame from faces, voice and words. The demo profile runs end to end offline
on a generated corpus; the paper profile runs on Aff-Wild2."""
EPILOG = """examples:
  make book                                        the demo end to end: corpus, store, training, notebooks, book
  rjcma predict my_video.mp4 --out predictions/    valence and arousal for a video of your own
  rjcma COMMAND --help                             what a command does, its options and an example"""


def _fn(name: str) -> str:
    return name.replace("-", "_")


def build_parser() -> argparse.ArgumentParser:
    raw = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(prog="rjcma", description=DESCRIPTION, epilog=EPILOG, formatter_class=raw)
    parser.add_argument("--version", action="version", version=f"rjcma {__version__}")
    parser.add_argument("--debug", action="store_true", help="show tracebacks for errors")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_) in COMMANDS.items():
        p = sub.add_parser(name, help=help_, description=help_[0].upper() + help_[1:] + ".",
                           epilog=f"example:\n  {EXAMPLES[name]}", formatter_class=raw)
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help="show tracebacks")
        getattr(importlib.import_module(module), f"add_{_fn(name)}_arguments")(p)
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
