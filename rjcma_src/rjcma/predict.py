"""`rjcma predict`: valence and arousal for every frame and every person of your own video(s) (paper §3, §4.2.1).

A user's video has no ``cropped_aligned`` folder; it goes through the same stages as the preprocessing
(:mod:`rjcma.preprocess.stages`), with the stream's own frame times instead of k / fps::

    decode (resilient) ─► faces: detect, track people, align, 48×48 ─► frozen visual encoder ─┐ per person
           └─► 16 kHz mono ─► VGGish log-mel patch at each frame time ─► frozen audio encoder ─┤ shared
                   └─► ASR (+ punctuation) ─► words ─► BERT-family word vector at each time ───┘ shared
                                     ─► K-frame windows ─► trained model ─► merged per frame and person

* The model, K, the stride, the encoders (with their precision and frame stride) and the text statistics come from
  the checkpoint (:mod:`rjcma.bundle`).
* Each tracked person is scored as its own trial on the shared audio and transcript, as Aff-Wild2 scores the
  ``_left``/``_right`` subjects of one video. A video without any face is one person with black, masked faces.
* Honest frames: each row says which evidence existed (``face``: a face of this person; ``speech``: sound or a
  word). Where there is neither, valence and arousal are left empty; ``--fill`` writes the model's output there.
* Outputs per video ``<stem>``: ``.csv`` (``frame,time_s,person,valence,arousal,face,speech``), ``.png``,
  ``.json`` (summary, decoder counts, encoders/ASR used, warnings, timings) and ``.html`` (an offline report,
  :mod:`rjcma.report`), written atomically together.
"""

from __future__ import annotations

import json
import os
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.config import Config
from rjcma.bundle import ModelBundle, load_bundle  # noqa: F401 - the API: load_bundle, then predict_video
from rjcma.preprocess.audio import load_audio, log_mel, patches_at
from rjcma.preprocess.decode import DecodeCounts, iter_video, probe
from rjcma.preprocess.encoders import autocast, encode_rows, encoded_rows
from rjcma.preprocess.stages import faces_at, speech_at, transcribe_words, words_at

# oneDNN keeps a compiled kernel for every input shape it meets, and MTCNN's later stages see a new batch size on
# almost every call: without a small cache the process grows by ~0.6 MB a frame (read at the first convolution)
os.environ.setdefault("ONEDNN_PRIMITIVE_CACHE_CAPACITY", "16")

STAGES = ("decode+faces", "audio+logmel", "asr", "text", "encoders", "model")
BATCH_WINDOWS = 8  # windows per model call
DETECTIONS_PER_SECOND = 5.0  # faces are detected ~5 times a second; frames in between keep their track's face
AUDIO_ONLY_FPS = 30.0  # row rate of a file without video
ENCODER_BATCH = 64  # rows per encoder forward pass (preprocessing: 128); bounds memory (VGGish: ~110 MB at 64);
# IR-50's features equal the store's at 64, VGGish's up to bf16 rounding (they are equal only at the same batch size)
ASR_PIECE_S = 120.0  # longer tracks are recognised in pieces of at most this length, cut at their quietest moment:
ASR_CUT_WINDOW_S = 20.0  # the cut is sought in the last this-many seconds of a piece (Whisper's features of a whole
# track take ~55 MB a minute at once)
OUTPUTS = ("csv", "png", "json", "html")


@dataclass
class PredictionResult:
    """Per-frame, per-person predictions of one video and what produced them."""

    video: Path
    times: np.ndarray  # (N,) s, presentation time of each decoded frame
    preds: list[np.ndarray]  # per person (N, 2) [valence, arousal]; NaN where no evidence (unless filled)
    faces: list[np.ndarray]  # per person (N,) bool
    speech: np.ndarray  # (N,) bool, shared
    words: list
    summary: dict[str, Any]
    warnings: list[str]

    @property
    def stem(self) -> str:
        return self.video.stem

    def csv_text(self) -> str:
        lines = ["frame,time_s,person,valence,arousal,face,speech"]
        f = lambda x: "" if np.isnan(x) else f"{x:.6f}"  # noqa: E731
        for k in range(len(self.times)):
            for p, pred in enumerate(self.preds):
                lines.append(f"{k},{self.times[k]:.4f},{p},{f(pred[k, 0])},{f(pred[k, 1])},{int(self.faces[p][k])},"
                             f"{int(self.speech[k])}")
        return "\n".join(lines) + "\n"

    def json_text(self) -> str:
        return json.dumps(self.summary, indent=2, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return None if np.isnan(o) else float(o)
    return o.tolist() if isinstance(o, np.ndarray) else str(o)


def _short(e: BaseException) -> str:
    s = str(e).splitlines()[0][:160] if str(e) else ""
    return f"{type(e).__name__}: {s}" if s else type(e).__name__


def _stats(x: np.ndarray) -> dict[str, float | None]:
    if np.isnan(x).all():
        return {"mean": None, "std": None, "min": None, "max": None}
    return {k: float(f(x)) for k, f in (("mean", np.nanmean), ("std", np.nanstd), ("min", np.nanmin),
                                         ("max", np.nanmax))}


def run_model(bundle: ModelBundle, inputs: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, int]:
    """Windows of K (stride from the checkpoint), the model, merged per frame → ((n, n_targets), windows)."""
    import torch

    from rjcma.data.windows import merge_windows, take_window, window_starts

    K = bundle.K
    starts = window_starts(n, K, int(bundle.cfg.data.stride))
    preds = []
    with torch.inference_mode():
        for b in range(0, len(starts), BATCH_WINDOWS):
            batch = {k: np.stack([take_window(arr, s, K)[0] for s in starts[b:b + BATCH_WINDOWS]])
                     for k, arr in inputs.items()}  # zeros after the end (padding)
            preds.extend(bundle.model({k: torch.from_numpy(v) for k, v in batch.items()})["pred"].float().numpy())
    return merge_windows(preds, starts, n, K), len(starts)


def _clock() -> np.ndarray:
    """(wall, process CPU) seconds."""
    return np.array([time.perf_counter(), time.process_time()])


class _FaceEncoder:
    """The frozen visual encoder as the ``sink`` of :func:`faces_at`: each person's face is encoded as it is cut, at
    the rows :func:`~rjcma.preprocess.encoders.encoded_rows` names (every ``frame_stride``-th and the last), in
    batches of :data:`ENCODER_BATCH` faces of any people. A video's faces are never all in memory, only one feature
    vector per encoded row and person; :meth:`features` then fills the rows in between as the training store's
    features are (:func:`~rjcma.preprocess.encoders.encode_rows`)."""

    def __init__(self, b: ModelBundle):
        from rjcma.models.backbones import encode_faces

        self.model, self.prec, self.encode = b.encoders["visual"], b.precision, encode_faces
        self.stride, self.dim = int(b.encoder_info["visual"]["frame_stride"]), int(b.encoder_info["visual"]["dim"])
        self.size = int(b.cfg.preprocess.face_size)
        self.feats: dict[int, dict[int, np.ndarray]] = {}  # track -> encoded row -> (dim,) float16
        self.last: dict[int, tuple[int, Any]] = {}  # track -> its latest (row, cut): the video's last row?
        self.todo: list[tuple[int, int, np.ndarray]] = []  # (track, row, face) waiting for a batch
        self.spent = np.zeros(2)  # (wall, CPU) seconds in the encoder

    def __call__(self, row: int, track: int, cut) -> None:
        self.last[track] = (row, cut)
        if row % self.stride == 0:
            self.todo.append((track, row, cut()))
            if len(self.todo) >= ENCODER_BATCH:
                self._flush()

    def _run(self, faces: np.ndarray) -> np.ndarray:
        t0 = _clock()
        with autocast(self.prec):
            out = self.encode(self.model, faces, batch=ENCODER_BATCH).astype(np.float16)
        self.spent += _clock() - t0
        return out

    def _flush(self) -> None:
        if self.todo:
            out = self._run(np.stack([f for _, _, f in self.todo]))
            for (k, r, _), x in zip(self.todo, out):
                self.feats.setdefault(k, {})[r] = x
            self.todo.clear()

    def finish(self, n: int) -> None:
        """After the last frame (``n`` rows): the last row is encoded too, as in the store."""
        self.todo += [(k, r, cut()) for k, (r, cut) in self.last.items()
                      if r == n - 1 and r not in self.feats.get(k, {})]
        self.last.clear()
        self._flush()

    def features(self, track: int, n: int) -> np.ndarray:
        """(n, dim) float16 features of one track; rows where it has no face take the features of a black face, as
        the training store encodes black frames."""
        got = self.feats.pop(track, {})
        black = None
        if len(got) < len(encoded_rows(n, self.stride)):
            black = self._run(np.zeros((1, self.size, self.size, 3), np.uint8))[0]
        look = lambda _m, rows: np.stack([got.get(int(i), black) for i in rows])  # noqa: E731
        return encode_rows(None, look, lambda rows: rows, n, self.dim, self.stride, "fp32")


@dataclass
class _Run:
    """One video being scored: what every step reads and the notes and timings they add."""

    path: Path
    b: ModelBundle
    rcfg: Config
    info: Any
    notes: list[str] = field(default_factory=list)
    secs: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))  # process CPU, all threads
    vcounts: DecodeCounts = field(default_factory=lambda: DecodeCounts("video"))
    acounts: DecodeCounts = field(default_factory=lambda: DecodeCounts("audio"))
    face_encoder: _FaceEncoder | None = None  # cached mode: the visual encoder runs on the faces as they are cut

    def spent(self, stage: str, t0: np.ndarray) -> None:
        """Add the wall and CPU seconds since ``t0`` (:func:`_clock`) to ``stage``."""
        wall, cpu = _clock() - t0
        self.secs[stage] += wall
        self.cpu[stage] += cpu

    def note(self, msg: str) -> None:
        if msg and msg not in self.notes:
            self.notes.append(msg)

    def caught(self, ws) -> None:
        for w in ws:
            if not issubclass(w.category, (DeprecationWarning, FutureWarning)):
                self.note(str(w.message))


def _timeline(r: _Run, progress: bool) -> tuple[np.ndarray, list, str, dict[str, Any]]:
    """Frame times and every tracked person's faces (decode + faces; rows at 30 fps for an audio-only file)."""
    from tqdm.auto import tqdm

    path, info, mods = r.path, r.info, r.b.modalities
    persons, detector, fd = [], "not needed", {}
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        if not info.has_video:
            times = np.arange(max(1, int(round(float(info.container_duration_s or 0.0) * AUDIO_ONLY_FPS))))
            times = times / AUDIO_ONLY_FPS
            r.note(f"{path}: audio only (no video stream); rows at {AUDIO_ONLY_FPS:g} fps, no face evidence")
        elif "visual" in mods:
            every = max(1, int(round((info.container_fps or 25.0) / DETECTIONS_PER_SECOND)))
            with tqdm(total=info.container_frames or None, desc=path.name[-24:], unit="frame", leave=False,
                      disable=not progress, dynamic_ncols=True) as bar:
                st = faces_at(path, None, int(r.b.cfg.preprocess.face_size), every, counts=r.vcounts,
                              progress=bar.update, sink=r.face_encoder)
            times, persons, detector = st.frame_times, st.persons, st.detector
            fd = {"frames": st.frames_tried, "every": every, "seconds": round(st.seconds_detect, 3),
                  "dropped_tracks": st.dropped_tracks,
                  "frames_per_second": round(st.frames_tried / st.seconds_detect, 2) if st.seconds_detect else None}
        else:
            times = np.asarray([t for t, _ in iter_video(path, r.vcounts)], np.float64)
    r.caught(ws)
    if "visual" in mods and info.has_video:
        if not persons:
            r.note(f"{path}: no face found in any frame; scored from audio and text where there is sound")
        for pf in persons:
            if pf.mask.mean() < 0.999:
                r.note(f"{path}: person {pf.person}: a face was found in {pf.mask.mean():.0%} of the frames")
        if len(persons) > 1:
            r.note(f"{path}: {len(persons)} people tracked; each is scored as its own trial")
    if len(times) > 2:
        dt = np.diff(times)
        if dt.min() > 0 and dt.max() > 1.5 * dt.min():
            r.note(f"{path}: variable frame rate (frame gaps {dt.min() * 1000:.1f}-{dt.max() * 1000:.1f} ms); "
                   "rows follow the decoded frames and their presentation times")
    return times, persons, detector, fd


def _sound_and_words(r: _Run, times: np.ndarray, duration: float) -> tuple[np.ndarray, Any, list, dict, Any]:
    """(16 kHz track, its log-mel, words, what ASR ran, text features or None): shared by every person."""
    b, path, mods = r.b, r.path, r.b.modalities
    sr = int(b.cfg.preprocess.sample_rate)
    wav, L, words, asr, X_t = np.zeros(0, np.float32), None, [], {"backend": "not needed"}, None
    if "audio" in mods or "text" in mods:
        t0 = _clock()
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            wav = load_audio(path, sr, duration=duration, counts=r.acounts)
        r.caught(ws)
        if r.info.has_audio and wav.size and float(np.max(np.abs(wav))) < 1e-4:
            r.note(f"{path}: the audio track is silent")
        L = log_mel(wav, sr)  # (T, 64)
        r.spent("audio+logmel", t0)
    if "text" in mods:
        from rjcma.models.text_encoder import load_text_encoder
        from rjcma.preprocess.text import word_features

        t0 = _clock()
        words, asr = _transcribe(wav, sr, r.rcfg.preprocess)
        if not words:
            r.note(f"{path}: no words recognised; text features are zeros")
        r.spent("asr", t0)
        t0 = _clock()
        te = load_text_encoder(b.cfg.preprocess.text_model, weights_dir=b.cfg.preprocess.weights_dir)
        vec = word_features(words, encoder=te) if words else np.zeros((0, te.dim), np.float32)
        X_t = words_at(words, vec, times).astype(np.float32, copy=False)  # (N, d_t)
        X_t[...] = X_t.astype(np.float16)  # as stored (float16)
        X_t -= b.text_stats["mean"]  # training stats, paper §4.2.2 (float32, in place: one (N, d_t) array)
        X_t /= b.text_stats["std"]
        r.spent("text", t0)
    return wav, L, words, asr, X_t


def _pieces(wav: np.ndarray, sr: int) -> list[tuple[int, int]]:
    """(start, end) samples of pieces of at most :data:`ASR_PIECE_S`, each cut at the quietest 0.1 s of the last
    :data:`ASR_CUT_WINDOW_S` before its limit (a pause between words)."""
    piece, win, hop = int(ASR_PIECE_S * sr), int(ASR_CUT_WINDOW_S * sr), max(1, sr // 10)
    out, s = [], 0
    while len(wav) - s > piece:
        lo = s + piece - win
        seg = wav[lo:s + piece]
        e = np.add.reduceat(np.square(seg, dtype=np.float32), np.arange(0, len(seg), hop))  # energy per 0.1 s
        cut = lo + int(np.argmin(e)) * hop + hop // 2
        out.append((s, cut))
        s = cut
    return out + [(s, len(wav))]


def _transcribe(wav: np.ndarray, sr: int, p) -> tuple[list, dict[str, Any]]:
    """:func:`transcribe_words` on the whole track, or on pieces of a long one (:func:`_pieces`), word times shifted
    back to the track's: the recogniser's working memory stays that of one piece."""
    import dataclasses

    pieces = _pieces(wav, sr)
    words, asr = [], {}
    for a, e in pieces:
        ws, asr = transcribe_words(wav[a:e], p, "cpu")
        words += [dataclasses.replace(w, start=w.start + a / sr, end=w.end + a / sr) if a else w for w in ws]
    if len(pieces) > 1:
        asr = {**asr, "pieces": len(pieces)}
    return words, asr


def _trim() -> None:
    """Hand freed heap memory back to the system (glibc keeps the small blocks of a long run otherwise)."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):  # not glibc
        pass


def _encode(r: _Run, times: np.ndarray, L, persons: list) -> tuple[np.ndarray | None, list]:
    """Audio features (shared) and visual features per person: blocks of rows, every frame_stride-th row encoded as
    in the training store (:func:`rjcma.preprocess.encoders.encode_rows`)."""
    from functools import partial

    from rjcma.models.backbones import encode_faces, encode_logmel, faces_to_tensor

    encode_faces = partial(encode_faces, batch=ENCODER_BATCH)
    encode_logmel = partial(encode_logmel, batch=ENCODER_BATCH)

    b, n, mods = r.b, len(times), r.b.modalities
    cached = b.cfg.train.mode == "cached"
    audio = None
    if "audio" in mods:
        get = lambda rows: patches_at(L, times[rows]).astype(np.float16)  # noqa: E731 - (rows, 96, 64) as stored
        if cached:
            ai = b.encoder_info["audio"]
            audio = encode_rows(b.encoders["audio"], encode_logmel, get, n, ai["dim"], ai["frame_stride"],
                                b.precision, threads=0).astype(np.float32)  # all the process's threads
        else:
            audio = get(np.arange(n)).astype(np.float32)[:, None]  # (N, 1, 96, 64)
    size = int(b.cfg.preprocess.face_size)
    visual: list[np.ndarray | None] = []
    for pf in persons or [None]:
        if "visual" not in mods:
            visual.append(None)
        elif not cached:  # end-to-end models take the faces themselves (N, 3, 40, 40), centre crop (eval transform)
            visual.append(faces_to_tensor(pf.faces if pf else np.zeros((n, size, size, 3), np.uint8)).numpy())
        elif pf is not None:  # encoded while the faces were cut (_FaceEncoder)
            visual.append(r.face_encoder.features(pf.track, n).astype(np.float32))
        else:  # black, masked faces everywhere: one feature vector, as training encodes black frames
            vi = b.encoder_info["visual"]
            one = encode_rows(b.encoders["visual"], encode_faces, lambda rows: np.zeros((1, size, size, 3), np.uint8),
                              1, vi["dim"], 1, b.precision, threads=0)
            visual.append(np.ascontiguousarray(np.broadcast_to(one, (n, vi["dim"])), np.float32))
    return audio, visual


def predict_video(path: str | Path, model_bundle: ModelBundle, cfg: Config | None = None, fill: bool = False,
                  progress: bool = False) -> PredictionResult:
    """Score one video with a loaded :class:`ModelBundle`; see the module docstring. ``cfg`` (default: the
    bundle's) supplies the run-time settings only (ASR and punctuation models); ``progress`` shows a bar of the
    decoded frames. Expected failures raise :class:`RjcmaError` naming the file."""
    b, path = model_bundle, Path(path)
    r = _Run(path, b, cfg if cfg is not None else b.cfg, probe(path))
    if b.cfg.train.mode == "cached" and "visual" in b.modalities:
        r.face_encoder = _FaceEncoder(b)
    t0 = _clock()
    times, persons, detector, fd = _timeline(r, progress)  # decode + faces (+ their visual features)
    n = len(times)
    if r.face_encoder is not None:
        r.face_encoder.finish(n)
    enc = r.face_encoder.spent.copy() if r.face_encoder else np.zeros(2)  # of it, the visual encoder: "encoders"
    _trim()
    duration = float(times[-1] + (np.median(np.diff(times)) if n > 1 else 1.0 / (r.info.container_fps or 25.0)))
    if duration < 1.0:
        r.note(f"{path}: very short video ({duration:.2f} s, {n} frames); one window padded to K={b.K}")
    r.spent("decode+faces", t0 + enc)
    wav, L, words, asr, X_t = _sound_and_words(r, times, duration)
    _trim()
    sr = int(b.cfg.preprocess.sample_rate)
    with_sound = "audio" in b.modalities or "text" in b.modalities
    speech = speech_at(wav, sr, times, words) if with_sound else np.zeros(n, bool)
    del wav  # the track is no longer needed; the log-mel is
    t0 = _clock()
    audio, visual = _encode(r, times, L, persons)
    r.spent("encoders", t0 - enc)
    del L
    _trim()

    t0 = _clock()  # the model, once per person, on the shared audio and text
    cached = b.cfg.train.mode == "cached"
    inputs = {k: v for k, v in (("audio" if cached else "logmel", audio), ("text", X_t)) if v is not None}
    face_sets = [pf.mask for pf in persons] or [np.zeros(n, bool)]
    preds, n_windows = [], 0
    for mask, vis in zip(face_sets, visual):
        if vis is not None:
            inputs["visual" if cached else "faces"] = vis
        merged, n_windows = run_model(b, inputs, n)
        pred = np.full((n, 2), np.nan, np.float32)
        for i, t in enumerate(b.targets):
            pred[:, {"valence": 0, "arousal": 1}[t]] = merged[:, i]
        if not fill:
            pred[~(mask | speech)] = np.nan  # no evidence: no value
        preds.append(pred)
    r.spent("model", t0)
    blind = [int((~(m | speech)).sum()) for m in face_sets]
    if max(blind) and not fill:
        r.note(f"{path}: {max(blind)} of {n} frames have neither a face nor sound; their valence and arousal are "
               "left empty (--fill writes the model's output there)")
    for c in (r.vcounts, r.acounts):
        r.note(c.warning(path) or "")
    summary = _summary(r, times, duration, face_sets, speech, words, asr, preds, blind, fill, detector, fd, n_windows)
    return PredictionResult(path, times, preds, face_sets, speech, words, summary, r.notes)


def _summary(r: _Run, times, duration, face_sets, speech, words, asr, preds, blind, fill, detector, fd,
             n_windows) -> dict[str, Any]:
    from rjcma import __version__

    b, path, n, mcfg = r.b, r.path, len(times), r.b.cfg
    cached = mcfg.train.mode == "cached"
    return {
        "video": str(path), "size_bytes": path.stat().st_size, "mtime_ns": path.stat().st_mtime_ns, "frames": n,
        "duration_s": round(duration, 4),
        "mean_fps": round((n - 1) / float(times[-1]), 4) if n > 1 and times[-1] > 0 else None,
        **r.info.summary(),
        "decode": {"video": r.vcounts.as_dict(), "audio": r.acounts.as_dict()},
        "face_detector": detector, "face_detection": fd, "persons": len(face_sets),
        "faces_found": int(sum(int(m.sum()) for m in face_sets)),
        "faces_fraction": round(float(np.mean([m.mean() for m in face_sets])), 4) if n else 0.0,
        "speech_fraction": round(float(speech.mean()), 4) if n else 0.0,
        "words": len(words), "transcript": " ".join(getattr(w, "text", str(w)) for w in words)[:2000],
        "asr": asr, "encoders": b.encoder_info, "encoder_precision": b.precision if cached else "fp32",
        "checkpoint": str(b.checkpoint), "config_hash": b.config_hash, "fill": bool(fill),
        "model": {"fusion": mcfg.model.fusion, "modalities": list(b.modalities), "targets": b.targets, "K": b.K,
                  "stride": int(mcfg.data.stride), "windows": n_windows, "mode": mcfg.train.mode},
        "people": [{"person": j, "face_frames": int(m.sum()), "no_evidence_frames": blind[j],
                    "valence": _stats(preds[j][:, 0]), "arousal": _stats(preds[j][:, 1])}
                   for j, m in enumerate(face_sets)],
        "valence": _stats(preds[0][:, 0]), "arousal": _stats(preds[0][:, 1]),
        "warnings": r.notes, "seconds": {k: round(v, 3) for k, v in r.secs.items()},
        "cpu_seconds": {k: round(v, 3) for k, v in r.cpu.items()}, "rjcma_version": __version__,
    }


# ---- outputs --------------------------------------------------------------------------------------------------------
def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    return {k: Path(out_dir) / f"{stem}.{k}" for k in OUTPUTS}


def write_outputs(result: PredictionResult, out_dir: str | Path, dpi: int = 110) -> dict[str, Path]:
    """``<stem>.csv/.png/.json/.html`` in ``out_dir``, all or none: each is written atomically (rjcma.io) and, if
    any write fails, the files of this video written by this call are removed again."""
    from rjcma.io import atomic_write_bytes
    from rjcma.report import BROWSER_CODECS, html_report, png_bytes, web_copy

    paths = output_paths(Path(out_dir), result.stem)
    existed = {k: p.exists() for k, p in paths.items()}
    written: list[str] = []
    web = None
    if result.summary.get("has_video") and result.summary.get("codec") not in BROWSER_CODECS:
        paths["web"] = web = Path(out_dir) / f"{result.stem}.web.mp4"  # a copy the report's player can play
        existed["web"] = web.exists()
    blobs = {"csv": result.csv_text().encode(), "png": png_bytes(result, dpi), "json": result.json_text().encode(),
             "html": html_report(result, paths["html"], web).encode()}
    try:
        if web is not None:
            web_copy(result.video, web)
            written.append("web")
        for k in OUTPUTS:
            atomic_write_bytes(paths[k], blobs[k])
            written.append(k)
    except BaseException:
        for k in written:
            if not existed[k]:
                paths[k].unlink(missing_ok=True)
        raise
    return paths
