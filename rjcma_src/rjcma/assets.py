"""Where model files and folders are found: one rule for every model the pipeline reads.

Every model setting (the IR-50 and VGGish checkpoints, ``preprocess.asr_model``, ``preprocess.text_model``,
``preprocess.punctuation_model``) is resolved by :func:`resolve_asset`, in this order:

1. an explicit path: absolute, with a folder part (``models/bert``, ``./bert``) or existing as given;
2. a bare name (``bert-base-uncased``) under ``preprocess.weights_dir``;
3. the same name under ``$RJCMA_WEIGHTS_DIR``.

What is not found stops with one line naming the path(s) searched and where the file is obtained. Nothing is
downloaded at run time.
"""

from __future__ import annotations

import os
from pathlib import Path

from rjcma.errors import MissingAssetError

ENV = "RJCMA_WEIGHTS_DIR"


def is_bare_name(value: str | os.PathLike) -> bool:
    """A single relative path component (``bert-base-uncased``): looked up in the weights folders."""
    p = Path(str(value)).expanduser()
    return bool(str(value)) and not p.is_absolute() and len(p.parts) == 1 and str(value) not in (".", "..")


def search_roots(weights_dir: str | os.PathLike = "") -> list[Path]:
    """The folders a bare name is looked up in: ``weights_dir``, then ``$RJCMA_WEIGHTS_DIR`` (empty ones skipped)."""
    roots = []
    for r in (str(weights_dir or ""), os.environ.get(ENV, "")):
        if r and Path(r).expanduser() not in roots:
            roots.append(Path(r).expanduser())
    return roots


def candidates(value: str | os.PathLike, weights_dir: str | os.PathLike = "") -> list[Path]:
    """Every path :func:`resolve_asset` tries for ``value``, in order."""
    s = str(value or "")
    if not s:
        return []
    p = Path(s).expanduser()
    if not is_bare_name(s):
        return [p]
    under = [r / p for r in search_roots(weights_dir)]
    return ([p] if p.exists() else []) + under


def find_asset(value: str | os.PathLike, weights_dir: str | os.PathLike = "", kind: str = "dir") -> Path | None:
    """The first existing path for ``value`` (a folder for ``kind="dir"``, a file for ``"file"``), or None."""
    ok = Path.is_dir if kind == "dir" else Path.is_file
    for c in candidates(value, weights_dir):
        if ok(c):
            return c
    return None


def resolve_asset(value: str | os.PathLike, weights_dir: str | os.PathLike = "", *, what: str, hint: str,
                  kind: str = "dir", setting: str = "") -> Path:
    """The path of model ``value`` by the rule of this module; else one :class:`MissingAssetError` line saying
    what is missing (``what``), every place searched, the config field to set (``setting``) and where to
    obtain it (``hint``)."""
    found = find_asset(value, weights_dir, kind)
    if found is not None:
        return found
    tried = candidates(value, weights_dir)
    noun = "directory" if kind == "dir" else "file"
    if not tried:
        where = (f"{value!s}: a bare name is looked up under preprocess.weights_dir and ${ENV}, and both are empty"
                 if is_bare_name(value) else f"{value!s}")
        raise MissingAssetError(f"{where}; {what} {noun} not found; {hint}")
    looked = ", ".join(str(t) for t in tried)
    field = f" (set {setting} to a path, or put it under preprocess.weights_dir or ${ENV})" if setting else ""
    raise MissingAssetError(f"{tried[0]}: {what} {noun} not found (looked in: {looked}){field}; {hint}")
