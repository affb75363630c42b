"""``rjcma train | cv | ablate | compare | experiments | export-test``: the training stage on the command line.

Every command builds its config from ``--profile`` and ``--set``, writes result folders (the book's chapter *Data
format*) under ``results/<profile>/...``, prints where they went, and resumes from the last checkpoint when rerun
after an interruption.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from rjcma.cli.options import config_from, config_options
from rjcma.config import FUSIONS
from rjcma.errors import RjcmaError
from rjcma.train.cv import compare_models, run_ablation, run_compare as compare, run_cv as cv
from rjcma.train.experiments import run_book_experiments
from rjcma.train.export import export_test
from rjcma.train.loop import train_one
from rjcma.train.results import default_checkpoint, run_id


def _common(p: argparse.ArgumentParser, target: bool = True) -> None:
    config_options(p)
    if target:
        p.add_argument("--target", choices=["valence", "arousal", "both"], default=None,
                       help="valence or arousal (separate models, the paper) or both (one model, two outputs)")
    p.add_argument("--quiet", action="store_true", help="no progress bars")


def _jobs(p: argparse.ArgumentParser) -> None:
    p.add_argument("--jobs", type=int, default=None, metavar="N",
                   help="training runs at once, each in its own process (default: the profile's train.jobs; "
                        "0 = one per CPU core, at most 8)")


def _config(args: argparse.Namespace, **over: Any):
    return config_from(args, target=getattr(args, "target", None), jobs=getattr(args, "jobs", None), **over)


def _fmt(rows: list[dict[str, Any]], key: str) -> str:
    lines = [f"{key:<32} {'valence':>8} {'arousal':>8} {'mean':>8}   paper V/A"]
    for r in rows:
        pv = f"{r['paper_valence']:.3f}/{r['paper_arousal']:.3f}" if r.get("paper_valence") is not None else "-"
        lines.append(f"{str(r[key]):<32} {r['valence']:>8.3f} {r['arousal']:>8.3f} {r['mean']:>8.3f}   {pv}")
    return "\n".join(lines)


# ---- train -------------------------------------------------------------------------------------------------------
def add_train_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    p.add_argument("--fold", type=int, default=None, help="validation fold (0 = official validation set)")
    p.add_argument("--fusion", choices=FUSIONS, default=None, help="fusion model (default: the profile's, rjcma)")
    p.add_argument("--run-dir", default=None, help="result folder (default results/<profile>/train/<run id>)")


def run_train(args: argparse.Namespace) -> int:
    cfg = _config(args, fold=args.fold, fusion=args.fusion)
    if args.fusion and args.fusion.startswith("unimodal:"):
        cfg = cfg.replace(modalities=[args.fusion.split(":", 1)[1]])
    run_dir = Path(args.run_dir) if args.run_dir else Path(cfg.train.results_dir) / cfg.profile / "train" / run_id(cfg)
    m = train_one(cfg, run_dir=run_dir, progress=not args.quiet)
    scores = ", ".join(f"{t} CCC {m['metrics'][t]['ccc']:.3f}" for t in m["targets"])
    print(f"fold {cfg.train.fold}: {scores} (best epoch {m['best_epoch']}, {m['epochs']} epochs)")
    print(f"results: {run_dir}")
    return 0


# ---- cv ------------------------------------------------------------------------------------------------------------
def add_cv_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    _jobs(p)
    p.add_argument("--folds", default=None, help="comma list of folds (default: the profile's book.folds)")


def _run_table(args: argparse.Namespace, kind: str, first_column: str, run, **kwargs) -> int:
    """Run one experiment (cv / ablate / compare), print its table and where its summary went."""
    cfg = _config(args)
    rows = run(cfg, progress=not args.quiet, **kwargs)
    print(_fmt(rows, first_column))
    print(f"results: {Path(cfg.train.results_dir) / cfg.profile / kind} (summary.json, summary.csv)")
    return 0


def run_cv(args: argparse.Namespace) -> int:
    return _run_table(args, "cv", "fold", cv, folds=args.folds)


# ---- ablate --------------------------------------------------------------------------------------------------------
def add_ablate_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    _jobs(p)
    p.add_argument("--iterations", default=None, help="comma list of l values (default 1,2,3,4)")
    p.add_argument("--fold", type=int, default=None, help="fold (default: the profile's book.ablate_fold, paper: 1)")


def run_ablate(args: argparse.Namespace) -> int:
    return _run_table(args, "ablate", "l", run_ablation, iterations=args.iterations, fold=args.fold)


# ---- compare -------------------------------------------------------------------------------------------------------
def add_compare_arguments(p: argparse.ArgumentParser) -> None:
    _common(p)
    _jobs(p)
    p.add_argument("--fold", type=int, default=0, help="fold (paper Table 2: 0, the official validation set)")
    p.add_argument("--folds", default=None,
                   help="comma list of folds (e.g. 0,1,2,3,4,5): each model on every fold, rows = mean over them, "
                        "written to compare-folds/ (default: the one --fold)")
    p.add_argument("--models", default=None,
                   help="comma list of fusions to compare (e.g. unimodal:audio,unimodal:visual,rjcma; default all)")


def run_compare(args: argparse.Namespace) -> int:
    kind = "compare" if args.folds is None else "compare-folds"
    return _run_table(args, kind, "model", compare, fold=args.fold, folds=args.folds,
                      models=compare_models(args.models))


# ---- experiments ---------------------------------------------------------------------------------------------------
def add_experiments_arguments(p: argparse.ArgumentParser) -> None:
    _common(p, target=False)
    _jobs(p)


def run_experiments(args: argparse.Namespace) -> int:
    cfg = _config(args)
    tables = run_book_experiments(cfg, progress=not args.quiet)
    for kind, first in (("cv", "fold"), ("ablate", "l"), ("compare", "model"), ("compare-folds", "model")):
        print(f"-- {kind}")
        print(_fmt(tables[kind], first))
    print(f"results: {Path(cfg.train.results_dir) / cfg.profile} (one summary.json and summary.csv per experiment)")
    return 0


# ---- export-test ---------------------------------------------------------------------------------------------------
def add_export_test_arguments(p: argparse.ArgumentParser) -> None:
    _common(p, target=False)
    p.add_argument("--checkpoint", action="append", default=[],
                   help="result folder of a model (repeat: a valence and an arousal model); default: the fold-0 "
                        "cross-validation model of the profile")
    p.add_argument("--out", default=None, help="output CSV (default results/<profile>/test/predictions.csv)")
    p.add_argument("--sample", default=None, help="the organisers' sample submission file (rows to write)")
    p.add_argument("--partition", default="test", help="partition to export (test; validation for a check)")


def run_export_test(args: argparse.Namespace) -> int:
    cfg = _config(args)
    ckpts = [Path(c) for c in args.checkpoint]
    if not ckpts:
        ck = default_checkpoint(cfg)
        if cfg.train.target != "both":
            ckpts = [ck, Path(str(ck).replace("_valence_", "_arousal_"))]
        else:
            ckpts = [ck]
    for c in ckpts:
        if not (c / "model.safetensors").exists() and not c.is_file():
            raise RjcmaError(f"{c}: no trained model here; run `rjcma cv --profile {cfg.profile}` or pass --checkpoint")
    out = Path(args.out) if args.out else Path(cfg.train.results_dir) / cfg.profile / "test" / "predictions.csv"
    export_test(cfg, ckpts, out, sample_file=args.sample, partition=args.partition)
    print(f"results: {out}")
    return 0
