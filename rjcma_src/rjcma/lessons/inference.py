"""The inference chapter (notebook 12_inference): the video and the model it scores, the labels it is compared with,
a short clip of one's own, and the exercises' checks."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.config import Config
from rjcma.data.abaw import load_corpus
from rjcma.data.annotations import fit_length, read_labels
from rjcma.data.synth.truth import read_truth_trial
from rjcma.errors import RjcmaError
from rjcma.lessons.building import ensure_store
from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.lessons.common import pick_trial, progress
from rjcma.metrics import ccc
from rjcma.scoring import predict_video
from rjcma.train.results import default_checkpoint, run_id
from rjcma.train.loop import train_one

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
