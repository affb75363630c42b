"""Scoring your own video: valence and arousal for every frame and every person (paper §3, §4.2.1).

``rjcma predict`` (:mod:`rjcma.cli.predict`) and, from a notebook, ``rjcma.predict("clip.mp4")`` (:func:`predict`: the
rows as a DataFrame, the JSON's facts in ``df.attrs``) both call :func:`predict_video`.

A user's video has no ``cropped_aligned`` folder; it goes the route of the preprocessing (:mod:`rjcma.preprocess.route`:
the same stages in the same order), with the stream's own frame times instead of k / fps (:class:`VideoRoute`)::

    decode (resilient) ─► faces: detect, track people, align, 48×48 ─► frozen visual encoder ─┐ per person
           └─► 16 kHz mono ─► VGGish log-mel patch at each frame time ─► frozen audio encoder ─┤ shared
                   └─► ASR (+ punctuation) ─► words ─► BERT-family word vector at each time ───┘ shared
                                     ─► K-frame windows ─► trained model ─► merged per frame and person

* The model, K, the stride, the encoders (their precision, frame stride) and the text statistics: the checkpoint's.
* Each tracked person is scored as its own trial on the shared audio and transcript, as Aff-Wild2 scores the
  ``_left``/``_right`` subjects of one video. A video without any face is one person with black, masked faces.
* Honest frames: each row says which evidence existed (``face``: a face of this person; ``speech``: sound or a
  word). Where there is neither, valence and arousal are left empty; ``--fill`` writes the model's output there.
* The output is smoothed over :data:`~rjcma.train.smoothing.WIDTH_S` s, a width chosen on validation data.
* A file without video is scored at ``fps`` rows a second (default :data:`AUDIO_ONLY_FPS`), no face evidence.
* Outputs per video ``<stem>``: ``.csv``, ``.png``, ``.json`` (:func:`rjcma.predict_outputs.summary`) and ``.html``,
  written atomically together (:mod:`rjcma.predict_outputs`).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from tqdm.auto import tqdm

from rjcma.bundle import ModelBundle, cached_bundle
from rjcma.config import Config
from rjcma.data.windows import merge_windows, take_window, window_starts
from rjcma.encoders.encode import FaceEncoder
from rjcma.encoders.logmel import patches_at
from rjcma.models.backbones import encode_faces, faces_to_tensor
from rjcma.predict_outputs import PredictionResult, summary
from rjcma.preprocess.audio import load_audio, speech_at
from rjcma.preprocess.decode import probe
from rjcma.preprocess.faces.stream import FaceStage
from rjcma.preprocess.route import Route, clock
from rjcma.train.smoothing import WIDTH_S, smooth, width_frames

# oneDNN keeps a compiled kernel for every input shape it meets, and MTCNN's later stages see a new batch size on
# almost every call: without a small cache the process grows by ~0.6 MB a frame (read at the first convolution)
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

STAGES = ("decode+faces", "audio+logmel", "asr", "text", "encoders", "model")  # the JSON's timings
SECONDS_OF = {"faces": "decode+faces", "audio": "audio+logmel", "speech": "asr", "text": "text", "features": "encoders"}
BATCH_WINDOWS = 8  # windows per model call
DETECTIONS_PER_SECOND = 5.0  # faces are detected ~5 times a second; frames in between keep their track's face
AUDIO_ONLY_FPS = 30.0  # row rate of a file without video (Aff-Wild2's annotation rate)
ENCODER_BATCH = 64  # rows per encoder forward pass (preprocessing: 128); bounds memory (VGGish: ~110 MB at 64);
# IR-50's features equal the store's at 64, VGGish's up to bf16 rounding (they are equal only at the same batch size)


class VideoRoute(Route):
    """A user's video on the route: the decoded stream's own frame times (``fps`` a second for a file without
    video), the arrays kept in memory, every tracked person's faces encoded as they are cut (cached mode), the
    stages its model's modalities need; notes without repeats, seconds per stage (:data:`STAGES`)."""

    def __init__(self, path: Path, b: ModelBundle, rcfg: Config, progress: bool, fps: float | None = None):
        super().__init__()
        self.video, self.label, self.b, self.show = path, str(path), b, progress
        self.p, self.asr = b.cfg.preprocess, rcfg.preprocess  # the checkpoint's settings; the run's recogniser
        self.info, self.mods, self.cached = probe(path), b.modalities, b.cfg.train.mode == "cached"
        self.detect, self.join_tracks = "visual" in self.mods, True
        self.detect_every = max(1, int(round((self.info.container_fps or 25.0) / DETECTIONS_PER_SECOND)))
        self.precision, self.batch, self.threads = b.precision, ENCODER_BATCH, 0  # all the process's threads
        if self.cached and "visual" in self.mods:
            vi = b.encoder_info["visual"]
            self.face_sink = FaceEncoder(b.encoders["visual"], encode_faces, vi["dim"], vi["frame_stride"],
                                         b.precision, int(self.p.face_size), ENCODER_BATCH)
        self.secs, self.cpu = dict.fromkeys(STAGES, 0.0), dict.fromkeys(STAGES, 0.0)  # CPU: all threads
        self.persons, self.detector, self.fd, self.enc = [], "not needed", {}, np.zeros(2)
        self.wav, self.L, self.word_list, self.asr_info = None, None, [], {"backend": "not needed"}
        self.X_t, self.features, self.evidence = None, {}, None
        self.row_fps = None  # rows a second of a file without video
        if not self.info.has_video:
            self.row_fps = float(fps or AUDIO_ONLY_FPS)
            n = max(1, int(round(float(self.info.container_duration_s or 0.0) * self.row_fps)))
            self.times = np.arange(n) / self.row_fps
            self.note(f"{path}: audio only (no video stream); rows at {self.row_fps:g} a second, no face evidence")
            self.after_times()

    def note(self, msg: str) -> None:
        if msg and msg not in self.notes:
            self.notes.append(msg)

    def spent(self, key: str, t: np.ndarray) -> None:
        self.secs[key] += float(t[0])
        self.cpu[key] += float(t[1])

    def wants(self, stage: str) -> bool:
        m = self.mods
        return {"faces": self.info.has_video, "audio": "audio" in m or "text" in m, "speech": "text" in m,
                "text": "text" in m, "features": self.cached and ("visual" in m or "audio" in m)}[stage]

    def done(self, stage: str, extra: dict[str, Any], notes: list[str], spent: np.ndarray) -> None:
        if stage == "faces":
            t0 = clock()
            if self.face_sink is not None:
                self.face_sink.finish(len(self.times))  # the last row is encoded too, as in the store
                self.enc = self.face_sink.spent.copy()  # the visual encoder's seconds count as "encoders"
                for pf in self.persons:  # a person's later tracks (Tracker.join): their rows are the person's
                    for k in pf.joined:
                        self.face_sink.feats.setdefault(pf.track, {}).update(self.face_sink.feats.pop(k, {}))
            self.after_faces()
            spent = spent + (clock() - t0) - self.enc
        if stage == "audio" and self.info.has_audio and self.wav.size and float(np.max(np.abs(self.wav))) < 1e-4:
            self.note(f"{self.video}: the audio track is silent")
        if stage == ("speech" if "text" in self.mods else "audio"):  # the track is not needed after this stage
            self.evidence = speech_at(self.wav, int(self.p.sample_rate), self.times, self.word_list)
            self.wav = None
        self.spent(SECONDS_OF[stage], spent + (self.enc if stage == "features" else 0))
        with contextlib.suppress(OSError, AttributeError):  # glibc keeps the freed small blocks of a long stage
            ctypes.CDLL("libc.so.6").malloc_trim(0)

    # ---- faces and times -----------------------------------------------------------------------------------------
    def faces_stage(self) -> dict[str, Any] | None:
        with tqdm(total=self.info.container_frames or None, desc=self.video.name[-24:], unit="frame", leave=False,
                  disable=not (self.show and self.detect), dynamic_ncols=True) as bar:
            self.progress = bar.update
            return super().faces_stage()

    def face_times(self) -> None:
        return None  # every decoded frame, at its own time

    def keep_faces(self, found: FaceStage) -> None:
        self.times, self.persons, self.detector = found.frame_times, found.persons, found.detector
        if self.detect:
            s, tried = found.seconds_detect, found.frames_tried
            self.fd = {"frames": tried, "every": self.detect_every, "seconds": round(s, 3), "dropped_tracks":
                       found.dropped_tracks, "frames_per_second": round(tried / s, 2) if s else None,
                       "cpu_seconds": {k: round(v, 3) for k, v in found.seconds.items()}}

    def after_faces(self) -> None:
        path = self.video
        if self.detect:
            if not self.persons:
                self.note(f"{path}: no face found in any frame; scored from audio and text where there is sound")
            for pf in self.persons:
                if pf.mask.mean() < 0.999:
                    self.note(f"{path}: person {pf.person}: a face was found in {pf.mask.mean():.0%} of the frames")
            if len(self.persons) > 1:
                self.note(f"{path}: {len(self.persons)} people tracked; each is scored as its own trial")
        dt = np.diff(self.times)
        if len(dt) > 1 and dt.max() > 1.5 * dt.min():  # the frames' own intervals vary
            self.note(f"{path}: variable frame rate (frames {dt.min() * 1000:.1f} to {dt.max() * 1000:.1f} ms apart); "
                      "rows follow the decoded frames at their own times")
        self.after_times()

    def after_times(self) -> None:
        n, times = len(self.times), self.times
        self.step = float(np.median(np.diff(times))) if n > 1 else 1.0 / (self.info.container_fps or 25.0)
        self.duration = float(times[-1] + self.step)
        if self.duration < 1.0:
            self.note(f"{self.video}: very short video ({self.duration:.2f} s, {n} frames); one window padded to "
                      f"K={self.b.K}")

    # ---- sound, words, text ---------------------------------------------------------------------------------------
    def track(self) -> np.ndarray:
        if self.wav is None:
            self.wav = load_audio(self.video, int(self.p.sample_rate), duration=self.duration, counts=self.acounts)
        return self.wav

    def keep_logmel(self, L: np.ndarray) -> None:
        self.L = L

    def keep_words(self, words: list, info: dict[str, Any]) -> None:
        self.word_list, self.asr_info = words, info

    def words(self) -> list:
        return self.word_list

    def keep_text(self, X_t: np.ndarray) -> None:
        self.X_t = X_t.astype(np.float32)
        self.X_t -= self.b.text_stats["mean"]  # training stats, paper §4.2.2 (float32, in place: one (N, d_t) array)
        self.X_t /= self.b.text_stats["std"]

    # ---- features ----------------------------------------------------------------------------------------------------
    def encoded(self) -> list[str]:
        return [k for k in ("visual", "audio") if k in self.mods]

    def encoder(self, kind: str) -> tuple[Any, int, int]:
        info = self.b.encoder_info[kind]
        return self.b.encoders[kind], int(info["dim"]), int(info["frame_stride"])

    def inputs(self, kind: str) -> list:
        return ([pf.track for pf in self.persons] or [None]) if kind == "visual" else [None]

    def rows(self, kind: str, who: Any, rows: np.ndarray) -> np.ndarray:
        return patches_at(self.L, self.times[rows]).astype(np.float16)  # (rows, 96, 64) as stored

    def features_out(self, kind: str, who: Any, shape: tuple[int, int]):
        self.features[kind, who] = np.empty(shape, np.float16)
        return contextlib.nullcontext(self.features[kind, who])

    def model_inputs(self) -> tuple[np.ndarray | None, list[np.ndarray | None]]:
        """(audio input, shared; visual input per person): the features (cached mode), else the log-mel patches
        and the faces (N, 3, 40, 40), centre crop (the end-to-end model's eval transform)."""
        n, size = len(self.times), int(self.p.face_size)
        audio = None
        if "audio" in self.mods:
            audio = (self.features["audio", None] if self.cached else self.rows("audio", None, np.arange(n))[:, None]
                     ).astype(np.float32)
        visual: list[np.ndarray | None] = []
        for pf in self.persons or [None]:
            if "visual" not in self.mods:
                visual.append(None)
            elif self.cached:
                visual.append(self.features["visual", pf.track if pf else None].astype(np.float32))
            else:
                visual.append(faces_to_tensor(pf.faces if pf else np.zeros((n, size, size, 3), np.uint8)).numpy())
        return audio, visual


def run_model(bundle: ModelBundle, inputs: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, int]:
    """Windows of K (stride from the checkpoint), the model, merged per frame → ((n, n_targets), windows)."""
    K = bundle.K
    starts = window_starts(n, K, int(bundle.cfg.data.stride))
    preds = []
    with torch.inference_mode():
        for b in range(0, len(starts), BATCH_WINDOWS):
            batch = {k: np.stack([take_window(arr, s, K)[0] for s in starts[b:b + BATCH_WINDOWS]])
                     for k, arr in inputs.items()}  # zeros after the end (padding)
            preds.extend(bundle.model({k: torch.from_numpy(v) for k, v in batch.items()})["pred"].float().numpy())
    return merge_windows(preds, starts, n, K), len(starts)


def predict_video(path: str | Path, model_bundle: ModelBundle, cfg: Config | None = None, fill: bool = False,
                  progress: bool = False, smooth_output: bool = True, fps: float | None = None) -> PredictionResult:
    """Score one video with a loaded :class:`~rjcma.bundle.ModelBundle`; see the module docstring. ``cfg`` (default:
    the bundle's) supplies the run-time settings only (ASR and punctuation models); ``progress`` shows a bar of the
    decoded frames; ``smooth_output`` filters the output over :data:`~rjcma.train.smoothing.WIDTH_S` (the raw
    output stays in the result's ``raw``); ``fps``: rows a second of a file without video. Expected failures raise
    :class:`RjcmaError` naming the file."""
    b, path = model_bundle, Path(path)
    r = VideoRoute(path, b, cfg if cfg is not None else b.cfg, progress, fps)
    r.run()
    n = len(r.times)
    speech = r.evidence if r.evidence is not None else np.zeros(n, bool)
    t0 = clock()  # the model, once per person, on the shared audio and text
    audio, visual = r.model_inputs()
    inputs = {k: v for k, v in (("audio" if r.cached else "logmel", audio), ("text", r.X_t)) if v is not None}
    face_sets = [pf.mask for pf in r.persons] or [np.zeros(n, bool)]
    width = width_frames(WIDTH_S, 1.0 / r.step) if smooth_output else 1
    preds, raws, n_windows = [], [], 0
    for mask, vis in zip(face_sets, visual):
        if vis is not None:
            inputs["visual" if r.cached else "faces"] = vis
        merged, n_windows = run_model(b, inputs, n)
        raw = np.full((n, 2), np.nan, np.float32)
        for i, t in enumerate(b.targets):
            raw[:, {"valence": 0, "arousal": 1}[t]] = merged[:, i]
        pred = smooth(raw, width)
        if not fill:
            pred[~(mask | speech)] = raw[~(mask | speech)] = np.nan  # no evidence: no value
        preds.append(pred)
        raws.append(raw)
    r.spent("model", clock() - t0)
    blind = [int((~(m | speech)).sum()) for m in face_sets]
    if max(blind) and not fill:
        r.note(f"{path}: {max(blind)} of {n} frames have neither a face nor sound; their valence and arousal are "
               "left empty (--fill writes the model's output there)")
    for c in (r.vcounts, r.acounts):
        r.note(c.warning(path) or "")
    extra = {"smoothing": {"width_s": WIDTH_S if width > 1 else 0.0, "width_frames": width},
             "row_fps": r.row_fps, "windows": n_windows}
    facts = summary(r, face_sets, speech, preds, blind, fill, extra)
    return PredictionResult(path, r.times, preds, face_sets, speech, r.word_list, facts, r.notes, raws)


def predict(video: str | Path, checkpoint: str | Path | ModelBundle | None = None, *, profile: str = "demo",
            sets: list[str] | None = None, fill: bool = False, smooth: bool = True, fps: float | None = None,
            progress: bool = False) -> pd.DataFrame:
    """Score ``video`` and return its rows as a DataFrame with the CSV's columns (``frame, time_s, person, valence,
    arousal, face, speech``); what the JSON says (decoder counts, people, warnings, timings, ...) is in ``df.attrs``.

    The model is found as ``rjcma predict`` finds it: ``checkpoint`` (a result folder, or a loaded
    :class:`~rjcma.bundle.ModelBundle`), else the model ``make book`` trains for ``profile``; ``sets``
    (``key=value``) override its config. A loaded model is kept for the next call. ``fill``, ``smooth`` and ``fps``
    are the command's ``--fill``, ``--smooth`` and ``--fps``.
    """
    b = checkpoint if isinstance(checkpoint, ModelBundle) else cached_bundle(checkpoint, sets, profile)
    res = predict_video(video, b, fill=fill, progress=progress, smooth_output=smooth, fps=fps)
    df = pd.DataFrame(res.columns())
    df.attrs.update(res.summary)
    return df
