"""``rjcma preprocess``: every trial of a corpus into the feature store (resumable, sharded for job arrays)."""

from __future__ import annotations

import argparse

from rjcma.cli.options import config_from, config_options
from rjcma.preprocess.pipeline import preprocess_corpus
from rjcma.preprocess.trial import STAGES


def add_preprocess_arguments(p: argparse.ArgumentParser) -> None:
    config_options(p)
    p.add_argument("--corpus", default=None, help="corpus root (ABAW layout); default: data.corpus")
    p.add_argument("--store", default=None, help="feature store folder; default: data.store")
    p.add_argument("--workers", type=int, default=None, help="trial-level processes (default: preprocess.workers)")
    p.add_argument("--shard", default=None, help="i/n: process only the i-th of n shards of the videos (job arrays)")
    p.add_argument("--stages", default=None, help=f"comma list from {','.join(STAGES)} (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_preprocess(args: argparse.Namespace) -> int:
    cfg = config_from(args, corpus=args.corpus or None, store=args.store or None)
    report = preprocess_corpus(cfg, workers=args.workers, shard=args.shard, stages=args.stages,
                               progress=not args.no_progress)
    print(report)
    n_warn = sum(len(v) for v in report.warnings.values())
    if n_warn:
        print(f"{n_warn} warning(s); see meta.json of each trial")
    return 0 if report.ok else 1
