"""The six-fold check of "fusion beats the best single modality" over several training seeds.

    python benchmarks/seed_check.py [--profile demo] [--seeds 3407,1,2] [--out _build/seed-check] [--set KEY=VALUE ...]

One run's fold count is not a stable verdict: on the demo store, the seed alone moved RJCMA's valence from 5 of 6
folds ahead to 2 of 6 (``benchmarks/RESULTS.md``, "Issue 24, fourth pass"). This script trains the check (the
unimodal audio, visual and text models and RJCMA on the profile's folds, ``rjcma compare --folds``) once per seed
and prints, per seed and over all of them, the folds where RJCMA is ahead of the fold's best single-modality model
and the mean of RJCMA minus that model. The recipe's own seed reads ``results/<profile>/`` (what ``make book``
trained: nothing is retrained); every other seed trains into ``--out/seed-<N>/`` (about 4 minutes per seed for
the demo on two CPU cores). Judge a change to the corpus or the recipe by the total row, not by one seed.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from rjcma.config import load_config
from rjcma.results_tables import fold_differences
from rjcma.train.cv import compare_models, run_compare
from rjcma.train.experiments import FOLD_CHECK_MODELS
from rjcma.lessons.training import results_base

TARGETS = ("valence", "arousal")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--seeds", default="3407,1,2")
    ap.add_argument("--out", default="_build/seed-check")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    base = load_config(args.profile, sets=args.set)
    rows, diffs = [], {t: [] for t in TARGETS}
    for seed in [int(s) for s in args.seeds.split(",")]:
        sets = [f"seed={seed}"]
        if seed != base.train.seed:
            sets.append(f"results_dir={Path(args.out) / f'seed-{seed}'}")
        cfg = base.with_sets(sets)
        run_compare(cfg, models=compare_models(FOLD_CHECK_MODELS), folds=cfg.book.folds, log=lambda *a, **k: None)
        table = fold_differences(results_base(cfg) / "compare-folds")
        if table is None:
            raise SystemExit(f"seed {seed}: no six-fold summary in {results_base(cfg) / 'compare-folds'}")
        v = table.values
        n = len(v["folds"])
        cells = []
        for t in TARGETS:
            diffs[t] += v[f"diff_{t}"]
            cells += [f"{v[f'ahead_{t}']} of {n}", f"{np.mean(v[f'diff_{t}']):+.3f}",
                      " ".join(f"{d:+.2f}" for d in v[f"diff_{t}"])]
        rows.append([str(seed)] + cells)
    total = ["all"]
    for t in TARGETS:
        total += [f"{sum(d > 0 for d in diffs[t])} of {len(diffs[t])}", f"{np.mean(diffs[t]):+.3f}", ""]
    rows.append(total)
    head = ["seed"] + [f"{t}: {c}" for t in TARGETS for c in ("folds ahead", "mean difference", "per fold")]
    print(f"Six-fold check over training seeds, profile {args.profile}: RJCMA minus the fold's best single modality\n")
    print("| " + " | ".join(head) + " |")
    print("|---|" + "---:|---:|---|" * len(TARGETS))
    for r in rows:
        print("| " + " | ".join(r) + " |")


if __name__ == "__main__":
    main()
