"""The face stage at frame times: decode → detect → track people → align and crop each face, in one pass.

:func:`faces_at` gives every person's 48 × 48 face at each of the caller's frame times: preprocessing asks for the
annotation grid t_k = k / fps, prediction for the stream's own times (variable frame rate safe). Frames come from
the resilient decoder (:mod:`rjcma.preprocess.decode`), faces from :mod:`~rjcma.preprocess.faces.detect`, people
from :mod:`~rjcma.preprocess.faces.track`, crops from :func:`~rjcma.preprocess.faces.align.align_face`. Memory
stays bounded: at most :data:`DETECT_BATCH_BYTES` of decoded video waits for a batch of detections, and a caller's
``sink`` may take each crop as it is cut instead of keeping them.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rjcma.preprocess.decode import DecodeCounts, frame_count, iter_video, probe
from rjcma.preprocess.faces.align import align_face
from rjcma.preprocess.faces.detect import detect_faces_batch, detector_name
from rjcma.preprocess.faces.track import MAX_GAP_S, Tracker

DETECT_BATCH = 8  # frames per detector call (MTCNN runs a batch of frames as one tensor: several times faster)
DETECT_BATCH_BYTES = 64e6  # at most this much decoded video waits for a batch's detections (bounded memory)

Sink = Callable[[int, int, Callable[[], np.ndarray]], None]  # sink(row, track, cut)


@dataclass
class PersonFaces:
    """One tracked person: a 48 × 48 face per row (black where none) and the rows that have one."""

    person: int
    faces: np.ndarray | None  # (N, size, size, 3) uint8; None when a sink took the crops (faces_at)
    mask: np.ndarray  # (N,) bool
    centre_x: float  # mean box centre (pixels), people are numbered left to right
    detections: int
    track: int = -1  # the tracker's id, as handed to a sink
    joined: tuple[int, ...] = ()  # later tracks of the same person (Tracker.join), as handed to a sink


@dataclass
class FaceStage:
    """What :func:`faces_at` found in a video."""

    persons: list[PersonFaces]
    frame_times: np.ndarray  # (F,) presentation time of every decoded frame, first at 0
    detector: str
    counts: DecodeCounts
    frames_tried: int = 0
    dropped_tracks: int = 0
    seconds_detect: float = 0.0
    seconds: dict[str, float] = field(default_factory=dict)  # process CPU seconds: decode, detect, track, align
    width: int = 0
    height: int = 0
    notes: list[str] = field(default_factory=list)

    def person_for_trial(self, trial_name: str) -> PersonFaces | None:
        """The person a trial means: ``_left``/``_right`` trials (Aff-Wild2) the left-/rightmost, else the one
        seen most."""
        if not self.persons:
            return None
        if trial_name.endswith("_left"):
            return self.persons[0]
        if trial_name.endswith("_right"):
            return self.persons[-1]
        return max(self.persons, key=lambda p: (int(p.mask.sum()), -p.person))

    def trial_faces(self, video: Path, trial: str, n: int, size: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
        """(faces (n, size, size, 3) uint8, mask (n,), warnings) of the person ``trial`` means; black and masked
        without one. The warnings are also issued (a face found in no or few frames)."""
        person = self.person_for_trial(trial)
        faces = person.faces if person is not None else np.zeros((n, size, size, 3), np.uint8)
        mask = person.mask if person is not None else np.zeros(n, bool)
        notes = []
        if not mask.any():
            notes.append(f"{video}: no face found in any frame; faces are black and masked")
        elif mask.mean() < 0.5:
            notes.append(f"{video}: a face was found in only {mask.mean():.0%} of the frames")
        for msg in notes:
            warnings.warn(msg, stacklevel=3)
        return faces, mask, notes


def face_backend(detector: str = "auto") -> tuple[str, Callable, Callable]:
    """(name, detect(list of frames) -> faces per frame, crop(frame, face, size) -> uint8 crop) of ``detector``
    (:mod:`rjcma.preprocess.faces.detect`); every face is aligned to the cropped_aligned framing."""
    return detector_name(detector), (lambda frames: detect_faces_batch(frames, detector=detector)), align_face


def _once(f: Callable, *args) -> Callable[[], Any]:
    """``f(*args)``, computed on the first call and kept."""
    box: list = []

    def get():
        if not box:
            box.append(f(*args))
        return box[0]

    return get


class _Pass:
    """The state of one pass of :func:`faces_at`: the tracker, the frames waiting for a batch of detections, the
    frame waiting for the next frame's time (which rows it shows) and each track's rows."""

    def __init__(self, times: np.ndarray | None, size: int, every: int, detect: Callable, crop: Callable,
                 sink: Sink | None, join: bool = False):
        self.size, self.every, self.detect, self.crop, self.sink = size, every, detect, crop, sink
        self.join = join
        self.times = np.asarray(times, np.float64) if times is not None else None
        g = self.times
        # row k shows the last frame whose time <= t_k + eps (a quarter row of pts jitter)
        eps = 0.25 * float(np.median(np.diff(g))) if g is not None and len(g) > 1 else 1e-3
        self.shifted = g + eps if g is not None else None
        self.crops: dict[int, dict[int, np.ndarray]] = {}  # track -> row -> crop (unless a sink takes them)
        self.seen: dict[int, bytearray] = {}  # track -> 1 at each row that has its face
        self.ftimes: list[float] = []
        self.tracker: Tracker | None = None
        self.next_row = 0
        self.pending: tuple[int, float, np.ndarray] | None = None
        self.buf: list[tuple[int, float, np.ndarray]] = []  # frames waiting for the detections of a batch
        self.batch = 1
        self.tried = 0
        self.seconds = 0.0
        self.cpu = dict.fromkeys(("decode", "detect", "track", "align"), 0.0)  # process CPU seconds per step
        self.shape = (0, 0)
        crop = self.crop

        def timed_crop(*a):
            c0 = time.process_time()
            try:
                return crop(*a)
            finally:
                self.cpu["align"] += time.process_time() - c0

        self.crop = timed_crop

    def frame(self, i: int, t: float, rgb: np.ndarray) -> None:
        """Frame ``i`` at time ``t``: queued for detection; a full batch is detected and its frames emitted."""
        if self.tracker is None:  # gap in frames at 25 fps (the frame rate is known only once the frames are decoded)
            self.tracker = Tracker(max_gap=max(self.every, int(round(MAX_GAP_S * 25))))
            self.shape = rgb.shape[:2]
            self.batch = max(1, min(DETECT_BATCH, int(DETECT_BATCH_BYTES // (rgb.nbytes * self.every))))
        self.ftimes.append(t)
        self.buf.append((i, t, rgb))
        if i % self.every == 0 and sum(1 for b in self.buf if b[0] % self.every == 0) >= self.batch:
            self.flush()

    def flush(self) -> None:
        tried = [b for b in self.buf if b[0] % self.every == 0]
        t0, c0 = time.perf_counter(), time.process_time()
        found = dict(zip((b[0] for b in tried), self.detect([b[2] for b in tried]))) if tried else {}
        self.seconds += time.perf_counter() - t0
        self.cpu["detect"] += time.process_time() - c0
        self.tried += len(tried)
        for i, t, rgb in self.buf:
            if i in found:
                c0 = time.process_time()
                self.tracker.update(i, found[i])
                self.cpu["track"] += time.process_time() - c0
            self._step(i, t, rgb)
        self.buf.clear()

    def end(self) -> None:
        """After the last frame: the frames still waiting are detected and emitted."""
        self.flush()
        if self.times is not None and self.pending is not None:
            self._emit(self.pending[0], self.pending[2], self._rows_before(None))

    def _step(self, i: int, t: float, rgb: np.ndarray) -> None:
        if self.times is None:  # a row per decoded frame
            self._emit(i, rgb, range(i, i + 1))
            return
        if self.pending is not None:
            self._emit(self.pending[0], self.pending[2], self._rows_before(t))
        self.pending = (i, t, rgb)

    def _rows_before(self, t_next: float | None) -> range:
        """Rows (of ``times``) that the pending frame shows: those before the next frame's time."""
        end = len(self.times) if t_next is None else int(np.searchsorted(self.shifted, t_next, side="left"))
        r = range(self.next_row, max(self.next_row, end))
        self.next_row = max(self.next_row, end)
        return r

    def _emit(self, i: int, rgb: np.ndarray, rows: range) -> None:
        if not len(rows):
            return
        for k, face in self.tracker.active(i):
            m = self.seen.setdefault(k, bytearray())
            m.extend(bytes(max(0, rows.stop - len(m))))
            m[rows.start:rows.stop] = b"\x01" * len(rows)
            if self.sink is not None:
                cut = _once(self.crop, rgb, face, self.size)
                for r in rows:
                    self.sink(r, k, cut)
                continue
            c = self.crop(rgb, face, self.size)
            d = self.crops.setdefault(k, {})
            for r in rows:
                d[r] = c

    def persons(self, n_rows: int) -> tuple[list[PersonFaces], int]:
        """(the people, numbered left to right, tracks dropped as false detections)."""
        if self.tracker is None:
            return [], 0
        joined: dict[int, list[int]] = {}
        if self.join:  # one person lost for a while and found again elsewhere: one track
            for k, r in self.tracker.join(list(self.seen)).items():
                if k != r:
                    joined.setdefault(r, []).append(k)
                    a, b = self.seen[r], self.seen.pop(k)
                    a.extend(bytes(max(0, len(b) - len(a))))
                    self.seen[r] = bytearray(x | y for x, y in zip(a, b.ljust(len(a), b"\x00")))
                    self.crops.setdefault(r, {}).update(self.crops.pop(k, {}))
        keep = self.tracker.kept(self.seen, self.tried)
        dropped = len(self.seen) - len(keep)
        out = []
        for p, k in enumerate(keep):
            mask = np.zeros(n_rows, bool)
            m = np.frombuffer(bytes(self.seen.pop(k)), np.uint8)[:n_rows]
            mask[:len(m)] = m.astype(bool)
            faces = None
            if self.sink is None:
                faces = np.zeros((n_rows, self.size, self.size, 3), np.uint8)
                d = self.crops.pop(k)
                while d:  # move, not copy: memory stays at one set of crops
                    r, c = d.popitem()
                    faces[r] = c
            out.append(PersonFaces(p, faces, mask, self.tracker.centre_x(k), self.tracker.detections[k], k,
                                   tuple(joined.get(k, ()))))
        return out, dropped


def faces_at(video: str | Path, times: np.ndarray | None = None, size: int = 48, detect_every: int = 1,
             detector: str = "auto", counts: DecodeCounts | None = None, progress: Callable[[int], None] | None = None,
             sink: Sink | None = None, join: bool = False) -> FaceStage:
    """Faces of every person at each of ``times`` (s; None: at every decoded frame), in one pass over the file.

    Row k takes the frame shown at ``times[k]`` (the last frame whose time ≤ t_k, with a quarter-frame
    tolerance). Faces are detected on every ``detect_every``-th frame; frames in between, and gaps of up to
    :data:`~rjcma.preprocess.faces.track.MAX_GAP_S`, keep the track's last face (re-cropped from the current frame).
    Detection runs on batches of up to :data:`DETECT_BATCH` tried frames; at most :data:`DETECT_BATCH_BYTES` of
    decoded video wait for them.

    ``sink(row, track, cut)``, when given, receives every row of every track as it is reached, rows in increasing
    order; ``cut()`` returns that row's crop (cut on the first call only, so rows the sink skips cost nothing). The
    crops are not kept (each person's ``faces`` is None; ``track`` says which of the sink's tracks it is): memory
    then stays one byte per row and track however long the video (prediction encodes the faces as they come).
    ``join``: a track that begins after another ended, near where it was last seen, is that person's
    (:meth:`~rjcma.preprocess.faces.track.Tracker.join`; its tracker ids are in ``joined``).
    """
    counts = counts if counts is not None else DecodeCounts("video")
    name, detect, crop = face_backend(detector)
    run = _Pass(times, size, max(1, int(detect_every)), detect, crop, sink, join)
    frames, c0 = iter_video(Path(video), counts), time.process_time()
    for i, (t, rgb) in enumerate(frames):
        run.cpu["decode"] += time.process_time() - c0
        run.frame(i, t, rgb)
        if progress is not None:
            progress(1)
        c0 = time.process_time()
    run.end()
    n_rows = len(run.times) if run.times is not None else len(run.ftimes)
    persons, dropped = run.persons(n_rows)
    return FaceStage(persons, np.asarray(run.ftimes, np.float64), name, counts, frames_tried=run.tried,
                     dropped_tracks=dropped, seconds_detect=run.seconds, seconds=run.cpu, width=run.shape[1],
                     height=run.shape[0])


def faces_from_video(video: str | Path, n_rows: int | None = None, fps: float | None = None, size: int = 48,
                     detect_every: int = 1, trial: str = "", detector: str = "auto",
                     ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Faces of one person of a video on the grid t_k = k / fps, k < ``n_rows`` (default: the container's frame
    rate and the decoded frames): (faces (N, size, size, 3) uint8, mask (N,), warnings, frame_times); of several
    people the one ``trial`` names (``_left``/``_right``), else the one seen most (:meth:`FaceStage.trial_faces`)."""
    video = Path(video)
    fps = fps or probe(video).container_fps or 25.0
    n = int(n_rows) if n_rows is not None else frame_count(video)
    st = faces_at(video, np.arange(n) / float(fps), size=size, detect_every=detect_every, detector=detector)
    faces, mask, notes = st.trial_faces(video, trial, n, size)
    return faces, mask, notes, st.frame_times
