"""`rjcma preprocess`: every trial of a corpus -> the feature store, resumable (paper §4.2.1, DESIGN §3).

Stages per trial, in order (``--stages`` picks a subset):

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

import argparse
import contextlib
import hashlib
import json
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

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
    p = getattr(cfg.preprocess, "encoder_precision", "auto")
    if p != "auto":
        return p
    from rjcma.models.backbones import cpu_bf16

    return "bf16" if cpu_bf16() else "fp32"


# ---- per-process caches ----------------------------------------------------------------------------------------
_ENCODERS: dict[str, Any] = {}


def _encoder(kind: str, cfg):
    from rjcma.models.backbones import build_audio_encoder, build_visual_encoder

    key = f"{kind}|{cfg.data.store}|{cfg.preprocess.visual_encoder}|{cfg.preprocess.audio_encoder}|" \
          f"{cfg.preprocess.encoder_init}|{cfg.preprocess.encoder_seed}|{cfg.preprocess.weights_dir}"
    if key not in _ENCODERS:
        build = build_visual_encoder if kind == "visual" else build_audio_encoder
        _ENCODERS[key] = build(cfg, with_info=True)
    return _ENCODERS[key]


def _encoder_identity(kind: str, cfg) -> dict[str, Any]:
    """What determines an encoder's weights, known without building it (for skip decisions)."""
    from rjcma.models.backbones import IR50_FILE, RESNET50_FILE, VGGISH_FILE, weights_dir

    name = cfg.preprocess.visual_encoder if kind == "visual" else cfg.preprocess.audio_encoder
    wd = weights_dir(cfg)
    if wd:
        f = {"ir50": IR50_FILE, "resnet50": RESNET50_FILE, "vggish": VGGISH_FILE}[name]
        return {"name": name, "weights": _stat(Path(wd) / f)}
    from rjcma.models.backbones import STAND_IN_VERSION

    return {"name": name, "init": cfg.preprocess.encoder_init, "seed": cfg.preprocess.encoder_seed,
            "recipe": STAND_IN_VERSION}


# ---- per-video shared work (audio, words) ----------------------------------------------------------------------
def _video_audio(store, trial, cfg, notes: list[str]) -> np.ndarray:
    """16 kHz mono float32 of the trial's video, cached as int16 in ``_videos/<stem>/audio.npy``."""
    from rjcma.io import atomic_save_npy, atomic_write_json
    from rjcma.preprocess.audio import load_audio

    vdir = store.video_dir(trial.video_stem)
    sig = _sig({"video": _stat(trial.video), "sr": cfg.preprocess.sample_rate, "v": 1})
    mpath, apath = vdir / "audio.json", vdir / "audio.npy"
    if apath.exists() and mpath.exists():
        try:
            m = json.loads(mpath.read_text())
            if m.get("signature") == sig:
                notes.extend(m.get("warnings", []))
                return np.load(apath).astype(np.float32) / 32768.0
        except (OSError, ValueError):
            pass
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        wav = load_audio(trial.video, cfg.preprocess.sample_rate)
    w = [str(c.message) for c in caught]
    notes.extend(w)
    pcm = np.clip(np.rint(wav * 32768.0), -32768, 32767).astype(np.int16)
    atomic_save_npy(apath, pcm)
    atomic_write_json(mpath, {"signature": sig, "samples": int(len(pcm)), "warnings": w})
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
        from rjcma.preprocess import speech

        wav = _video_audio(store, trial, cfg, notes)
        words = speech.transcribe(wav, cfg.preprocess.sample_rate, backend=p.asr_backend, model_dir=p.asr_model,
                                  device=_asr_device(cfg))
        info = {"backend": getattr(words, "backend", p.asr_backend), "model_dir": str(getattr(words, "model_dir", ""))}
        if p.punctuation_model:
            from rjcma.preprocess.punctuation import punctuate

            words = punctuate(words, model_dir=p.punctuation_model)
            info["punctuation_model"] = p.punctuation_model
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
    from rjcma.data.abaw import read_labels

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


def preprocess_trial(trial, store, cfg, stages: Iterable[str] | None = None, force: bool = False) -> dict[str, Any]:
    """Run the requested stages of one trial; returns ``{"ran": [...], "skipped": [...], "warnings": [...]}``.

    Raises :class:`RjcmaError` (naming the file) on bad input; outputs of finished stages stay valid.
    """
    import rjcma
    from rjcma.data.abaw import fit_length, reconcile_length, video_info
    from rjcma.data.store import Store, feature_key

    store = store if isinstance(store, Store) else Store(store)
    stages = list(STAGES if stages is None else stages)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise RjcmaError(f"unknown stage(s) {bad}; choose from {', '.join(STAGES)}")
    name = trial.name
    meta = store.meta_or_empty(name)
    recorded: dict[str, Any] = dict(meta.get("stages", {}))
    notes: list[str] = []
    ran: list[str] = []
    skipped: list[str] = []
    p = cfg.preprocess

    vinfo = video_info(trial.video) if trial.video is not None else None
    fps = float(vinfo.fps) if vinfo is not None else DEFAULT_FPS
    if vinfo is None:
        notes.append(f"{name}: no video found; assuming {DEFAULT_FPS} fps, audio silent")
    N, labels = _trial_length(trial, vinfo)
    if N <= 0:
        raise RjcmaError(f"{trial.annotation or name}: no frames to process")
    base = {"N": N, "fps": fps}

    def up_to_date(stage: str, sig: str, outputs: list[str]) -> bool:
        r = recorded.get(stage)
        return (not force and r is not None and r.get("signature") == sig
                and all((store.trial_dir(name) / o).exists() for o in outputs))

    def record(stage: str, sig: str, outputs: list[str], extra: dict[str, Any] | None = None) -> None:
        recorded[stage] = {"signature": sig, "outputs": outputs, **(extra or {})}
        _write_meta()

    def _write_meta(complete: bool | None = None) -> None:
        m = {
            "trial": name, "partition": trial.partition, "N": N, "fps": fps,
            "video": str(trial.video) if trial.video else None, "video_stem": trial.video_stem,
            "subject": trial.subject,
            "sources": {"annotation": _stat(trial.annotation), "faces_dir": str(trial.faces_dir) if trial.faces_dir else None,
                        "video": _stat(trial.video)},
            "package_version": rjcma.__version__,
            "config_hash": {"preprocess": cfg.section_hash("preprocess"), "data": cfg.section_hash("data")},
            "encoders": meta.get("encoders", {}),
            "stages": recorded,
            "warnings": sorted(set(meta.get("warnings_prev", []) + notes)),
        }
        m["complete"] = all(s in recorded and all((store.trial_dir(name) / o).exists() for o in recorded[s]["outputs"])
                            for s in STAGES)
        meta.update(m)
        store.write_meta(name, {k: v for k, v in meta.items() if k != "warnings_prev"})

    meta["warnings_prev"] = []  # warnings are recomputed by the stages that run; keep those of skipped stages
    for s, r in recorded.items():
        meta["warnings_prev"].extend(r.get("warnings", []))

    def run_stage(stage: str, sig: str, outputs: list[str], fn) -> None:
        if stage not in stages:
            return
        if up_to_date(stage, sig, outputs):
            skipped.append(stage)
            return
        before = len(notes)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            extra = fn() or {}
        notes.extend(str(c.message) for c in caught if not issubclass(c.category, (DeprecationWarning, FutureWarning)))
        record(stage, sig, outputs, {"warnings": notes[before:], **extra})
        ran.append(stage)

    # labels ---------------------------------------------------------------------------------------------------
    def do_labels():
        arr = labels if labels is not None else np.full((N, 2), np.nan, dtype=np.float32)
        store.save(name, "labels", np.asarray(arr, dtype=np.float32))

    run_stage("labels", _sig({"ann": _stat(trial.annotation), **base, "v": STAGE_VERSION["labels"]}), ["labels.npy"], do_labels)

    # faces ----------------------------------------------------------------------------------------------------
    use_folder = trial.faces_dir is not None and Path(trial.faces_dir).is_dir()
    faces_sig = _sig({"faces": _dir_digest(trial.faces_dir) if use_folder else _stat(trial.video), "size": p.face_size,
                      **base, "v": STAGE_VERSION["faces"]})

    def do_faces():
        from rjcma.preprocess.video import faces_from_folder, faces_from_video

        if use_folder:
            faces, mask, _ = faces_from_folder(trial.faces_dir, N, p.face_size)
            source = "cropped_aligned"
        elif trial.video is not None:
            faces, mask, _, ftimes = faces_from_video(trial.video, None, fps, p.face_size)
            reconcile_length(N, len(faces), trial.video)
            faces, mask = fit_length(faces, N), fit_length(mask, N)
            source = "detected (OpenCV Haar cascade)"
        else:
            raise RjcmaError(f"{name}: neither a cropped_aligned folder nor a video to take faces from")
        store.save(name, "faces", faces)
        store.save(name, "face_mask", mask.astype(bool))
        return {"source": source, "faces_found": int(mask.sum())}

    run_stage("faces", faces_sig, ["faces.npy", "face_mask.npy"], do_faces)

    # audio ----------------------------------------------------------------------------------------------------
    audio_sig = _sig({"video": _stat(trial.video), "sr": p.sample_rate, **base, "v": STAGE_VERSION["audio"]})

    def do_audio():
        from rjcma.preprocess.audio import PATCH_FRAMES, frame_patches, log_mel

        if trial.video is not None:
            wav = _video_audio(store, trial, cfg, notes)
        else:
            wav = np.zeros(int(N / fps * p.sample_rate), np.float32)
        L = log_mel(wav, p.sample_rate)  # (T, 64)
        n_audio_frames = int(round(len(wav) / p.sample_rate * fps))
        if abs(n_audio_frames - N) > max(2, 0.05 * N):
            notes.append(f"{name}: audio lasts {len(wav) / p.sample_rate:.2f} s but {N} rows at {fps:.3f} fps last "
                         f"{N / fps:.2f} s; tail patches repeat the last one")
        with _open_memmap_atomic(store.path(name, "logmel"), np.float16, (N, PATCH_FRAMES, 64)) as mm:
            frame_patches(L, fps, N, out=mm)
        return {"logmel_frames": int(len(L)), "audio_seconds": round(len(wav) / p.sample_rate, 3)}

    run_stage("audio", audio_sig, ["logmel.npy"], do_audio)

    # speech ---------------------------------------------------------------------------------------------------
    speech_sig = _sig({"video": _stat(trial.video), "asr": p.asr_backend, "asr_model": p.asr_model,
                       "punct": p.punctuation_model, "v": STAGE_VERSION["speech"]})

    def do_speech():
        from rjcma.preprocess.text import write_words_csv

        words, info = _video_words(store, trial, cfg, notes)
        write_words_csv(store.path(name, "words"), words)
        return {"asr": info, "n_words": len(words)}

    run_stage("speech", speech_sig, ["words.csv"], do_speech)

    # text -----------------------------------------------------------------------------------------------------
    text_sig = _sig({"words": recorded.get("speech", {}).get("signature"), "model": p.text_model, **base,
                     "v": STAGE_VERSION["text"]})

    def do_text():
        from rjcma.preprocess.text import read_words_csv, word_features, words_to_frames

        words = read_words_csv(store.path(name, "words"))
        if words:
            vec = word_features(words, model_dir=p.text_model, device=_asr_device(cfg))
            X_t = words_to_frames(words, vec, fps, N)
            dim = int(vec.shape[1])
        else:
            from rjcma.models.text_encoder import load_text_encoder

            dim = int(load_text_encoder(p.text_model).dim)
            X_t = np.zeros((N, dim), np.float32)
            notes.append(f"{name}: no words recognised; text features are zeros")
        store.save(name, "bert", X_t.astype(np.float16))
        return {"dim": dim, "text_model": p.text_model or "default"}

    run_stage("text", text_sig, ["bert.npy"], do_text)

    # features -------------------------------------------------------------------------------------------------
    vkey, akey = feature_key(cfg, "visual"), feature_key(cfg, "audio")
    prec = _precision(cfg)
    fstride = max(1, int(getattr(p, "feature_stride", 1)))  # encode every fstride-th frame (1 = every frame)
    feat_sig = _sig({"faces": recorded.get("faces", {}).get("signature"), "audio": recorded.get("audio", {}).get("signature"),
                     "visual": _encoder_identity("visual", cfg), "audio_enc": _encoder_identity("audio", cfg),
                     "precision": prec, "stride": fstride, **base, "v": STAGE_VERSION["features"]})

    def do_features():
        import torch

        from rjcma.models.backbones import encode_faces, encode_logmel

        encs = {}
        ctx = torch.autocast("cpu", dtype=torch.bfloat16) if prec == "bf16" else contextlib.nullcontext()
        for kind, key, src, fn in (("visual", vkey, "faces", encode_faces), ("audio", akey, "logmel", encode_logmel)):
            model, info = _encoder(kind, cfg)
            arr = store.load(name, src)  # memory-mapped
            rows = np.arange(N) if fstride == 1 else np.unique(np.r_[np.arange(0, N, fstride), N - 1])
            with _open_memmap_atomic(store.path(name, key), np.float16, (N, info.dim)) as mm:
                for s in range(0, len(rows), 512):
                    r = rows[s:s + 512]
                    with ctx:
                        mm[r] = fn(model, arr[r[0]:r[-1] + 1][r - r[0]]).astype(np.float16)
                if fstride > 1:  # frames between encoded ones: linear interpolation of the features
                    for s in range(0, N, 4096):
                        k = np.arange(s, min(N, s + 4096))
                        j = np.clip(np.searchsorted(rows, k, side="right") - 1, 0, len(rows) - 2)
                        a, b = rows[j], rows[j + 1]
                        w = ((k - a) / np.maximum(b - a, 1))[:, None].astype(np.float32)
                        mm[k] = ((1 - w) * mm[a].astype(np.float32) + w * mm[b].astype(np.float32)).astype(np.float16)
            encs[kind] = {"key": key, "name": info.name, "source": info.source, "path": info.path,
                          "sha256": info.sha256, "dim": info.dim, "precision": prec, "frame_stride": fstride}
        meta["encoders"] = encs
        return {"encoders": encs}

    run_stage("features", feat_sig, [f"{vkey}.npy", f"{akey}.npy"], do_features)

    _write_meta()
    return {"ran": ran, "skipped": skipped, "warnings": notes}


# ---- corpus ----------------------------------------------------------------------------------------------------
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
    from rjcma.config import Config
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


# ---- CLI -------------------------------------------------------------------------------------------------------
def add_preprocess_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--profile", default="demo", help="config profile (demo | paper)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="override a config field")
    p.add_argument("--corpus", default=None, help="corpus root (ABAW layout); default: data.corpus")
    p.add_argument("--store", default=None, help="feature store folder; default: data.store")
    p.add_argument("--workers", type=int, default=None, help="trial-level processes (default: preprocess.workers)")
    p.add_argument("--shard", default=None, help="i/n: process only the i-th of n shards of the videos (job arrays)")
    p.add_argument("--stages", default=None, help=f"comma list from {','.join(STAGES)} (default: all)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")


def run_preprocess(args: argparse.Namespace) -> int:
    from rjcma.config import load_config

    cfg = load_config(args.profile, args.set)
    over = {}
    if args.corpus:
        over["corpus"] = args.corpus
    if args.store:
        over["store"] = args.store
    if over:
        cfg = cfg.replace(**over)
    report = preprocess_corpus(cfg, workers=args.workers, shard=args.shard, stages=args.stages,
                               progress=not args.no_progress)
    print(report)
    n_warn = sum(len(v) for v in report.warnings.values())
    if n_warn:
        print(f"{n_warn} warning(s); see meta.json of each trial")
    return 0 if report.ok else 1
