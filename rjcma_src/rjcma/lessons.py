"""What the book's notebooks share, written once: set-up, tables, readers of result folders, building what a
chapter needs when it is missing, the closing "outputs" table, and the checks of the exercises.

A notebook run top to bottom on a fresh clone (``make lab``, no ``make book`` first) finds no corpus, store or
trained runs; :func:`ensure_corpus`, :func:`ensure_store` and :func:`train_line` build them through the package's
own entry points (:func:`rjcma.data.synth.synthesize`, :func:`rjcma.preprocess.pipeline.preprocess_corpus`, the
experiments of :mod:`rjcma.train.cv`), each with a progress bar and a one-line estimate of how long it takes, and
reuse whatever is already there, so after ``make book`` they only say so.

Apps layer: imports anything in the package; nothing in the package imports it.
"""

from __future__ import annotations

import csv
import math
import time
import warnings
from pathlib import Path
from typing import Any, Iterable, Sequence

import numpy as np

from rjcma.runtime import usable_cpus
from rjcma.errors import RjcmaError

# ---- how long building takes -----------------------------------------------------------------------------------
# Seconds on an idle 2-core machine for the demo corpus (12 videos, 4.8 min of video in all): the corpus (14 s,
# `rjcma synth` in `make book`), the preprocessing stages per minute of video (their sum is `rjcma preprocess` of
# `make book` with the stand-ins cached, 115 s; its split over the stages is the one the notebooks 02-05 measured
# on a fresh copy), one training run of the demo recipe on one core (`make train`, two runs side by side), and the
# stand-in encoders' one-off synthetic pretraining (then cached per machine in ~/.cache/rjcma).
SECONDS_2_CORES = {
    "synth_per_video_minute": 3.0,
    "labels": 0.1, "faces": 3.3, "audio": 0.4, "speech": 1.4, "text": 0.5, "features": 18.3,  # per video minute
    "train_run": 30.0,
    "stand_in_pretraining": 120.0,
}


def _here(seconds_on_2_cores: float) -> float:
    """The 2-core figure scaled to this machine's usable cores (the stages parallelise over cores)."""
    return seconds_on_2_cores * 2 / max(1, min(8, usable_cpus()))


def _duration(seconds: float) -> str:
    return f"{seconds:.0f} s" if seconds < 90 else f"{seconds / 60:.0f} min"


def progress() -> bool:
    """Progress bars for a reader running the notebook; none in the book's pages (`rjcma book` sets TQDM_DISABLE,
    which tqdm applies only where a caller does not pass ``disable`` itself)."""
    import os

    return os.environ.get("TQDM_DISABLE", "").lower() not in ("1", "true", "yes")


def estimate_line(what: str, seconds_on_2_cores: float, how: str) -> str:
    """'<what> with <how>: about N s here (C cores)' — printed before anything slow starts."""
    n = usable_cpus()
    return f"Building {what} with {how}: about {_duration(_here(seconds_on_2_cores))} here ({n} core{'s' * (n > 1)})."


# ---- set-up ----------------------------------------------------------------------------------------------------
def setup(profile: str = "demo", **params: Any):
    """The config every notebook starts from: the profile, then the values of its parameters cell.

    Also sets the figures' resolution and keeps progress bars quiet about missing notebook widgets (they fall back
    to a text bar).
    """
    import matplotlib.pyplot as plt

    from rjcma.config import load_config

    warnings.filterwarnings("ignore", message="IProgress not found")
    cfg = load_config(profile).replace(**params)
    plt.rcParams["figure.dpi"] = cfg.book.figure_dpi
    return cfg


def pick_trial(corpus, name: str = "", partitions: Sequence[str] = ("validation",), where=None):
    """The trial a chapter shows: ``name`` if given, else the first trial of ``partitions`` (in that order) that
    satisfies ``where``, else the first that does."""
    if name:
        return corpus.by_name(name)
    ok = [t for t in corpus.trials if where is None or where(t)]
    for p in partitions:
        found = [t for t in ok if t.partition == p]
        if found:
            return found[0]
    if not ok:
        raise RjcmaError(f"{corpus.root}: no trial to show here")
    return ok[0]


# ---- tables ----------------------------------------------------------------------------------------------------
def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A pipe table (what :func:`show_table` displays)."""
    from rjcma.results_tables import markdown_table as _mt

    return _mt(list(header), [list(r) for r in rows])


def show_markdown(text: str) -> None:
    from IPython.display import Markdown, display

    display(Markdown(text))


def show_table(header: Sequence[str], rows: Iterable[Sequence[Any]], caption: str = "") -> None:
    """Display rows as a table (rendered as an HTML table in the book and in JupyterLab)."""
    show_markdown((f"{caption}\n\n" if caption else "") + markdown_table(header, rows))


def _f3(x: Any) -> str:
    return "–" if x is None or (isinstance(x, float) and math.isnan(x)) else f"{float(x):.3f}"


def show_ccc_rows(rows: list[dict[str, Any]], key: str, cols: Sequence[str] = ("valence", "arousal", "mean")) -> None:
    """Rows of ``rjcma cv | ablate | compare`` (validation CCC) beside the paper's, where the paper has the row."""
    header = [key, *(f"{c} (ours)" for c in cols), *(f"{c} (paper)" for c in cols)]
    show_table(header, [[r[key], *(_f3(r[c]) for c in cols), *(_f3(r.get(f"paper_{c}")) for c in cols)]
                        for r in rows])


def show_outputs(items: dict[str, str]) -> None:
    """The closing table of a chapter: each output (a path or a name) and what it is; paths say whether they
    exist. Paths are shown relative to the folder they share, which the caption names."""
    import os

    paths = {k: Path(k) for k in items if "/" in k or Path(k).suffix}
    common = Path(os.path.commonpath([str(p) for p in paths.values()])) if paths else None
    if common is not None and common in paths.values():
        common = common.parent
    rows = []
    for what, desc in items.items():
        p = paths.get(what)
        if p is None:
            rows.append([what, desc, ""])
            continue
        shown = p.relative_to(common) if common is not None and str(common) not in ("", ".") else p
        rows.append([f"`{shown}`", desc, "written" if p.exists() else "not written"])
    where = f" (in `{common}`)" if common is not None and str(common) not in ("", ".") else ""
    show_table([f"output{where}", "what it is", "here"], rows)


def glue_all(values: dict[str, Any]) -> None:
    """Glue each value under its name for the chapter's text (``{glue:text}`name```), without displaying it."""
    from myst_nb import glue

    for k, v in values.items():
        glue(k, v, display=False)


# ---- result folders --------------------------------------------------------------------------------------------
def read_history(run_dir: str | Path) -> list[dict[str, str]]:
    """The rows of a run's ``history.csv`` (one per epoch)."""
    path = Path(run_dir) / "history.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; the run did not finish (rerun `rjcma train`)")
    with path.open(newline="") as f:
        return list(csv.DictReader(f))


def read_predictions(run_dir: str | Path, trial: str) -> np.ndarray:
    """(N, 2) valence, arousal predicted for each frame of a validation trial (``predictions/<trial>.csv``)."""
    path = Path(run_dir) / "predictions" / f"{trial}.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; {trial} is not a validation trial of this run")
    return np.genfromtxt(path, delimiter=",", skip_header=1, dtype=np.float64).reshape(-1, 3)[:, 1:3]


# ---- building what a chapter needs -----------------------------------------------------------------------------
def _synth_corpus_complete(root: Path) -> bool:
    from rjcma.data import synth

    if (root / synth.TRUTH_JSON).is_file():
        return True
    managed = [p for p in root.iterdir() if p.name in synth.MANAGED] if root.is_dir() else []
    return root.is_dir() and any(root.iterdir()) and not managed  # a corpus of another origin (Aff-Wild2)


def ensure_corpus(cfg) -> Path:
    """The corpus of ``cfg``; on the demo profile a missing one is generated first (what `make book` runs)."""
    from rjcma.data.synth import synthesize

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
    per-machine cache); True otherwise, or when that cannot be told."""
    import os

    p = cfg.preprocess
    if p.weights_dir or os.environ.get("RJCMA_WEIGHTS_DIR"):
        return True
    try:
        from rjcma.preprocess.standins import stand_in_cache_dir
    except ImportError:
        return True
    return (stand_in_cache_dir() / f"{p.visual_encoder}-{p.encoder_init}-seed{p.encoder_seed}.safetensors").is_file()


def ensure_store(cfg, stages: Sequence[str] | None = None):
    """The feature store with ``stages`` (default: all) done for every trial; missing ones are run first through
    :func:`rjcma.preprocess.pipeline.preprocess_corpus` (what `rjcma preprocess` runs). Returns the Store."""
    from rjcma.data.abaw import load_corpus, video_info
    from rjcma.data.store import Store
    from rjcma.preprocess.pipeline import STAGES, preprocess_corpus

    stages = list(stages or STAGES)
    ensure_corpus(cfg)
    corpus = load_corpus(cfg)
    store = Store(cfg.data.store)
    todo = [t for t in corpus.trials if not _stages_done(store, t.name, stages)]
    what = "all stages" if stages == list(STAGES) else "stage" + "s" * (len(stages) > 1) + " " + ", ".join(stages)
    if not todo:
        print(f"Feature store: {store.root} has {what} for all {len(corpus.trials)} trials; nothing to build.")
        return store
    videos = {t.video for t in todo if t.video is not None}
    minutes = sum(video_info(v).duration for v in videos) / 60
    seconds = sum(SECONDS_2_CORES[s] for s in stages) * minutes
    note = ""
    if "features" in stages and not _stand_ins_cached(cfg):
        seconds += SECONDS_2_CORES["stand_in_pretraining"]
        note = ", including the stand-in encoders' one-off pretraining"
    print(estimate_line(f"{what} of the feature store for {len(todo)} trial(s) in {store.root}", seconds,
                        "rjcma.preprocess.pipeline.preprocess_corpus") + (f" ({note[2:]})" if note else ""))
    t0 = time.perf_counter()
    workers = min(2, usable_cpus(), len(videos) or 1)  # as `make book`; the bytes do not depend on it
    report = preprocess_corpus(cfg, workers=workers, stages=stages, progress=progress(), trials=[t.name for t in todo])
    if not report.ok:
        name, why = next(iter(report.failed.items()))
        raise RjcmaError(f"{store.root}: preprocessing failed for {len(report.failed)} trial(s), first {name}: {why}")
    print(f"Store built in {time.perf_counter() - t0:.0f} s.")
    return store


def missing_runs(cfgs: Iterable[Any]) -> int:
    """How many of these training configs have no complete result folder yet (distinct runs)."""
    from rjcma.train.cv import _find_done, run_id

    seen: set[str] = set()
    for c in cfgs:
        if run_id(c) not in seen and _find_done(c) is None:
            seen.add(run_id(c))
    return len(seen)


def train_line(cfgs: Iterable[Any], what: str) -> int:
    """Print how many runs of ``what`` must be trained and about how long that takes here; returns the count."""
    from rjcma.train.cv import resolve_jobs

    cfgs = list(cfgs)
    n = missing_runs(cfgs)
    if not n:
        print(f"{what}: every run is in {Path(cfgs[0].train.results_dir) / cfgs[0].profile}; nothing to train.")
        return 0
    jobs = max(1, min(n, resolve_jobs(cfgs[0])))
    seconds = math.ceil(n / jobs) * SECONDS_2_CORES["train_run"]  # one run per core, side by side
    print(f"{what}: {n} run(s) to train, {jobs} at a time, with rjcma.train.cv: about {_duration(seconds)} here "
          f"({usable_cpus()} cores).")
    return n


def experiment_configs(cfg, kind: str, **kw: Any) -> list[Any]:
    """The training configs an experiment of :mod:`rjcma.train.cv` runs (for :func:`train_line`)."""
    from rjcma.train import cv

    if kind == "cv":
        return cv._flat(cv.plan_cv(cfg, kw.get("folds")))
    if kind == "ablate":
        return cv._flat(cv.plan_ablation(cfg, kw.get("iterations"), kw.get("fold")))
    if kind == "compare":
        return cv._flat(cv.plan_compare(cfg, kw.get("fold", 0), kw.get("models"), kw.get("folds")))
    raise ValueError(f"unknown experiment {kind!r}")


# ---- probes (the encoders chapter and its exercises) ----------------------------------------------------------
def ridge_probe(X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, lam: float = 10.0) -> float:
    """Validation CCC of a ridge regression of ``y`` on ``X`` fitted on the ``train`` rows (standardised with
    training statistics only); rows where y is NaN are left out."""
    from rjcma.train.metrics import ccc

    ok_tr, ok_va = train & ~np.isnan(y), val & ~np.isnan(y)
    mu, sd = X[ok_tr].mean(0), X[ok_tr].std(0) + 1e-6
    Z = (X - mu) / sd
    A = np.c_[Z[ok_tr], np.ones(ok_tr.sum())]
    w = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y[ok_tr])
    return float(ccc(np.c_[Z[ok_va], np.ones(ok_va.sum())] @ w, y[ok_va]))


# ---- exercise checks -------------------------------------------------------------------------------------------
class CheckFailed(AssertionError):
    """An exercise's answer is not right yet; the message says what was expected."""


def _ok(message: str) -> None:
    print(f"✓ {message}")


def _close(got: Any, want: Any, tol: float) -> bool:
    try:
        return bool(np.allclose(np.asarray(got, dtype=float), np.asarray(want, dtype=float), atol=tol, rtol=0))
    except (TypeError, ValueError):
        return False


def check_value(name: str, got: Any, want: Any, tol: float = 1e-6, why: str = "") -> None:
    """Compare an answer with the package's own computation; CheckFailed says what differs."""
    if got is None:
        raise CheckFailed(f"{name}: no answer yet — assign it in the cell above, then run this check again")
    if isinstance(want, (str, bool)) or (isinstance(want, tuple) and any(isinstance(w, str) for w in want)):
        same = got == want
    else:
        same = _close(got, want, tol)
    if not same:
        raise CheckFailed(f"{name}: got {got!r}, expected {want!r}" + (f" ({why})" if why else ""))
    _ok(f"{name} = {got!r}" + (f" — {why}" if why else ""))


def check_windows(answer: tuple[int, int] | None, n: int, K: int, stride: int) -> None:  # noqa: N803
    """Exercise: (number of windows, start of the last one) of an n-frame trial."""
    from rjcma.data.windows import window_starts

    s = window_starts(n, K, stride)
    check_value(f"windows of a {n}-frame trial (K = {K}, stride {stride})", None if answer is None else tuple(answer),
                (len(s), s[-1]), 0, "the last window is aligned to the trial's end")


def check_receptive_field(answer: int | None, kernel: int, levels: int) -> None:
    """Exercise: R(k, L) by the formula, checked against the receptive field measured on a built TCN."""
    import torch

    from rjcma.models.tcn import TemporalConvNet

    net = TemporalConvNet(2, [4] * levels, kernel_size=kernel, dropout=0.0).double().eval()
    n = 1 + 2 * (kernel - 1) * (2**levels - 1) + 10
    x = torch.randn(1, n, 2, dtype=torch.double, requires_grad=True)
    net(x)[0, -1].sum().backward()
    hit = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten()
    check_value(f"R(k={kernel}, L={levels})", answer, int(hit.max() - hit.min() + 1), 0,
                "measured: frames with a non-zero gradient on the last output")


def check_unannotated(answer: float | None, corpus, partition: str = "validation") -> None:
    """Exercise: share of a partition's frames with a target marked −5 (NaN after reading)."""
    from rjcma.data.abaw import read_labels

    lab = np.concatenate([read_labels(t.annotation) for t in corpus.partition(partition)])
    check_value(f"share of {partition} frames marked -5", answer, float(np.isnan(lab).any(axis=1).mean()), 1e-9)


def released_face_rows(valid: np.ndarray) -> np.ndarray:
    """Row → 0-based jpg index as the released loader paired them: the i-th valid row got file i (defect 1)."""
    out = np.full(len(valid), -1)
    rows = np.flatnonzero(valid)
    out[rows] = np.arange(len(rows))
    return out


def check_face_drift(answer: int | None, valid: np.ndarray) -> None:
    """Exercise: rows whose face the released loader took from another frame."""
    got = released_face_rows(np.asarray(valid, bool))
    rows = np.flatnonzero(valid)
    check_value("rows paired with another frame's face", answer, int((got[rows] != rows).sum()), 0,
                "every valid row after the first unannotated one")


def check_patch_start(answer: int | None, frame: int, fps: float) -> None:
    """Exercise: log-mel frame where the patch of video frame ``frame`` starts."""
    from rjcma.preprocess.audio import patch_starts

    check_value(f"patch start of frame {frame} at {fps:g} fps", answer, int(patch_starts(fps, frame + 1)[frame]), 0)


def check_frame_words(answer: Sequence[int] | None, words, fps: float, n_frames: int) -> None:
    """Exercise: index of the word each frame takes (−1 for none)."""
    from rjcma.preprocess.text import frame_word_index

    want = frame_word_index(words, fps, n_frames).tolist()
    check_value("word of each frame", None if answer is None else list(answer), want, 0)


def trailing_marks(punctuated: str) -> str:
    """The punctuation after a word's last letter or digit ("plan:" → ":")."""
    end = len(punctuated)
    while end > 0 and not punctuated[end - 1].isalnum():
        end -= 1
    return punctuated[end:]


def check_dropped_marks(answer: int | None, words) -> None:
    """Exercise: marks of a transcript outside the released split's `. , ! ? ;` (defect 3)."""
    lost = sum(ch not in ".,!?;" for w in words for ch in trailing_marks(w.punctuated))
    check_value("marks the released split drops", answer, lost, 0)


def check_probe(answer: float | None, X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,
                lam: float = 10.0) -> None:
    """Exercise: the validation CCC of a ridge probe, recomputed here."""
    if not val.any():
        print("no validation frames in this corpus: nothing to check")
        return
    check_value(f"probe CCC (lam = {lam:g})", answer, ridge_probe(X, y, train, val, lam), 1e-6)


# ---- the TCN chapter ------------------------------------------------------------------------------------------
def synthetic_features(K: int, d: int, seed: int) -> np.ndarray:  # noqa: N803
    """(K, d) slow drifts, a step change halfway and frame noise: a stand-in for a window of encoder features."""
    rng = np.random.default_rng(seed)
    t = np.arange(K)[:, None]
    slow = np.sin(2 * np.pi * t / rng.uniform(60, 400, d) + rng.uniform(0, 2 * np.pi, d))
    step = (t >= K // 2) * rng.normal(0, 1, d)
    return (slow + step + 0.8 * rng.normal(size=(K, d))).astype(np.float32)


def feature_window(cfg, modality: str = "visual") -> tuple[np.ndarray, float | None, str]:
    """(K, d) features of one store trial (``book.show_trial`` or the first validation trial), with its fps and
    a description; a synthetic window of the configured width when there is no usable store."""
    from rjcma.data.store import Store, feature_key

    K = cfg.K
    try:
        st = Store(cfg.data.store)
        key = feature_key(cfg, modality)
        names = [n for n in st.trials() if st.has(n, key)] if Path(cfg.data.store).is_dir() else []
        if names:
            val = [n for n in names if st.meta(n).get("partition") == "validation"]
            name = cfg.book.show_trial or (val or names)[0]
            feats = np.asarray(st.load(name, key), dtype=np.float32)[:K]
            if len(feats) < K:  # a short trial: repeat its last frame, for display only
                feats = np.concatenate([feats, np.repeat(feats[-1:], K - len(feats), 0)])
            return feats, float(st.meta(name).get("fps", 0)) or None, f"store trial {name}"
    except (RjcmaError, OSError, KeyError, ValueError) as e:  # an incomplete store: say so, use the synthetic
        print(f"store {cfg.data.store} not usable here ({e}); showing a synthetic sequence")
    d = cfg.model.input_dim(modality)
    return synthetic_features(K, d, cfg.train.seed), None, "synthetic sequence"


def lag1(s: np.ndarray) -> float:
    """Mean over channels of the lag-1 autocorrelation over time of a (T, C) sequence."""
    z = (s - s.mean(0)) / (s.std(0) + 1e-8)
    return float((z[1:] * z[:-1]).mean(0).mean())


def measured_receptive_field(channels: Sequence[int], kernel: int, length: int, seed: int = 0) -> tuple[int, bool]:
    """Frames with a non-zero gradient on the last output of a fresh TCN (eval, float64), and whether the last
    input frame is among them (causal: nothing later exists)."""
    import torch

    from rjcma.models.tcn import TemporalConvNet

    torch.manual_seed(seed)
    net = TemporalConvNet(4, list(channels), kernel_size=kernel, dropout=0.0).double().eval()
    x = torch.randn(1, length, 4, dtype=torch.double, requires_grad=True)
    net(x)[0, -1].sum().backward()
    hit = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten()
    return int(hit.max() - hit.min() + 1), bool(hit.max() == length - 1)


def check_levels_for(answer: int | None, kernel: int, K: int) -> None:  # noqa: N803
    """Exercise: the fewest TCN levels whose receptive field covers a whole window of K frames."""
    from rjcma.models.tcn import receptive_field

    L = 0
    while receptive_field(kernel, L) < K:
        L += 1
    check_value(f"levels for R >= K = {K} (k = {kernel})", answer, L, 0, f"R = {receptive_field(kernel, L)}")


# ---- the equations chapter ------------------------------------------------------------------------------------
def correlated_inputs(K: int, dims: Sequence[int], seed: int, rank: int = 3):  # noqa: N803
    """One window of smooth (1, K, d_m) sequences sharing a low-rank latent, so the modalities really correlate;
    unit variance per channel."""
    import torch

    g = torch.Generator().manual_seed(seed)
    z = torch.randn(1, K, rank, generator=g).cumsum(1)
    xs = []
    for d_m in dims:
        x = z @ torch.randn(rank, d_m, generator=g) + 0.5 * torch.randn(1, K, d_m, generator=g).cumsum(1)
        xs.append((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-6))
    return xs


def show_code(fn, marker: str) -> None:
    """Print the lines of ``fn``'s source that carry ``marker`` (a comment line with the line after it)."""
    import inspect

    lines = inspect.getsource(fn).splitlines()
    for i, line in enumerate(lines):
        if marker in line:
            print(line.strip())
            if line.strip().startswith("#") and i + 1 < len(lines):
                print(lines[i + 1].strip())


def check_shared_parameters(answer: tuple[int, int] | None, dims: Sequence[int], K: int, l: int) -> None:  # noqa: E741,N803
    """Exercise: parameters of an l-iteration fusion with separate and with shared weights."""
    from rjcma.models.attention import RecursiveJointCrossModalAttention as R

    want = tuple(sum(p.numel() for p in R(list(dims), K, l, share).parameters()) for share in (False, True))
    check_value(f"parameters (separate, shared) at l = {l}", None if answer is None else tuple(answer), want, 0,
                "sharing keeps one block for every iteration")


# ---- the training chapters ------------------------------------------------------------------------------------
def check_ccc(answer: float | None, pred: np.ndarray, labels: np.ndarray, what: str = "CCC") -> None:
    """Exercise: a CCC by eq. 15, against :func:`rjcma.train.metrics.ccc` (NaN labels are skipped)."""
    from rjcma.train.metrics import ccc

    check_value(what, answer, float(ccc(np.asarray(pred, float), np.asarray(labels, float))), 1e-6)


def check_best(answer: Any, rows: list[dict[str, Any]], key: str, by: str = "mean", lowest: bool = False) -> None:
    """Exercise: the row of a results table with the highest (or lowest) ``by`` column."""
    pick = (min if lowest else max)(rows, key=lambda r: r[by])
    check_value(f"{'lowest' if lowest else 'highest'} {by} CCC", answer, pick[key], 0,
                f"{by} {pick[by]:.3f}")


def check_run_mean(answer: float | None, run_dir: str | Path, **config: Any) -> None:
    """Exercise: the mean validation CCC (valence, arousal) of a trained run, read from its metrics.json, and the
    config values the run must have been trained with."""
    import json

    m = json.loads((Path(run_dir) / "metrics.json").read_text())
    for k, v in config.items():
        if m.get(k) != v:
            raise CheckFailed(f"{run_dir}: trained with {k} = {m.get(k)!r}, not {v!r}")
    want = float(np.mean([m["metrics"][t]["ccc"] for t in ("valence", "arousal")]))
    check_value(f"mean CCC of {Path(run_dir).name}", answer, want, 1e-9)


def check_block_parameters(answer: int | None, dims: Sequence[int], K: int) -> None:  # noqa: N803
    """Exercise: parameters of one joint cross-modal attention block (what each recursion adds)."""
    d = sum(dims)
    want = d * d + d + sum(dm * d + 2 * K * K for dm in dims)  # FC of eq. 1; W_jm, W_cm, W_hm per modality
    check_value("parameters per recursion", answer, want, 0, "FC (d x d + d) + per modality d_m x d + 2 K x K")


def check_run(answer: float | None, rows: list[dict[str, Any]], fusion: str, target: str = "mean") -> None:
    """Exercise: a model's CCC in a comparison table (rows of :func:`rjcma.train.cv.run_compare`)."""
    row = next((r for r in rows if r["fusion"] == fusion), None)
    if row is None:
        raise CheckFailed(f"no row for {fusion!r} in this table")
    check_value(f"{target} CCC of {fusion}", answer, row[target], 1e-9)


# ---- the results chapter ---------------------------------------------------------------------------------------
def show_result_table(table, base: str | Path, command: str) -> None:
    """A results table of :mod:`rjcma.results_tables` with its provenance line (or what to run when it is
    empty) above it and its note below."""
    from rjcma import results_tables as rt

    if table.runs:
        show_markdown(f"*Data:* {rt.provenance(table.runs)}.")
    elif command:
        show_markdown(f"*No result folders under `{base}` yet, so the ours columns are empty; `{command}` "
                      "writes them (or run the training chapters in order).*")
    show_markdown(table.markdown())
    if table.note:
        show_markdown(f"*{table.note}*")


def check_rank(answer: int | None, table, fusion_label: str) -> None:
    """Exercise: 1-based rank of a method by our mean CCC among the rows of Table 2 that have our numbers."""
    ours = [(r[0], float(r[4])) for r in table.rows if r[4] not in ("—", "", None)]
    order = [name for name, _ in sorted(ours, key=lambda x: -x[1])]
    if fusion_label not in order:
        raise CheckFailed(f"{fusion_label!r} has no number of ours in this table")
    check_value(f"rank of {fusion_label}", answer, order.index(fusion_label) + 1, 0, f"of {len(order)} models")


# ---- the inference chapter -------------------------------------------------------------------------------------
def make_clip(video: str | Path, out: str | Path, start_s: float = 1.0, seconds: float = 5.0, fps: float = 25.0,
              audio: bool = True) -> Path:
    """A short re-encoded excerpt of ``video`` at another frame rate (what a webcam clip looks like to the
    pipeline), written with the ffmpeg command line."""
    import shutil
    import subprocess

    exe = shutil.which("ffmpeg")
    if exe is None:
        raise RjcmaError("ffmpeg not found; install it (sudo apt-get install -y ffmpeg), as `make setup` does")
    out = Path(out)
    cmd = [exe, "-v", "error", "-y", "-ss", f"{start_s}", "-t", f"{seconds}", "-i", str(video), "-r", f"{fps}",
           "-c:v", "libx264", "-pix_fmt", "yuv420p", *(["-c:a", "aac"] if audio else ["-an"]), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0 or not out.is_file():
        raise RjcmaError(f"{out}: ffmpeg could not write the clip: {proc.stderr.strip()[:200]}")
    return out


def check_scored_clip(answer: int | None, result, clip: str | Path) -> None:
    """Exercise: a scored clip has one CSV row per decoded frame (and person), valid values in [−1, 1] and
    increasing frame times."""
    from rjcma.preprocess.decode import iter_video

    frames = sum(1 for _ in iter_video(clip))
    preds = np.concatenate(result.preds)
    finite = preds[np.isfinite(preds)]
    if finite.size and (finite.min() < -1 or finite.max() > 1):
        raise CheckFailed(f"{clip}: predictions outside [-1, 1]")
    if np.any(np.diff(result.times) <= 0):
        raise CheckFailed(f"{clip}: frame times do not increase")
    check_value(f"rows of {Path(clip).name}", answer, frames * len(result.preds), 0,
                f"{frames} decoded frames x {len(result.preds)} person(s)")
