"""The frozen encoders of a config: released weights or stand-ins, built once per process, and what they are.

* :func:`build_encoder`: the checkpoint of ``preprocess.weights_dir`` (then ``$RJCMA_WEIGHTS_DIR``; the rule of
  :mod:`rjcma.assets`) when a weights folder is set, else the stand-in of ``preprocess.encoder_init``
  (:mod:`rjcma.encoders.standins`), frozen and in eval mode. Stand-ins are made once per machine
  (:func:`stand_in_cache_dir`) and copied into each store's ``_encoders/``, so the store says which weights its
  features come from.
* :func:`encoder`: the same, built once per process (preprocessing workers build each encoder once).
* :func:`identity`: what determines an encoder's weights, known without building it (a stage's signature).
* :func:`precision`: ``preprocess.encoder_precision`` resolved for this machine.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from safetensors import safe_open
from safetensors.torch import load_file
from torch import nn

from rjcma.assets import find_asset, resolve_asset, search_roots
from rjcma.config import Config
from rjcma.encoders.standins import STAND_IN_VERSION, make_stand_in, stand_in_shell
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path, atomic_write_bytes, save_safetensors
from rjcma.models.backbones import (
    ENCODER_DIMS,
    IR50,
    IR50_FILE,
    RESNET50_FILE,
    VGGISH_FILE,
    WHERE,
    ResNet50Face,
    VGGish,
    load_checked,
    load_ir50,
    load_resnet50,
    load_vggish,
)
from rjcma.runtime import encoder_precision

SHELLS = {"ir50": IR50, "resnet50": ResNet50Face, "vggish": VGGish}  # architectures with no weights yet
LOADERS = {"ir50": load_ir50, "resnet50": load_resnet50, "vggish": load_vggish}  # released checkpoint layouts
ENCODER_FILES = {"ir50": IR50_FILE, "resnet50": RESNET50_FILE, "vggish": VGGISH_FILE}


@dataclass
class EncoderInfo:
    name: str  # "ir50" | "resnet50" | "vggish"
    source: str  # "weights" | "seeded" | "synthetic-pretrain"
    path: str  # the checkpoint or the cached stand-in file
    sha256: str
    dim: int
    extra: dict[str, Any] = field(default_factory=dict)


def _known(name: str) -> None:
    if name not in SHELLS:
        raise RjcmaError(f"unknown encoder {name!r}; choose ir50, resnet50 or vggish")


def precision(cfg: Config) -> str:
    """``preprocess.encoder_precision`` of ``cfg`` resolved (:func:`rjcma.runtime.encoder_precision`)."""
    return encoder_precision(cfg.preprocess.encoder_precision)


# ---- hashing -------------------------------------------------------------------------------------------------------
def file_sha256(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


_SHA: dict[tuple[str, int, int], str] = {}


def sha256(path: Path) -> str:
    """SHA-256 of a weights file, cached per process by (path, size, mtime)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _SHA:
        _SHA[key] = file_sha256(path)
    return _SHA[key]


# ---- released weights ------------------------------------------------------------------------------------------------
def weights_file(cfg: Config, name: str) -> Path | None:
    """The checkpoint of encoder ``name`` by the one rule of :mod:`rjcma.assets` (``preprocess.weights_dir``, then
    ``$RJCMA_WEIGHTS_DIR``); None when neither folder is set (the stand-ins). A folder set without the file is an
    error naming every place searched and where the file comes from."""
    _known(name)
    if not search_roots(cfg.preprocess.weights_dir):
        return None
    fname = ENCODER_FILES[name]
    return resolve_asset(fname, cfg.preprocess.weights_dir, kind="file", what=f"{name} weights",
                         hint=f"obtain {WHERE[fname]}")


def load_weights(name: str, cfg: Config) -> tuple[nn.Module, EncoderInfo] | None:
    """Encoder ``name`` from its pretrained checkpoint, frozen and in eval mode; None when no weights folder is set
    (then the demo's stand-ins are used)."""
    p = weights_file(cfg, name)  # MissingAssetError names the file, where it was searched and where to get it
    if p is None:
        return None
    m = LOADERS[name](p)
    for q in m.parameters():
        q.requires_grad_(False)
    m.eval()  # frozen encoders stay in eval mode (the released code let their batch-norm statistics drift)
    return m, EncoderInfo(name, "weights", str(p), file_sha256(p), ENCODER_DIMS[name])


# ---- stand-ins: made once per machine, copied into each store ------------------------------------------------------
def stand_in_cache_dir() -> Path:
    """Per-user cache of stand-in weights (``$RJCMA_CACHE`` or ``~/.cache/rjcma``): made once per machine, then
    copied into each store, so several stores (tests, demo) do not repeat the synthetic pretraining. One folder per
    stand-in recipe version, so two checkouts of different versions on one machine do not overwrite each other's."""
    root = Path(os.environ.get("RJCMA_CACHE") or Path.home() / ".cache" / "rjcma")
    return root / "encoders" / f"v{STAND_IN_VERSION}"


@contextlib.contextmanager
def _cache_lock(cached: Path):
    """An exclusive lock beside a cached stand-in (POSIX ``flock``; none where the cache cannot be written)."""
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(cached.parent / f".{cached.name}.lock", os.O_CREAT | os.O_RDWR, 0o644)
    except OSError:
        yield
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def stand_in_file(store: str | Path, name: str, init: str, seed: int) -> Path:
    """Where a store keeps the stand-in weights its features were computed with."""
    return Path(store) / "_encoders" / f"{name}-{init}-seed{int(seed)}.safetensors"


def _load_stand_in_file(path: Path, name: str) -> nn.Module | None:
    if not path.is_file():
        return None
    try:
        with safe_open(str(path), "pt") as f:
            if (f.metadata() or {}).get("version") != STAND_IN_VERSION:
                return None  # stand-in recipe changed
        sd = load_file(str(path))
        shell = stand_in_shell(name, sd)
        load_checked(shell, sd, path)
        return shell
    except Exception:
        return None


def _stand_in_cached(name: str, cfg: Config) -> tuple[nn.Module, EncoderInfo]:
    init, seed = cfg.preprocess.encoder_init, int(cfg.preprocess.encoder_seed)
    path = stand_in_file(cfg.data.store, name, init, seed)
    cached = stand_in_cache_dir() / path.name
    m = _load_stand_in_file(path, name)
    if m is None:
        # one process pretrains, the others (preprocessing workers, test workers) wait for it and read the cache
        with _cache_lock(cached):
            m = _load_stand_in_file(cached, name)
            if m is not None:
                atomic_write_bytes(path, cached.read_bytes())
            else:
                m = make_stand_in(name, init, seed)
                sd = {k: v.detach().contiguous().clone() for k, v in m.state_dict().items()}
                meta = {"encoder": name, "init": init, "seed": str(seed), "version": STAND_IN_VERSION}
                with atomic_path(path) as tmp:
                    save_safetensors(sd, str(tmp), metadata=meta)  # same weights -> same bytes and SHA-256
                try:  # best effort: a read-only home only costs the next store a re-run of the pretraining
                    atomic_write_bytes(cached, path.read_bytes())
                except Exception:
                    pass
    for p in m.parameters():
        p.requires_grad_(False)
    m.eval()
    return m, EncoderInfo(name, init, str(path), file_sha256(path), ENCODER_DIMS[name])


# ---- building from config ------------------------------------------------------------------------------------------
def build_encoder(name: str, cfg: Config) -> tuple[nn.Module, EncoderInfo]:
    """Encoder ``name``: the checkpoint from the weights folder (:func:`load_weights`), else the stand-in of
    ``preprocess.encoder_init``; frozen, in eval mode."""
    _known(name)
    got = load_weights(name, cfg)
    return got if got is not None else _stand_in_cached(name, cfg)


def build_visual_encoder(cfg: Config, with_info: bool = False):
    """IR-50 (or ResNet-50) for faces: the checkpoint from the weights folder, else the stand-in; frozen, eval mode."""
    m, info = build_encoder(cfg.preprocess.visual_encoder, cfg)
    m.rjcma_info = info  # type: ignore[attr-defined]
    return (m, info) if with_info else m


def build_audio_encoder(cfg: Config, with_info: bool = False):
    """VGGish for log-mel patches: the checkpoint from the weights folder, else the stand-in; frozen, eval mode."""
    m, info = build_encoder(cfg.preprocess.audio_encoder, cfg)
    m.rjcma_info = info  # type: ignore[attr-defined]
    return (m, info) if with_info else m


_BUILT: dict[tuple, Any] = {}


def encoder(kind: str, cfg: Config) -> tuple[nn.Module, EncoderInfo]:
    """(model, EncoderInfo) of the ``kind`` ("visual" | "audio") encoder of ``cfg``, built once per process."""
    p = cfg.preprocess
    key = (kind, cfg.data.store, p.visual_encoder, p.audio_encoder, p.encoder_init, p.encoder_seed, p.weights_dir)
    if key not in _BUILT:
        build = build_visual_encoder if kind == "visual" else build_audio_encoder
        _BUILT[key] = build(cfg, with_info=True)
    return _BUILT[key]


def identity(kind: str, cfg: Config) -> dict[str, Any]:
    """What determines the ``kind`` encoder's weights, known without building it (for skip decisions): the weights
    file :func:`build_encoder` would load (by the rule of :mod:`rjcma.assets`), or the stand-in's recipe."""
    p = cfg.preprocess
    name = p.visual_encoder if kind == "visual" else p.audio_encoder
    if search_roots(p.weights_dir):
        f = ENCODER_FILES[name]
        found = find_asset(f, p.weights_dir, "file")
        if found is None:
            return {"name": name, "weights": {"path": f, "missing": True}}
        st = found.stat()
        return {"name": name, "weights": {"path": str(found), "size": st.st_size, "mtime_ns": st.st_mtime_ns}}
    return {"name": name, "init": p.encoder_init, "seed": p.encoder_seed, "recipe": STAND_IN_VERSION}
