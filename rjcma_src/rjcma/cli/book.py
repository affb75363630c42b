"""``rjcma book`` (run the notebooks, build the book) and ``rjcma lab`` (JupyterLab on the notebooks)."""

from __future__ import annotations

import argparse
import sys
import time

from rjcma.book.build import build_book, mathjax_dir, prepare_source
from rjcma.book.execute import KERNEL_NAME, ensure_kernel, run_notebooks, timing_table
from rjcma.book.lab import lab
from rjcma.book.paths import BookPaths
from rjcma.book.tiny import TINY_TRAIN_SETS, ensure_tiny_data, ensure_tiny_results, tiny_config
from rjcma.cli.options import config_from, config_options


def add_book_arguments(p: argparse.ArgumentParser) -> None:
    config_options(p, profile_help="config profile whose values the notebooks receive")
    p.add_argument("--only", default="", metavar="NAME[,NAME]",
                   help="execute only these notebooks (e.g. 11_results); the others' executed copies are reused")
    p.add_argument("--tiny", action="store_true",
                   help="smoke run: tiny corpus/store/results under _build/tiny, K=32 (writes them if missing)")
    p.add_argument("--jobs", type=int, default=1, metavar="N",
                   help="notebooks executed side by side (each its own kernel; default 1). Use it once the corpus, "
                        "store and runs exist (make book), so no two notebooks build the same thing")
    p.add_argument("--no-build", action="store_true", help="execute the notebooks only")
    p.add_argument("--no-execute", action="store_true", help="build from the executed copies already there")
    p.add_argument("--setup-assets", action="store_true",
                   help="only check the offline assets the book needs (MathJax, the notebook kernel); `make setup`")


def run_book(args: argparse.Namespace) -> int:
    if args.setup_assets:
        print(f"book assets: MathJax 3 at {mathjax_dir()}")
        ensure_kernel()
        print(f"book assets: kernel {KERNEL_NAME!r} -> {sys.executable}")
        return 0
    t_start = time.perf_counter()
    paths = BookPaths.default()
    cfg = config_from(args)
    if args.tiny:
        cfg = tiny_config(cfg, paths).with_sets(TINY_TRAIN_SETS)
        ensure_tiny_data(cfg)
        ensure_tiny_results(cfg)
    only = [o.strip().removesuffix(".ipynb").split("/")[-1] for o in args.only.split(",") if o.strip()]
    if not args.no_execute:
        runs = run_notebooks(cfg, paths, only=only or None, jobs=max(1, args.jobs))
        print(timing_table(runs), flush=True)
    if args.no_build:
        print(f"executed notebooks: {paths.executed / 'notebooks'}")
        return 0
    t0 = time.perf_counter()
    prepare_source(paths)
    index, _ = build_book(paths)
    print(f"book built in {time.perf_counter() - t0:.1f} s (total {time.perf_counter() - t_start:.1f} s)")
    print(f"open: {index}")
    return 0


def add_lab_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter-lab")


def run_lab(args: argparse.Namespace) -> int:
    return lab(args.jupyter_args)
