"""How sure the comparison and ablation tables are: each row's CCC with a 95 % interval, and its difference to a
reference row (RJCMA) with a *paired* interval, read back from the runs' ``predictions/<trial>.csv`` and the
store's labels (the statistics are :mod:`rjcma.metrics`'s).

* One fold (``rjcma compare``, ``rjcma ablate``): every row was scored on the same validation frames. The units
  resampled are the fold's trials, or blocks of frames when it has few (:func:`rjcma.metrics.evaluation_units`);
  each replicate scores every row on the same resampled units, so a row's difference to the reference is paired.
* Several folds (``rjcma compare --folds``, the six-fold check): a row's number is the mean over folds of its CCC
  per fold, and so is every replicate: units are resampled inside each fold (a stratified bootstrap, one stream per
  fold number), the same draws for every row. This is chosen over a paired test across the folds because with six
  folds such a test has five degrees of freedom and needs the fold differences to be normal, while the stratified
  bootstrap uses every frame, gives each row its own interval as well as the difference's, and is the one-fold
  method unchanged. It holds the trained models fixed: the spread of training itself (seeds) is not in it, and the
  number of folds on which a row beats the reference (``folds_better``) is reported beside it.
* A row with several runs on a fold (``train.repeats`` seeds, or one run per target) is their mean, as in
  the summary; every replicate averages its runs on the same draws.

The point estimate is recomputed from the prediction files with the evaluation's own code
(:func:`rjcma.train.evaluation.score_predictions`) and checked against the run's ``metrics.json``: the files hold
every float32 prediction to its last bit (nine significant digits), so the two agree to :data:`STORED_TOLERANCE`
(rounding only); a larger gap means the labels in the store are not those the run was scored on, and is an error.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from rjcma.config import Config, ModelConfig
from rjcma.data.store import Store
from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_json
from rjcma.metrics import (
    LEVEL,
    RESAMPLES,
    SEED,
    Interval,
    Units,
    ccc_replicates,
    ccc_unit_stats,
    evaluation_units,
    percentile_interval,
)
from rjcma.train.evaluation import TARGET_COLUMNS, score_predictions

STORED_TOLERANCE = 1e-9  # |CCC from predictions/<trial>.csv (float32 to the bit) - CCC in metrics.json| allowed
INTERVALS_FILE = "summary_intervals.json"


@dataclass
class RunScores:
    """One result folder read back: its fold, targets, trials, stored CCCs and per-frame predictions."""

    path: Path
    fold: int
    targets: list[str]
    trials: list[str]
    stored: dict[str, float]  # metrics.json CCC per target
    preds: dict[str, np.ndarray]  # trial -> (N, len(targets)) float32, columns in ``targets`` order
    store: Path


@dataclass
class FoldFrames:
    """The validation frames of one fold: trials (sorted, the evaluation's order), labels, resampling units."""

    fold: int
    trials: list[str]
    labels: dict[str, np.ndarray]
    units: Units


@dataclass
class TargetIntervals:
    """One row and target: CCC with its interval, metrics.json's value, the paired difference to the reference."""

    ccc: Interval
    stored: float
    diff: Interval | None = None  # row minus reference (None for the reference row or without a reference)
    folds_better: int | None = None  # several folds: on how many the row's CCC beats the reference's
    per_fold: dict[int, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        out = {"ccc": _clean(self.ccc.as_dict()), "stored": _num(self.stored),
               "per_fold": {str(f): _num(v) for f, v in self.per_fold.items()}}
        if self.diff is not None:
            out["diff"] = _clean(self.diff.as_dict()) | {"excludes_zero": self.diff.excludes_zero}
        if self.folds_better is not None:
            out["folds_better"] = self.folds_better
        return out


@dataclass
class RowIntervals:
    label: str
    runs: list[str]
    folds: list[int]
    targets: dict[str, TargetIntervals]

    def as_dict(self) -> dict[str, Any]:
        return {"label": self.label, "runs": self.runs, "folds": self.folds,
                "targets": {t: v.as_dict() for t, v in self.targets.items()}}


@dataclass
class TableIntervals:
    """Every row of one table; ``units`` describes each fold's resampling units (kind, count, block length)."""

    rows: list[RowIntervals]
    reference: str | None
    units: dict[int, dict[str, Any]]
    resamples: int
    seed: int
    level: float

    def row(self, label: str) -> RowIntervals:
        for r in self.rows:
            if r.label == label:
                return r
        raise KeyError(label)

    def as_dict(self) -> dict[str, Any]:
        return {"reference": self.reference, "level": self.level, "resamples": self.resamples, "seed": self.seed,
                "method": "percentile bootstrap over units; differences paired (the same draws for every row); "
                          "several folds: units resampled within each fold, the row's mean over folds",
                "units": {str(f): u for f, u in self.units.items()}, "rows": [r.as_dict() for r in self.rows]}


def _num(v: float) -> float | None:
    return None if v is None or np.isnan(v) else float(v)


def _clean(d: dict[str, float]) -> dict[str, float | None]:
    return {k: _num(v) for k, v in d.items()}


# ---- reading runs back -----------------------------------------------------------------------------------------------
def _read_predictions(path: Path, targets: list[str]) -> np.ndarray:
    """``predictions/<trial>.csv`` (frame,valence,arousal) → ``(N, len(targets))`` float32."""
    if not path.exists():
        raise RjcmaError(f"{path}: missing; the run did not finish, rerun it")
    rows = list(csv.reader(io.StringIO(path.read_text())))
    if not rows or rows[0][:3] != ["frame", "valence", "arousal"]:
        raise RjcmaError(f"{path}: expected the header frame,valence,arousal; rerun the run to rewrite it")
    cols = [rows[0].index(t) for t in targets]
    try:
        # float32 as the evaluation held them: a value written with round-trip precision reads back to its bits
        return np.array([[float(r[c]) for c in cols] for r in rows[1:]], dtype=np.float64).astype(np.float32)
    except (ValueError, IndexError) as e:
        raise RjcmaError(f"{path}: a row lacks a number for {'/'.join(targets)} ({e}); rerun the run") from e


def read_run(run_dir: str | Path, store: str | Path | None = None) -> RunScores:
    """A finished result folder: ``metrics.json``, the store of its ``config.yaml`` (or ``store``) and its
    predictions of every validation trial."""
    run_dir = Path(run_dir)
    mpath = run_dir / "metrics.json"
    if not mpath.exists():
        raise RjcmaError(f"{mpath}: missing; the run did not finish, rerun it")
    try:
        m = json.loads(mpath.read_text())
    except json.JSONDecodeError as e:
        raise RjcmaError(f"{mpath}: not valid JSON ({e}); rerun the run") from e
    targets = [t for t in m["targets"] if t in TARGET_COLUMNS]
    trials = sorted(m["metrics"][targets[0]]["per_trial"]) if targets else []
    if store is None:
        store = Config.from_yaml(run_dir / "config.yaml").data.store
    preds = {n: _read_predictions(run_dir / "predictions" / f"{n}.csv", targets) for n in trials}
    return RunScores(run_dir, int(m["fold"]), targets, trials, {t: float(m["metrics"][t]["ccc"]) for t in targets},
                     preds, Path(store))


def fold_frames(run: RunScores) -> FoldFrames:
    """The labels of a run's validation trials (as the evaluation reads them) and the fold's resampling units."""
    st = Store(run.store)
    labels = {n: np.asarray(st.load(n, "labels"), dtype=np.float32) for n in run.trials}
    for n in run.trials:
        if len(labels[n]) != len(run.preds[n]):
            raise RjcmaError(f"{run.path / 'predictions' / (n + '.csv')}: {len(run.preds[n])} frames but the store "
                             f"{run.store} has {len(labels[n])} labels; was the store rebuilt after the run?")
    return FoldFrames(run.fold, run.trials, labels, evaluation_units([labels[n] for n in run.trials]))


# ---- one row ---------------------------------------------------------------------------------------------------------
def _member(run: RunScores, frames: FoldFrames, target: str) -> tuple[np.ndarray, float]:
    """Statistics ``(U, 6)`` of one run and target on the fold's units, and its CCC as the evaluation computes it."""
    if run.trials != frames.trials:
        raise RjcmaError(f"{run.path}: validated on other trials than the other runs of fold {frames.fold}; "
                         "rows of one table must be scored on the same frames")
    j = run.targets.index(target)
    est = score_predictions(run.preds, frames.labels, run.targets)[target]["ccc"]
    if not abs(est - run.stored[target]) <= STORED_TOLERANCE:
        raise RjcmaError(f"{run.path}: the CCC of its predictions ({est:.6f}, {target}) is not metrics.json's "
                         f"({run.stored[target]:.6f}); the labels in {run.store} changed since the run, rerun it")
    x = np.concatenate([run.preds[n][:, j] for n in frames.trials])
    y = np.concatenate([frames.labels[n][:, TARGET_COLUMNS[target]] for n in frames.trials])
    return ccc_unit_stats(x, y, frames.units.ids, frames.units.count), est


@dataclass
class _RowTarget:
    folds: list[int]
    per_fold: dict[int, float]  # mean CCC over the row's runs on each fold (recomputed)
    stored: float
    replicates: np.ndarray

    @property
    def estimate(self) -> float:
        return float(np.mean([self.per_fold[f] for f in self.folds]))


def _row_target(runs: list[RunScores], frames: dict[int, FoldFrames], target: str, resamples: int,
                seed: int) -> _RowTarget | None:
    by_fold: dict[int, list[RunScores]] = {}
    for r in runs:
        if target in r.targets:
            by_fold.setdefault(r.fold, []).append(r)
    if not by_fold or set(by_fold) != {r.fold for r in runs}:
        return None  # the row has no run of this target (on some fold)
    folds = sorted(by_fold)
    strata, per_fold, stored = [], {}, []
    for f in folds:
        members = [_member(r, frames[f], target) for r in by_fold[f]]
        strata.append(np.stack([s for s, _ in members]))
        per_fold[f] = float(np.mean([e for _, e in members]))
        stored.append(float(np.mean([r.stored[target] for r in by_fold[f]])))
    return _RowTarget(folds, per_fold, float(np.mean(stored)), ccc_replicates(strata, resamples, seed, keys=folds))


# ---- the table -------------------------------------------------------------------------------------------------------
def table_intervals(rows: Mapping[str, Sequence[str | Path]], reference: str | None = None,
                    store: str | Path | None = None, resamples: int = RESAMPLES, seed: int = SEED,
                    level: float = LEVEL) -> TableIntervals:
    """CCC intervals of every row (``{label: run folders}``, in table order) and, with ``reference`` (a label),
    every other row's paired difference to it. Rows with runs on several folds are means over those folds (the
    reference must then cover the same folds). ``store`` overrides the runs' ``data.store``."""
    if reference is not None and reference not in rows:
        raise RjcmaError(f"reference row {reference!r} is not among the rows ({', '.join(rows)})")
    runs = {label: [read_run(p, store) for p in paths] for label, paths in rows.items()}
    frames: dict[int, FoldFrames] = {}
    for rs in runs.values():
        for r in rs:
            if r.fold not in frames:
                frames[r.fold] = fold_frames(r)
    targets = [t for t in TARGET_COLUMNS if any(t in r.targets for rs in runs.values() for r in rs)]
    scored = {label: {t: _row_target(rs, frames, t, resamples, seed) for t in targets} for label, rs in runs.items()}
    ref = scored.get(reference) if reference is not None else None
    out = []
    for label, per_t in scored.items():
        tis = {}
        for t, rt in per_t.items():
            if rt is None:
                continue
            ti = TargetIntervals(percentile_interval(rt.replicates, rt.estimate, level), rt.stored,
                                 per_fold=rt.per_fold)
            base = ref.get(t) if ref is not None and label != reference else None
            if base is not None:
                if base.folds != rt.folds:
                    raise RjcmaError(f"row {label!r} is on folds {rt.folds}, the reference {reference!r} on "
                                     f"{base.folds}: a paired difference needs the same folds")
                ti.diff = percentile_interval(rt.replicates - base.replicates, rt.estimate - base.estimate, level)
                if len(rt.folds) > 1:
                    ti.folds_better = sum(rt.per_fold[f] > base.per_fold[f] for f in rt.folds)
            tis[t] = ti
        out.append(RowIntervals(label, [str(r.path) for r in runs[label]], sorted({r.fold for r in runs[label]}),
                                tis))
    return TableIntervals(out, reference, {f: frames[f].units.describe() for f in sorted(frames)}, resamples, seed,
                          level)


# ---- an experiment's summary ----------------------------------------------------------------------------------------
def _row_label(row: Mapping[str, Any]) -> str:
    if "model" in row:
        return str(row["model"])
    if "l" in row:
        return f"l={row['l']}"
    return f"fold {row.get('fold')}"


def _locate(path: str, exp_dir: Path) -> Path:
    """A run folder named in a summary: as written, else by its experiment and name beside ``exp_dir`` (the
    summary may have been written from another working directory)."""
    p = Path(path)
    if p.exists():
        return p
    return exp_dir.parent / p.parent.name / p.name


def _default_reference(kind: str, rows: list[Mapping[str, Any]]) -> str | None:
    """RJCMA (the paper's equations) in the comparisons, the paper's l in the ablation, none in the cv."""
    for r in rows:
        if kind.startswith("compare") and r.get("fusion") == "rjcma":
            return _row_label(r)
        if kind == "ablate" and r.get("l") == ModelConfig().num_iterations:
            return _row_label(r)
    return None


def summary_intervals(exp_dir: str | Path, reference: str | None = "auto", store: str | Path | None = None,
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> TableIntervals:
    """:func:`table_intervals` of the rows of ``<exp_dir>/summary.json`` (labels: the ``model`` of a comparison
    row, ``l=<l>`` of an ablation row, ``fold <f>`` of a cv row); ``reference="auto"``: see
    :func:`_default_reference`."""
    exp_dir = Path(exp_dir)
    path = exp_dir / "summary.json"
    if not path.exists():
        raise RjcmaError(f"{path}: missing; run the experiment (rjcma compare / ablate / cv) first")
    info = json.loads(path.read_text())
    rows = {_row_label(r): [_locate(p, exp_dir) for p in str(r["runs"]).split(";") if p] for r in info["rows"]}
    if reference == "auto":
        reference = _default_reference(str(info.get("kind", exp_dir.name)), info["rows"])
    return table_intervals(rows, reference, store, resamples, seed, level)


def write_summary_intervals(exp_dir: str | Path, **kwargs: Any) -> Path:
    """:func:`summary_intervals` written to ``<exp_dir>/summary_intervals.json`` (atomically), with the summary's
    config hash so a reader can tell it belongs to that summary."""
    exp_dir = Path(exp_dir)
    table = summary_intervals(exp_dir, **kwargs)
    info = json.loads((exp_dir / "summary.json").read_text())
    out = exp_dir / INTERVALS_FILE
    atomic_write_json(out, {"kind": info.get("kind"), "summary_config_hash": info.get("config_hash"),
                            **table.as_dict()})
    return out
