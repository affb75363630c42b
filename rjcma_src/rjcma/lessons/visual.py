"""The visual chapter (notebook 02_visual): the released loader's pairing of rows and faces, and the exercises'
checks."""

from __future__ import annotations

import numpy as np

from rjcma.lessons.checks import Verdict, check_value


def released_face_rows(valid: np.ndarray) -> np.ndarray:
    """Row → 0-based jpg index as the released loader paired them: the i-th valid row got file i (defect 1)."""
    out = np.full(len(valid), -1)
    rows = np.flatnonzero(valid)
    out[rows] = np.arange(len(rows))
    return out


def check_face_drift(answer: int | None, valid: np.ndarray) -> Verdict:
    """Exercise: rows whose face the released loader took from another frame."""
    got = released_face_rows(np.asarray(valid, bool))
    rows = np.flatnonzero(valid)
    return check_value("rows paired with another frame's face", answer, int((got[rows] != rows).sum()), 0,
                       "every valid row after the first unannotated one")


def check_int8_share(answer: float | None, faces: np.ndarray) -> Verdict:
    """Exercise: share of the stored face pixels above 127 (the ones an int8 array would wrap to negatives)."""
    return check_value("share of pixels above 127", answer, float((np.asarray(faces).astype(np.int16) > 127).mean()),
                       1e-12, "all of them would turn negative as int8")


def first_gap_rows(mask: np.ndarray, around: int = 5, most: int = 36) -> tuple[int, int]:
    """(start, n): the rows to show so that the first run of rows without a face is seen with ``around`` rows on
    each side of it (at most ``most`` rows; from row 0 when every row has a face)."""
    mask = np.asarray(mask, bool)
    missing = np.flatnonzero(~mask)
    if not len(missing):
        return 0, min(len(mask), most)
    first = int(missing[0])
    after = np.flatnonzero(mask[first:])
    last = first + (int(after[0]) - 1 if len(after) else len(mask) - 1 - first)  # the gap's last row
    start = max(0, first - around)
    end = min(len(mask), last + around + 1)
    return start, min(most, end - start)
