"""Annotation files of the ABAW valence-arousal track (paper §4.1; the book's chapter *Data format*), and the rule
that their rows are the reference length of a trial.

* :func:`read_labels` — one file ``<trial>.txt``: header ``valence,arousal``, then one row per frame; parsed strictly,
  ``-5`` (not annotated) becomes NaN.
* :func:`count_label_rows` — the number of frame rows, without parsing the numbers.
* :func:`reconcile_length`, :func:`fit_length` — annotation rows are the reference length (as in the ABAW
  evaluation); decoded frames, audio and features are fitted to it, and a larger gap than tolerated is an error.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from rjcma.errors import RjcmaError
from rjcma.layout import HEADER, UNANNOTATED

_NUMBER = re.compile(rb"^\s*[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?\s*$")


def read_labels(path: str | Path) -> np.ndarray:
    """Read one annotation file → float32 (N, 2) [valence, arousal], NaN where the file says −5.

    Strict: the header must be ``valence,arousal``; every following line must hold exactly two numbers in
    [−1, 1] or −5. Any other content raises one :class:`RjcmaError` ``"<file>:<line>: <what is wrong>"``.
    The common (valid) case is parsed in a few vectorised passes over the file's bytes; only a file that
    fails them is re-read line by line to name the first bad line.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise RjcmaError(f"{path}: annotation file not found") from None
    except OSError as e:
        raise RjcmaError(f"{path}: cannot read the annotation file ({e.strerror})") from None
    if data.startswith(b"\xef\xbb\xbf"):  # UTF-8 byte-order mark
        data = data[3:]
    if b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    if not data.strip():
        raise RjcmaError(f"{path}:1: empty file; expected the header '{HEADER}' and one row per frame")
    cut = data.find(b"\n")
    header, body = (data, b"") if cut < 0 else (data[:cut], data[cut + 1 :])
    _check_header(path, header)
    body = body.rstrip()  # trailing newline(s) and blank lines at the very end are tolerated
    if not body:
        raise RjcmaError(f"{path}:2: no frame rows after the header; expected one 'valence,arousal' row per frame")
    values = _parse_fast(body)
    if values is None:
        values = _parse_slow(path, body)  # raises at the first bad line
    values = values.reshape(-1, 2)
    ok = ((values >= -1.0) & (values <= 1.0)) | (values == UNANNOTATED)
    if not ok.all():
        row, col = map(int, np.argwhere(~ok)[0])
        name = ("valence", "arousal")[col]
        raise RjcmaError(
            f"{path}:{row + 2}: {name} {values[row, col]:g} is outside [-1, 1] and is not -5 (the unannotated marker)"
        )
    values[values == UNANNOTATED] = np.nan
    return values.astype(np.float32)


def _check_header(path: Path, header: bytes) -> None:
    got = header.decode("utf-8", errors="replace").strip()
    if got.replace(" ", "").lower() != HEADER:
        raise RjcmaError(f"{path}:1: wrong header {got[:60]!r}; expected '{HEADER}'")


def _parse_fast(body: bytes) -> np.ndarray | None:
    """Vectorised parse of the rows; None when anything is off (the slow path then names the line)."""
    raw = np.frombuffer(body, dtype=np.uint8)
    # two cells per line: the separators must read comma, newline, comma, newline, ..., comma
    sep = raw[np.flatnonzero((raw == 44) | (raw == 10))]
    if sep.size % 2 == 0 or not (np.all(sep[0::2] == 44) and np.all(sep[1::2] == 10)):
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy reports unparsable text as a (Deprecation)Warning
        try:
            values = np.fromstring(body.replace(b"\n", b","), dtype=np.float64, sep=",")
        except (ValueError, Warning):
            return None
    if values.size != sep.size + 1:  # an empty last cell ("0.5,") is skipped by fromstring
        return None
    return values


def _parse_slow(path: Path, body: bytes) -> np.ndarray:
    """Line by line: the values, or an RjcmaError naming the first bad line."""
    values = []
    for i, line in enumerate(body.split(b"\n")):
        lineno = i + 2
        text = line.decode("utf-8", errors="replace")
        cells = line.split(b",")
        if not line.strip():
            raise RjcmaError(f"{path}:{lineno}: empty line; expected 'valence,arousal' numbers")
        if len(cells) != 2:
            raise RjcmaError(
                f"{path}:{lineno}: {len(cells)} columns in {text.strip()[:60]!r}; expected 2 (valence,arousal)"
            )
        for name, cell in zip(("valence", "arousal"), cells):
            if not _NUMBER.match(cell):
                shown = cell.decode("utf-8", errors="replace").strip()
                raise RjcmaError(f"{path}:{lineno}: {name} {shown[:40]!r} is not a number")
            values.append(float(cell))
    return np.asarray(values, dtype=np.float64)


def count_label_rows(path: str | Path) -> int:
    """Number of frame rows of an annotation file without parsing the numbers (for fold balancing)."""
    data = Path(path).read_bytes().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
    body = data.split(b"\n", 1)[1].rstrip() if b"\n" in data else b""
    return 0 if not body else body.count(b"\n") + 1


class LengthMismatchWarning(UserWarning):
    """Annotation rows and decoded frames disagree by less than the tolerated gap; annotation rows win."""


def reconcile_length(n_rows: int, n_frames: int, source: str | Path, max_gap: float = 0.05) -> None:
    """Annotation rows are the reference length (as in the ABAW evaluation). Equal → nothing; a gap up to ``max_gap`` of the
    rows → a :class:`LengthMismatchWarning` giving both counts; a larger gap → :class:`RjcmaError`."""
    if n_rows <= 0:
        raise RjcmaError(f"{source}: no annotation rows to align {n_frames} frames to")
    if n_rows == n_frames:
        return
    gap = abs(n_rows - n_frames) / n_rows
    action = "padding by repeating the last frame" if n_frames < n_rows else "cutting the extra frames"
    if gap > max_gap:
        raise RjcmaError(
            f"{source}: {n_frames} decoded frames but {n_rows} annotation rows ({gap:.1%} apart, more than "
            f"{max_gap:.0%}); the video and the annotation file do not belong together — check both files"
        )
    warnings.warn(
        f"{source}: {n_frames} decoded frames but {n_rows} annotation rows ({gap:.2%} apart); annotation rows "
        f"win, {action}",
        LengthMismatchWarning,
        stacklevel=2,
    )


def fit_length(array: np.ndarray, n_rows: int) -> np.ndarray:
    """Fit ``array`` (T, ...) to the annotation length: cut, or pad by repeating its last element."""
    n = len(array)
    if n == n_rows:
        return array
    if n > n_rows:
        return array[:n_rows]
    if n == 0:
        raise ValueError(f"cannot pad an empty stream to {n_rows} rows")
    tail = np.repeat(np.asarray(array[-1:]), n_rows - n, axis=0)
    return np.concatenate([np.asarray(array), tail], axis=0)
