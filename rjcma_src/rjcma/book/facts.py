"""The facts the book's pages repeat, in one place, so that no two pages can disagree.

* Measured run times (:data:`SECONDS_2_CORES`, :data:`TRAIN_RUN_SECONDS`, :data:`NOTEBOOK_SECONDS`): the figures the
  notebooks print before they build something, the start order of ``make book``'s notebooks, and the instructors'
  page's estimate of a student's first pass. **When training or preprocessing gets faster, update them here** (they
  come from an idle 2-core CPU with AVX2 and no bf16 units, the slow class, in float32, the demo's one precision;
  ``benchmarks/main_job.py`` measures them, ``benchmarks/RESULTS.md`` keeps the measurements).
* :func:`substitutions`: the values the chapters (``book/*.md``) show through MyST substitutions (``{{ demo_K }}``),
  read from the two profiles' config and the figures above; `rjcma book` writes them into the build's
  ``_config.yml``.
"""

from __future__ import annotations

import math
import statistics
from typing import Any

from rjcma import paper_numbers
from rjcma.config import Config, load_config
from rjcma.train import cv
from rjcma.train.results import run_id

# The demo computes in float32 on every CPU (`train.mixed_precision: no`, `preprocess.encoder_precision: fp32`), so
# one set of figures holds for every CPU of a class; those below come from the slow class: a 2-core AMD EPYC with AVX2
# and no AVX-512 (no bf16 units), idle, `make book` on a fresh clone of 2026-12-07 (1,346 s in all;
# benchmarks/RESULTS.md, "Issue 24, sixth pass"). A CPU with AVX-512 takes about a quarter less time for the same
# float32 arithmetic.
# Seconds for the demo corpus (12 videos, 4.8 min of video in all): the corpus (`rjcma synth`, 23.9 s), the
# preprocessing stages per minute of video (their sum is `rjcma preprocess --workers 2` of `make book` after the
# stand-ins' pretraining: 436 s less 195 s, 241 s; its split over the stages is the one the notebooks 02-05
# measured on a fresh copy, the float32 `features` stage scaled to that sum), and the stand-in encoders' one-off
# synthetic pretraining, then cached per machine in ~/.cache/rjcma (`benchmarks/standin_width.py`: 188 s for the
# visual stand-in, about 7 s for the audio one).
SECONDS_2_CORES = {
    "synth_per_video_minute": 5.0,
    "labels": 0.1, "faces": 3.3, "audio": 0.4, "speech": 1.4, "text": 0.5, "features": 44.5,  # per video minute
    "stand_in_pretraining": 195.0,
}
# Seconds of one demo training run, float32, one thread (`make train` runs two side by side): `rjcma experiments`'
# wall time over the rounds of two runs it trains (643 s for 37 runs, 19 rounds; stride 150).
TRAIN_RUN_SECONDS = 33.8
# Seconds each notebook ran in the demo profile's `make book` (the same run, two at a time; the runs exist): the
# start order of side-by-side runs when a notebook has no executed copy yet, longest first, so that no long notebook
# starts last and runs alone.
NOTEBOOK_SECONDS = {
    "12_inference": 70, "02_visual": 56, "05_encoders": 17, "13_paper_vs_code": 16, "04_text": 15, "06a_tcn": 13,
    "06c_gating": 13, "06b_equations": 13, "01_data": 10, "07_training": 10, "10_comparison": 10,
    "03_audio": 8, "09_ablation": 8, "08_cross_validation": 8, "11_results": 8,
}

# ---- a student's first pass (the instructors' page) -------------------------------------------------------------
def demo_runs(cfg: Config) -> int:
    """Distinct training runs the chapters train on a fresh clone (those `make book`'s `rjcma experiments` trains):
    the cross-validation, the ablation, the one-fold comparison, the six-fold check and the ablation exercise's
    l = 5."""
    cfgs = cv.plan_configs(cv.plan_cv(cfg)) + cv.plan_configs(cv.plan_ablation(cfg))
    cfgs += cv.plan_configs(cv.plan_compare(cfg))
    check = cv.compare_models(["unimodal:audio", "unimodal:visual", "unimodal:text", "rjcma"])
    cfgs += cv.plan_configs(cv.plan_compare(cfg, models=check, folds=cfg.book.folds))
    cfgs += [c.replace(num_iterations=5) for c in cv.plan_configs(cv.plan_ablation(cfg, iterations=[3]))]
    return len({run_id(c) for c in cfgs})


def student_seconds(cfg: Config) -> float:
    """Seconds of computing for every notebook in order on a fresh clone, idle 2-core machine of the slow class (AVX2,
    no bf16 units): the corpus, the feature store with the stand-ins' pretraining, the training runs two at a time,
    and the notebooks themselves."""
    minutes = cfg.book.demo_videos * cfg.book.demo_seconds / 60
    s = SECONDS_2_CORES
    build = s["synth_per_video_minute"] * minutes + s["stand_in_pretraining"]
    build += minutes * sum(s[k] for k in ("labels", "faces", "audio", "speech", "text", "features"))
    train = math.ceil(demo_runs(cfg) / 2) * TRAIN_RUN_SECONDS
    return build + train + sum(NOTEBOOK_SECONDS.values())


# ---- the chapters' substitutions --------------------------------------------------------------------------------
def _widths(channels: list[int]) -> str:
    return f"{len(channels)} levels × {channels[0]} wide" if len(set(channels)) == 1 else str(channels)


def substitutions() -> dict[str, Any]:
    """``{{ name }}`` → value for the chapters (``book/*.md``), from the demo and paper profiles and the figures of
    this module; every name a chapter uses must be here (the build fails on an unknown one)."""
    demo, paper = load_config("demo"), load_config("paper")
    out: dict[str, Any] = {}
    for name, c in (("demo", demo), ("paper", paper)):
        out |= {
            f"{name}_K": c.K,
            f"{name}_stride": c.data.stride,
            f"{name}_max_epochs": c.train.max_epochs,
            f"{name}_lr": f"{c.train.lr:g}".replace("e-0", "e-"),
            f"{name}_min_lr": f"{c.train.min_lr:g}".replace("e-0", "e-"),
            f"{name}_early_stop": c.train.early_stop,
            f"{name}_tcn": _widths(c.model.tcn_channels("visual")),
            f"{name}_iterations": c.model.num_iterations,
            f"{name}_face_size": c.preprocess.face_size,
            f"{name}_seed_train": c.train.seed,
        }
    fold_means = [r["mean"] for r in paper_numbers.TABLE1_FOLDS.values()]
    out |= {
        "paper_fold_spread": f"{statistics.pstdev(fold_means):.3f}",
        "paper_fold_range": f"{min(fold_means):.3f} to {max(fold_means):.3f}",
        "demo_videos": demo.book.demo_videos,
        "demo_video_seconds": f"{demo.book.demo_seconds:g}",
        "student_minutes": round(student_seconds(demo) / 60),
        "student_runs": demo_runs(demo),
        "standin_pretraining_minutes": round(SECONDS_2_CORES["stand_in_pretraining"] / 60),
        "train_run_seconds": f"{TRAIN_RUN_SECONDS:.0f}",
    }
    return {k: str(v) for k, v in out.items()}
