"""`rjcma preprocess`: every trial of a corpus -> the feature store, resumable and sharded (paper §4.2.1).

The trials of one video are processed in order by one worker (they share its decoded audio and transcript); each
goes through its stages by :func:`rjcma.preprocess.trial.preprocess_trial` (what the stages are and how a rerun
resumes: :mod:`rjcma.preprocess.trial`). A failing trial is reported and the others go on. ``--shard i/n`` takes
every n-th video (job arrays); ``--workers`` runs videos in parallel processes, whose bytes in the store equal those
of one process (the encoders run on fixed threads).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import time
import traceback
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from typing import Iterable

import torch
from tqdm.auto import tqdm

from rjcma.config import Config
from rjcma.data.abaw import load_corpus
from rjcma.data.store import Store
from rjcma.encoders.build import encoder, weights_file
from rjcma.errors import RjcmaError
from rjcma.models.text_encoder import resolve_model_dir
from rjcma.preprocess import speech
from rjcma.preprocess.punctuation import punctuation_plan
from rjcma.preprocess.trial import STAGES, preprocess_trial


@dataclass
class Report:
    """Outcome of :func:`preprocess_corpus`: trials done (some stage ran), skipped (all up to date), failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    store: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        s = (f"{len(self.done)} trial(s) processed, {len(self.skipped)} up to date, {len(self.failed)} failed "
             f"in {self.seconds:.1f} s -> {self.store}")
        for name, msg in self.failed.items():
            s += f"\n  FAILED {name}: {msg}"
        return s


# ---- corpus ----------------------------------------------------------------------------------------------------
def check_models(cfg, stages: Iterable[str]) -> None:
    """Resolve every model the given stages read (rjcma.assets rule); the first missing one raises its error."""
    p, stages = cfg.preprocess, set(stages)
    if "speech" in stages and p.asr_backend != "none":
        backend, _ = speech.resolve_backend(p.asr_backend, p.asr_model, p.weights_dir)
        punctuation_plan(p.punctuation_model, p.weights_dir, speech.backend_punctuates(backend))
    if "text" in stages:
        resolve_model_dir(p.text_model, p.weights_dir)
    if "features" in stages:
        weights_file(cfg, p.visual_encoder), weights_file(cfg, p.audio_encoder)


def _parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if shard is None or shard == "":
        return None
    if isinstance(shard, tuple):
        i, n = shard
    else:
        try:
            i, n = (int(x) for x in str(shard).split("/"))
        except ValueError:
            raise RjcmaError(f"--shard expects i/n (e.g. 0/4), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise RjcmaError(f"--shard i/n needs 0 <= i < n, got {i}/{n}")
    return i, n


def _parse_stages(stages) -> list[str]:
    if stages is None or stages == "all" or stages == "":
        return list(STAGES)
    if isinstance(stages, str):
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    if "all" in stages:
        return list(STAGES)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RjcmaError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]


def _run_group(cfg_dict: dict, trials: list, stages: list[str], threads: int | None) -> list[tuple[str, str, Any]]:
    """Worker: the trials of one video, in order (they share audio and words). Returns (name, status, payload)."""
    if threads:
        torch.set_num_threads(threads)
    cfg = Config.from_dict(cfg_dict)
    store = Store(cfg.data.store)
    out = []
    for t in trials:
        try:
            r = preprocess_trial(t, store, cfg, stages)
            out.append((t.name, "done" if r["ran"] else "skipped", r["warnings"]))
        except RjcmaError as e:
            out.append((t.name, "failed", str(e)))
        except Exception as e:  # an unexpected bug in one trial must not stop the corpus
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            out.append((t.name, "failed", f"{type(e).__name__}: {e} ({tb})"))
    return out


def preprocess_corpus(cfg, workers: int | None = None, shard: str | tuple[int, int] | None = None,
                      stages: Iterable[str] | str | None = None, progress: bool = True,
                      trials: Iterable[str] | None = None) -> Report:
    """Preprocess every trial of ``cfg.data.corpus`` into ``cfg.data.store``; see the module docstring."""
    t0 = time.time()
    corpus = load_corpus(cfg)
    store = Store(cfg.data.store)
    store.root.mkdir(parents=True, exist_ok=True)
    stage_list = _parse_stages(stages if stages is not None else cfg.preprocess.stages)
    check_models(cfg, stage_list)  # a missing model stops the run here, once, not in every trial
    sel = list(corpus.trials)
    if trials is not None:
        wanted = set(trials)
        sel = [t for t in sel if t.name in wanted]
    groups: dict[str, list] = {}
    for t in sel:
        groups.setdefault(t.video_stem or t.name, []).append(t)
    keys = sorted(groups)
    sh = _parse_shard(shard)
    if sh is not None:
        keys = [k for j, k in enumerate(keys) if j % sh[1] == sh[0]]
    workers = int(workers if workers is not None else cfg.preprocess.workers) or 1
    report = Report(store=str(store.root))
    n_trials = sum(len(groups[k]) for k in keys)
    bar = _progress(n_trials, progress)

    def collect(results):
        for name, status, payload in results:
            if status == "failed":
                report.failed[name] = payload
            else:
                (report.done if status == "done" else report.skipped).append(name)
                if payload:
                    report.warnings[name] = payload
            bar.update(1)
            bar.set_postfix_str(name[-24:])

    cfg_dict = cfg.to_dict()
    try:
        if workers <= 1 or len(keys) <= 1:
            for k in keys:
                collect(_run_group(cfg_dict, groups[k], stage_list, None))
        else:
            threads = max(1, (os.cpu_count() or 1) // workers)
            if "features" in stage_list:  # build/cache stand-in weights once, before the workers need them
                encoder("visual", cfg), encoder("audio", cfg)
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
                futs = [ex.submit(_run_group, cfg_dict, groups[k], stage_list, threads) for k in keys]
                for f in as_completed(futs):
                    collect(f.result())
    finally:
        bar.close()
    report.done.sort()
    report.skipped.sort()
    report.seconds = time.time() - t0
    return report


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _progress(total: int, on: bool):
    if not on:
        return _NoBar()
    return tqdm(total=total, desc="preprocess", unit="trial", dynamic_ncols=True)
