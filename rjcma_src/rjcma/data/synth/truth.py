"""Labels and truth files: the annotation files (latent delayed by the annotator's lag, smooth noise, -5 runs), the
per-frame ``SYNTH_TRUTH/<trial>.csv`` tables and the readers of ``SYNTH_TRUTH.json`` (for the book's figures)."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.data.synth.design import NOISE_STD, NOISE_TAU, TrialPlan, VideoPlan, held_word_level, at_time, smooth_process
from rjcma.data.synth.layout import AUDIO_RATE, TRUTH_DIR, TRUTH_JSON
from rjcma.data.synth.speech import track_index
from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_text
from rjcma.layout import ANNOTATIONS_DIR, HEADER, PARTITION_DIRS, VA_DIR


def write_labels(vp: VideoPlan, out: Path, frame_t: np.ndarray, mouths: list[np.ndarray],
                 events: list[np.ndarray]) -> dict[str, Any]:
    """Write the annotation file and the truth table of every trial of one video; returns the video's entry of
    ``SYNTH_TRUTH.json``."""
    speech, n = vp.speech, vp.n_frames
    result = {"video": vp.name, "fps": float(vp.fps), "fps_fraction": str(vp.fps), "n_frames": n,
              "width": vp.width, "height": vp.height, "partition": vp.partition,
              "audio_rate": AUDIO_RATE, "utterances": speech["utterances"], "words": speech["words"],
              "trials": []}
    heard = {  # what the transcript and the voice tell at each frame (either speaker's: one shared audio track)
        "heard_word_level": held_word_level(speech["words"], frame_t),
        "heard_word_arousal": held_word_level(speech["words"], frame_t, "arousal_level"),
        "heard_prosody": _heard_prosody(speech["utterances"], vp, frame_t),
    }
    speaker = speech["owner"][track_index(frame_t, len(speech["track"]))]
    for j, tp in enumerate(vp.trials):
        lab, invalid, V, A = annotate(vp, tp, vp.rngs[7 + j], frame_t)
        truth_rows = {
            "frame": np.arange(n), "time": frame_t, "valence": lab[:, 0], "arousal": lab[:, 1], "valid": ~invalid,
            "valence_latent": at_time(tp, "valence", frame_t), "arousal_latent": at_time(tp, "arousal", frame_t),
            **{key: at_time(tp, key, frame_t) for key in ("face", "words", "residual_v", "prosody", "motion",
                                                           "words_a", "residual_a", "words_intent", "words_a_intent")},
            **heard,
            "speaking": (speaker == j).astype(int), "mouth": mouths[j], "face_event": events[j],
        }
        if vp.partition != "test":
            rows = [HEADER] + ["-5,-5" if invalid[k] else f"{lab[k, 0]:.3f},{lab[k, 1]:.3f}" for k in range(n)]
            path = out / ANNOTATIONS_DIR / VA_DIR / PARTITION_DIRS[vp.partition] / f"{tp.name}.txt"
            atomic_write_text(path, "\n".join(rows) + "\n")
        _write_truth_csv(out / TRUTH_DIR / f"{tp.name}.csv", truth_rows)
        result["trials"].append({
            "name": tp.name, "side": tp.side, "subject": tp.subject, "partition": tp.partition,
            "annotator_lag_s": round(tp.lag, 4), "voice": tp.identity.voice,
            "missing_jpgs": int((events[j] > 0).sum()), "invalid_rows": int(invalid.sum()),
            "invalid_at_start": int(np.argmin(invalid)) if invalid[0] else 0,
            "latent_mean": {"valence": round(float(V.mean()), 4), "arousal": round(float(A.mean()), 4)},
            "latent_std": {"valence": round(float(V.std()), 4), "arousal": round(float(A.std()), 4)},
            "words_spoken": sum(1 for w in speech["words"] if w["speaker"] == tp.name),
        })
    return result


def annotate(vp: VideoPlan, tp: TrialPlan, lab_rng: np.random.Generator, frame_t: np.ndarray):
    """The labels of one trial: latent at ``t_k - lag`` plus smooth noise, clipped to [-1, 1], three decimals; and
    the unannotated (-5) frames: a run at the very start of one trial, one inside some others. Returns
    ``(labels (n, 2), invalid (n,), V, A)`` with V, A the delayed latents."""
    n, fps = vp.n_frames, float(vp.fps)
    tl = frame_t - tp.lag
    V = at_time(tp, "valence", tl)
    A = at_time(tp, "arousal", tl)
    noise = NOISE_STD * np.stack([smooth_process(lab_rng, n, 1 / fps, NOISE_TAU) for _ in range(2)], 1)
    lab = np.round(np.clip(np.stack([V, A], 1) + noise, -1, 1), 3)
    invalid = np.zeros(n, bool)
    if vp.partition != "test":
        if vp.index == 1:  # a run of -5 at the very start of one trial
            invalid[: int(rng_int(lab_rng, 0.4, 0.8) * fps)] = True
        if lab_rng.random() < 0.5 or vp.index in (1, 2):
            L = int(rng_int(lab_rng, 0.3, 0.9) * fps)
            s = int(lab_rng.integers(int(0.3 * n), int(0.7 * n)))
            invalid[s : s + L] = True
    return lab, invalid, V, A


def rng_int(rng: np.random.Generator, a: float, b: float) -> float:
    """A uniform draw in [a, b) (a float, despite the name: the corpus's bytes depend on this call)."""
    return float(rng.uniform(a, b))


def _heard_prosody(utts: list[dict], vp: VideoPlan, t: np.ndarray) -> np.ndarray:
    """What the voice tells about P at each frame: the speaker's P while someone speaks (loudness follows it
    continuously, pitch per utterance), the last heard value in pauses, 0 before the first utterance."""
    out = np.zeros(len(t))
    by_name = {tp.name: tp for tp in vp.trials}
    for u in utts:
        during = (t >= u["start"]) & (t < u["end"])
        out[during] = 0.5 * u["prosody"] + 0.5 * at_time(by_name[u["speaker"]], "prosody", t[during])
        after = t >= u["end"]
        if during.any():
            out[after] = out[np.flatnonzero(during)[-1]]
    return out


def _write_truth_csv(path: Path, cols: dict[str, np.ndarray]) -> None:
    keys = list(cols)
    n = len(cols["frame"])
    lines = [",".join(keys)]
    for k in range(n):
        row = []
        for key in keys:
            v = cols[key][k]
            row.append(str(int(v)) if isinstance(v, (np.integer, np.bool_, bool, int)) else f"{float(v):.4f}")
        lines.append(",".join(row))
    atomic_write_text(path, "\n".join(lines) + "\n")


def read_truth_trial(root: str | Path, trial: str) -> dict[str, np.ndarray]:
    """The per-frame truth table of one trial (``SYNTH_TRUTH/<trial>.csv``) as arrays (for the book's figures)."""
    path = Path(root) / TRUTH_DIR / f"{trial}.csv"
    if not path.is_file():
        raise RjcmaError(f"{path}: missing; this is written only by `rjcma synth` (not part of Aff-Wild2)")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    return {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}


def read_truth(root: str | Path) -> dict[str, Any]:
    """``SYNTH_TRUTH.json`` of a demo corpus (design, per-trial facts, ceilings)."""
    path = Path(root) / TRUTH_JSON
    try:
        return json.loads(path.read_text())
    except OSError:
        raise RjcmaError(f"{path}: missing; this is written only by `rjcma synth` (not part of Aff-Wild2)") from None
