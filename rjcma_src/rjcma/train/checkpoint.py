"""The training-state checkpoint of a run: everything needed to resume after an interruption (even ``kill -9``).

Written atomically after every epoch (model, best model, optimizer, recipe, RNG states, history); on CPU a resumed
run ends with the same numbers as an uninterrupted one.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

from rjcma.io import atomic_path

STATE_FILE = "train_state.pt"


def _rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), int(np_state[2]), int(np_state[3]),
                  float(np_state[4])],
        "python": json.dumps(random.getstate()),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def _set_rng_state(s: dict[str, Any]) -> None:
    torch.set_rng_state(s["torch"])
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), n[2], n[3], n[4]))
    v = json.loads(s["python"])
    random.setstate((v[0], tuple(v[1]), v[2]))
    if s.get("cuda") and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])


def save_train_state(path: Path, config_hash: str, model_state: dict, best: dict | None, optimizer_state: dict,
                     recipe_state: dict, history: list[dict[str, Any]]) -> None:
    """One atomic ``train_state.pt`` holding the run as it stands after an epoch."""
    state = {
        "config_hash": config_hash,
        "model": {k: v.detach().cpu() for k, v in model_state.items()},
        "best": best or {},
        "optimizer": optimizer_state,
        "recipe": json.dumps(recipe_state),
        "history": json.dumps(history),
        "rng": _rng_state(),
    }
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def load_train_state(path: Path, config_hash: str, log: Callable[[str], None] = print) -> dict[str, Any] | None:
    """The state of ``path`` when it exists, is readable and was written for this config; else None (and why)."""
    if not path.exists():
        return None
    try:
        st = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as ex:  # noqa: BLE001 - a damaged file: start over
        log(f"{path}: unreadable ({ex}); starting this run over")
        return None
    if st.get("config_hash") != config_hash:
        log(f"{path}: written for another config; starting this run over")
        return None
    st["recipe"], st["history"] = json.loads(st["recipe"]), json.loads(st["history"])
    return st


def restore_rng(st: dict[str, Any]) -> None:
    """Put the RNG states saved with :func:`save_train_state` back (data order and augmentation continue as if
    the run had not stopped)."""
    _set_rng_state(st["rng"])
