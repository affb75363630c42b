"""`rjcma preprocess`: every trial of a corpus -> the feature store, resumable (paper §4.2.1).

Stages per trial, in the order of :data:`STAGE_TABLE` (``--stages`` picks a subset); each is a row (name, outputs,
signature, run) over a :class:`TrialRun`, and the per-frame work is done by the stage functions prediction shares
(:mod:`rjcma.preprocess.stages`, :mod:`rjcma.preprocess.encoders`) at the frame times t_k = k / fps:

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
sizes and mtimes, upstream signatures) and of the config values it reads; a rerun skips a stage whose signature
is unchanged and whose outputs exist, so an interrupted run resumes where it stopped. A failing trial is
reported and the others go on. Large arrays are written through memory-mapped temporary files, so memory stays
bounded by one trial.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable

import numpy as np

from rjcma.config import Config
from rjcma.errors import RjcmaError

STAGES = ("labels", "faces", "audio", "speech", "text", "features")
STAGE_VERSION = {"labels": 1, "faces": 1, "audio": 1, "speech": 1, "text": 1, "features": 1}
DEFAULT_FPS = 30.0


@dataclass
class Report:
    """Outcome of :func:`preprocess_corpus`: trials done (some stage ran), skipped (all up to date), failed."""

    done: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    warnings: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0
    store: str = ""

    @property
    def ok(self) -> bool:
        return not self.failed

    def __str__(self) -> str:
        s = (f"{len(self.done)} trial(s) processed, {len(self.skipped)} up to date, {len(self.failed)} failed "
             f"in {self.seconds:.1f} s -> {self.store}")
        for name, msg in self.failed.items():
            s += f"\n  FAILED {name}: {msg}"
        return s


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


def _open_memmap_atomic(path: Path, dtype, shape):
    """Context: yields a writable memmap whose file is renamed to ``path`` on success."""
    from numpy.lib.format import open_memmap

    from rjcma.io import atomic_path

    @contextlib.contextmanager
    def cm():
        with atomic_path(path) as tmp:
            mm = open_memmap(tmp, mode="w+", dtype=dtype, shape=tuple(shape))
            try:
                yield mm
                mm.flush()
            finally:
                del mm

    return cm()


def _precision(cfg) -> str:
    from rjcma.preprocess.encoders import precision

    return precision(cfg)


# ---- per-process caches ----------------------------------------------------------------------------------------
def _encoder(kind: str, cfg):
    from rjcma.preprocess.encoders import encoder

    return encoder(kind, cfg)


def _encoder_identity(kind: str, cfg) -> dict[str, Any]:
    """What determines an encoder's weights, known without building it (for skip decisions)."""
    from rjcma.assets import find_asset, search_roots
    from rjcma.models.backbones import ENCODER_FILES

    name = cfg.preprocess.visual_encoder if kind == "visual" else cfg.preprocess.audio_encoder
    if search_roots(cfg.preprocess.weights_dir):  # the file build_*_encoder will load (rjcma.assets rule)
        f = ENCODER_FILES[name]
        found = find_asset(f, cfg.preprocess.weights_dir, "file")
        return {"name": name, "weights": _stat(found) if found else {"path": f, "missing": True}}
    from rjcma.models.backbones import STAND_IN_VERSION

    return {"name": name, "init": cfg.preprocess.encoder_init, "seed": cfg.preprocess.encoder_seed,
            "recipe": STAND_IN_VERSION}


# ---- per-video shared work (audio, words) ----------------------------------------------------------------------
def _video_audio(store, trial, cfg, notes: list[str]) -> np.ndarray:
    """16 kHz mono float32 of the trial's video, cached as int16 in ``_videos/<stem>/audio.npy``."""
    from rjcma.io import atomic_save_npy, atomic_write_json
    from rjcma.preprocess.audio import load_audio

    vdir = store.video_dir(trial.video_stem)
    sig = _sig({"video": _stat(trial.video), "sr": cfg.preprocess.sample_rate, "v": 2})
    mpath, apath = vdir / "audio.json", vdir / "audio.npy"
    if apath.exists() and mpath.exists():
        try:
            m = json.loads(mpath.read_text())
            if m.get("signature") == sig:
                notes.extend(m.get("warnings", []))
                return np.load(apath).astype(np.float32) / 32768.0
        except (OSError, ValueError):
            pass
    from rjcma.preprocess.decode import DecodeCounts

    counts = DecodeCounts("audio")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wav = load_audio(trial.video, cfg.preprocess.sample_rate, counts=counts)
    w = [str(c.message) for c in caught]
    notes.extend(w)
    pcm = np.clip(np.rint(wav * 32768.0), -32768, 32767).astype(np.int16)
    atomic_save_npy(apath, pcm)
    atomic_write_json(mpath, {"signature": sig, "samples": int(len(pcm)), "warnings": w, "decode": counts.as_dict()})
    return pcm.astype(np.float32) / 32768.0


def _video_words(store, trial, cfg, notes: list[str]) -> tuple[list, dict[str, Any]]:
    """Words of the trial's video (ASR once per video, cached in ``_videos/<stem>/words.csv``)."""
    from rjcma.io import atomic_write_json
    from rjcma.preprocess.text import read_words_csv, write_words_csv

    p = cfg.preprocess
    vdir = store.video_dir(trial.video_stem)
    sig = _sig({"video": _stat(trial.video), "asr": p.asr_backend, "asr_model": p.asr_model,
                "punct": p.punctuation_model, "v": STAGE_VERSION["speech"]})
    mpath, wpath = vdir / "words.json", vdir / "words.csv"
    if wpath.exists() and mpath.exists():
        try:
            m = json.loads(mpath.read_text())
            if m.get("signature") == sig:
                return read_words_csv(wpath), m.get("asr", {})
        except (OSError, ValueError, RjcmaError):
            pass
    info: dict[str, Any] = {"backend": p.asr_backend}
    if p.asr_backend == "none" or trial.video is None:
        words: list = []
    else:
        from rjcma.preprocess.stages import transcribe_words

        words, info = transcribe_words(_video_audio(store, trial, cfg, notes), p, _asr_device(cfg))
    write_words_csv(wpath, list(words))
    atomic_write_json(mpath, {"signature": sig, "asr": info, "n_words": len(words)})
    return list(words), info


def _asr_device(cfg) -> str:
    d = cfg.preprocess.preprocess_device
    if d.startswith("cuda"):
        try:
            import torch

            return d if torch.cuda.is_available() else "cpu"
        except ImportError:
            return "cpu"
    return "cpu"


# ---- one trial -------------------------------------------------------------------------------------------------
def _trial_length(trial, fps_info) -> tuple[int, np.ndarray | None]:
    """(N, labels or None). N = annotation rows; test trials: the video's frames (or the highest jpg number)."""
    from rjcma.data.annotations import read_labels

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


@dataclass
class TrialRun:
    """One trial being preprocessed: what every stage reads (trial, store, config, length, frame rate) and what it
    records (``meta.json``'s stage records and warnings)."""

    trial: Any
    store: Any
    cfg: Config
    N: int
    fps: float
    labels: np.ndarray | None
    meta: dict[str, Any]
    recorded: dict[str, Any]
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return self.trial.name

    @property
    def p(self):
        return self.cfg.preprocess

    @property
    def base(self) -> dict[str, Any]:
        return {"N": self.N, "fps": self.fps}

    @property
    def use_folder(self) -> bool:
        return self.trial.faces_dir is not None and Path(self.trial.faces_dir).is_dir()

    def up_to_date(self, stage: str, sig: str, outputs: list[str]) -> bool:
        r = self.recorded.get(stage)
        return (r is not None and r.get("signature") == sig
                and all((self.store.trial_dir(self.name) / o).exists() for o in outputs))

    def record(self, stage: str, sig: str, outputs: list[str], extra: dict[str, Any]) -> None:
        self.recorded[stage] = {"signature": sig, "outputs": outputs, **extra}
        self.write_meta()

    def write_meta(self) -> None:
        import rjcma

        t, name, meta = self.trial, self.name, self.meta
        m = {
            "trial": name, "partition": t.partition, "N": self.N, "fps": self.fps,
            "video": str(t.video) if t.video else None, "video_stem": t.video_stem, "subject": t.subject,
            "sources": {"annotation": _stat(t.annotation), "faces_dir": str(t.faces_dir) if t.faces_dir else None,
                        "video": _stat(t.video)},
            "package_version": rjcma.__version__,
            "config_hash": {"preprocess": self.cfg.section_hash("preprocess"), "data": self.cfg.section_hash("data")},
            "encoders": meta.get("encoders", {}),
            "stages": self.recorded,
            "warnings": sorted(set(meta.get("warnings_prev", []) + self.notes)),
        }
        m["complete"] = all(s in self.recorded and all((self.store.trial_dir(name) / o).exists()
                                                       for o in self.recorded[s]["outputs"]) for s in STAGES)
        meta.update(m)
        self.store.write_meta(name, {k: v for k, v in meta.items() if k != "warnings_prev"})


def open_trial(trial, store, cfg) -> TrialRun:
    """Length and frame rate of a trial (annotation rows; the video's rate) and its meta.json so far."""
    from rjcma.data.video_info import video_info

    vinfo = video_info(trial.video) if trial.video is not None else None
    fps = float(vinfo.fps) if vinfo is not None else DEFAULT_FPS
    notes = [] if vinfo is not None else [f"{trial.name}: no video found; assuming {DEFAULT_FPS} fps, audio silent"]
    N, labels = _trial_length(trial, vinfo)
    if N <= 0:
        raise RjcmaError(f"{trial.annotation or trial.name}: no frames to process")
    meta = store.meta_or_empty(trial.name)
    recorded = dict(meta.get("stages", {}))
    # warnings are recomputed by the stages that run; those of skipped stages are kept
    meta["warnings_prev"] = [w for r in recorded.values() for w in r.get("warnings", [])]
    return TrialRun(trial, store, cfg, N, fps, labels, meta, recorded, notes)


# ---- the stages: what each reads (its signature), writes and does ----------------------------------------------
def _run_labels(c: TrialRun) -> None:
    arr = c.labels if c.labels is not None else np.full((c.N, 2), np.nan, dtype=np.float32)
    c.store.save(c.name, "labels", np.asarray(arr, dtype=np.float32))


def _sig_faces(c: TrialRun) -> dict[str, Any]:
    src = _dir_digest(c.trial.faces_dir) if c.use_folder else _stat(c.trial.video)
    return {"faces": src, "size": c.p.face_size, **c.base, "v": STAGE_VERSION["faces"]}


def _run_faces(c: TrialRun) -> dict[str, Any]:
    from rjcma.data.annotations import fit_length, reconcile_length
    from rjcma.preprocess.stages import face_backend
    from rjcma.preprocess.video import faces_from_folder, faces_from_video

    t, N = c.trial, c.N
    if c.use_folder:
        faces, mask, _ = faces_from_folder(t.faces_dir, N, c.p.face_size)
        source = "cropped_aligned"
    elif t.video is not None:
        faces, mask, _, _ = faces_from_video(t.video, None, c.fps, c.p.face_size, trial=c.name)
        reconcile_length(N, len(faces), t.video)
        faces, mask = fit_length(faces, N), fit_length(mask, N)
        source = f"detected ({face_backend()[0]})"
    else:
        raise RjcmaError(f"{c.name}: neither a cropped_aligned folder nor a video to take faces from")
    c.store.save(c.name, "faces", faces)
    c.store.save(c.name, "face_mask", mask.astype(bool))
    return {"source": source, "faces_found": int(mask.sum())}


def _run_audio(c: TrialRun) -> dict[str, Any]:
    from rjcma.preprocess.audio import PATCH_FRAMES, frame_patches, log_mel

    t, N, fps, sr = c.trial, c.N, c.fps, c.p.sample_rate
    wav = _video_audio(c.store, t, c.cfg, c.notes) if t.video is not None else np.zeros(int(N / fps * sr), np.float32)
    L = log_mel(wav, sr)  # (T, 64)
    if abs(int(round(len(wav) / sr * fps)) - N) > max(2, 0.05 * N):
        c.notes.append(f"{c.name}: audio lasts {len(wav) / sr:.2f} s but {N} rows at {fps:.3f} fps last "
                       f"{N / fps:.2f} s; tail patches repeat the last one")
    with _open_memmap_atomic(c.store.path(c.name, "logmel"), np.float16, (N, PATCH_FRAMES, 64)) as mm:
        frame_patches(L, fps, N, out=mm)  # patch k at k / fps (rjcma.preprocess.audio.patches_at)
    extra = {"logmel_frames": int(len(L)), "audio_seconds": round(len(wav) / sr, 3)}
    if t.video is not None:  # what the decoder skipped (broken packets, concealed frames)
        with contextlib.suppress(OSError, ValueError, KeyError):
            extra["decode"] = json.loads((c.store.video_dir(t.video_stem) / "audio.json").read_text())["decode"]
    return extra


def _run_speech(c: TrialRun) -> dict[str, Any]:
    from rjcma.preprocess.text import write_words_csv

    words, info = _video_words(c.store, c.trial, c.cfg, c.notes)
    write_words_csv(c.store.path(c.name, "words"), words)
    return {"asr": info, "n_words": len(words)}


def _run_text(c: TrialRun) -> dict[str, Any]:
    from rjcma.models.text_encoder import load_text_encoder
    from rjcma.preprocess.stages import words_at
    from rjcma.preprocess.text import read_words_csv, word_features

    p, N = c.p, c.N
    words = read_words_csv(c.store.path(c.name, "words"))
    tenc = load_text_encoder(p.text_model, weights_dir=p.weights_dir, device=_asr_device(c.cfg))
    if words:
        vec = word_features(words, encoder=tenc)
        X_t = words_at(words, vec, np.arange(N) / c.fps)
        dim = int(vec.shape[1])
    else:
        dim = int(tenc.dim)
        X_t = np.zeros((N, dim), np.float32)
        c.notes.append(f"{c.name}: no words recognised; text features are zeros")
    c.store.save(c.name, "bert", X_t.astype(np.float16))
    return {"dim": dim, "text_model": p.text_model or "default"}


def _feature_keys(c: TrialRun) -> tuple[str, str]:
    from rjcma.data.store import feature_key

    return feature_key(c.cfg, "visual"), feature_key(c.cfg, "audio")


def _sig_features(c: TrialRun) -> dict[str, Any]:
    return {"faces": c.recorded.get("faces", {}).get("signature"), "audio": c.recorded.get("audio", {}).get("signature"),
            "visual": _encoder_identity("visual", c.cfg), "audio_enc": _encoder_identity("audio", c.cfg),
            "precision": _precision(c.cfg), "stride": max(1, int(c.p.feature_stride)), **c.base,
            "v": STAGE_VERSION["features"]}


def _run_features(c: TrialRun) -> dict[str, Any]:
    from rjcma.models.backbones import encode_faces, encode_logmel
    from rjcma.preprocess.encoders import encode_rows

    prec, fstride, N = _precision(c.cfg), max(1, int(c.p.feature_stride)), c.N
    encs = {}
    for kind, key, src, fn in zip(("visual", "audio"), _feature_keys(c), ("faces", "logmel"), (encode_faces, encode_logmel)):
        model, info = _encoder(kind, c.cfg)
        arr = c.store.load(c.name, src)  # memory-mapped
        with _open_memmap_atomic(c.store.path(c.name, key), np.float16, (N, info.dim)) as mm:
            encode_rows(model, fn, lambda r: arr[r[0]:r[-1] + 1][r - r[0]], N, info.dim, fstride, prec, out=mm)
        encs[kind] = {"key": key, "name": info.name, "source": info.source, "path": info.path,
                      "sha256": info.sha256, "dim": info.dim, "precision": prec, "frame_stride": fstride}
    c.meta["encoders"] = encs
    return {"encoders": encs}


@dataclass(frozen=True)
class Stage:
    """One row of the stage table: the outputs it writes, the signature of what they depend on (inputs, config
    values, upstream signatures, version), and the function that makes them."""

    name: str
    outputs: Callable[[TrialRun], list[str]]
    signature: Callable[[TrialRun], dict[str, Any]]
    run: Callable[[TrialRun], dict[str, Any] | None]


STAGE_TABLE = (
    Stage("labels", lambda c: ["labels.npy"],
          lambda c: {"ann": _stat(c.trial.annotation), **c.base, "v": STAGE_VERSION["labels"]}, _run_labels),
    Stage("faces", lambda c: ["faces.npy", "face_mask.npy"], _sig_faces, _run_faces),
    Stage("audio", lambda c: ["logmel.npy"],
          lambda c: {"video": _stat(c.trial.video), "sr": c.p.sample_rate, **c.base, "v": STAGE_VERSION["audio"]},
          _run_audio),
    Stage("speech", lambda c: ["words.csv"],
          lambda c: {"video": _stat(c.trial.video), "asr": c.p.asr_backend, "asr_model": c.p.asr_model,
                     "punct": c.p.punctuation_model, "v": STAGE_VERSION["speech"]}, _run_speech),
    Stage("text", lambda c: ["bert.npy"],
          lambda c: {"words": c.recorded.get("speech", {}).get("signature"), "model": c.p.text_model, **c.base,
                     "v": STAGE_VERSION["text"]}, _run_text),
    Stage("features", lambda c: [f"{k}.npy" for k in _feature_keys(c)], _sig_features, _run_features),
)
assert tuple(s.name for s in STAGE_TABLE) == STAGES


def preprocess_trial(trial, store, cfg, stages: Iterable[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Run the requested stages of one trial, in table order; returns ``{"ran", "skipped", "warnings"}``.

    A stage whose signature is unchanged and whose outputs exist is skipped (unless ``force``). Raises
    :class:`RjcmaError` (naming the file) on bad input; outputs of finished stages stay valid.
    """
    from rjcma.data.store import Store

    store = store if isinstance(store, Store) else Store(store)
    stages = list(STAGES if stages is None else stages)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RjcmaError(f"unknown stage(s) {bad}; choose from {', '.join(STAGES)}")
    c = open_trial(trial, store, cfg)
    ran, skipped = [], []
    for st in STAGE_TABLE:
        if st.name not in stages:
            continue
        sig, outputs = _sig(st.signature(c)), st.outputs(c)
        if not force and c.up_to_date(st.name, sig, outputs):
            skipped.append(st.name)
            continue
        before = len(c.notes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            extra = st.run(c) or {}
        c.notes.extend(str(w.message) for w in caught if not issubclass(w.category, (DeprecationWarning, FutureWarning)))
        c.record(st.name, sig, outputs, {"warnings": c.notes[before:], **extra})
        ran.append(st.name)
    c.write_meta()
    return {"ran": ran, "skipped": skipped, "warnings": c.notes}


# ---- corpus ----------------------------------------------------------------------------------------------------
def check_models(cfg, stages: Iterable[str]) -> None:
    """Resolve every model the given stages read (rjcma.assets rule); the first missing one raises its error."""
    from rjcma.models.backbones import weights_file

    p, stages = cfg.preprocess, set(stages)
    if "speech" in stages and p.asr_backend != "none":
        from rjcma.preprocess import speech
        from rjcma.preprocess.punctuation import punctuation_plan

        backend, _ = speech.resolve_backend(p.asr_backend, p.asr_model, p.weights_dir)
        punctuation_plan(p.punctuation_model, p.weights_dir, speech.backend_punctuates(backend))
    if "text" in stages:
        from rjcma.models.text_encoder import resolve_model_dir

        resolve_model_dir(p.text_model, p.weights_dir)
    if "features" in stages:
        weights_file(cfg, p.visual_encoder), weights_file(cfg, p.audio_encoder)


def _parse_shard(shard: str | tuple[int, int] | None) -> tuple[int, int] | None:
    if shard is None or shard == "":
        return None
    if isinstance(shard, tuple):
        i, n = shard
    else:
        try:
            i, n = (int(x) for x in str(shard).split("/"))
        except ValueError:
            raise RjcmaError(f"--shard expects i/n (e.g. 0/4), got {shard!r}") from None
    if not (n >= 1 and 0 <= i < n):
        raise RjcmaError(f"--shard i/n needs 0 <= i < n, got {i}/{n}")
    return i, n


def _parse_stages(stages) -> list[str]:
    if stages is None or stages == "all" or stages == "":
        return list(STAGES)
    if isinstance(stages, str):
        stages = [s.strip() for s in stages.split(",") if s.strip()]
    if "all" in stages:
        return list(STAGES)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RjcmaError(f"unknown stage(s) {', '.join(bad)}; choose from {', '.join(STAGES)}")
    return [s for s in STAGES if s in stages]


def _run_group(cfg_dict: dict, trials: list, stages: list[str], threads: int | None) -> list[tuple[str, str, Any]]:
    """Worker: the trials of one video, in order (they share audio and words). Returns (name, status, payload)."""
    from rjcma.data.store import Store

    if threads:
        import torch

        torch.set_num_threads(threads)
    cfg = Config.from_dict(cfg_dict)
    store = Store(cfg.data.store)
    out = []
    for t in trials:
        try:
            r = preprocess_trial(t, store, cfg, stages)
            out.append((t.name, "done" if r["ran"] else "skipped", r["warnings"]))
        except RjcmaError as e:
            out.append((t.name, "failed", str(e)))
        except Exception as e:  # an unexpected bug in one trial must not stop the corpus
            tb = traceback.format_exc(limit=3).strip().splitlines()[-1]
            out.append((t.name, "failed", f"{type(e).__name__}: {e} ({tb})"))
    return out


def preprocess_corpus(cfg, workers: int | None = None, shard: str | tuple[int, int] | None = None,
                      stages: Iterable[str] | str | None = None, progress: bool = True,
                      trials: Iterable[str] | None = None) -> Report:
    """Preprocess every trial of ``cfg.data.corpus`` into ``cfg.data.store``; see the module docstring."""
    from rjcma.data.abaw import load_corpus
    from rjcma.data.store import Store

    t0 = time.time()
    corpus = load_corpus(cfg)
    store = Store(cfg.data.store)
    store.root.mkdir(parents=True, exist_ok=True)
    stage_list = _parse_stages(stages if stages is not None else cfg.preprocess.stages)
    check_models(cfg, stage_list)  # a missing model stops the run here, once, not in every trial
    sel = list(corpus.trials)
    if trials is not None:
        wanted = set(trials)
        sel = [t for t in sel if t.name in wanted]
    groups: dict[str, list] = {}
    for t in sel:
        groups.setdefault(t.video_stem or t.name, []).append(t)
    keys = sorted(groups)
    sh = _parse_shard(shard)
    if sh is not None:
        keys = [k for j, k in enumerate(keys) if j % sh[1] == sh[0]]
    workers = int(workers if workers is not None else cfg.preprocess.workers) or 1
    report = Report(store=str(store.root))
    n_trials = sum(len(groups[k]) for k in keys)
    bar = _progress(n_trials, progress)

    def collect(results):
        for name, status, payload in results:
            if status == "failed":
                report.failed[name] = payload
            else:
                (report.done if status == "done" else report.skipped).append(name)
                if payload:
                    report.warnings[name] = payload
            bar.update(1)
            bar.set_postfix_str(name[-24:])

    cfg_dict = cfg.to_dict()
    try:
        if workers <= 1 or len(keys) <= 1:
            for k in keys:
                collect(_run_group(cfg_dict, groups[k], stage_list, None))
        else:
            import multiprocessing as mp
            from concurrent.futures import ProcessPoolExecutor, as_completed

            threads = max(1, (os.cpu_count() or 1) // workers)
            if "features" in stage_list:  # build/cache stand-in weights once, before the workers need them
                _encoder("visual", cfg), _encoder("audio", cfg)
            with ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as ex:
                futs = [ex.submit(_run_group, cfg_dict, groups[k], stage_list, threads) for k in keys]
                for f in as_completed(futs):
                    collect(f.result())
    finally:
        bar.close()
    report.done.sort()
    report.skipped.sort()
    report.seconds = time.time() - t0
    return report


class _NoBar:
    def update(self, n=1):
        pass

    def set_postfix_str(self, s):
        pass

    def close(self):
        pass


def _progress(total: int, on: bool):
    if not on:
        return _NoBar()
    from tqdm.auto import tqdm

    return tqdm(total=total, desc="preprocess", unit="trial", dynamic_ncols=True)
