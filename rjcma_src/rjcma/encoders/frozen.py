"""The frozen encoders a checkpoint was trained with (cached mode): exactly those its store's features came from.

Prediction must encode a new video with the weights, precision and frame stride of the training store, or the
model reads features it never saw. :func:`frozen_encoder` loads the released weights of ``preprocess.weights_dir``
or the stand-in file in the store's ``_encoders/``, checked against the SHA-256 recorded in that store's
``meta.json``: never a silent substitute.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file

from rjcma.config import Config
from rjcma.data.store import Store
from rjcma.encoders.build import LOADERS, precision, sha256, stand_in_file, weights_file
from rjcma.encoders.standins import stand_in_shell
from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.models.backbones import ENCODER_DIMS, load_checked


def store_encoder_record(store_root: Path, kind: str) -> dict[str, Any] | None:
    """What the training store's meta.json records about the ``kind`` encoder (first trial that has it)."""
    st = Store(store_root)
    for name in st.trials():
        rec = st.meta_or_empty(name).get("encoders", {}).get(kind)
        if rec:
            return rec
    return None


@contextlib.contextmanager
def _no_init():
    """Skip the random initialisation of a module whose every weight is loaded right after (saves seconds)."""
    saved = {n: getattr(torch.nn.init, n) for n in ("kaiming_uniform_", "uniform_", "normal_", "kaiming_normal_")}
    try:
        for n in saved:
            setattr(torch.nn.init, n, lambda t, *a, **k: t)
        yield
    finally:
        for n, f in saved.items():
            setattr(torch.nn.init, n, f)


_LOADED: dict[tuple, Any] = {}


def _stand_in(name: str, mcfg: Config) -> tuple[torch.nn.Module, Path]:
    """The stand-in file of the checkpoint's store, loaded once per process."""
    store_root = Path(mcfg.data.store)
    path = stand_in_file(store_root, name, mcfg.preprocess.encoder_init, mcfg.preprocess.encoder_seed)
    if not path.is_file():
        raise MissingAssetError(
            f"{path}: the stand-in {name} weights the model was trained on are missing; rerun `rjcma preprocess` "
            f"with the checkpoint's profile (it rebuilds them in {store_root}/_encoders/), or point "
            "--set store=... at the training store")
    key = (str(path.resolve()), sha256(path))
    if key not in _LOADED:
        try:
            sd = load_file(str(path))
            with _no_init():
                shell = stand_in_shell(name, sd)
            load_checked(shell, sd, path)
        except RjcmaError:
            raise
        except Exception as e:  # noqa: BLE001 - a damaged safetensors file
            raise RjcmaError(f"{path}: unreadable encoder weights ({type(e).__name__}); rerun `rjcma preprocess`"
                             ) from e
        _LOADED[key] = shell
    return _LOADED[key], path


def frozen_encoder(kind: str, mcfg: Config) -> tuple[Any, dict[str, Any]]:
    """The frozen ``kind`` encoder a checkpoint's cached features were computed with, and what it is."""
    name = mcfg.preprocess.visual_encoder if kind == "visual" else mcfg.preprocess.audio_encoder
    record = store_encoder_record(Path(mcfg.data.store), kind)
    path = weights_file(mcfg, name)  # MissingAssetError names the file and where to obtain it
    if path is not None:
        model, source = LOADERS[name](path), "weights"
    else:
        (model, path), source = _stand_in(name, mcfg), mcfg.preprocess.encoder_init
    sha = sha256(Path(path))
    if record is not None and record.get("sha256") and record["sha256"] != sha:
        raise RjcmaError(
            f"{path}: these {name} weights (sha256 {sha[:12]}) are not the ones the store's features were computed "
            f"with ({record['sha256'][:12]}); restore the original file or retrain on a store made with this one")
    for p in model.parameters():
        p.requires_grad_(False)
    model.eval()
    info = {"name": name, "source": source, "path": str(path), "sha256": sha, "dim": ENCODER_DIMS[name],
            "verified_against_store": record is not None,
            "precision": (record or {}).get("precision") or precision(mcfg),
            "frame_stride": int((record or {}).get("frame_stride") or mcfg.preprocess.feature_stride)}
    return model, info
