"""A trained model on disk: ``model.safetensors`` (the weights) + ``model.json`` (the config, the widths the weights
need, the training trials' text statistics), as every result folder holds them (the book's chapter *Data format*).

Prediction, the test export and the bundle load a model with :func:`load_model`; a config that does not fit the
weights is refused with what differs.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from safetensors.torch import load_file
from torch import nn

from rjcma import __version__
from rjcma.config import Config
from rjcma.errors import RjcmaError
from rjcma.io import atomic_path, atomic_write_json, save_safetensors
from rjcma.train.trainable import build_trainable, unwrap


def model_widths(cfg: Config) -> dict[str, Any]:
    """What the weights' shapes depend on: K, the fusion, the modalities' input and TCN widths, l, the head, the
    targets (and the mode, informative only)."""
    m = cfg.model
    return {
        "K": cfg.K,
        "fusion": m.fusion,
        "modalities": list(m.modalities),
        "dims": {x: m.input_dim(x) for x in m.modalities},
        "tcn": {x: m.tcn_channels(x) for x in m.modalities},
        "num_iterations": m.num_iterations,
        "head_hidden": m.head_hidden,
        "targets": list(cfg.targets),
        "mode": cfg.train.mode,
    }


def save_model(model: nn.Module, cfg: Config, out_dir: str | Path, text_stats: dict | None = None) -> Path:
    """``model.safetensors`` (weights; the same weights give the same bytes) + ``model.json`` (config, widths, text
    statistics), both atomic."""
    out = Path(out_dir)
    state = {k: v.detach().to("cpu").contiguous().clone() for k, v in unwrap(model).state_dict().items()}
    with atomic_path(out / "model.safetensors") as tmp:
        save_safetensors(state, str(tmp), metadata={"format": "pt", "rjcma": __version__})
    info = {
        "rjcma_version": __version__,
        "config": cfg.to_dict(),
        "widths": model_widths(cfg),
        "text_stats": None if text_stats is None else {k: np.asarray(v).tolist() for k, v in text_stats.items()},
    }
    atomic_write_json(out / "model.json", info)
    return out / "model.safetensors"


def load_model(path: str | Path, cfg: Config | None = None) -> tuple[nn.Module, Config, dict | None]:
    """Load ``model.safetensors`` + ``model.json`` (a folder or either file). Returns (model in eval mode, config,
    text statistics). With ``cfg`` given, K and the widths must agree or an RjcmaError says what differs."""
    p = Path(path)
    folder = p if p.is_dir() else p.parent
    wfile, jfile = folder / "model.safetensors", folder / "model.json"
    for f in (wfile, jfile):
        if not f.exists():
            raise RjcmaError(f"{f}: missing; give a result folder written by `rjcma train` (model.safetensors + model.json)")
    info = json.loads(jfile.read_text())
    use = Config.from_dict(info["config"])
    if cfg is not None:
        _check_widths(wfile, cfg, info.get("widths", model_widths(use)))
        use = cfg
    model = build_trainable(use)
    state = load_file(str(wfile))
    _check_weights(wfile, state, model.state_dict())
    model.load_state_dict(state)
    model.eval()
    ts = info.get("text_stats")
    ts = None if ts is None else {k: np.asarray(v, dtype=np.float32) for k, v in ts.items()}
    return model, use, ts


def _check_widths(wfile: Path, cfg: Config, have: dict[str, Any]) -> None:
    want = model_widths(cfg)
    diff = [f"{k}: checkpoint {have.get(k)!r} vs config {want[k]!r}" for k in want if k != "mode" and have.get(k) != want[k]]
    if diff:
        raise RjcmaError(f"{wfile}: checkpoint does not match the config ({'; '.join(diff)}); "
                         "use the matching --profile/--set or another checkpoint")


def _check_weights(wfile: Path, state: dict, own: dict) -> None:
    bad = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in state if k in own and state[k].shape != own[k].shape]
    missing = sorted(set(own) - set(state))
    extra = sorted(set(state) - set(own))
    if bad or missing or extra:
        raise RjcmaError(
            f"{wfile}: weights do not fit the model built from the config (shape differs: {bad[:3]}; "
            f"missing: {missing[:3]}; unexpected: {extra[:3]}); use the config the checkpoint was trained with"
        )
