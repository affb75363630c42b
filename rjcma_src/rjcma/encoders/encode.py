"""Strided encoding: the frozen encoders on every ``frame_stride``-th row (and the last), rows between interpolated.

Neighbouring frames of a video differ little, so the cached mode encodes only every ``preprocess.feature_stride``-th
row of a trial and interpolates the features linearly in between (:func:`encode_rows`): stored as float16, in the
store's precision, in blocks of :data:`BLOCK` rows so only one block of inputs is in memory. Prediction encodes a
user's video the same way; its faces go into the encoder as they are cut (:class:`FaceEncoder`), so a video's faces
are never all in memory.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from rjcma.runtime import autocast, fixed_threads

BLOCK = 512  # rows per encoder call
BATCH = 128  # inputs per forward pass in preprocessing (a multiple that divides BLOCK)
# torch threads of the frozen encoders in preprocessing: IR-50's and VGGish's bf16 kernels round a few features
# differently with 1 and 2 threads (a float16 step in ~1 % of VGGish values), so the store's bytes would depend on
# the worker count; trial-level workers (preprocess.workers) use the other cores
ENCODER_THREADS = 1


def encoded_rows(n: int, stride: int) -> np.ndarray:
    """Rows the encoder sees: every ``stride``-th and the last."""
    return np.arange(n) if stride <= 1 else np.unique(np.r_[np.arange(0, n, stride), n - 1])


def interpolate_rows(out: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Fill the rows of ``out`` between the encoded ``rows`` by linear interpolation of their features (float32,
    stored in ``out``'s dtype)."""
    n = len(out)
    if len(rows) < n:
        for s in range(0, n, 4096):
            k = np.arange(s, min(n, s + 4096))
            j = np.clip(np.searchsorted(rows, k, side="right") - 1, 0, len(rows) - 2)
            a, b = rows[j], rows[j + 1]
            w = ((k - a) / np.maximum(b - a, 1))[:, None].astype(np.float32)
            out[k] = ((1 - w) * out[a].astype(np.float32) + w * out[b].astype(np.float32)).astype(out.dtype)
    return out


def encode_rows(model, fn: Callable, get: Callable[[np.ndarray], np.ndarray], n: int, dim: int, stride: int = 1,
                prec: str = "fp32", out: np.ndarray | None = None, threads: int = ENCODER_THREADS) -> np.ndarray:
    """(n, dim) float16 features: ``fn(model, get(rows))`` on the rows of :func:`encoded_rows` in blocks of
    :data:`BLOCK`; rows in between linearly interpolated. ``get`` returns the inputs of the given rows (a slice of a
    memory-mapped store array, or patches cut on demand), so only one block is in memory at a time. ``out`` may be a
    preallocated (memory-mapped) float16 array. ``threads``: torch threads of the encoder calls (default
    :data:`ENCODER_THREADS`; 0 = the process's, as prediction runs them)."""
    out = np.empty((n, dim), np.float16) if out is None else out
    rows = encoded_rows(n, stride)
    for s in range(0, len(rows), BLOCK):
        r = rows[s:s + BLOCK]
        with autocast(prec), fixed_threads(threads):
            out[r] = fn(model, get(r)).astype(np.float16)
    return interpolate_rows(out, rows)


class FaceEncoder:
    """The frozen visual encoder fed with faces as they are cut (the ``sink`` of
    :func:`rjcma.preprocess.faces.stream.faces_at`).

    Each tracked person's face is encoded at the rows :func:`encoded_rows` names (every ``stride``-th and the
    last), in batches of ``batch`` faces of any people; only one feature vector per encoded row and person is
    kept. :meth:`features` then fills the rows in between as :func:`encode_rows` does. ``encode(model, faces,
    batch=...)`` is the encoder's input transform and forward pass (:func:`rjcma.models.backbones.encode_faces`).
    ``spent``: (wall, process CPU) seconds inside the encoder.
    """

    def __init__(self, model, encode: Callable, dim: int, stride: int, prec: str, size: int, batch: int):
        self.model, self.encode, self.prec = model, encode, prec
        self.dim, self.stride, self.size, self.batch = int(dim), int(stride), int(size), int(batch)
        self.feats: dict[int, dict[int, np.ndarray]] = {}  # track -> encoded row -> (dim,) float16
        self.last: dict[int, tuple[int, Any]] = {}  # track -> its latest (row, cut): the video's last row?
        self.todo: list[tuple[int, int, np.ndarray]] = []  # (track, row, face) waiting for a batch
        self.spent = np.zeros(2)

    def __call__(self, row: int, track: int, cut: Callable[[], np.ndarray]) -> None:
        self.last[track] = (row, cut)
        if row % self.stride == 0:
            self.todo.append((track, row, cut()))
            if len(self.todo) >= self.batch:
                self._flush()

    def _run(self, faces: np.ndarray) -> np.ndarray:
        t0 = np.array([time.perf_counter(), time.process_time()])
        with autocast(self.prec):
            out = self.encode(self.model, faces, batch=self.batch).astype(np.float16)
        self.spent += np.array([time.perf_counter(), time.process_time()]) - t0
        return out

    def _flush(self) -> None:
        if self.todo:
            out = self._run(np.stack([f for _, _, f in self.todo]))
            for (k, r, _), x in zip(self.todo, out):
                self.feats.setdefault(k, {})[r] = x
            self.todo.clear()

    def finish(self, n: int) -> None:
        """After the last frame (``n`` rows): the last row is encoded too, as in the store."""
        self.todo += [(k, r, cut()) for k, (r, cut) in self.last.items()
                      if r == n - 1 and r not in self.feats.get(k, {})]
        self.last.clear()
        self._flush()

    def black(self) -> np.ndarray:
        """(dim,) float16 features of a black face: what the training store encodes where a trial has no face."""
        return self._run(np.zeros((1, self.size, self.size, 3), np.uint8))[0]

    def features(self, track: int | None, n: int) -> np.ndarray:
        """(n, dim) float16 features of one track (None: a person never seen); rows where it has no face take the
        features of a black face, as the training store encodes black frames."""
        got = self.feats.pop(track, {}) if track is not None else {}
        rows = encoded_rows(n, self.stride)
        black = self.black() if len(got) < len(rows) else None
        out = np.empty((n, self.dim), np.float16)
        out[rows] = np.stack([got.get(int(i), black) for i in rows])
        return interpolate_rows(out, rows)
