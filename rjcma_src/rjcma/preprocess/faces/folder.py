"""Faces from a ``cropped_aligned`` folder: what the Aff-Wild2 organisers ship (paper §4.2.1, visual modality).

Annotation row k is the image ``f"{k+1:05d}.jpg"`` (1-based names, :func:`rjcma.layout.face_file`). The image is
looked up by that name, never as "the k-th file found", so rows whose jpg is missing (no face) stay aligned with
their labels (the released code's defect 1, chapter *Paper vs released code*). A missing or unreadable jpg gives a
black frame and ``mask[k] = False``. Images are resized to 48 x 48 with PIL, as released.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from rjcma.errors import RjcmaError
from rjcma.layout import face_file
from rjcma.preprocess.faces.align import FACE_SIZE


def faces_from_folder(faces_dir: str | Path, n_rows: int, size: int = FACE_SIZE,
                      ) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(faces uint8 (N, size, size, 3), mask bool (N,), warnings) from a cropped_aligned folder."""
    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise RjcmaError(f"{faces_dir}: face folder not found; point --corpus (or data.faces_root) at cropped_aligned/")
    faces = np.zeros((n_rows, size, size, 3), dtype=np.uint8)
    mask = np.zeros(n_rows, dtype=bool)
    bad: list[str] = []
    for k in range(n_rows):
        p = faces_dir / face_file(k)
        if not p.exists():
            continue
        try:
            with Image.open(p) as im:
                im = im.convert("RGB")
                if im.size != (size, size):
                    im = im.resize((size, size))
                faces[k] = np.asarray(im, dtype=np.uint8)
            mask[k] = True
        except Exception:  # truncated / not an image: treated as missing
            bad.append(p.name)
    notes = []
    if bad:
        notes.append(f"{faces_dir}: {len(bad)} unreadable jpg(s) treated as missing faces (first: {bad[0]})")
    extra = _count_beyond(faces_dir, n_rows)
    if extra:
        notes.append(f"{faces_dir}: {extra} jpg(s) numbered beyond the {n_rows} annotation rows were ignored")
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return faces, mask, notes


def _count_beyond(faces_dir: Path, n_rows: int) -> int:
    n = 0
    for p in faces_dir.glob("*.jpg"):
        try:
            if int(p.stem) > n_rows:
                n += 1
        except ValueError:
            pass
    return n
