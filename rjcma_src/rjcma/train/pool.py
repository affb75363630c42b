"""Many training runs at once: each run trained (:func:`rjcma.train.loop.train_one`) or, when an identical run is
complete anywhere under ``results/<profile>/``, read back; the runs to train go to a pool of worker processes.

Every run computes with ``train.threads`` threads wherever it runs and seeds itself from its own config, so its
numbers are the same bytes whatever the number of workers and whichever worker or order trained it.
"""

from __future__ import annotations

import ctypes
import json
import multiprocessing as mp
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Callable

import torch
from tqdm.auto import tqdm

from rjcma.config import Config
from rjcma.runtime import usable_cpus
from rjcma.train.loop import train_one
from rjcma.train.results import config_hash, find_done, run_id

Done = dict[str, tuple[dict, Path]]  # run_id -> (metrics.json, result folder)


def train_or_reuse(cfg: Config, kind: str, progress: bool = True, log: Callable = print) -> tuple[dict, Path]:
    """Train ``cfg`` into results/<profile>/<kind>/<run_id>/ unless an identical run is complete somewhere."""
    done = find_done(cfg)
    if done is not None:
        return json.loads((done / "metrics.json").read_text()), done
    run_dir = Path(cfg.train.results_dir) / cfg.profile / kind / run_id(cfg)
    if (run_dir / "metrics.json").exists():  # a finished run of another config (e.g. other epochs): keep it
        run_dir = run_dir.with_name(f"{run_dir.name}_{config_hash(cfg)}")
    return train_one(cfg, run_dir=run_dir, progress=progress, log=log), run_dir


def resolve_jobs(cfg: Config) -> int:
    """Training runs at once: ``train.jobs``, or with 0 one per ``train.threads`` CPU cores (at most 8) on CPU and 1
    on a GPU."""
    jobs = int(cfg.train.jobs)
    if jobs > 0:
        return jobs
    on_gpu = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    return 1 if on_gpu else max(1, min(8, usable_cpus() // max(1, int(cfg.train.threads))))


def run_cost(cfg: Config) -> float:
    """Rough relative cost of a training run: its modalities' TCNs plus the fusion's iterations over them."""
    fusion, mods = cfg.model.fusion, len(cfg.model.modalities)
    if fusion.startswith("unimodal:"):
        return 1.0
    rounds = cfg.model.released_layers if fusion == "rjcma-released" else cfg.model.num_iterations
    return mods * (1.0 + 0.5 * rounds) if fusion in ("rjcma", "rjca", "rjcma-released", "jca") else mods * 1.2


def run_all(cfgs: list[Config], kind: str | list[str], progress: bool = True, log: Callable = print,
            jobs: int | None = None) -> Done:
    """Train (or reuse) every config; returns {run_id: (metrics.json, folder)}.

    ``kind`` names the experiment folder of every run, or one per config
    (:func:`rjcma.train.experiments.run_book_experiments` trains several experiments in one pool); a run asked for
    twice is trained once, into the first one's folder.

    With ``jobs`` > 1 (default :func:`resolve_jobs`) the runs go to that many worker processes: the demo's models are
    small, so on a CPU two one-thread runs finish in about the time of one two-thread run. Each run writes only its
    own folder and resumes on its own, as in a serial run. Every run computes with ``train.threads`` threads
    wherever it runs (:func:`rjcma.train.loop.train_one` pins them) and seeds itself from its own config, so its
    numbers are the same bytes whatever ``jobs`` is and whichever worker or order trained it; floating-point sums
    split over another number of threads would differ in the last digits.
    """
    kinds = [kind] * len(cfgs) if isinstance(kind, str) else list(kind)
    if len(kinds) != len(cfgs):
        raise ValueError(f"run_all: {len(cfgs)} configs but {len(kinds)} kinds")
    out, todo = _split_done(cfgs, kinds)
    jobs = resolve_jobs(cfgs[0]) if jobs is None and cfgs else max(1, int(jobs or 1))
    if not todo:
        return out
    if jobs <= 1 or len(todo) <= 1:
        for rid, (c, k) in todo.items():
            m, d = train_or_reuse(c, k, progress, log)
            out[rid] = (m, Path(d))
        return out
    what = kind if isinstance(kind, str) else "+".join(dict.fromkeys(k for _, k in todo.values()))
    out.update(_train_in_pool(todo, min(jobs, len(todo)), what, progress, log))
    return out


def _split_done(cfgs: list[Config], kinds: list[str]) -> tuple[Done, dict[str, tuple[Config, str]]]:
    """The runs already complete somewhere (read back) and those to train, each once, in order."""
    todo: dict[str, tuple[Config, str]] = {}
    out: Done = {}
    for c, k in zip(cfgs, kinds):
        rid = run_id(c)
        if rid in todo or rid in out:
            continue
        done = find_done(c)  # finished here or by another experiment: read, not retrained
        if done is not None:
            out[rid] = (json.loads((done / "metrics.json").read_text()), done)
        else:
            todo[rid] = (c, k)
    return out, todo


def _train_in_pool(todo: dict[str, tuple[Config, str]], jobs: int, what: str, progress: bool, log: Callable) -> Done:
    first = next(iter(todo.values()))[0]
    threads = int(first.train.threads) or max(1, usable_cpus() // jobs)  # train_one pins it too
    log(f"{what}: {len(todo)} runs on {jobs} worker processes ({threads} thread(s) each)")
    out: Done = {}
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as ex:
        # longest runs first, so that no long run starts last while the other workers sit idle (the numbers do not
        # depend on the order: each run pins its threads and seeds itself)
        order = sorted(todo, key=lambda rid: -run_cost(todo[rid][0]))
        futs = {ex.submit(_train_job, *todo[rid]): rid for rid in order}
        bar = tqdm(total=len(futs), desc=what if len(what) <= 24 else "training", unit="run", disable=not progress)
        for f in as_completed(futs):
            m, d = f.result()  # a failed run raises here, with its own message
            out[futs[f]] = (m, Path(d))
            bar.set_postfix_str(Path(d).name)
            bar.update(1)
        bar.close()
    return out


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)
    try:  # Linux: die with the parent (a killed `rjcma cv` must not leave workers training on)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _train_job(cfg: Config, kind: str) -> tuple[dict, str]:
    m, d = train_or_reuse(cfg, kind, progress=False, log=lambda *a, **k: None)
    return m, str(d)
