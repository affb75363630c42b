"""`rjcma predict`: valence and arousal for every frame of your own video(s) (paper §3, §4.2.1; DESIGN §1).

A user's video has no ``cropped_aligned`` folder, so it goes through the paper's path with the face *detected*::

    video ──PyAV──► frames ──Haar cascade, smoothed boxes──► 48×48 faces ─┐
          └──────► 16 kHz mono ──VGGish log-mel, one 0.96 s patch per frame─┤── frozen encoders (the ones the
                        └──ASR (default: Whisper tiny.en)──► words ──BERT-family word features──┘   model was trained on)
                                                            ──► K-frame windows ──► trained model ──► merged per frame

* The model and everything that shapes its inputs come from the checkpoint (``model.safetensors`` +
  ``model.json``): K and the stride, the modalities, the encoders (the stand-in weights in the training store's
  ``_encoders/`` or the pretrained files of ``preprocess.weights_dir``, checked against the SHA-256 recorded in the
  store's meta.json), the text model and the training-set text statistics. Encoder weights that cannot be found are
  an error, never a silent substitute.
* Frames follow the decoded stream: row k is the k-th decoded frame at its presentation time (variable frame rate
  safe); the log-mel patch and the word of row k are taken at that time.
* Videos shorter than K are one padded, masked window; longer ones are cut into windows of K with the checkpoint's
  stride (the last aligned to the end) and merged back per frame (:func:`rjcma.data.windows.merge_windows`).
* Outputs per video ``<stem>``: ``<stem>.csv`` (frame, time_s, valence, arousal), ``<stem>.png`` (both over time and
  the trajectory in the valence–arousal plane), ``<stem>.json`` (summary, encoders/ASR used, warnings, timings).
  The three files are written atomically together: a failure leaves none of them behind.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.errors import MissingAssetError, RjcmaError

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv", ".wmv", ".3gp", ".ts",
                  ".mts", ".ogv")
STAGES = ("decode+faces", "audio+logmel", "asr", "text", "encoders", "model")
BATCH_WINDOWS = 8  # windows per model call


# ---- the model bundle -------------------------------------------------------------------------------------------
@dataclass
class ModelBundle:
    """A trained model ready for :func:`predict_video`, with the frozen encoders it was trained on."""

    model: Any
    cfg: Any  # the checkpoint's config (with the user's --set overrides applied)
    checkpoint: Path  # the result folder
    text_stats: dict[str, np.ndarray] | None
    modalities: list[str]
    encoders: dict[str, Any] = field(default_factory=dict)  # "visual"/"audio": nn.Module (cached mode)
    encoder_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    precision: str = "fp32"
    config_hash: str = ""

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        return int(self.cfg.K)

    @property
    def targets(self) -> list[str]:
        return list(self.cfg.targets)


def resolve_checkpoint(checkpoint: str | Path | None, cfg: Any) -> Path:
    """The result folder of ``checkpoint`` (a folder, its model.safetensors or model.json); without one, the model
    ``make book`` trains (:func:`rjcma.train.commands.default_checkpoint`)."""
    if checkpoint in (None, ""):
        from rjcma.train.commands import default_checkpoint

        d = default_checkpoint(cfg)
        if not (d / "model.safetensors").is_file() or not (d / "model.json").is_file():
            raise RjcmaError(
                f"{d}: no trained model yet; run `make book` (or `rjcma cv --profile {cfg.profile}`) first, "
                "or pass --checkpoint RESULT_FOLDER"
            )
        return d
    p = Path(checkpoint)
    if not p.exists():
        raise RjcmaError(f"{p}: checkpoint not found; pass a result folder written by `rjcma train`/`rjcma cv`")
    if p.is_file() and p.suffix in (".pth", ".pt", ".bin", ".ckpt", ".pkl"):
        raise RjcmaError(
            f"{p}: not an rjcma checkpoint (rjcma models are a result folder with model.safetensors + model.json; "
            "pickled .pth files are never loaded here); pass a folder written by `rjcma train`/`rjcma cv`"
        )
    folder = p if p.is_dir() else p.parent
    for f in ("model.safetensors", "model.json"):
        if not (folder / f).is_file():
            raise RjcmaError(
                f"{folder / f}: missing; a checkpoint is a result folder of `rjcma train`/`rjcma cv` holding "
                "model.safetensors and model.json"
            )
    return folder


def _checkpoint_config(folder: Path):
    from rjcma.config import Config

    jfile = folder / "model.json"
    try:
        info = json.loads(jfile.read_text())
        return info, Config.from_dict(info["config"])
    except RjcmaError as e:
        raise RjcmaError(f"{jfile}: not an rjcma model description ({e}); pass a result folder of `rjcma train`") from e
    except (ValueError, KeyError, TypeError, OSError) as e:
        raise RjcmaError(
            f"{jfile}: not an rjcma model description ({type(e).__name__}: {str(e)[:120]}); "
            "pass a result folder of `rjcma train`/`rjcma cv`"
        ) from e


def _store_encoder_record(store_root: Path, kind: str) -> dict[str, Any] | None:
    """What the training store's meta.json records about the ``kind`` encoder (first complete trial)."""
    from rjcma.data.store import Store

    st = Store(store_root)
    for name in st.trials():
        rec = st.meta_or_empty(name).get("encoders", {}).get(kind)
        if rec:
            return rec
    return None


_SHA: dict[tuple[str, int, int], str] = {}


def _no_init():
    """Skip the random initialisation of a module whose every weight is loaded right after (saves seconds)."""
    import contextlib

    import torch

    @contextlib.contextmanager
    def cm():
        saved = {n: getattr(torch.nn.init, n) for n in ("kaiming_uniform_", "uniform_", "normal_", "kaiming_normal_")}
        try:
            for n in saved:
                setattr(torch.nn.init, n, lambda t, *a, **k: t)
            yield
        finally:
            for n, f in saved.items():
                setattr(torch.nn.init, n, f)

    return cm()


def _sha256(path: Path) -> str:
    """SHA-256 of a weights file, cached per process by (path, size, mtime)."""
    from rjcma.models.backbones import file_sha256

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        _SHA[key] = file_sha256(path)
    return _SHA[key]


_ENCODERS: dict[tuple, tuple[Any, dict[str, Any]]] = {}


def _load_frozen_encoder(kind: str, mcfg: Any) -> tuple[Any, dict[str, Any]]:
    """The frozen encoder the cached features of the checkpoint were computed with; never rebuilt silently.
    Stand-ins are cached per process by file and content (several predictions in one session load them once)."""
    from safetensors.torch import load_file

    from rjcma.models import backbones as bb

    name = mcfg.preprocess.visual_encoder if kind == "visual" else mcfg.preprocess.audio_encoder
    store_root = Path(mcfg.data.store)
    record = _store_encoder_record(store_root, kind)
    wd = bb.weights_dir(mcfg)
    if wd:
        fname = {"ir50": bb.IR50_FILE, "resnet50": bb.RESNET50_FILE, "vggish": bb.VGGISH_FILE}[name]
        path = Path(wd) / fname
        loader = {"ir50": bb.load_ir50, "resnet50": bb.load_resnet50, "vggish": bb.load_vggish}[name]
        model = loader(path)  # MissingAssetError names the file and where to obtain it
        source = "weights"
    else:
        init, seed = mcfg.preprocess.encoder_init, int(mcfg.preprocess.encoder_seed)
        path = store_root / "_encoders" / f"{name}-{init}-seed{seed}.safetensors"
        if not path.is_file():
            raise MissingAssetError(
                f"{path}: the stand-in {name} weights the model was trained on are missing; rerun `rjcma preprocess` "
                f"with the checkpoint's profile (it rebuilds them in {store_root}/_encoders/), or point "
                "--set store=... at the training store"
            )
        source = init
        key = (str(path.resolve()), _sha256(path))
        if key in _ENCODERS:
            model = _ENCODERS[key][0]
        else:
            builder = {"ir50": bb.IR50, "resnet50": bb.ResNet50Face, "vggish": bb.VGGish}[name]
            with _no_init():
                model = builder()
            try:
                bb.load_checked(model, load_file(str(path)), path)
            except RjcmaError:
                raise
            except Exception as e:  # noqa: BLE001 - a damaged safetensors file
                raise RjcmaError(f"{path}: unreadable encoder weights ({type(e).__name__}); rerun `rjcma preprocess`") from e
            _ENCODERS[key] = (model, {})
    sha = _sha256(path)
    if record is not None and record.get("sha256") and record["sha256"] != sha:
        raise RjcmaError(
            f"{path}: these {name} weights (sha256 {sha[:12]}) are not the ones the store's features were computed "
            f"with ({record['sha256'][:12]}); restore the original file or retrain on a store made with this one"
        )
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    info = {"name": name, "source": source, "path": str(path), "sha256": sha, "dim": bb.ENCODER_DIMS[name],
            "verified_against_store": record is not None}
    return model, info


def _precision(mcfg: Any) -> str:
    rec = _store_encoder_record(Path(mcfg.data.store), "visual") or {}
    if rec.get("precision") in ("fp32", "bf16"):
        return str(rec["precision"])
    try:
        from rjcma.preprocess.pipeline import _precision as pipeline_precision

        return pipeline_precision(mcfg)
    except Exception:  # noqa: BLE001
        return "fp32"


def _quiet_transformers() -> None:
    """No "Loading weights" bars from transformers on stderr (the command prints its own progress)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


def load_bundle(checkpoint: str | Path | None = None, sets: list[str] | None = None, profile: str = "demo",
                cfg: Any | None = None) -> ModelBundle:
    """Load a checkpoint (default: the model ``make book`` trains) and the frozen encoders it was trained on.

    ``sets`` (``key=value``) override the checkpoint's config; an override of K or a width that disagrees with
    the checkpoint is an error naming both values.
    """
    import torch

    from rjcma.models.rjcma import fusion_modalities
    from rjcma.train.loop import config_hash, load_model

    if cfg is None:
        from rjcma.config import load_config

        cfg = load_config(profile, sets)
    folder = resolve_checkpoint(checkpoint, cfg)
    _, saved = _checkpoint_config(folder)
    try:
        want = saved.with_sets(sets) if sets else saved
    except RjcmaError as e:
        raise RjcmaError(f"{folder / 'model.json'}: the --set overrides do not fit this checkpoint ({e})") from e
    try:
        model, mcfg, text_stats = load_model(folder, want)
    except RjcmaError:
        raise
    except Exception as e:  # noqa: BLE001 - corrupt safetensors, foreign files
        raise RjcmaError(
            f"{folder / 'model.safetensors'}: not a loadable rjcma checkpoint ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:120] if str(e) else ''}); pass a result folder of `rjcma train`/`rjcma cv`"
        ) from e
    model.to(torch.device("cpu")).eval()
    mods = fusion_modalities(mcfg)
    if "text" in mods and text_stats is None:
        raise RjcmaError(f"{folder / 'model.json'}: no training text statistics recorded; retrain with `rjcma train`")
    bundle = ModelBundle(model=model, cfg=mcfg, checkpoint=folder, text_stats=text_stats, modalities=mods,
                         config_hash=config_hash(mcfg))
    if mcfg.train.mode == "cached":
        for kind in ("visual", "audio"):
            if kind in mods:
                enc, info = _load_frozen_encoder(kind, mcfg)
                bundle.encoders[kind] = enc
                bundle.encoder_info[kind] = info
        bundle.precision = _precision(mcfg)
    else:
        for kind in ("visual", "audio"):
            if kind in mods:
                bundle.encoder_info[kind] = {"name": getattr(mcfg.preprocess, f"{kind}_encoder"),
                                             "source": "fine-tuned, inside the checkpoint",
                                             "path": str(folder / "model.safetensors")}
    if "text" in mods:
        from rjcma.models.text_encoder import load_text_encoder
        from rjcma.preprocess import speech

        _quiet_transformers()

        speech.resolve_backend(mcfg.preprocess.asr_backend, mcfg.preprocess.asr_model)  # fail before any work
        te = load_text_encoder(mcfg.preprocess.text_model, weights_dir=mcfg.preprocess.weights_dir)
        if te.dim != mcfg.model.text_dim:
            raise RjcmaError(f"{te.model_dir}: text model width {te.dim} but the checkpoint expects "
                             f"{mcfg.model.text_dim}; use the text model it was trained with (preprocess.text_model)")
        bundle.encoder_info["text"] = {"name": te.name, "model_dir": str(te.model_dir), "sha256_16": te.weights_hash(),
                                       "dim": te.dim}
    return bundle


# ---- per-video stages ---------------------------------------------------------------------------------------------
@dataclass
class PredictionResult:
    """Per-frame predictions of one video and what produced them."""

    video: Path
    times: np.ndarray  # (N,) seconds, presentation time of each decoded frame
    pred: np.ndarray  # (N, 2) [valence, arousal], NaN for a target the model does not predict
    face_mask: np.ndarray  # (N,) bool
    words: list
    summary: dict[str, Any]
    warnings: list[str]
    timings: dict[str, float]

    @property
    def stem(self) -> str:
        return self.video.stem

    @property
    def valence(self) -> np.ndarray:
        return self.pred[:, 0]

    @property
    def arousal(self) -> np.ndarray:
        return self.pred[:, 1]

    def csv_text(self) -> str:
        lines = ["frame,time_s,valence,arousal"]
        for k in range(len(self.times)):
            v, a = self.pred[k]
            lines.append(f"{k},{self.times[k]:.4f},{'' if np.isnan(v) else f'{v:.6f}'},"
                         f"{'' if np.isnan(a) else f'{a:.6f}'}")
        return "\n".join(lines) + "\n"

    def figure(self, dpi: int = 110):
        from rjcma.plots import prediction_figure

        return prediction_figure(self.times, self.pred, face_mask=self.face_mask, title=self.video.name, dpi=dpi)

    def png_bytes(self, dpi: int = 110) -> bytes:
        import matplotlib.pyplot as plt

        fig = self.figure(dpi)
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=dpi)
        plt.close(fig)
        return buf.getvalue()

    def json_text(self) -> str:
        return json.dumps(self.summary, indent=2, default=_json_default) + "\n"


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return None if np.isnan(o) else float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    return str(o)


def _short(e: BaseException) -> str:
    s = str(e).splitlines()[0][:160] if str(e) else ""
    return f"{type(e).__name__}: {s}" if s else type(e).__name__


def check_video_file(path: Path) -> None:
    """Cheap checks before decoding: exists, is a file, not empty."""
    if not path.exists():
        raise RjcmaError(f"{path}: not found; give a video file or a folder of videos")
    if not path.is_file():
        raise RjcmaError(f"{path}: not a regular file; give a video file or a folder of videos")
    if path.stat().st_size == 0:
        raise RjcmaError(f"{path}: empty file (0 bytes); copy the video again")


def _probe(path: Path) -> dict[str, Any]:
    """Container facts (PyAV) with one-line errors for non-videos and unreadable codecs."""
    import av

    try:
        c = av.open(str(path))
    except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError etc.
        why = _short(e).replace(f": '{path}'", "").replace(f" '{path}'", "")
        raise RjcmaError(f"{path}: not a readable video ({why}); check that the file is a complete video") from e
    with c:
        if not c.streams.video:
            raise RjcmaError(f"{path}: has no video stream; give a video file")
        s = c.streams.video[0]
        cc = s.codec_context
        codec = getattr(cc, "name", None) if cc is not None else None
        if cc is None or not codec:
            raise RjcmaError(f"{path}: video codec cannot be decoded by this FFmpeg build; re-encode it "
                             "(e.g. `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`)")
        rate = s.average_rate or s.guessed_rate or s.base_rate
        duration = float(c.duration) / 1e6 if c.duration else (float(s.duration * s.time_base) if s.duration and
                                                                 s.time_base else None)
        return {"codec": codec, "container_fps": float(rate) if rate else None, "width": int(cc.width or 0),
                "height": int(cc.height or 0), "has_audio": bool(c.streams.audio), "container_duration_s": duration,
                "container_frames": int(s.frames or 0)}


DETECT_EVERY = 2  # the Haar cascade runs on every 2nd frame; boxes in between are interpolated (bridged)


def detect_faces(path: Path, size: int = 48, detect_every: int = DETECT_EVERY
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(faces uint8 (N, size, size, 3), mask (N,), times (N,)) for every decoded frame: Haar cascade detection on
    every ``detect_every``-th frame, boxes smoothed over time and gaps between detections bridged
    (:mod:`rjcma.preprocess.video`). Two passes, so memory does not grow with the resolution."""
    from rjcma.preprocess.video import HaarDetector, crop_square, iter_frames, smooth_boxes, square_box

    det = HaarDetector()
    every = max(1, int(detect_every))
    times, boxes, found = [], [], []
    for i, (t, rgb) in enumerate(iter_frames(path)):
        b = det(rgb) if i % every == 0 else None
        times.append(t)
        found.append(b is not None)
        boxes.append(square_box(b) if b is not None else np.zeros(3))
    n = len(times)
    sboxes, valid = smooth_boxes(np.asarray(boxes).reshape(n, 3), np.asarray(found, bool), max_gap=max(3, 2 * every))
    last_tried = (n - 1) - (n - 1) % every  # frames after the last attempt keep its box
    if valid[last_tried]:
        sboxes[last_tried + 1:], valid[last_tried + 1:] = sboxes[last_tried], True
    faces = np.zeros((n, size, size, 3), np.uint8)
    if valid.any():
        for i, (_, rgb) in enumerate(iter_frames(path)):
            if i >= n:
                break
            if valid[i]:
                faces[i] = crop_square(rgb, sboxes[i], size)
    t = np.asarray(times, np.float64)
    return faces, valid.copy(), t - t[0]


def frame_times_only(path: Path) -> np.ndarray:
    """Presentation times of every decoded frame (when faces are not needed)."""
    from rjcma.preprocess.video import iter_frames

    t = np.asarray([t for t, _ in iter_frames(path)], np.float64)
    return t - t[0]


def patches_at(log_mel: np.ndarray, times: np.ndarray) -> np.ndarray:
    """(N, 96, 64) VGGish patches starting at each frame time (patch k covers [t_k, t_k + 0.96 s]); as
    :func:`rjcma.preprocess.audio.frame_patches`, with times from the stream instead of k / fps."""
    from rjcma.preprocess.audio import FRAMES_PER_SECOND, LOG_OFFSET, NUM_BANDS, PATCH_FRAMES

    L = np.asarray(log_mel, np.float32)
    if L.shape[0] < PATCH_FRAMES:
        L = np.concatenate([L, np.full((PATCH_FRAMES - L.shape[0], NUM_BANDS), np.log(LOG_OFFSET), np.float32)])
    starts = np.minimum(np.rint(np.asarray(times) * FRAMES_PER_SECOND).astype(np.int64), L.shape[0] - PATCH_FRAMES)
    win = np.lib.stride_tricks.sliding_window_view(L, PATCH_FRAMES, axis=0)  # (T-95, 64, 96)
    return np.ascontiguousarray(win[np.maximum(starts, 0)].transpose(0, 2, 1))


def words_at(words: list, vectors: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Frame k at time t_k takes the vector of the first word with start < t_k ≤ end, zeros elsewhere (as
    :func:`rjcma.preprocess.text.words_to_frames`, with the stream's frame times)."""
    out = np.zeros((len(times), vectors.shape[1]), np.float32)
    taken = np.zeros(len(times), bool)
    for i, w in enumerate(words):
        sel = (times > w.start) & (times <= w.end) & ~taken
        out[sel] = vectors[i]
        taken |= sel
    return out


def _encode(kind: str, bundle: ModelBundle, x: np.ndarray) -> np.ndarray:
    import contextlib

    import torch

    from rjcma.models.backbones import encode_faces, encode_logmel

    fn = encode_faces if kind == "visual" else encode_logmel
    ctx = torch.autocast("cpu", dtype=torch.bfloat16) if bundle.precision == "bf16" else contextlib.nullcontext()
    out = []
    for s in range(0, len(x), 512):  # as the preprocessing: blocks of 512 frames, stored as float16
        with ctx:
            out.append(fn(bundle.encoders[kind], x[s:s + 512]).astype(np.float16))
    return np.concatenate(out).astype(np.float32)


def run_model(bundle: ModelBundle, inputs: dict[str, np.ndarray], n: int) -> tuple[np.ndarray, int]:
    """Windows of K (stride from the checkpoint), the model, merged per frame → ((n, n_targets), windows)."""
    import torch

    from rjcma.data.windows import merge_windows, take_window, window_starts

    K = bundle.K
    starts = window_starts(n, K, int(bundle.cfg.data.stride))
    preds = []
    with torch.inference_mode():
        for b in range(0, len(starts), BATCH_WINDOWS):
            batch: dict[str, list[np.ndarray]] = {k: [] for k in inputs}
            for s in starts[b:b + BATCH_WINDOWS]:
                for k, arr in inputs.items():
                    batch[k].append(take_window(arr, s, K)[0])  # zeros after the end (padding)
            tens = {k: torch.from_numpy(np.stack(v)) for k, v in batch.items()}
            preds.extend(bundle.model(tens)["pred"].float().numpy())  # (B, K, n_targets)
    return merge_windows(preds, starts, n, K), len(starts)


def predict_video(path: str | Path, model_bundle: ModelBundle, cfg: Any | None = None) -> PredictionResult:
    """Score one video with a loaded :class:`ModelBundle`; see the module docstring.

    ``cfg`` (default: the bundle's) supplies the run-time settings only (``preprocess.asr_backend``,
    ``asr_model``, ``punctuation_model``, ``device``); everything that shapes the model's inputs comes from the
    checkpoint. Expected failures raise :class:`RjcmaError` naming the file.
    """
    from rjcma import __version__
    from rjcma.preprocess.audio import load_audio, log_mel

    b = model_bundle
    mcfg = b.cfg
    rcfg = cfg if cfg is not None else mcfg
    path = Path(path)
    check_video_file(path)
    info = _probe(path)
    notes: list[str] = []
    timings = {s: 0.0 for s in STAGES}
    mods = b.modalities
    need_faces = "visual" in mods
    need_audio = "audio" in mods or "text" in mods

    def caught(ws) -> None:
        for w in ws:
            if issubclass(w.category, (DeprecationWarning, FutureWarning)):
                continue
            msg = str(w.message)
            if msg not in notes:
                notes.append(msg)

    # decode + faces ---------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        if need_faces:
            faces, face_mask, times = detect_faces(path, mcfg.preprocess.face_size)
        else:
            times = frame_times_only(path)
            faces, face_mask = None, np.zeros(len(times), bool)
    caught(ws)
    n = len(times)
    if need_faces and not face_mask.any():
        notes.append(f"{path}: no face found in any frame; scored from audio and text (faces are black and masked)")
    elif need_faces and face_mask.mean() < 0.999:
        notes.append(f"{path}: a face was found in {face_mask.mean():.0%} of the frames; the others are black")
    if n > 2:
        dt = np.diff(times)
        if dt.min() > 0 and dt.max() > 1.5 * dt.min():
            notes.append(f"{path}: variable frame rate (frame gaps {dt.min() * 1000:.1f}-{dt.max() * 1000:.1f} ms); "
                         "rows follow the decoded frames and their presentation times")
    duration = float(times[-1] + (np.median(np.diff(times)) if n > 1 else 1.0 / (info["container_fps"] or 25.0)))
    if duration < 1.0:
        notes.append(f"{path}: very short video ({duration:.2f} s, {n} frames); one window padded to K={b.K}")
    timings["decode+faces"] = time.perf_counter() - t0

    # audio + log-mel --------------------------------------------------------------------------------------------
    sr = int(mcfg.preprocess.sample_rate)
    wav = np.zeros(0, np.float32)
    L = None
    if need_audio:
        t0 = time.perf_counter()
        with warnings.catch_warnings(record=True) as ws:
            warnings.simplefilter("always")
            wav = load_audio(path, sr, duration=duration)
        caught(ws)
        if wav.size and float(np.max(np.abs(wav))) < 1e-4:
            notes.append(f"{path}: the audio track is silent")
        L = log_mel(wav, sr)  # (T, 64)
        timings["audio+logmel"] = time.perf_counter() - t0

    # speech -----------------------------------------------------------------------------------------------------
    words: list = []
    asr: dict[str, Any] = {"backend": "not needed"}
    if "text" in mods:
        from rjcma.preprocess import speech

        t0 = time.perf_counter()
        p = rcfg.preprocess
        tr = speech.transcribe(wav, sr, backend=p.asr_backend, model_dir=p.asr_model, device="cpu")
        asr = {"backend": getattr(tr, "backend", p.asr_backend), "model_dir": str(getattr(tr, "model_dir", ""))}
        words = list(tr)
        if p.punctuation_model and words:
            from rjcma.preprocess.punctuation import punctuate

            words = list(punctuate(tr, model_dir=p.punctuation_model))
            asr["punctuation_model"] = p.punctuation_model
        if not words:
            notes.append(f"{path}: no words recognised; text features are zeros")
        timings["asr"] = time.perf_counter() - t0

    # text features ----------------------------------------------------------------------------------------------
    inputs: dict[str, np.ndarray] = {}
    if "text" in mods:
        from rjcma.models.text_encoder import load_text_encoder
        from rjcma.preprocess.text import word_features

        t0 = time.perf_counter()
        te = load_text_encoder(mcfg.preprocess.text_model, weights_dir=mcfg.preprocess.weights_dir)
        vec = word_features(words, encoder=te) if words else np.zeros((0, te.dim), np.float32)
        X_t = words_at(words, vec, times).astype(np.float16).astype(np.float32)  # (N, d_t), stored as float16
        X_t = (X_t - b.text_stats["mean"]) / b.text_stats["std"]  # training statistics (paper §4.2.2)
        inputs["text"] = X_t.astype(np.float32)
        timings["text"] = time.perf_counter() - t0

    # encoders ---------------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    if "visual" in mods:
        if mcfg.train.mode == "cached":
            inputs["visual"] = _encode("visual", b, faces)  # (N, d_v)
        else:
            from rjcma.preprocess.video import faces_to_tensor

            inputs["faces"] = faces_to_tensor(faces).numpy()  # (N, 3, 40, 40), centre crop (eval transform)
    if "audio" in mods:
        logmel = patches_at(L, times).astype(np.float16)  # (N, 96, 64), stored as float16
        if mcfg.train.mode == "cached":
            inputs["audio"] = _encode("audio", b, logmel)  # (N, d_a)
        else:
            inputs["logmel"] = logmel.astype(np.float32)[:, None]  # (N, 1, 96, 64)
    timings["encoders"] = time.perf_counter() - t0

    # model ------------------------------------------------------------------------------------------------------
    t0 = time.perf_counter()
    merged, n_windows = run_model(b, inputs, n)
    pred = np.full((n, 2), np.nan, np.float32)
    for j, t in enumerate(b.targets):
        pred[:, {"valence": 0, "arousal": 1}[t]] = merged[:, j]
    timings["model"] = time.perf_counter() - t0

    def stats(x: np.ndarray) -> dict[str, float | None]:
        if np.isnan(x).all():
            return {"mean": None, "std": None, "min": None, "max": None}
        return {"mean": float(np.nanmean(x)), "std": float(np.nanstd(x)), "min": float(np.nanmin(x)),
                "max": float(np.nanmax(x))}

    summary = {
        "video": str(path),
        "size_bytes": path.stat().st_size,
        "frames": n,
        "duration_s": round(duration, 4),
        "mean_fps": round((n - 1) / float(times[-1]), 4) if n > 1 and times[-1] > 0 else None,
        **info,
        "faces_found": int(face_mask.sum()),
        "faces_fraction": round(float(face_mask.mean()), 4) if n else 0.0,
        "words": len(words),
        "transcript": " ".join(getattr(w, "text", str(w)) for w in words)[:2000],
        "asr": asr,
        "encoders": b.encoder_info,
        "encoder_precision": b.precision if mcfg.train.mode == "cached" else "fp32",
        "checkpoint": str(b.checkpoint),
        "config_hash": b.config_hash,
        "model": {"fusion": mcfg.model.fusion, "modalities": list(mods), "targets": b.targets, "K": b.K,
                  "stride": int(mcfg.data.stride), "windows": n_windows, "mode": mcfg.train.mode},
        "valence": stats(pred[:, 0]),
        "arousal": stats(pred[:, 1]),
        "warnings": notes,
        "seconds": {k: round(v, 3) for k, v in timings.items()},
        "rjcma_version": __version__,
    }
    return PredictionResult(path, times, pred, face_mask, words, summary, notes, timings)


# ---- outputs --------------------------------------------------------------------------------------------------------
def output_paths(out_dir: Path, stem: str) -> dict[str, Path]:
    return {k: out_dir / f"{stem}.{k}" for k in ("csv", "png", "json")}


def write_outputs(result: PredictionResult, out_dir: str | Path, dpi: int = 110) -> dict[str, Path]:
    """``<stem>.csv/.png/.json`` in ``out_dir``, all or none: each is written atomically (rjcma.io) and, if any
    write fails, the files of this video written by this call are removed again."""
    from rjcma.io import atomic_write_bytes

    out_dir = Path(out_dir)
    paths = output_paths(out_dir, result.stem)
    blobs = {"csv": result.csv_text().encode(), "png": result.png_bytes(dpi), "json": result.json_text().encode()}
    existed = {k: p.exists() for k, p in paths.items()}
    written: list[str] = []
    try:
        for k in ("csv", "png", "json"):
            atomic_write_bytes(paths[k], blobs[k])
            written.append(k)
    except BaseException:
        for k in written:
            if not existed[k]:
                paths[k].unlink(missing_ok=True)
        raise
    return paths


def check_output_dir(out: Path) -> None:
    """Create ``out`` and make sure files can be written there (before any work is done)."""
    import tempfile

    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RjcmaError(f"{out}: cannot create the output folder ({e.strerror}); choose a writable --out") from e
    if not out.is_dir():
        raise RjcmaError(f"{out}: exists and is not a folder; choose another --out")
    try:
        fd, tmp = tempfile.mkstemp(prefix=".rjcma-write-test.", dir=out)
        os.close(fd)
        os.unlink(tmp)
    except OSError as e:
        raise RjcmaError(f"{out}: cannot write here ({e.strerror}); choose a writable --out") from e


def collect_videos(items: list[str]) -> list[Path]:
    """Video files from paths and folders (folders: every file with a video suffix, recursively, sorted)."""
    out: list[Path] = []
    for it in items:
        p = Path(it)
        if not p.exists():
            raise RjcmaError(f"{p}: not found; give a video file or a folder of videos")
        if p.is_dir():
            found = sorted(q for q in p.rglob("*") if q.is_file() and q.suffix.lower() in VIDEO_SUFFIXES)
            if not found:
                raise RjcmaError(f"{p}: no video files ({', '.join(VIDEO_SUFFIXES[:5])}, ...) in this folder")
            out += found
        else:
            out.append(p)
    seen: dict[str, Path] = {}
    for p in out:
        if p.stem in seen and seen[p.stem].resolve() != p.resolve():
            raise RjcmaError(f"{p}: same name as {seen[p.stem]} (outputs are <stem>.csv); score them into "
                             "different --out folders")
        seen[p.stem] = p
    return list(dict.fromkeys(out))


def predict_many(videos: list[Path], bundle: ModelBundle, out_dir: Path, cfg: Any | None = None, dpi: int = 110,
                 progress: bool = True, debug: bool = False, log=print) -> tuple[list[Path], dict[str, str]]:
    """Score ``videos`` into ``out_dir``; returns (videos done, {video: error line})."""
    from tqdm.auto import tqdm

    done: list[Path] = []
    failed: dict[str, str] = {}
    bar = tqdm(videos, desc="predict", unit="video", disable=not progress, dynamic_ncols=True)
    for v in bar:
        bar.set_postfix_str(v.name[-30:])
        try:
            res = predict_video(v, bundle, cfg)
            write_outputs(res, out_dir, dpi)
            done.append(v)
            for w in res.warnings:
                log(f"warning: {w}")
        except RjcmaError as e:
            if debug or len(videos) == 1:
                raise
            failed[str(v)] = str(e)
        except Exception as e:  # noqa: BLE001 - any other failure of one video: one line, naming it
            if debug:
                raise
            err = RjcmaError(f"{v}: could not be scored ({_short(e)}); rerun with --debug for the details")
            if len(videos) == 1:
                raise err from e
            failed[str(v)] = str(err)
    bar.close()
    return done, failed


# ---- CLI ------------------------------------------------------------------------------------------------------------
def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("videos", nargs="+", metavar="VIDEO", help="video file(s) or folder(s) of videos")
    p.add_argument("--checkpoint", default=None,
                   help="result folder (or its model.safetensors) of `rjcma train`/`rjcma cv`; default: the model "
                        "`make book` trains")
    p.add_argument("--out", required=True, help="output folder for <stem>.csv, <stem>.png, <stem>.json")
    p.add_argument("--profile", default="demo", help="config profile (locates the default checkpoint)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a config field of the checkpoint (e.g. asr_model=DIR); K and widths must agree")
    p.add_argument("--dpi", type=int, default=None, help="figure resolution (default: book.figure_dpi)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def run_predict(args: argparse.Namespace) -> int:
    from rjcma.config import load_config

    debug = bool(getattr(args, "debug", False))
    try:
        cfg = load_config(args.profile, args.set)
    except RjcmaError:  # the overrides are meant for the checkpoint's config (checked there, naming the file)
        cfg = load_config(args.profile)
    videos = collect_videos(args.videos)
    for v in videos:  # cheap checks first: a typo fails before the model loads
        check_video_file(v)
    if len(videos) == 1:
        _probe(videos[0])  # not a video / unreadable codec: say so before loading the model
    out = Path(args.out)
    check_output_dir(out)
    try:
        bundle = load_bundle(args.checkpoint, args.set, cfg=cfg)
    except RjcmaError:
        raise
    except Exception as e:  # noqa: BLE001
        if debug:
            raise
        raise RjcmaError(f"{args.checkpoint or 'default checkpoint'}: could not be loaded ({_short(e)}); "
                         "rerun with --debug for the details") from e
    dpi = args.dpi or int(cfg.book.figure_dpi)
    done, failed = predict_many(videos, bundle, out, None, dpi=dpi, progress=not args.quiet, debug=debug,
                                log=lambda s: print(s, file=sys.stderr))
    for v in done:
        print(f"{v} -> {out / (v.stem + '.csv')}")
    for msg in failed.values():
        print(f"rjcma predict: error: {msg}", file=sys.stderr)
    if failed:
        print(f"rjcma predict: {len(failed)} of {len(videos)} video(s) failed; the others are in {out}",
              file=sys.stderr)
        return 2
    return 0
