"""A trained model ready for `rjcma predict`: the checkpoint, its config and the frozen encoders it was trained on.

Everything that shapes the model's inputs comes from the checkpoint (``model.safetensors`` + ``model.json``): K and
the stride, the modalities, the encoders (the stand-in weights in the training store's ``_encoders/`` or the
pretrained files of ``preprocess.weights_dir``, checked against the SHA-256 recorded in the store's meta.json,
:mod:`rjcma.encoders.frozen`), their precision and frame stride, the text model and the training-set text
statistics. Encoder weights that cannot be found are an error, never a silent substitute.

One exception to "the store's precision": on a CPU without native bf16 (:func:`rjcma.runtime.cpu_bf16`) the encoders
of a bf16 store run in float32, as the store itself would have been made there: bf16 autocast is then emulated and
several times slower, and float32 features change the model's CCC on the demo validation folds by less than 0.01
(``python benchmarks/predict.py --precision-check``; ``benchmarks/RESULTS.md``). ``store_precision`` keeps the
store's.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from rjcma.config import Config, load_config
from rjcma.encoders.frozen import frozen_encoder
from rjcma.errors import RjcmaError
from rjcma.models.rjcma import fusion_modalities
from rjcma.models.text_encoder import load_text_encoder
from rjcma.preprocess import speech
from rjcma.runtime import cpu_bf16
from rjcma.train.results import config_hash, default_checkpoint
from rjcma.train.saved_model import load_model


@dataclass
class ModelBundle:
    """A trained model ready for :func:`predict_video`, with the frozen encoders it was trained on."""

    model: Any
    cfg: Config  # the checkpoint's config (with the user's --set overrides applied)
    checkpoint: Path  # the result folder
    text_stats: dict[str, np.ndarray] | None
    modalities: list[str]
    encoders: dict[str, Any] = field(default_factory=dict)  # "visual"/"audio": nn.Module (cached mode)
    encoder_info: dict[str, dict[str, Any]] = field(default_factory=dict)
    precision: str = "fp32"  # what the encoders run in here
    store_precision: str = "fp32"  # what the training store's features were computed in
    config_hash: str = ""

    @property
    def K(self) -> int:  # noqa: N802 - the paper's symbol
        return int(self.cfg.K)

    @property
    def targets(self) -> list[str]:
        return list(self.cfg.targets)


def resolve_checkpoint(checkpoint: str | Path | None, cfg: Config) -> Path:
    """The result folder of ``checkpoint`` (a folder, its model.safetensors or model.json); without one, the model
    ``make book`` trains (:func:`rjcma.train.results.default_checkpoint`)."""
    if checkpoint in (None, ""):
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


def _checkpoint_config(folder: Path) -> Config:
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


def _quiet_transformers() -> None:
    """No "Loading weights" bars from transformers on stderr (the command prints its own progress)."""
    try:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        hf_logging.set_verbosity_error()
    except Exception:  # noqa: BLE001 - cosmetic only
        pass


def load_bundle(checkpoint: str | Path | None = None, sets: list[str] | None = None, profile: str = "demo",
                cfg: Config | None = None) -> ModelBundle:
    """Load a checkpoint (default: the model ``make book`` trains) and the frozen encoders it was trained on.

    ``sets`` (``key=value``) override the checkpoint's config; an override of K or a width that disagrees with
    the checkpoint is an error naming both values.
    """
    if cfg is None:
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
                bundle.encoders[kind], bundle.encoder_info[kind] = frozen_encoder(kind, mcfg)
                # channels-last convolutions: the same features at the same batch size, VGGish ~2x faster on CPU
                bundle.encoders[kind].to(memory_format=torch.channels_last)
        bundle.store_precision = (bundle.encoder_info.get("visual") or bundle.encoder_info.get("audio") or {}).get(
            "precision", "fp32")
        bundle.precision = "fp32" if bundle.store_precision == "bf16" and not cpu_bf16() else bundle.store_precision
    else:
        for kind in ("visual", "audio"):
            if kind in mods:
                bundle.encoder_info[kind] = {"name": getattr(mcfg.preprocess, f"{kind}_encoder"),
                                             "source": "fine-tuned, inside the checkpoint",
                                             "path": str(folder / "model.safetensors")}
    if "text" in mods:
        _quiet_transformers()

        p = mcfg.preprocess
        speech.resolve_backend(p.asr_backend, p.asr_model, p.weights_dir)  # fail before any work
        te = load_text_encoder(p.text_model, weights_dir=p.weights_dir)
        if te.dim != mcfg.model.text_dim:
            raise RjcmaError(f"{te.model_dir}: text model width {te.dim} but the checkpoint expects "
                             f"{mcfg.model.text_dim}; use the text model it was trained with (preprocess.text_model)")
        bundle.encoder_info["text"] = {"name": te.name, "model_dir": str(te.model_dir), "sha256_16": te.weights_hash(),
                                       "dim": te.dim}
    return bundle


_BUNDLES: dict[tuple, ModelBundle] = {}  # the models this process loaded, for repeated calls


def cached_bundle(checkpoint: str | Path | None = None, sets: list[str] | None = None,
                  profile: str = "demo") -> ModelBundle:
    """:func:`load_bundle` as ``rjcma predict`` calls it (the profile's config, or the plain profile when the
    overrides are meant for the checkpoint's config, where they are checked), loaded once per process."""
    key = (str(checkpoint or ""), tuple(sets or ()), profile)
    if key not in _BUNDLES:
        try:
            cfg = load_config(profile, sets)
        except RjcmaError:
            cfg = load_config(profile)
        _BUNDLES[key] = load_bundle(checkpoint, sets, cfg=cfg)
    return _BUNDLES[key]
