"""The inference chapter (notebook 12_inference): the video and the model it scores, the labels it is compared with,
the smoothing of the output (its width chosen on validation folds only), a short clip of one's own, and the
exercises' checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.config import Config
from rjcma.data.abaw import load_corpus
from rjcma.data.annotations import fit_length, read_labels
from rjcma.data.store import Store
from rjcma.data.synth.truth import read_truth_trial
from rjcma.errors import RjcmaError
from rjcma.lessons.building import ensure_store
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import pick_trial, progress
from rjcma.metrics import ccc
from rjcma.scoring import predict_video
from rjcma.train.loop import train_one
from rjcma.train.results import default_checkpoint, run_id
from rjcma.train.smoothing import WIDTH_S, choose_width, roughness, smoothed_scores

TARGETS = ("valence", "arousal")


def video_trial(cfg: Config):
    """The trial whose video is scored as a user's: ``book.show_trial``, else the first test trial with a video."""
    return pick_trial(load_corpus(cfg), cfg.book.show_trial, ("test", "validation"),
                      where=lambda t: t.video is not None)


def model_checkpoint(cfg: Config) -> Path:
    """The model ``rjcma predict`` takes without ``--checkpoint`` (the fold-0 model of the cross-validation). On a
    fresh clone without it, a one-epoch model of the same configuration is trained first, in a folder of its own,
    so the chapter runs alone (its numbers then show the pipeline, not a trained model)."""
    ckpt = default_checkpoint(cfg)
    if (ckpt / "model.safetensors").is_file():
        return ckpt
    ensure_store(cfg)
    quick = cfg.replace(fold=0, max_epochs=1, early_stop=1)
    run = Path(cfg.train.results_dir) / cfg.profile / "predict_demo" / run_id(quick)
    print(f"no model at {ckpt}; training a one-epoch model into {run}")
    train_one(quick, run_dir=run, progress=progress())
    return run


def outputs_folder(cfg: Config) -> Path:
    """The chapter's ``--out`` folder: beside the profile's results, so no temporary path ends up in the book."""
    out = Path(cfg.train.results_dir) / cfg.profile / "inference_chapter"
    out.mkdir(parents=True, exist_ok=True)
    return out


def without_paths(x: Any) -> Any:
    """``x`` (a JSON value) with every absolute path shortened to its last part: what ran, not where it is installed
    on this machine."""
    if isinstance(x, dict):
        return {k: without_paths(v) for k, v in x.items()}
    if isinstance(x, list):
        return [without_paths(v) for v in x]
    if isinstance(x, str) and x.startswith("/") and "\n" not in x:
        return Path(x).name
    return x


def trial_labels(cfg: Config, trial) -> tuple[np.ndarray | None, str]:
    """(N, 2) labels of ``trial`` and where they come from: its annotation file, else the demo corpus's hidden
    values of its test trials (``SYNTH_TRUTH/<trial>.csv``); (None, why) when there are none."""
    if trial.annotation is not None:
        return read_labels(trial.annotation), "annotation file"
    try:
        t = read_truth_trial(cfg.data.corpus, trial.name)
    except RjcmaError as e:  # not a demo corpus: no labels to compare with
        return None, str(e)
    labels = np.stack([t["valence"], t["arousal"]], 1).astype(np.float32)
    labels[t["valid"] < 0.5] = np.nan
    return labels, "SYNTH_TRUTH (hidden test values of the demo corpus)"


def label_scores(pred: np.ndarray, labels: np.ndarray) -> dict[str, float]:
    """CCC of each predicted target against the labels, matched by frame index (over the valid frames)."""
    lab = fit_length(labels, len(pred))
    return {name: float(ccc(pred[:, j], lab[:, j])) for j, name in enumerate(TARGETS) if not np.isnan(pred[:, j]).all()}


def _fold_predictions(cfg: Config) -> dict[int, dict[str, np.ndarray]]:
    """{fold: {validation trial: (N, 2) merged prediction}} from the cross-validation's result folders."""
    base = default_checkpoint(cfg)
    out: dict[int, dict[str, np.ndarray]] = {}
    for k in range(6):
        folder = base.parent / base.name.replace("fold0", f"fold{k}") / "predictions"
        if folder.is_dir():
            out[k] = {f.stem: np.genfromtxt(f, delimiter=",", skip_header=1, usecols=(1, 2), dtype=np.float32)
                      .reshape(-1, 2) for f in sorted(folder.glob("*.csv"))}
    return out


def smoothing_study(cfg: Config) -> dict[str, Any]:
    """How rough the model's validation output is against its labels, and what smoothing it gives in CCC.

    The width is a hyperparameter, so it is chosen on validation predictions only, and the smoothed CCC of a fold
    is an unbiased figure only where the width was chosen without that fold: each fold ``k`` gets the width that
    scores best on the *other* folds' validation predictions (leave one fold out) and is scored with it. The width
    ``rjcma predict`` uses (:data:`rjcma.train.smoothing.WIDTH_S`) is the one chosen on all six folds together;
    on the demo's held-out test trials (SYNTH_TRUTH) it is an unbiased figure again."""
    folds = _fold_predictions(cfg)
    if not folds:
        raise RjcmaError(f"{default_checkpoint(cfg).parent}: no cross-validation predictions; run `rjcma cv` first")
    store = Store(Path(cfg.data.store))
    labels = {n: np.asarray(store.load(n, "labels"), np.float32) for f in folds.values() for n in f}
    fps = {n: float(store.meta(n).get("fps") or 30.0) for n in labels}
    every = {n: p for f in folds.values() for n, p in f.items()}
    rows = []
    for k, preds in folds.items():
        others = {n: p for j, f in folds.items() if j != k for n, p in f.items()}
        w, _ = choose_width(others, labels, fps)
        raw, smooth = smoothed_scores(preds, labels, fps, 0.0), smoothed_scores(preds, labels, fps, w)
        rows.append({"fold": k, "width_s": w, "raw": raw, "smoothed": smooth})
    width, table = choose_width(every, labels, fps)
    rough = {name: (float(np.mean([roughness(every[n][:, j]) for n in every])),
                    float(np.mean([roughness(labels[n][: len(every[n]), j]) for n in every])))
             for j, name in enumerate(TARGETS)}
    return {"folds": rows, "width_s": width, "table": table, "roughness": rough, "in_use": WIDTH_S}


def make_clip(video: str | Path, out: str | Path, start_s: float = 1.0, seconds: float = 5.0, fps: float = 25.0,
              audio: bool = True) -> Path:
    """A short re-encoded excerpt of ``video`` at another frame rate (what a webcam clip looks like to the
    pipeline), written with the ffmpeg command line."""
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


def check_clip_rows(answer: int | None, clip: str | Path | None, bundle) -> Verdict:
    """Exercise: the number of CSV rows ``rjcma predict`` writes for ``clip`` (one per decoded frame and person).
    The check scores the clip itself and also verifies that every value lies in [−1, 1] and the frame times
    increase."""
    name = f"rows of {Path(clip).name if clip else 'your clip'}"
    if answer is None:
        return check_value(name, None, None)
    if clip is None or not Path(clip).is_file():
        return failed(f"no clip to score at {clip}; set `clip` to your video's path")
    res = predict_video(clip, bundle)
    preds = np.concatenate(res.preds)
    finite = preds[np.isfinite(preds)]
    if finite.size and (finite.min() < -1 or finite.max() > 1):
        return failed(f"{clip}: predictions outside [-1, 1]")
    if np.any(np.diff(res.times) <= 0):
        return failed(f"{clip}: frame times do not increase")
    return check_value(name, answer, len(res.times) * len(res.preds), 0,
                       f"{len(res.times)} decoded frames x {len(res.preds)} person(s)")


def check_lecture_seconds(answer: float | None, summary: dict[str, Any], minutes: float = 10.0) -> Verdict:
    """Exercise: seconds scoring a video of ``minutes`` would take, scaled from the stage times in ``summary``."""
    seconds = summary["seconds"]
    want = sum(seconds.values()) / summary["duration_s"] * 60 * minutes
    return check_value(f"seconds for {minutes:g} minutes", answer, want, 1e-6,
                       f"the slowest stage here: {max(seconds, key=seconds.get)}")
