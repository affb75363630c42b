"""``rjcma synth`` (the offline demo corpus) and ``rjcma folds`` (the cross-validation folds of a corpus)."""

from __future__ import annotations

import argparse

from rjcma.cli.options import config_from, config_options
from rjcma.data.abaw import label_lengths, load_corpus
from rjcma.data.folds import SCHEMES, fold_table, folds_path, format_table, load_or_make_folds, straddling
from rjcma.data.synth.corpus import synthesize
from rjcma.data.synth.layout import MIN_VIDEOS


def add_synth_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--out", required=True, help="output folder (the corpus root)")
    p.add_argument("--videos", type=int, default=12, help=f"number of videos (>= {MIN_VIDEOS}; default 12)")
    p.add_argument("--seconds", type=float, default=24.0, help="mean length of a video in seconds (default 24)")
    p.add_argument("--seed", type=int, default=7, help="random seed (default 7)")
    p.add_argument("--workers", type=int, default=None, help="parallel processes (default: up to 2 for big corpora)")


def run_synth(args: argparse.Namespace) -> int:
    synthesize(args.out, videos=args.videos, seconds=args.seconds, seed=args.seed, workers=args.workers)
    return 0


def add_folds_arguments(p: argparse.ArgumentParser) -> None:
    config_options(p)
    p.add_argument("--scheme", choices=SCHEMES, default=None, help="fold scheme (default: data.fold_scheme)")
    p.add_argument("--corpus", default=None, help="corpus root (default: data.corpus)")


def run_folds(args: argparse.Namespace) -> int:
    cfg = config_from(args, fold_scheme=args.scheme, corpus=args.corpus)
    corpus = load_corpus(cfg)
    folds = load_or_make_folds(corpus, cfg)
    rows = fold_table(folds, corpus, label_lengths(corpus))
    print(f"{cfg.data.fold_scheme} folds of {corpus.root} ({folds_path(cfg)}):")
    print(format_table(rows))
    bad = {f: s for f, s in straddling(folds, corpus).items() if s}
    for f, s in bad.items():
        print(f"fold {f}: {len(s)} subject(s)/video(s) on both sides (e.g. {s[0]})")
    return 0
