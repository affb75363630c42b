"""The per-trial feature store (the book's chapter *Data format*): plain files, written atomically, read memory-mapped.

Layout, per trial ``STORE/<trial>/`` (N = annotation rows)::

    faces.npy       uint8   (N, 48, 48, 3)   face crops (black where no face)
    face_mask.npy   bool    (N,)             True where a face was found
    logmel.npy      float16 (N, 96, 64)      VGGish log-mel patch of each frame
    words.csv                                start,end,word,confidence,punctuated (seconds)
    <encoder>.npy   float16 (N, d)           frozen-encoder features: ir50|resnet50, vggish, bert
    labels.npy      float32 (N, 2)           [valence, arousal], NaN where the annotation is -5 (all NaN for test)
    meta.json                                fps, N, partition, sources, encoders, stage signatures, warnings

Shared by trials of one video: ``STORE/_videos/<video_stem>/`` (16 kHz audio, transcript); stand-in encoder weights:
``STORE/_encoders/``. Reads use ``np.load(mmap_mode="r")`` so memory does not grow with the corpus.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.errors import RjcmaError
from rjcma.config import Config
from rjcma.data.words import read_words_csv
from rjcma.io import atomic_save_npy, atomic_write_json, load_npy

ARRAY_KEYS = ("faces", "face_mask", "logmel", "labels")
TEXT_KEY = "bert"


def feature_key(cfg: Config, modality: str) -> str:
    """Store key of the cached encoder features of ``modality``: "ir50"/"resnet50", "vggish" or "bert"."""
    if modality == "visual":
        return cfg.preprocess.visual_encoder
    if modality == "audio":
        return cfg.preprocess.audio_encoder
    if modality == "text":
        return TEXT_KEY
    raise RjcmaError(f"unknown modality {modality!r}; expected audio, visual or text")


class Store:
    """Feature store rooted at ``root`` (created on first write)."""

    def __init__(self, root: str | Path):
        self.root = Path(root)

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ---- paths -------------------------------------------------------------------------------------------------
    def trial_dir(self, name: str) -> Path:
        if not name or "/" in name or name.startswith((".", "_")):
            raise RjcmaError(f"invalid trial name {name!r}")
        return self.root / name

    def path(self, name: str, key: str) -> Path:
        if key == "words":
            return self.trial_dir(name) / "words.csv"
        if key == "meta":
            return self.trial_dir(name) / "meta.json"
        return self.trial_dir(name) / f"{key}.npy"

    def video_dir(self, stem: str) -> Path:
        return self.root / "_videos" / stem

    def encoders_dir(self) -> Path:
        return self.root / "_encoders"

    # ---- queries -----------------------------------------------------------------------------------------------
    def has(self, name: str, key: str) -> bool:
        return self.path(name, key).exists()

    def meta(self, name: str) -> dict[str, Any]:
        p = self.path(name, "meta")
        if not p.exists():
            raise RjcmaError(f"{p}: missing; run `rjcma preprocess` for this corpus first")
        try:
            return json.loads(p.read_text())
        except json.JSONDecodeError as e:
            raise RjcmaError(f"{p}: not valid JSON ({e}); delete it and rerun `rjcma preprocess`") from e

    def meta_or_empty(self, name: str) -> dict[str, Any]:
        try:
            return self.meta(name)
        except RjcmaError:
            return {}

    def trials(self) -> list[str]:
        """Names of the trials whose preprocessing finished (meta.json says complete), sorted."""
        if not self.root.is_dir():
            return []
        out = []
        for d in sorted(self.root.iterdir()):
            if d.is_dir() and not d.name.startswith(("_", ".")) and (d / "meta.json").exists():
                try:
                    if json.loads((d / "meta.json").read_text()).get("complete"):
                        out.append(d.name)
                except (OSError, json.JSONDecodeError):
                    continue
        return out

    def require_trials(self, names: list[str], what: str) -> None:
        """Raise unless every trial of ``names`` is complete in the store (``what``: "training", "validation")."""
        have = set(self.trials())
        missing = [n for n in names if n not in have]
        if missing:
            raise RjcmaError(
                f"{self.root}: {len(missing)} {what} trial(s) missing or incomplete in the store (e.g. {missing[0]}); "
                "run `rjcma preprocess` with the same --profile first"
            )

    # ---- reads -------------------------------------------------------------------------------------------------
    def load(self, name: str, key: str, mmap: bool = True):
        """Array ``key`` of trial ``name`` (memory-mapped by default); ``key="words"`` gives the word list."""
        if key == "words":
            return read_words_csv(self.path(name, "words"))
        if key == "meta":
            return self.meta(name)
        return load_npy(self.path(name, key), mmap=mmap)

    # ---- writes ------------------------------------------------------------------------------------------------
    def save(self, name: str, key: str, array: np.ndarray) -> Path:
        p = self.path(name, key)
        atomic_save_npy(p, array)
        return p

    def write_meta(self, name: str, meta: dict[str, Any]) -> None:
        atomic_write_json(self.path(name, "meta"), meta)
