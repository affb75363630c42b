"""The demo's main job timed stage by stage, so that the next change can be compared side by side.

Runs, each as its own ``rjcma`` process in a fresh temporary folder (nothing of ``data/`` or ``results/`` is read or
written), exactly what ``make book`` runs between set-up and the notebooks:

1. ``corpus``: ``rjcma synth`` (the demo corpus);
2. ``preprocessing``: ``rjcma preprocess --profile demo --workers 2``, with an empty stand-in cache, so the stand-in
   encoders' one-off synthetic pretraining is included (as on a fresh machine);
3. ``training``: ``rjcma experiments --profile demo`` (every run the book reads, two at a time on two cores);
4. ``one training run``: ``rjcma train --profile demo`` (RJCMA, both targets, fold 0) in float32, and in bf16 where
   the CPU has native bf16 (:func:`rjcma.runtime.cpu_bf16`; elsewhere bf16 would be emulated, many times slower,
   and is not timed).

Prints a table of wall seconds per stage and the machine it ran on. ``--quick`` runs a small corpus (4 videos of
12 s) and at most 3 epochs per run: minutes instead of the full job, for a quick side-by-side of two versions (its
figures are not the main job's). Usage: ``python benchmarks/main_job.py [--quick] [--keep DIR]``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from rjcma.runtime import cpu_bf16, cpu_name, usable_cpus


def rjcma(args: list[str], env: dict[str, str]) -> float:
    """Run ``rjcma ARGS`` as a process; its wall seconds (raises with its output on failure)."""
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-m", "rjcma.cli", *args], env=env, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"rjcma {' '.join(args)} failed:\n{r.stdout[-2000:]}\n{r.stderr[-3000:]}")
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="4 videos of 12 s, at most 3 epochs per run")
    ap.add_argument("--keep", default="", help="keep the corpus, store and results in this folder")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="config override for preprocessing and training (e.g. stride=100 for the old recipe)")
    ap.add_argument("--json", default="", help="also write the figures to this JSON file")
    a = ap.parse_args()
    root = Path(a.keep) if a.keep else Path(tempfile.mkdtemp(prefix="rjcma_main_job_"))
    root.mkdir(parents=True, exist_ok=True)
    corpus, store, results, cache = root / "corpus", root / "store", root / "results", root / "cache"
    env = dict(os.environ, RJCMA_CACHE=str(cache), HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1",
               TOKENIZERS_PARALLELISM="false", MPLBACKEND="Agg")
    sets = [f"corpus={corpus}", f"store={store}", f"results_dir={results}", *a.set]
    if a.quick:
        sets += ["max_epochs=3"]
    common = ["--profile", "demo", *[x for s in sets for x in ("--set", s)]]
    synth = ["synth", "--out", str(corpus)] + (["--videos", "4", "--seconds", "12"] if a.quick else [])
    rows: list[tuple[str, float]] = []
    try:
        rows.append(("corpus (rjcma synth)", rjcma(synth, env)))
        rows.append(("preprocessing (2 workers, with the stand-ins' one-off pretraining)",
                     rjcma(["preprocess", *common, "--workers", "2", "--no-progress"], env)))
        rows.append(("training (rjcma experiments, every run the book reads, 2 at a time)",
                     rjcma(["experiments", *common, "--quiet"], env)))
        runs = sorted((results / "demo").rglob("metrics.json"))
        one = []
        for prec in ("no", "bf16") if cpu_bf16() else ("no",):
            run_dir = root / f"one_run_{prec}"
            s = rjcma(["train", *common, "--set", f"mixed_precision={prec}", "--set", "jobs=1", "--fold", "0",
                       "--target", "both", "--run-dir", str(run_dir), "--quiet"], env)
            m = json.loads((run_dir / "metrics.json").read_text())
            one.append((prec, s, m))
            rows.append((f"one training run (RJCMA, fold 0, {'fp32' if prec == 'no' else 'bf16'}, "
                         f"{m['epochs']} epochs, ran {m['mixed_precision']})", s))
    finally:
        if not a.keep:
            shutil.rmtree(root, ignore_errors=True)
    main_s = sum(s for name, s in rows[:3])
    print(f"Demo main job{' (--quick: 4 videos of 12 s, at most 3 epochs; not the main job)' if a.quick else ''}: "
          f"{cpu_name()}, {usable_cpus()} cores, native bf16: {'yes' if cpu_bf16() else 'no'}, "
          f"{len(runs)} training runs")
    print()
    print("| stage | seconds |")
    print("|---|---:|")
    for name, s in rows[:3]:
        print(f"| {name} | {s:.1f} |")
    print(f"| **corpus + preprocessing + training** | **{main_s:.1f}** |")
    for name, s in rows[3:]:
        print(f"| {name} | {s:.1f} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"quick": a.quick, "cpu": cpu_name(), "cores": usable_cpus(),
                                            "native_bf16": cpu_bf16(), "runs": len(runs), "sets": a.set,
                                            "stages": dict(rows)}, indent=1))


if __name__ == "__main__":
    main()
