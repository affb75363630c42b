"""safetensors files whose bytes depend only on their tensors and metadata.

``safetensors.torch.save_file`` writes the metadata from a hash map whose order changes from one process to the
next, so two runs that computed the same tensors wrote files that differed in their header (and in their
SHA-256, which the stores record and prediction checks). :func:`save_file` writes the same header with the
metadata keys sorted; the tensors' part is safetensors' own (names sorted, the same offsets).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def to_bytes(tensors: dict[str, Any], metadata: dict[str, str] | None = None) -> bytes:
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


def save_file(tensors: dict[str, Any], path: str | Path, metadata: dict[str, str] | None = None) -> None:
    """Write :func:`to_bytes` to ``path`` (callers make it atomic with :func:`rjcma.io.atomic_path`)."""
    Path(path).write_bytes(to_bytes(tensors, metadata))
