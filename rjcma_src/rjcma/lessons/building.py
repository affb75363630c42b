"""Building what a chapter needs when it is missing, through the package's own entry points.

A notebook run top to bottom on a fresh clone (``make lab``, no ``make book`` first) finds no corpus, store or
trained runs; :func:`ensure_corpus`, :func:`ensure_store`, :func:`train_line` and :func:`train_together` build
them (:func:`rjcma.data.synth.synthesize`, :func:`rjcma.preprocess.pipeline.preprocess_corpus`, the experiments of
:mod:`rjcma.train.cv`, several in one pool of workers), each with a progress bar and a one-line estimate of how
long it takes, and reuse whatever is already there, so after ``make book`` they only say so.
"""

from __future__ import annotations

import math
import os
import time
from pathlib import Path
from typing import Any, Iterable, Sequence

from rjcma.book.facts import SECONDS_2_CORES, TRAIN_RUN_SECONDS
from rjcma.data.abaw import load_corpus
from rjcma.data.synth import synthesize
from rjcma.data.synth.layout import MANAGED, TRUTH_JSON
from rjcma.data.video_info import video_info
from rjcma.data.store import Store
from rjcma.errors import RjcmaError
from rjcma.lessons.common import progress
from rjcma.encoders.build import stand_in_cache_dir
from rjcma.preprocess.pipeline import preprocess_corpus
from rjcma.preprocess.trial import STAGES
from rjcma.runtime import usable_cpus
from rjcma.train import cv
from rjcma.train.pool import resolve_jobs, run_all
from rjcma.train.results import find_done, run_id

def _here(seconds_on_2_cores: float) -> float:
    """The 2-core figure scaled to this machine's usable cores (the stages parallelise over cores)."""
    return seconds_on_2_cores * 2 / max(1, min(8, usable_cpus()))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def estimate_line(what: str, seconds_on_2_cores: float, how: str) -> str:
    """'<what> with <how>: about N s here (C cores)': printed before anything slow starts."""
    n = usable_cpus()
    return f"Building {what} with {how}: about {_duration(_here(seconds_on_2_cores))} here ({n} core{'s' * (n > 1)})."


def _synth_corpus_complete(root: Path) -> bool:
    if (root / TRUTH_JSON).is_file():
        return True
    managed = [p for p in root.iterdir() if p.name in MANAGED] if root.is_dir() else []
    return root.is_dir() and any(root.iterdir()) and not managed  # a corpus of another origin (Aff-Wild2)


def ensure_corpus(cfg) -> Path:
    """The corpus of ``cfg``; on the demo profile a missing one is generated first (what `make book` runs)."""
    root = Path(cfg.data.corpus)
    if root.is_dir() and _synth_corpus_complete(root):
        print(f"Corpus: {root} is there; nothing to build.")
        return root
    if cfg.profile != "demo":
        raise RjcmaError(f"{root}: corpus not found; this profile reads Aff-Wild2 from there "
                         "(chapter Reproducing on Aff-Wild2 says how to get it, or set corpus=...)")
    b = cfg.book
    minutes = b.demo_videos * b.demo_seconds / 60
    print(estimate_line(f"the demo corpus ({b.demo_videos} videos of about {b.demo_seconds:g} s) in {root}",
                        SECONDS_2_CORES["synth_per_video_minute"] * minutes, "rjcma.data.synth.synthesize"))
    t0 = time.perf_counter()
    synthesize(root, videos=b.demo_videos, seconds=b.demo_seconds, seed=b.demo_seed, progress=progress())
    print(f"Corpus written in {time.perf_counter() - t0:.0f} s.")
    return root


def _stages_done(store, name: str, stages: Sequence[str]) -> bool:
    rec = store.meta_or_empty(name).get("stages", {})
    return all(s in rec and all((store.trial_dir(name) / o).exists() for o in rec[s].get("outputs", []))
               for s in stages)


def _stand_ins_cached(cfg) -> bool:
    """False when the features stage will first pretrain the stand-in encoders (no weights folder, nothing in the
    per-machine cache); True otherwise."""
    p = cfg.preprocess
    if p.weights_dir or os.environ.get("RJCMA_WEIGHTS_DIR"):
        return True
    return (stand_in_cache_dir() / f"{p.visual_encoder}-{p.encoder_init}-seed{p.encoder_seed}.safetensors").is_file()


def _store_estimate(cfg, todo, stages: list[str], what: str, store) -> str:
    videos = {t.video for t in todo if t.video is not None}
    minutes = sum(video_info(v).duration for v in videos) / 60
    seconds = sum(SECONDS_2_CORES[s] for s in stages) * minutes  # float32 encoders on every CPU
    note = ""
    if "features" in stages and not _stand_ins_cached(cfg):
        seconds += SECONDS_2_CORES["stand_in_pretraining"]
        note = " (including the stand-in encoders' one-off pretraining)"
    return estimate_line(f"{what} of the feature store for {len(todo)} trial(s) in {store.root}", seconds,
                         "rjcma.preprocess.pipeline.preprocess_corpus") + note


def ensure_store(cfg, stages: Sequence[str] | None = None) -> Store:
    """The feature store with ``stages`` (default: all) done for every trial; missing ones are run first through
    :func:`rjcma.preprocess.pipeline.preprocess_corpus` (what `rjcma preprocess` runs)."""
    stages = list(stages or STAGES)
    ensure_corpus(cfg)
    corpus = load_corpus(cfg)
    store = Store(cfg.data.store)
    todo = [t for t in corpus.trials if not _stages_done(store, t.name, stages)]
    what = "all stages" if stages == list(STAGES) else "stage" + "s" * (len(stages) > 1) + " " + ", ".join(stages)
    if not todo:
        print(f"Feature store: {store.root} has {what} for all {len(corpus.trials)} trials; nothing to build.")
        return store
    print(_store_estimate(cfg, todo, stages, what, store))
    t0 = time.perf_counter()
    videos = {t.video for t in todo if t.video is not None}
    workers = min(2, usable_cpus(), len(videos) or 1)  # as `make book`; the bytes do not depend on it
    report = preprocess_corpus(cfg, workers=workers, stages=stages, progress=progress(), trials=[t.name for t in todo])
    if not report.ok:
        name, why = next(iter(report.failed.items()))
        raise RjcmaError(f"{store.root}: preprocessing failed for {len(report.failed)} trial(s), first {name}: {why}")
    print(f"Store built in {time.perf_counter() - t0:.0f} s.")
    return store


def missing_runs(cfgs: Iterable[Any]) -> int:
    """How many of these training configs have no complete result folder yet (distinct runs)."""
    seen: set[str] = set()
    for c in cfgs:
        if run_id(c) not in seen and find_done(c) is None:
            seen.add(run_id(c))
    return len(seen)


def train_line(cfgs: Iterable[Any], what: str) -> int:
    """Print how many runs of ``what`` must be trained and about how long that takes here; returns the count."""
    cfgs = list(cfgs)
    n = missing_runs(cfgs)
    if not n:
        print(f"{what}: every run is in {Path(cfgs[0].train.results_dir) / cfgs[0].profile}; nothing to train.")
        return 0
    jobs = max(1, min(n, resolve_jobs(cfgs[0])))
    per_run = TRAIN_RUN_SECONDS  # the demo trains in float32 on every CPU
    seconds = math.ceil(n / jobs) * per_run  # one run per core, side by side
    print(f"{what}: {n} run(s) to train, {jobs} at a time, with rjcma.train.cv: about {_duration(seconds)} here "
          f"({usable_cpus()} cores).")
    return n


def train_together(groups: Sequence[tuple[str, Sequence[Any]]], what: str) -> int:
    """Train the missing runs of several experiments, ``[(experiment folder, configs), ...]``, in one pool of workers,
    as `rjcma experiments` does for `make book`; prints :func:`train_line` first and returns the number of runs
    trained. Trained one experiment after another, each pool's last run would leave a core idle while the next
    experiment waits (the ablation chapter's l = 5 exercise run trained alone, after the ablation). A run listed
    twice is trained once, into the first experiment's folder; the chapter's commands then read what they would
    have trained."""
    cfgs = [c for _, cs in groups for c in cs]
    n = train_line(cfgs, what)
    if n:
        run_all(cfgs, [kind for kind, cs in groups for _ in cs], progress())
    return n


def experiment_configs(cfg, kind: str, **kw: Any) -> list[Any]:
    """The training configs an experiment of :mod:`rjcma.train.cv` runs (for :func:`train_line`)."""
    if kind == "cv":
        return cv.plan_configs(cv.plan_cv(cfg, kw.get("folds")))
    if kind == "ablate":
        return cv.plan_configs(cv.plan_ablation(cfg, kw.get("iterations"), kw.get("fold")))
    if kind == "compare":
        return cv.plan_configs(cv.plan_compare(cfg, kw.get("fold", 0), kw.get("models"), kw.get("folds")))
    raise ValueError(f"unknown experiment {kind!r}")
