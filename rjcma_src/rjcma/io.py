"""Atomic writes: every output goes to a temporary file beside it, then is renamed into place.

An interrupted run therefore leaves either the old file or the new one, never half of one, and a
rerun can trust any file it finds.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rjcma.errors import RjcmaError

_UMASK = os.umask(0o022)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the destination folder; on success rename it to ``path``."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; outputs follow the umask like any other file
    except OSError as e:
        raise RjcmaError(f"{path.parent}: cannot write here ({e.strerror}); choose a writable output folder") from e
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except OSError as e:
        tmp_path.unlink(missing_ok=True)
        raise RjcmaError(f"{path}: could not be written ({e.strerror}); free space or choose another folder") from e
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())


def atomic_write_text(path: str | Path, text: str) -> None:
    atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=False, default=_json_default) + "\n")


def atomic_save_npy(path: str | Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as f:
            np.save(f, np.ascontiguousarray(array), allow_pickle=False)
            f.flush()
            os.fsync(f.fileno())


def load_npy(path: str | Path, mmap: bool = True) -> np.ndarray:
    """Memory-mapped read of a store array (RAM does not grow with the corpus)."""
    try:
        return np.load(path, mmap_mode="r" if mmap else None, allow_pickle=False)
    except FileNotFoundError as e:
        raise RjcmaError(f"{path}: missing; run `rjcma preprocess` for this corpus first") from e
    except ValueError as e:
        raise RjcmaError(f"{path}: not a valid .npy array ({e}); delete it and rerun `rjcma preprocess`") from e


def _json_default(o: Any) -> Any:
    if isinstance(o, (np.integer,)):
        return int(o)
    if isinstance(o, (np.floating,)):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o)}")


# ---- safetensors files whose bytes depend only on their tensors and metadata -------------------------------------
# ``safetensors.torch.save_file`` writes the metadata from a hash map whose order changes from one process to the
# next, so two runs that computed the same tensors wrote files that differed in their header (and in their SHA-256,
# which the stores record and prediction checks). These write the same header with the metadata keys sorted; the
# tensors' part is safetensors' own (names sorted, the same offsets).
def safetensors_bytes(tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> bytes:
    """The file's bytes: safetensors' serialisation with the ``__metadata__`` keys in sorted order."""
    from safetensors.torch import save

    blob = save(tensors, metadata=metadata)
    n = int.from_bytes(blob[:8], "little")
    header = json.loads(blob[8:8 + n])
    if "__metadata__" in header:
        header["__metadata__"] = dict(sorted(header["__metadata__"].items()))
    text = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    if len(text) > n:  # cannot happen (the same keys and values reordered); keep safetensors' own bytes then
        return blob
    return blob[:8] + text + b" " * (n - len(text)) + blob[8 + n:]


def save_safetensors(tensors: dict[str, Any], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write :func:`safetensors_bytes` to ``path`` (callers make it atomic with :func:`atomic_path`)."""
    Path(path).write_bytes(safetensors_bytes(tensors, metadata))
