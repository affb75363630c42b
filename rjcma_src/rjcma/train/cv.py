"""Experiments built from :func:`rjcma.train.loop.train_one`: the paper's Tables 1–3 and the test export.

* :func:`run_cv` — six-fold cross-validation (Table 1): folds × targets.
* :func:`run_ablation` — number of recursions l = 1..4 on fold 1 (Table 3).
* :func:`run_compare` — fusion baselines on fold 0 (Table 2): unimodal ×3, early concatenation, leader-follower,
  JCA and RJCA on audio+visual, the released RJCMA fusion, and the paper's RJCMA.
* :func:`run_book_experiments` — all of the above that the book reads (and the exercises' runs), trained in one pool
  of worker processes (``rjcma experiments``, what ``make train`` runs).
* :func:`export_test` — test-set predictions in the ABAW submission format (the book's chapter *Data format*).

Each experiment writes its runs under ``results/<profile>/<kind>/<run_id>/`` (:func:`rjcma.train.loop.run_id`;
the book's chapter *Data format*) and a summary
``results/<profile>/<kind>/summary.json`` + ``summary.csv``. A run whose result folder is complete is not
retrained, and a run with the same configuration finished by another experiment (e.g. the fold-0 RJCMA model
of the cross-validation, which is also the RJCMA row of the comparison) is reused: its folder is named in the
summary row. With ``train.target=both`` one model predicts both targets; otherwise valence and arousal are
trained separately, as in the paper. ``train.repeats`` > 1 trains with seeds seed, seed+1, … and reports the mean
(and the standard deviation across repeats).
"""

from __future__ import annotations

import csv
import ctypes
import io
import json
import multiprocessing as mp
import signal
from concurrent.futures import ProcessPoolExecutor, as_completed
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
from tqdm.auto import tqdm

from rjcma import paper_numbers
from rjcma.config import Config
from rjcma.runtime import usable_cpus
from rjcma.data.dataset import WindowDataset, make_loader
from rjcma.data.store import Store
from rjcma.errors import RjcmaError
from rjcma.fusions import FUSIONS
from rjcma.io import atomic_write_json, atomic_write_text
from rjcma.models.rjcma import fusion_modalities
from rjcma.train.loop import (
    config_hash,
    is_complete,
    load_model,
    merge_predictions,
    predict_windows,
    run_id,
    train_one,
)

# The paper's numbers (rjcma.paper_numbers: Tables 1-3) shown beside ours, as (valence, arousal)
PAPER_TABLE1 = {f: (r["valence"], r["arousal"]) for f, r in paper_numbers.TABLE1_FOLDS.items()}
PAPER_TABLE3 = {l_: (r["valence"], r["arousal"]) for l_, r in paper_numbers.TABLE3_RECURSIONS.items()}
# Table 2, validation set (fold 0): the rows we re-run, by our fusion string
PAPER_TABLE2 = {m["fusion"]: (m["val_valence"], m["val_arousal"]) for m in paper_numbers.TABLE2_METHODS if m["fusion"]}

# (label, fusion, modalities) of the comparison (Table 2 analogue): every row of the fusion registry
COMPARE_MODELS: list[tuple[str, str, list[str]]] = [
    (f.run_label, f.name, f.compare_modalities()) for f in FUSIONS.values()
]


# the six-fold check of "fusion beats the best single modality" (the comparison chapter, `make train`)
FOLD_CHECK_MODELS = "unimodal:audio,unimodal:visual,unimodal:text,rjcma"


def _targets_runs(cfg: Config) -> list[str]:
    """``both`` → one model with two outputs; otherwise one model per target (the paper)."""
    return ["both"] if cfg.train.target == "both" else ["valence", "arousal"]


def _find_done(cfg: Config) -> Path | None:
    """A complete result folder of the same configuration anywhere under results/<profile>/."""
    root = Path(cfg.train.results_dir) / cfg.profile
    for f in sorted(root.glob(f"*/{run_id(cfg)}*/metrics.json")):
        if is_complete(f.parent, cfg) is not None:
            return f.parent
    return None


def train_or_reuse(cfg: Config, kind: str, progress: bool = True, log: Callable = print) -> tuple[dict, Path]:
    """Train ``cfg`` into results/<profile>/<kind>/<run_id>/ unless an identical run is complete somewhere."""
    done = _find_done(cfg)
    if done is not None:
        return json.loads((done / "metrics.json").read_text()), done
    run_dir = Path(cfg.train.results_dir) / cfg.profile / kind / run_id(cfg)
    if (run_dir / "metrics.json").exists():  # a finished run of another config (e.g. other epochs): keep it
        run_dir = run_dir.with_name(f"{run_dir.name}_{config_hash(cfg)}")
    return train_one(cfg, run_dir=run_dir, progress=progress, log=log), run_dir


def _cells(cfg: Config) -> list[Config]:
    """The runs behind one table cell: every target run (``both`` or valence + arousal) of every repeat."""
    return [cfg.replace(target=t, seed=cfg.train.seed + r)
            for r in range(max(1, int(cfg.train.repeats))) for t in _targets_runs(cfg)]


def resolve_jobs(cfg: Config) -> int:
    """Training runs at once: ``train.jobs``, or with 0 one per ``train.threads`` CPU cores (at most 8) on CPU and 1
    on a GPU."""
    jobs = int(cfg.train.jobs)
    if jobs > 0:
        return jobs
    on_gpu = cfg.train.device == "cuda" or (cfg.train.device == "auto" and torch.cuda.is_available())
    return 1 if on_gpu else max(1, min(8, usable_cpus() // max(1, int(cfg.train.threads))))


def _run_cost(cfg: Config) -> float:
    """Rough relative cost of a training run: its modalities' TCNs plus the fusion's iterations over them."""
    fusion, mods = cfg.model.fusion, len(cfg.model.modalities)
    if fusion.startswith("unimodal:"):
        return 1.0
    rounds = cfg.model.released_layers if fusion == "rjcma-released" else cfg.model.num_iterations
    return mods * (1.0 + 0.5 * rounds) if fusion in ("rjcma", "rjca", "rjcma-released", "jca") else mods * 1.2


def _worker_init(threads: int) -> None:
    torch.set_num_threads(threads)
    try:  # Linux: die with the parent (a killed `rjcma cv` must not leave workers training on)
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _train_job(cfg: Config, kind: str) -> tuple[dict, str]:
    m, d = train_or_reuse(cfg, kind, progress=False, log=lambda *a, **k: None)
    return m, str(d)


def run_all(cfgs: list[Config], kind: str | list[str], progress: bool = True, log: Callable = print,
            jobs: int | None = None) -> dict[str, tuple[dict, Path]]:
    """Train (or reuse) every config; returns {run_id: (metrics.json, folder)}.

    ``kind`` names the experiment folder of every run, or one per config (:func:`run_book_experiments` trains
    several experiments in one pool); a run asked for twice is trained once, into the first one's folder.

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
    todo: dict[str, tuple[Config, str]] = {}
    out: dict[str, tuple[dict, Path]] = {}
    for c, k in zip(cfgs, kinds):
        rid = run_id(c)
        if rid in todo or rid in out:
            continue
        done = _find_done(c)  # finished here or by another experiment: read, not retrained
        if done is not None:
            out[rid] = (json.loads((done / "metrics.json").read_text()), done)
        else:
            todo[rid] = (c, k)
    jobs = resolve_jobs(cfgs[0]) if jobs is None and cfgs else max(1, int(jobs or 1))
    if not todo:
        return out
    what = kind if isinstance(kind, str) else "+".join(dict.fromkeys(k for _, k in todo.values()))
    if jobs <= 1 or len(todo) <= 1:
        for rid, (c, k) in todo.items():
            m, d = train_or_reuse(c, k, progress, log)
            out[rid] = (m, Path(d))
        return out

    jobs = min(jobs, len(todo))
    first = next(iter(todo.values()))[0]
    threads = int(first.train.threads) or max(1, usable_cpus() // jobs)  # train_one pins it too
    log(f"{what}: {len(todo)} runs on {jobs} worker processes ({threads} thread(s) each)")
    with ProcessPoolExecutor(max_workers=jobs, mp_context=mp.get_context("spawn"), initializer=_worker_init,
                             initargs=(threads,)) as ex:
        # longest runs first, so that no long run starts last while the other workers sit idle (the numbers do not
        # depend on the order: each run pins its threads and seeds itself)
        order = sorted(todo, key=lambda rid: -_run_cost(todo[rid][0]))
        futs = {ex.submit(_train_job, *todo[rid]): rid for rid in order}
        bar = tqdm(total=len(futs), desc=what if len(what) <= 24 else "training", unit="run", disable=not progress)
        for f in as_completed(futs):
            m, d = f.result()  # a failed run raises here, with its own message
            out[futs[f]] = (m, Path(d))
            bar.set_postfix_str(Path(d).name)
            bar.update(1)
        bar.close()
    return out


def _scores(cfgs: list[Config], done: dict[str, tuple[dict, Path]]) -> tuple[dict[str, float], dict[str, float], list[str]]:
    """Mean CCC per target, std per target (across repeats) and the run folders of one table cell."""
    per: dict[str, list[float]] = {"valence": [], "arousal": []}
    dirs = []
    for c in cfgs:
        m, d = done[run_id(c)]
        dirs.append(str(d))
        for tt in c.targets:
            per[tt].append(float(m["metrics"][tt]["ccc"]))
    mean = {t: float(np.mean(v)) for t, v in per.items() if v}
    std = {t: float(np.std(v)) for t, v in per.items() if v}
    return mean, std, dirs


def _row(base: dict[str, Any], mean: dict[str, float], std: dict[str, float], dirs: list[str],
         paper: tuple[float, float] | None) -> dict[str, Any]:
    row = dict(base)
    row["valence"] = round(mean.get("valence", float("nan")), 4)
    row["arousal"] = round(mean.get("arousal", float("nan")), 4)
    row["mean"] = round(float(np.mean([row["valence"], row["arousal"]])), 4)
    row["valence_std"] = round(std.get("valence", 0.0), 4)
    row["arousal_std"] = round(std.get("arousal", 0.0), 4)
    row["paper_valence"], row["paper_arousal"] = paper if paper else (None, None)
    row["paper_mean"] = round((paper[0] + paper[1]) / 2, 4) if paper else None
    row["runs"] = ";".join(dirs)
    return row


def write_summary(cfg: Config, kind: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    """``results/<profile>/<kind>/summary.json`` and ``summary.csv``."""
    out = Path(cfg.train.results_dir) / cfg.profile / kind
    info = {"kind": kind, "profile": cfg.profile, "config_hash": config_hash(cfg), "rows": rows}
    info.update(extra or {})
    atomic_write_json(out / "summary.json", info)
    buf = io.StringIO()
    keys = list(rows[0]) if rows else []
    w = csv.DictWriter(buf, fieldnames=keys, lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow({k: "" if r.get(k) is None else r.get(k) for k in keys})
    atomic_write_text(out / "summary.csv", buf.getvalue())
    return out


def _parse_list(v: Any) -> list[int]:
    if isinstance(v, str):
        return [int(x) for x in v.replace(" ", "").split(",") if x]
    return [int(x) for x in v]


# ---- the experiments: what each trains (plan_*) and its table (run_*) ----------------------------------------------
def plan_cv(cfg: Config, folds: Any = None) -> dict[int, list[Config]]:
    """The runs of the cross-validation: fold -> its table cell's configs."""
    return {f: _cells(cfg.replace(fold=f)) for f in _parse_list(cfg.book.folds if folds is None else folds)}


def plan_ablation(cfg: Config, iterations: Any = None, fold: int | None = None) -> dict[int, list[Config]]:
    """The runs of the recursion ablation: l -> its cell's configs (RJCMA on ``fold``, default book.ablate_fold)."""
    fold = cfg.book.ablate_fold if fold is None else int(fold)
    iterations = _parse_list(cfg.book.ablate_iterations if iterations is None else iterations)
    return {l_: _cells(cfg.replace(fusion="rjcma", num_iterations=l_, fold=fold)) for l_ in iterations}


def plan_compare(cfg: Config, fold: int = 0, models: list[tuple[str, str, list[str]]] | None = None,
                 folds: Any = None) -> list[dict[int, list[Config]]]:
    """The runs of the comparison: per model (in ``models`` order) fold -> its cell's configs."""
    fold_list = [int(fold)] if folds is None else _parse_list(folds)
    cells: list[dict[int, list[Config]]] = []
    for _label, fusion, mods in models or COMPARE_MODELS:
        per_fold = {}
        for f in fold_list:
            c = cfg.replace(fusion=fusion, modalities=mods, fold=f)
            if FUSIONS[fusion].iterations is not None:  # JCA: l = 1
                c = c.replace(num_iterations=FUSIONS[fusion].iterations)
            per_fold[f] = _cells(c)
        cells.append(per_fold)
    return cells


def plan_exercises(cfg: Config) -> list[Config]:
    """Runs the chapters' exercises read: the ablation chapter's l = 5 (one beyond Table 3) on the ablation fold."""
    return _cells(cfg.replace(fusion="rjcma", num_iterations=5, fold=cfg.book.ablate_fold))


def _flat(cells: Any) -> list[Config]:
    if isinstance(cells, dict):
        return [c for cs in cells.values() for c in cs]
    return [c for pf in cells for cs in pf.values() for c in cs]


def run_cv(cfg: Config, folds: Any = None, progress: bool = True, log: Callable = print) -> list[dict[str, Any]]:
    """Six-fold cross-validation (paper Table 1): one row per fold with CCC of valence, arousal and their mean."""
    cells = plan_cv(cfg, folds)
    done = run_all(_flat(cells), "cv", progress, log)
    rows = [_row({"fold": f, "fusion": cfg.model.fusion}, *_scores(cs, done), PAPER_TABLE1.get(f))
            for f, cs in cells.items()]
    write_summary(cfg, "cv", rows)
    return rows


def run_ablation(cfg: Config, iterations: Any = None, fold: int | None = None, progress: bool = True,
                 log: Callable = print) -> list[dict[str, Any]]:
    """Number of recursions l (paper Table 3) of the RJCMA fusion on one fold (paper: fold 1)."""
    fold = cfg.book.ablate_fold if fold is None else int(fold)
    cells = plan_ablation(cfg, iterations, fold)
    done = run_all(_flat(cells), "ablate", progress, log)
    rows = [_row({"l": l_, "fold": fold}, *_scores(cs, done), PAPER_TABLE3.get(l_) if fold == 1 else None)
            for l_, cs in cells.items()]
    write_summary(cfg, "ablate", rows, {"fold": fold})
    return rows


def compare_models(fusions: Any = None) -> list[tuple[str, str, list[str]]]:
    """The rows of :data:`COMPARE_MODELS` whose fusion is in ``fusions`` (a list or a comma string; None = all)."""
    if fusions is None or fusions == "" or fusions == "all":
        return list(COMPARE_MODELS)
    want = [f.strip() for f in (fusions.split(",") if isinstance(fusions, str) else fusions) if f.strip()]
    known = {f for _, f, _ in COMPARE_MODELS}
    bad = [f for f in want if f not in known]
    if bad:
        raise RjcmaError(f"unknown model(s) {', '.join(bad)} for compare; choose from {', '.join(sorted(known))}")
    return [m for m in COMPARE_MODELS if m[1] in want]


def run_compare(cfg: Config, fold: int = 0, models: list[tuple[str, str, list[str]]] | None = None,
                progress: bool = True, log: Callable = print, folds: Any = None) -> list[dict[str, Any]]:
    """Fusion baselines (paper Table 2 analogue, validation columns).

    One fold (default 0, the official validation set, as the paper): ``results/<profile>/compare/``. With ``folds``
    (e.g. all six) every model is trained on each of them and its row holds the mean over the folds, the std
    across them and the per-fold values, in ``results/<profile>/compare-folds/``: with two or three validation
    trials per demo fold, a single fold's ranking of close models is mostly chance, and the mean over six folds
    is the fairer test of "fusion beats the best single modality". Runs already trained by ``cv`` (RJCMA) or by
    the one-fold comparison are reused.
    """
    models = models or COMPARE_MODELS
    fold_list = [int(fold)] if folds is None else _parse_list(folds)
    kind = "compare" if folds is None else "compare-folds"
    cells = plan_compare(cfg, fold, models, folds)
    done = run_all(_flat(cells), kind, progress, log)
    rows = []
    for (label, fusion, mods), pf in zip(models, cells):
        base = {"model": label, "fusion": fusion, "modalities": "+".join(mods),
                "fold": fold_list[0] if len(fold_list) == 1 else ",".join(map(str, fold_list))}
        if folds is None:
            rows.append(_row(base, *_scores(pf[fold_list[0]], done), PAPER_TABLE2.get(fusion) if fold == 0 else None))
            continue
        per_fold = {f: _scores(cs, done) for f, cs in pf.items()}  # fold -> (mean, std, dirs)
        fold_means = {f: sc[0] for f, sc in per_fold.items()}
        mean = {t: float(np.mean([m[t] for m in fold_means.values()])) for t in ("valence", "arousal")
                if all(t in m for m in fold_means.values())}
        std = {t: float(np.std([m[t] for m in fold_means.values()])) for t in mean}
        row = _row(base, mean, std, [d for sc in per_fold.values() for d in sc[2]], None)
        for t in mean:
            row[f"per_fold_{t}"] = ";".join(f"{fold_means[f][t]:.4f}" for f in fold_list)
        rows.append(row)
    write_summary(cfg, kind, rows, {"fold": fold_list[0]} if folds is None else {"folds": fold_list})
    return rows


def book_experiments(cfg: Config) -> list[tuple[str, list[Config]]]:
    """Every run the book's chapters read, by experiment folder: cv, ablate, compare (fold 0), compare-folds (the
    six-fold check of :data:`FOLD_CHECK_MODELS`) and the exercises' runs."""
    check = compare_models(FOLD_CHECK_MODELS)
    return [("cv", _flat(plan_cv(cfg))), ("ablate", _flat(plan_ablation(cfg))),
            ("compare", _flat(plan_compare(cfg, 0))),
            ("compare-folds", _flat(plan_compare(cfg, models=check, folds=cfg.book.folds))),
            ("exercises", plan_exercises(cfg))]


def run_book_experiments(cfg: Config, progress: bool = True, log: Callable = print) -> dict[str, list[dict[str, Any]]]:
    """Train every run of :func:`book_experiments` in one pool of workers (longest first, so no worker idles while
    one experiment's last run finishes before the next experiment starts), then write each experiment's summary.

    The numbers are those of ``rjcma cv``, ``ablate`` and ``compare`` run one after another: every run pins its
    threads and seeds itself, and a run two experiments share is trained once."""
    plan = book_experiments(cfg)
    run_all([c for _, cs in plan for c in cs], [k for k, cs in plan for _ in cs], progress, log)
    quiet = lambda *a, **k: None  # noqa: E731 - every run is done: the calls below only read and write summaries
    return {"cv": run_cv(cfg, progress=False, log=quiet),
            "ablate": run_ablation(cfg, progress=False, log=quiet),
            "compare": run_compare(cfg, 0, progress=False, log=quiet),
            "compare-folds": run_compare(cfg, models=compare_models(FOLD_CHECK_MODELS), folds=cfg.book.folds,
                                         progress=False, log=quiet)}


def export_test(cfg: Config, checkpoint: Any, out: str | Path, sample_file: str | Path | None = None,
                partition: str = "test") -> Path:
    """Predictions for every frame of the ``partition`` trials in the ABAW submission format (the book's chapter
    *Data format*).

    ``checkpoint``: a result folder (or a list of two: a valence and an arousal model, as the paper trains them).
    Rows ``<trial>/<NNNNN>.jpg,valence,arousal`` with NNNNN the 1-based frame number; with ``sample_file`` (the
    organisers' sample submission) exactly its rows, in its order.
    """
    ckpts = [checkpoint] if isinstance(checkpoint, (str, Path)) else list(checkpoint)
    store = Store(Path(cfg.data.store))
    trials = [n for n in store.trials() if str(store.meta(n).get("partition", "")).lower() == partition]
    if not trials:
        raise RjcmaError(f"{store.root}: no '{partition}' trials in the store; preprocess the corpus with its test set")
    per_target: dict[str, dict[str, np.ndarray]] = {}
    for ck in ckpts:
        model, mcfg, text_stats = load_model(ck)
        mcfg = mcfg.replace(store=str(store.root), num_workers=cfg.train.num_workers, device=cfg.train.device)
        device = torch.device("cuda" if torch.cuda.is_available() and mcfg.train.device != "cpu" else "cpu")
        model.to(device)
        ds = WindowDataset(store, trials, mcfg, train=False, text_stats=text_stats, modalities=fusion_modalities(mcfg))
        merged = merge_predictions(predict_windows(model, make_loader(ds, mcfg, train=False), device), ds.lengths, mcfg.K)
        for j, t in enumerate(mcfg.targets):
            per_target[t] = {n: p[:, j] for n, p in merged.items()}
    missing = [t for t in ("valence", "arousal") if t not in per_target]
    if missing:
        raise RjcmaError(f"{ckpts[0]}: no model for {', '.join(missing)}; give a 'both' model or one per target")
    rows: list[tuple[str, int]] = []
    if sample_file:
        sp = Path(sample_file)
        if not sp.exists():
            raise RjcmaError(f"{sp}: sample submission file not found")
        for i, line in enumerate(sp.read_text().splitlines()[1:], start=2):
            loc = line.split(",")[0].strip()
            if not loc:
                continue
            try:
                trial, img = loc.rsplit("/", 1)
                rows.append((trial, int(img.split(".")[0]) - 1))
            except ValueError as e:
                raise RjcmaError(f"{sp}:{i}: expected <trial>/<NNNNN>.jpg, got {loc!r}") from e
    else:
        rows = [(n, k) for n in sorted(trials) for k in range(store_len(per_target, n))]
    buf = io.StringIO()
    buf.write("image_location,valence,arousal\n")
    for trial, k in rows:
        if trial not in per_target["valence"]:
            raise RjcmaError(f"{sample_file}: trial {trial} is not a '{partition}' trial of {store.root}")
        v = per_target["valence"][trial]
        a = per_target["arousal"][trial]
        k = min(k, len(v) - 1)
        buf.write(f"{trial}/{k + 1:05d}.jpg,{v[k]:.6f},{a[k]:.6f}\n")
    out = Path(out)
    atomic_write_text(out, buf.getvalue())
    return out


def store_len(per_target: dict[str, dict[str, np.ndarray]], name: str) -> int:
    return len(per_target["valence"][name])


def default_checkpoint(cfg: Config) -> Path:
    """The model ``make book`` trains and ``rjcma predict`` uses without --checkpoint: the fold-0 model of the
    cross-validation with the profile's fusion and target (``both`` in the demo)."""
    c = cfg.replace(fold=0)
    if c.train.target != "both":
        c = c.replace(target="valence")
    return Path(c.train.results_dir) / c.profile / "cv" / run_id(c)
