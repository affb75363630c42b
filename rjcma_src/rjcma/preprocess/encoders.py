"""The frozen encoders of the cached mode: loading, caching, precision, hashing and strided encoding, in one place.

Preprocessing builds the encoders of its config (the weights of ``preprocess.weights_dir`` or the offline
stand-ins, :mod:`rjcma.models.backbones`); prediction loads exactly the ones a checkpoint's store was made with,
checked against the SHA-256 recorded in that store's ``meta.json`` (never a silent substitute). Both encode with
:func:`encode_rows`: every ``feature_stride``-th row (and the last) in blocks of 512, in the store's precision,
stored as float16, the rows between encoded ones linearly interpolated.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.runtime import autocast, encoder_precision, fixed_threads

BLOCK = 512  # rows per encoder call
# torch threads of the frozen encoders in preprocessing: IR-50's and VGGish's bf16 kernels round a few features
# differently with 1 and 2 threads (a float16 step in ~1 % of VGGish values), so the store's bytes would depend on
# the worker count; trial-level workers (preprocess.workers) use the other cores
ENCODER_THREADS = 1


def precision(cfg) -> str:
    """``preprocess.encoder_precision`` of ``cfg`` resolved (:func:`rjcma.runtime.encoder_precision`)."""
    return encoder_precision(cfg.preprocess.encoder_precision)


# ---- hashing -------------------------------------------------------------------------------------------------------
_SHA: dict[tuple[str, int, int], str] = {}


def sha256(path: Path) -> str:
    """SHA-256 of a weights file, cached per process by (path, size, mtime)."""
    from rjcma.models.backbones import file_sha256

    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        _SHA[key] = file_sha256(path)
    return _SHA[key]


# ---- preprocessing: the encoders of a config -----------------------------------------------------------------------
_BUILT: dict[str, Any] = {}


def encoder(kind: str, cfg):
    """(model, EncoderInfo) of the ``kind`` ("visual" | "audio") encoder of ``cfg``, built once per process."""
    from rjcma.preprocess.standins import build_audio_encoder, build_visual_encoder

    p = cfg.preprocess
    key = f"{kind}|{cfg.data.store}|{p.visual_encoder}|{p.audio_encoder}|{p.encoder_init}|{p.encoder_seed}|{p.weights_dir}"
    if key not in _BUILT:
        build = build_visual_encoder if kind == "visual" else build_audio_encoder
        _BUILT[key] = build(cfg, with_info=True)
    return _BUILT[key]


# ---- prediction: exactly the encoders a store was made with ------------------------------------------------------
def store_encoder_record(store_root: Path, kind: str) -> dict[str, Any] | None:
    """What the training store's meta.json records about the ``kind`` encoder (first trial that has it)."""
    from rjcma.data.store import Store

    st = Store(store_root)
    for name in st.trials():
        rec = st.meta_or_empty(name).get("encoders", {}).get(kind)
        if rec:
            return rec
    return None


def _no_init():
    """Skip the random initialisation of a module whose every weight is loaded right after (saves seconds)."""
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


_LOADED: dict[tuple, Any] = {}


def frozen_encoder(kind: str, mcfg) -> tuple[Any, dict[str, Any]]:
    """The frozen ``kind`` encoder a checkpoint's cached features were computed with, and what it is."""
    from safetensors.torch import load_file

    from rjcma.models import backbones as bb

    name = mcfg.preprocess.visual_encoder if kind == "visual" else mcfg.preprocess.audio_encoder
    store_root = Path(mcfg.data.store)
    record = store_encoder_record(store_root, kind)
    path = bb.weights_file(mcfg, name)  # MissingAssetError names the file and where to obtain it
    if path is not None:
        model = {"ir50": bb.load_ir50, "resnet50": bb.load_resnet50, "vggish": bb.load_vggish}[name](path)
        source = "weights"
    else:
        init, seed = mcfg.preprocess.encoder_init, int(mcfg.preprocess.encoder_seed)
        path = store_root / "_encoders" / f"{name}-{init}-seed{seed}.safetensors"
        if not path.is_file():
            raise MissingAssetError(
                f"{path}: the stand-in {name} weights the model was trained on are missing; rerun `rjcma preprocess` "
                f"with the checkpoint's profile (it rebuilds them in {store_root}/_encoders/), or point "
                "--set store=... at the training store")
        source = init
        key = (str(path.resolve()), sha256(path))
        if key not in _LOADED:
            with _no_init():
                shell = {"ir50": bb.IR50, "resnet50": bb.ResNet50Face, "vggish": bb.VGGish}[name]()
            try:
                bb.load_checked(shell, load_file(str(path)), path)
            except RjcmaError:
                raise
            except Exception as e:  # noqa: BLE001 - a damaged safetensors file
                raise RjcmaError(f"{path}: unreadable encoder weights ({type(e).__name__}); rerun `rjcma preprocess`"
                                 ) from e
            _LOADED[key] = shell
        model = _LOADED[key]
    sha = sha256(Path(path))
    if record is not None and record.get("sha256") and record["sha256"] != sha:
        raise RjcmaError(
            f"{path}: these {name} weights (sha256 {sha[:12]}) are not the ones the store's features were computed "
            f"with ({record['sha256'][:12]}); restore the original file or retrain on a store made with this one")
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    info = {"name": name, "source": source, "path": str(path), "sha256": sha, "dim": bb.ENCODER_DIMS[name],
            "verified_against_store": record is not None,
            "precision": (record or {}).get("precision") or precision(mcfg),
            "frame_stride": int((record or {}).get("frame_stride") or mcfg.preprocess.feature_stride)}
    return model, info


# ---- encoding --------------------------------------------------------------------------------------------------------
def encoded_rows(n: int, stride: int) -> np.ndarray:
    """Rows the encoder sees: every ``stride``-th and the last."""
    return np.arange(n) if stride <= 1 else np.unique(np.r_[np.arange(0, n, stride), n - 1])


def encode_rows(model, fn: Callable, get: Callable[[np.ndarray], np.ndarray], n: int, dim: int, stride: int = 1,
                prec: str = "fp32", out: np.ndarray | None = None, threads: int = ENCODER_THREADS) -> np.ndarray:
    """(n, dim) float16 features: ``fn(model, get(rows))`` on the rows of :func:`encoded_rows` in blocks of
    :data:`BLOCK`; rows in between linearly interpolated. ``get`` returns the inputs of the given rows (a slice of a
    memory-mapped store array, or patches cut on demand), so only one block is in memory at a time. ``out`` may be a
    preallocated (memory-mapped) float16 array. ``threads``: torch threads of the encoder calls (default
    :data:`ENCODER_THREADS`; 0 = the process's, as prediction runs them)."""
    out = np.empty((n, dim), np.float16) if out is None else out
    rows = encoded_rows(n, stride)
    for s in range(0, len(rows), BLOCK):
        r = rows[s:s + BLOCK]
        with autocast(prec), fixed_threads(threads):
            out[r] = fn(model, get(r)).astype(np.float16)
    if len(rows) < n:  # frames between encoded ones: linear interpolation of the features
        for s in range(0, n, 4096):
            k = np.arange(s, min(n, s + 4096))
            j = np.clip(np.searchsorted(rows, k, side="right") - 1, 0, len(rows) - 2)
            a, b = rows[j], rows[j + 1]
            w = ((k - a) / np.maximum(b - a, 1))[:, None].astype(np.float32)
            out[k] = ((1 - w) * out[a].astype(np.float32) + w * out[b].astype(np.float32)).astype(np.float16)
    return out
