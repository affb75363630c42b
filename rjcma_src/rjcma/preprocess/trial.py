"""One trial on the route into the feature store: rows at t_k = k / fps, arrays into the store, resumable.

After its ``labels``, a trial goes the route of :mod:`rjcma.preprocess.route` (the order and the stages prediction
shares) at the frame times t_k = k / fps of its annotation rows; :class:`TrialRoute` says where the arrays go
(:mod:`rjcma.data.store`):

* ``labels``   annotation file -> ``labels.npy`` (N, 2) float32, NaN where -5; N = annotation rows (test trials:
  the video's frame count, labels all NaN).
* ``faces``    cropped_aligned jpgs (row k <-> ``{k+1:05d}.jpg``) or, without them, faces detected in the video ->
  ``faces.npy``, ``face_mask.npy``.
* ``audio``    16 kHz mono track (decoded once per video, cached in ``_videos/<stem>/``) -> VGGish log-mel ->
  ``logmel.npy`` (N, 96, 64) float16, patch i starting at i/fps.
* ``speech``   ASR (+ punctuation when configured) once per video -> ``words.csv``.
* ``text``     BERT-family word features aligned to frames -> ``bert.npy`` (N, d) float16.
* ``features`` frozen visual/audio encoders (eval mode) on faces (centre 40 x 40) and log-mel patches ->
  ``<encoder>.npy`` (N, d) float16.

Each stage's outputs are written atomically and recorded in ``meta.json`` with a signature of its inputs (file
sizes and mtimes, upstream signatures) and of the config values it reads (:data:`RECORDS`); a rerun skips a stage
whose signature is unchanged and whose outputs exist, so an interrupted run resumes where it stopped. Large arrays
are written through memory-mapped temporary files, so memory stays bounded by one trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np
import torch
from numpy.lib.format import open_memmap

from rjcma import __version__
from rjcma.config import Config
from rjcma.data.annotations import fit_length, read_labels, reconcile_length
from rjcma.data.video_info import video_info
from rjcma.data.store import Store, feature_key
from rjcma.data.words import read_words_csv, write_words_csv
from rjcma.encoders.build import encoder, identity, precision
from rjcma.encoders.encode import BATCH, ENCODER_THREADS
from rjcma.encoders.logmel import NUM_BANDS, PATCH_FRAMES, frame_patches
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path, atomic_save_npy, atomic_write_json
from rjcma.preprocess import route
from rjcma.preprocess.audio import load_audio
from rjcma.preprocess.decode import DecodeCounts, frame_count
from rjcma.preprocess.faces.stream import FaceStage

STAGES = ("labels",) + route.STAGES
STAGE_VERSION = {"labels": 1, "faces": 1, "audio": 1, "speech": 2, "text": 1, "features": 1}
DEFAULT_FPS = 30.0


# ---- helpers ---------------------------------------------------------------------------------------------------
def _stat(path: Path | None) -> dict[str, Any] | None:
    if path is None:
        return None
    p = Path(path)
    try:
        st = p.stat()
    except OSError:
        return {"path": str(p), "missing": True}
    return {"path": str(p), "size": st.st_size, "mtime_ns": st.st_mtime_ns}


def _dir_digest(d: Path | None) -> dict[str, Any] | None:
    """Digest of a face folder's jpg names, sizes and mtimes (any change -> faces redone)."""
    if d is None or not Path(d).is_dir():
        return None
    h = hashlib.sha256()
    n = 0
    with os.scandir(d) as it:
        entries = sorted((e.name, e.stat().st_size, e.stat().st_mtime_ns) for e in it if e.name.endswith(".jpg"))
    for e in entries:
        h.update(repr(e).encode())
        n += 1
    return {"path": str(d), "files": n, "digest": h.hexdigest()[:16]}


def _sig(obj: Any) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:16]


@contextlib.contextmanager
def _open_memmap_atomic(path: Path, dtype, shape):
    """Context: yields a writable memmap whose file is renamed to ``path`` on success."""
    with atomic_path(path) as tmp:
        mm = open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
        try:
            yield mm
            mm.flush()
        finally:
            del mm


def _asr_device(cfg) -> str:
    d = cfg.preprocess.preprocess_device
    if d.startswith("cuda"):
        return d if torch.cuda.is_available() else "cpu"
    return "cpu"


def _trial_length(trial, fps_info) -> tuple[int, np.ndarray | None]:
    """(N, labels or None). N = annotation rows; test trials: the video's frames (or the highest jpg number)."""
    if trial.annotation is not None:
        labels = read_labels(trial.annotation)
        return len(labels), labels
    if fps_info is not None:
        return int(fps_info.n_frames), None
    if trial.faces_dir is not None and Path(trial.faces_dir).is_dir():
        nums = [int(p.stem) for p in Path(trial.faces_dir).glob("*.jpg") if p.stem.isdigit()]
        if nums:
            return max(nums), None
    raise RjcmaError(f"{trial.name}: no annotation, video or face folder to tell its length")


# ---- what each stage reads (its signature) and writes -------------------------------------------------------------
def _feature_keys(c: TrialRoute) -> tuple[str, str]:
    return feature_key(c.cfg, "visual"), feature_key(c.cfg, "audio")


def _sig_faces(c: TrialRoute) -> dict[str, Any]:
    src = _dir_digest(c.trial.faces_dir) if c.faces_dir is not None else _stat(c.trial.video)
    return {"faces": src, "size": c.p.face_size, **c.base, "v": STAGE_VERSION["faces"]}


def _sig_features(c: TrialRoute) -> dict[str, Any]:
    up = {s: c.recorded.get(s, {}).get("signature") for s in ("faces", "audio")}
    return {"faces": up["faces"], "audio": up["audio"],
            "visual": identity("visual", c.cfg), "audio_enc": identity("audio", c.cfg),
            "precision": c.precision, "stride": c.frame_stride, **c.base, "v": STAGE_VERSION["features"]}


# stage -> (outputs, signature of everything they depend on: inputs, config values, upstream signatures, version)
RECORDS: dict[str, tuple[Callable[[TrialRoute], list[str]], Callable[[TrialRoute], dict[str, Any]]]] = {
    "labels": (lambda c: ["labels.npy"],
               lambda c: {"ann": _stat(c.trial.annotation), **c.base, "v": STAGE_VERSION["labels"]}),
    "faces": (lambda c: ["faces.npy", "face_mask.npy"], _sig_faces),
    "audio": (lambda c: ["logmel.npy"],
              lambda c: {"video": _stat(c.trial.video), "sr": c.p.sample_rate, **c.base, "v": STAGE_VERSION["audio"]}),
    "speech": (lambda c: ["words.csv"],
               lambda c: {"video": _stat(c.trial.video), "asr": c.p.asr_backend, "asr_model": c.p.asr_model,
                          "punct": c.p.punctuation_model, "v": STAGE_VERSION["speech"]}),
    "text": (lambda c: ["bert.npy"],
             lambda c: {"words": c.recorded.get("speech", {}).get("signature"), "model": c.p.text_model, **c.base,
                        "v": STAGE_VERSION["text"]}),
    "features": (lambda c: [f"{k}.npy" for k in _feature_keys(c)], _sig_features),
}
assert tuple(RECORDS) == STAGES


# ---- one trial -------------------------------------------------------------------------------------------------
class TrialRoute(route.Route):
    """One trial on the route: its rows at t_k = k / fps (N annotation rows), each stage's arrays written to the
    store and recorded in ``meta.json``, a stage skipped when it is not asked for, or when its signature is
    unchanged and its outputs exist (unless ``force``)."""

    def __init__(self, trial, store: Store, cfg: Config, stages: Iterable[str] = STAGES, force: bool = False):
        super().__init__()
        self.trial, self.store, self.cfg, self.stages, self.force = trial, store, cfg, set(stages), force
        self.p = self.asr = cfg.preprocess
        self.video, self.label, self.device = trial.video, trial.name, _asr_device(cfg)
        vinfo = video_info(trial.video) if trial.video is not None else None
        self.fps = float(vinfo.fps) if vinfo is not None else DEFAULT_FPS
        if vinfo is None:
            self.notes.append(f"{trial.name}: no video found; assuming {DEFAULT_FPS} fps, audio silent")
        self.N, self.labels = _trial_length(trial, vinfo)
        if self.N <= 0:
            raise RjcmaError(f"{trial.annotation or trial.name}: no frames to process")
        self.times = np.arange(self.N) / self.fps
        self.faces_dir = trial.faces_dir if trial.faces_dir is not None and Path(trial.faces_dir).is_dir() else None
        self.frame_stride, self.precision = max(1, int(self.p.feature_stride)), precision(cfg)
        self.batch, self.threads = BATCH, ENCODER_THREADS
        self.meta = store.meta_or_empty(trial.name)
        self.recorded: dict[str, Any] = dict(self.meta.get("stages", {}))
        # warnings are recomputed by the stages that run; those of skipped stages are kept
        self.meta["warnings_prev"] = [w for r in self.recorded.values() for w in r.get("warnings", [])]
        self.ran: list[str] = []
        self.skipped: list[str] = []
        self.encs: dict[str, dict[str, Any]] = {}
        self.face_rows = 0
        self.samples = 0
        self._pending: tuple[str, list[str]] = ("", [])

    @property
    def base(self) -> dict[str, Any]:
        return {"N": self.N, "fps": self.fps}

    def run(self) -> None:
        if self.wants("labels"):
            self.run_stage("labels", self.labels_stage)
        super().run()
        self.write_meta()

    def labels_stage(self) -> None:
        arr = self.labels if self.labels is not None else np.full((self.N, 2), np.nan, dtype=np.float32)
        self.store.save(self.label, "labels", np.asarray(arr, dtype=np.float32))

    # ---- skipping and recording ----------------------------------------------------------------------------------
    def wants(self, stage: str) -> bool:
        if stage not in self.stages:
            return False
        outputs, signature = RECORDS[stage]
        sig, out = _sig(signature(self)), outputs(self)
        r = self.recorded.get(stage)
        if not self.force and r is not None and r.get("signature") == sig and all(
                (self.store.trial_dir(self.label) / o).exists() for o in out):
            self.skipped.append(stage)
            return False
        self._pending = (sig, out)
        return True

    def done(self, stage: str, extra: dict[str, Any], notes: list[str], spent: np.ndarray) -> None:
        sig, outputs = self._pending
        self.recorded[stage] = {"signature": sig, "outputs": outputs, "warnings": notes, **extra}
        self.ran.append(stage)
        self.write_meta()

    def write_meta(self) -> None:
        t, name, meta = self.trial, self.label, self.meta
        m = {
            "trial": name, "partition": t.partition, "N": self.N, "fps": self.fps,
            "video": str(t.video) if t.video else None, "video_stem": t.video_stem, "subject": t.subject,
            "sources": {"annotation": _stat(t.annotation), "faces_dir": str(t.faces_dir) if t.faces_dir else None,
                        "video": _stat(t.video)},
            "package_version": __version__,
            "config_hash": {"preprocess": self.cfg.section_hash("preprocess"), "data": self.cfg.section_hash("data")},
            "encoders": meta.get("encoders", {}),
            "stages": self.recorded,
            "warnings": sorted(set(meta.get("warnings_prev", []) + self.notes)),
        }
        m["complete"] = all(s in self.recorded and all((self.store.trial_dir(name) / o).exists()
                                                       for o in self.recorded[s]["outputs"]) for s in STAGES)
        meta.update(m)
        self.store.write_meta(name, {k: v for k, v in meta.items() if k != "warnings_prev"})

    # ---- faces: the video's frames on the grid, fitted to the annotation rows ------------------------------------
    def keep_folder_faces(self, faces: np.ndarray, mask: np.ndarray) -> dict[str, Any]:
        self.store.save(self.label, "faces", faces)
        self.store.save(self.label, "face_mask", mask.astype(bool))
        return {"source": "cropped_aligned", "faces_found": int(mask.sum())}

    def face_times(self) -> np.ndarray:
        self.face_rows = frame_count(self.video)  # the video's own length; the annotation rows are fitted to it
        return np.arange(self.face_rows) / float(self.fps)

    def keep_faces(self, found: FaceStage) -> dict[str, Any]:
        faces, mask, _ = found.trial_faces(self.video, self.label, self.face_rows, int(self.p.face_size))
        reconcile_length(self.N, len(faces), self.video)
        faces, mask = fit_length(faces, self.N), fit_length(mask, self.N)
        self.store.save(self.label, "faces", faces)
        self.store.save(self.label, "face_mask", mask.astype(bool))
        return {"source": f"detected ({found.detector})", "faces_found": int(mask.sum())}

    # ---- audio: decoded once per video ---------------------------------------------------------------------------
    def track(self) -> np.ndarray:
        """16 kHz mono float32 of the trial's video (silence without one), cached as int16 in
        ``_videos/<stem>/audio.npy``; the decoder's warnings become the stage's notes."""
        sr = int(self.p.sample_rate)
        if self.video is None:
            wav = np.zeros(int(self.N / self.fps * sr), np.float32)
        else:
            vdir = self.store.video_dir(self.trial.video_stem)
            sig = _sig({"video": _stat(self.video), "sr": self.p.sample_rate, "v": 2})
            mpath, apath = vdir / "audio.json", vdir / "audio.npy"
            pcm = None
            with contextlib.suppress(OSError, ValueError):
                m = json.loads(mpath.read_text()) if apath.exists() else {}
                if m.get("signature") == sig:
                    pcm = np.load(apath)
                    self.notes.extend(m.get("warnings", []))
            if pcm is None:
                counts = DecodeCounts("audio")
                with warnings.catch_warnings(record=True) as caught:
                    warnings.simplefilter("always")
                    x = load_audio(self.video, self.p.sample_rate, counts=counts)
                w = [str(c.message) for c in caught]
                self.notes.extend(w)
                pcm = np.clip(np.rint(x * 32768.0), -32768, 32767).astype(np.int16)
                atomic_save_npy(apath, pcm)
                atomic_write_json(mpath, {"signature": sig, "samples": int(len(pcm)), "warnings": w,
                                          "decode": counts.as_dict()})
            wav = pcm.astype(np.float32) / 32768.0
        self.samples = len(wav)
        return wav

    def keep_logmel(self, L: np.ndarray) -> dict[str, Any]:
        N, fps, sr = self.N, self.fps, self.p.sample_rate
        if abs(int(round(self.samples / sr * fps)) - N) > max(2, 0.05 * N):
            self.note(f"{self.label}: audio lasts {self.samples / sr:.2f} s but {N} rows at {fps:.3f} fps last "
                      f"{N / fps:.2f} s; tail patches repeat the last one")
        with _open_memmap_atomic(self.store.path(self.label, "logmel"), np.float16, (N, PATCH_FRAMES, NUM_BANDS)) as mm:
            frame_patches(L, fps, N, out=mm)  # patch k at k / fps, exact starts round(k * 100 / fps)
        extra = {"logmel_frames": int(len(L)), "audio_seconds": round(self.samples / sr, 3)}
        if self.video is not None:  # what the decoder skipped (broken packets, concealed frames)
            with contextlib.suppress(OSError, ValueError, KeyError):
                extra["decode"] = json.loads((self.store.video_dir(self.trial.video_stem) / "audio.json"
                                              ).read_text())["decode"]
        return extra

    # ---- words: recognised once per video -----------------------------------------------------------------------
    def transcript(self) -> tuple[list, dict[str, Any]]:
        """The route's transcript of the trial's video, cached in ``_videos/<stem>/words.csv``."""
        p = self.p
        vdir = self.store.video_dir(self.trial.video_stem)
        sig = _sig({"video": _stat(self.video), "asr": p.asr_backend, "asr_model": p.asr_model,
                    "punct": p.punctuation_model, "v": STAGE_VERSION["speech"]})
        mpath, wpath = vdir / "words.json", vdir / "words.csv"
        with contextlib.suppress(OSError, ValueError, RjcmaError):
            m = json.loads(mpath.read_text()) if wpath.exists() else {}
            if m.get("signature") == sig:
                return read_words_csv(wpath), m.get("asr", {})
        if p.asr_backend == "none" or self.video is None:
            words, info = [], {"backend": p.asr_backend}
        else:
            words, info = super().transcript()
        write_words_csv(wpath, list(words))
        atomic_write_json(mpath, {"signature": sig, "asr": info, "n_words": len(words)})
        return list(words), info

    def keep_words(self, words: list, info: dict[str, Any]) -> dict[str, Any]:
        write_words_csv(self.store.path(self.label, "words"), words)
        return {"asr": info, "n_words": len(words)}

    def words(self) -> list:
        return read_words_csv(self.store.path(self.label, "words"))

    def keep_text(self, X_t: np.ndarray) -> dict[str, Any]:
        self.store.save(self.label, "bert", X_t)
        return {"dim": int(X_t.shape[1]), "text_model": self.p.text_model or "default"}

    # ---- features: from the stored faces and patches -------------------------------------------------------------
    def encoder(self, kind: str) -> tuple[Any, int, int]:
        model, info = encoder(kind, self.cfg)
        self.encs[kind] = {"key": feature_key(self.cfg, kind), "name": info.name, "source": info.source,
                           "path": info.path, "sha256": info.sha256, "dim": info.dim, "precision": self.precision,
                           "frame_stride": self.frame_stride}
        return model, info.dim, self.frame_stride

    def rows(self, kind: str, who: Any, rows: np.ndarray) -> np.ndarray:
        arr = self.store.load(self.label, "faces" if kind == "visual" else "logmel")  # memory-mapped
        return arr[rows[0]:rows[-1] + 1][rows - rows[0]]

    def features_out(self, kind: str, who: Any, shape: tuple[int, int]):
        return _open_memmap_atomic(self.store.path(self.label, feature_key(self.cfg, kind)), np.float16, shape)

    def kept_features(self) -> dict[str, Any]:
        self.meta["encoders"] = dict(self.encs)
        return {"encoders": self.meta["encoders"]}


def preprocess_trial(trial, store, cfg, stages: Iterable[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Run the requested stages of one trial, in their order; returns ``{"ran", "skipped", "warnings"}``.

    A stage whose signature is unchanged and whose outputs exist is skipped (unless ``force``). Raises
    :class:`RjcmaError` (naming the file) on bad input; outputs of finished stages stay valid.
    """
    store = store if isinstance(store, Store) else Store(store)
    stages = list(STAGES if stages is None else stages)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RjcmaError(f"unknown stage(s) {bad}; choose from {', '.join(STAGES)}")
    c = TrialRoute(trial, store, cfg, stages, force)
    c.run()
    return {"ran": c.ran, "skipped": c.skipped, "warnings": c.notes}
