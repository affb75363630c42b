"""The stages from a video to per-frame model inputs, shared by preprocessing and prediction (paper §4.2.1).

Every stage takes **frame times**: preprocessing passes the annotation grid t_k = k / fps and writes the store;
prediction passes the decoded stream's own times (variable frame rate safe) and keeps the arrays in memory. So a
fix made here reaches both.

* :func:`faces_at`  decode (:mod:`rjcma.preprocess.decode`) → detect faces → track people by box overlap → align
  and crop each person's face to 48 × 48 at each time (one pass over the file, bounded memory).
* :func:`rjcma.preprocess.audio.patches_at`  the VGGish log-mel patch of each time.
* :func:`words_at`  the word vector of each time.
* :func:`speech_at` whether there is sound (voice activity) or a word at each time: evidence for the audio and
  text modalities, as the face mask is for the visual one.
* encoders: :mod:`rjcma.preprocess.encoders`.

Face detection uses :mod:`rjcma.preprocess.faces` (MTCNN with landmarks, Haar where MTCNN finds nothing, aligned
to the ``cropped_aligned`` framing).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from rjcma.preprocess import faces as F
from rjcma.preprocess.decode import DecodeCounts, iter_video

TRACK_IOU = 0.3  # a face continues a track when its box overlaps the track's last box by this much (or is close)
MAX_GAP_S = 0.5  # a track survives this long without a detection (frames in between keep its last face)
MIN_TRACK_FRACTION = 0.05  # tracks detected in fewer of the tried frames are dropped as false detections
MIN_TRACK_DETECTIONS = 3
DETECT_BATCH = 8  # frames per detector call (MTCNN runs a batch of frames as one tensor: several times faster)
DETECT_BATCH_BYTES = 64e6  # at most this much decoded video waits for a batch's detections (bounded memory)


@dataclass
class PersonFaces:
    """One tracked person: a 48 × 48 face per row (black where none) and the rows that have one."""

    person: int
    faces: np.ndarray | None  # (N, size, size, 3) uint8; None when a sink took the crops (faces_at)
    mask: np.ndarray  # (N,) bool
    centre_x: float  # mean box centre (pixels), people are numbered left to right
    detections: int
    track: int = -1  # the tracker's id, as handed to a sink


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


# ---- detection back-ends -------------------------------------------------------------------------------------------
def face_backend(detector: str = "auto") -> tuple[str, Callable, Callable]:
    """(name, detect(list of frames) -> faces per frame, crop(frame, face, size) -> uint8 crop).

    :mod:`rjcma.preprocess.faces`: ``auto`` runs MTCNN (landmarks) and OpenCV's Haar cascade on the frames where
    MTCNN found nothing (MTCNN alone misses some darker-skinned demo subjects; Haar alone misses others: the
    *Inference* chapter has the rates), or Haar alone when the MTCNN weights are not installed. Every face is
    aligned to the cropped_aligned framing by :func:`~rjcma.preprocess.faces.align_face`.
    """
    if detector == "auto":
        name = "mtcnn+haar" if F.mtcnn_available() else "haar"
    else:
        name = detector
    return name, (lambda frames: F.detect_faces_batch(frames, detector=detector)), F.align_face


@dataclass
class _BoxFace:
    """A face of a detector without landmarks (the shape of :class:`rjcma.preprocess.faces.Face`)."""

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: Any = None


def _match(a, b) -> float:
    """How well box ``a`` continues box ``b``: their IoU, or, for boxes of a similar size whose centres are within
    half a box of each other (a jittery detector), a score just above :data:`TRACK_IOU`."""
    iou = _iou(a, b)
    if iou >= TRACK_IOU:
        return iou
    sa, sb = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    d = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2.0, (a[1] + a[3] - b[1] - b[3]) / 2.0)
    if min(sa, sb) > 0 and max(sa, sb) / min(sa, sb) < 1.6 and d < 0.5 * max(sa, sb):
        return TRACK_IOU + 1e-3 * (1.0 - d / max(sa, sb))
    return iou


def _iou(a, b) -> float:
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


class _Tracker:
    """Greedy box-overlap tracking: each face joins the live track it overlaps most (IoU ≥ :data:`TRACK_IOU`), else
    resumes a track lost longer ago at the same place (a person the detector missed for a while), else starts one."""

    def __init__(self, max_gap: int):
        self.max_gap = max_gap
        self.last: dict[int, tuple[int, Any]] = {}  # track -> (frame of last detection, face)
        self.detections: dict[int, int] = {}
        self.xsum: dict[int, float] = {}

    def update(self, i: int, faces: list) -> None:
        live = {k: v for k, v in self.last.items() if i - v[0] <= self.max_gap}
        pairs = sorted(((_match(f.box, live[k][1].box), j, k) for j, f in enumerate(faces) for k in live), reverse=True)
        used_f, used_t = set(), set()
        for iou, j, k in pairs:
            if iou < TRACK_IOU or j in used_f or k in used_t:
                continue
            used_f.add(j), used_t.add(k)
            self._put(k, i, faces[j])
        for j, f in enumerate(faces):  # a face that continues no live track may resume a lost one at its place
            if j in used_f:
                continue
            lost = sorted(((_match(f.box, v[1].box), k) for k, v in self.last.items() if k not in live and
                           k not in used_t), reverse=True)
            if lost and lost[0][0] >= TRACK_IOU:
                used_t.add(lost[0][1])
                self._put(lost[0][1], i, f)
            else:
                self._put(len(self.detections), i, f)

    def _put(self, k: int, i: int, face) -> None:
        self.last[k] = (i, face)
        self.detections[k] = self.detections.get(k, 0) + 1
        self.xsum[k] = self.xsum.get(k, 0.0) + (face.box[0] + face.box[2]) / 2.0

    def active(self, i: int) -> list[tuple[int, Any]]:
        return [(k, f) for k, (j, f) in self.last.items() if i - j <= self.max_gap]


def _once(f: Callable, *args) -> Callable[[], Any]:
    """``f(*args)``, computed on the first call and kept."""
    box: list = []

    def get():
        if not box:
            box.append(f(*args))
        return box[0]

    return get


# ---- faces -----------------------------------------------------------------------------------------------------------
def faces_at(video: str | Path, times: np.ndarray | None = None, size: int = 48, detect_every: int = 1,
             detector: str = "auto", counts: DecodeCounts | None = None, progress: Callable[[int], None] | None = None,
             sink: Callable[[int, int, Callable[[], np.ndarray]], None] | None = None) -> FaceStage:
    """Faces of every person at each of ``times`` (s; None: at every decoded frame), in one pass over the file.

    Row k takes the frame shown at ``times[k]`` (the last frame whose time ≤ t_k, with a quarter-frame
    tolerance). Faces are detected on every ``detect_every``-th frame; frames in between, and gaps of up to
    :data:`MAX_GAP_S`, keep the track's last face (re-cropped from the current frame). Detection runs on batches of
    up to :data:`DETECT_BATCH` tried frames; at most :data:`DETECT_BATCH_BYTES` of decoded video wait for them.

    ``sink(row, track, cut)``, when given, receives every row of every track as it is reached, rows in increasing
    order; ``cut()`` returns that row's crop (cut on the first call only, so rows the sink skips cost nothing). The
    crops are not kept (each person's ``faces`` is None; ``track`` says which of the sink's tracks it is): memory
    then stays one byte per row and track however long the video (prediction encodes the faces as they come).

    (One function over 80 lines: its inner steps share the streaming state, the frame waiting for the next
    frame's time, the batch buffer and the tracker.)
    """
    import time as _time

    video = Path(video)
    counts = counts if counts is not None else DecodeCounts("video")
    name, detect, crop = face_backend(detector)
    every = max(1, int(detect_every))
    rows_given = times is not None
    times_arr = np.asarray(times, np.float64) if rows_given else None
    eps = 0.25 * float(np.median(np.diff(times_arr))) if rows_given and len(times_arr) > 1 else 1e-3
    shifted = times_arr + eps if rows_given else None
    crops: dict[int, dict[int, np.ndarray]] = {}  # track -> row -> crop (unless a sink takes them)
    seen: dict[int, bytearray] = {}  # track -> 1 at each row that has its face
    ftimes: list[float] = []
    tracker: _Tracker | None = None
    st = FaceStage([], np.zeros(0), name, counts)
    next_row = 0
    pending: tuple[int, float, np.ndarray] | None = None
    t_det = 0.0

    def emit(i: int, rgb: np.ndarray, rows: range) -> None:
        if not len(rows):
            return
        for k, face in tracker.active(i):
            m = seen.setdefault(k, bytearray())
            m.extend(bytes(max(0, rows.stop - len(m))))
            m[rows.start:rows.stop] = b"\x01" * len(rows)
            if sink is not None:
                cut = _once(crop, rgb, face, size)
                for r in rows:
                    sink(r, k, cut)
                continue
            c = crop(rgb, face, size)
            d = crops.setdefault(k, {})
            for r in rows:
                d[r] = c

    def rows_before(t_next: float | None) -> range:
        """Rows (of ``times``) that the pending frame shows: those before the next frame's time."""
        nonlocal next_row
        if t_next is None:
            end = len(times_arr)
        else:  # row k shows the last frame whose time <= t_k + eps (a quarter row of pts jitter)
            end = int(np.searchsorted(shifted, t_next, side="left"))
        r = range(next_row, max(next_row, end))
        next_row = max(next_row, end)
        return r

    def step(i: int, t: float, rgb: np.ndarray) -> None:
        nonlocal pending
        if rows_given:
            if pending is not None:
                emit(pending[0], pending[2], rows_before(t))
            pending = (i, t, rgb)
        else:
            emit(i, rgb, range(i, i + 1))

    buf: list[tuple[int, float, np.ndarray]] = []  # frames waiting for the detections of a batch
    batch = 1

    def flush() -> None:
        nonlocal t_det
        tried = [b for b in buf if b[0] % every == 0]
        t0 = _time.perf_counter()
        found = dict(zip((b[0] for b in tried), detect([b[2] for b in tried]))) if tried else {}
        t_det += _time.perf_counter() - t0
        st.frames_tried += len(tried)
        for i, t, rgb in buf:
            if i in found:
                tracker.update(i, found[i])
            step(i, t, rgb)
        buf.clear()

    for i, (t, rgb) in enumerate(iter_video(video, counts)):
        if tracker is None:  # gap in frames at 25 fps (the frame rate is known only once the frames are decoded)
            tracker = _Tracker(max_gap=max(every, int(round(MAX_GAP_S * 25))))
            st.height, st.width = rgb.shape[:2]
            batch = max(1, min(DETECT_BATCH, int(DETECT_BATCH_BYTES // (rgb.nbytes * every))))
        ftimes.append(t)
        buf.append((i, t, rgb))
        if i % every == 0 and sum(1 for b in buf if b[0] % every == 0) >= batch:
            flush()
        if progress is not None:
            progress(1)
    flush()
    if rows_given and pending is not None:
        emit(pending[0], pending[2], rows_before(None))
    st.frame_times = np.asarray(ftimes, np.float64)
    st.seconds_detect = t_det
    n_rows = len(times_arr) if rows_given else len(ftimes)
    need = max(MIN_TRACK_DETECTIONS, int(np.ceil(MIN_TRACK_FRACTION * st.frames_tried)))
    keep = [k for k in seen if tracker.detections.get(k, 0) >= need]
    st.dropped_tracks = len(seen) - len(keep)
    keep.sort(key=lambda k: tracker.xsum[k] / tracker.detections[k])
    for p, k in enumerate(keep):
        mask = np.zeros(n_rows, bool)
        m = np.frombuffer(bytes(seen.pop(k)), np.uint8)[:n_rows]
        mask[:len(m)] = m.astype(bool)
        faces = None
        if sink is None:
            faces = np.zeros((n_rows, size, size, 3), np.uint8)
            d = crops.pop(k)
            while d:  # move, not copy: memory stays at one set of crops
                r, c = d.popitem()
                faces[r] = c
        st.persons.append(PersonFaces(p, faces, mask, tracker.xsum[k] / tracker.detections[k], tracker.detections[k],
                                      k))
    return st


# ---- words and speech ----------------------------------------------------------------------------------------------
def words_at(words: list, vectors: np.ndarray, times: np.ndarray) -> np.ndarray:
    """Frame k at time t_k takes the vector of the first word with start < t_k ≤ end, zeros elsewhere (paper
    §4.2.1, text modality: one BERT vector per word, repeated over the frames it is spoken)."""
    vectors = np.asarray(vectors)
    times = np.asarray(times, np.float64)
    out = np.zeros((len(times), vectors.shape[1] if vectors.ndim == 2 else 0),
                   vectors.dtype if vectors.dtype.kind == "f" else np.float32)
    taken = np.zeros(len(times), bool)
    for i, w in enumerate(words):
        lo = int(np.searchsorted(times, w.start, side="right"))  # first frame with t > start
        hi = int(np.searchsorted(times, w.end, side="right"))  # first frame with t > end
        if hi <= lo:
            continue
        free = ~taken[lo:hi]  # the first matching word wins
        out[lo:hi][free] = vectors[i]
        taken[lo:hi] = True
    return out


VAD_WINDOW_S = 0.3  # sound within ±0.15 s of a frame's time counts for it
VAD_DBFS = -45.0  # RMS level above which there is sound


def speech_at(wav: np.ndarray, sample_rate: int, times: np.ndarray, words: list | None = None) -> np.ndarray:
    """(N,) bool: sound at each time (RMS over :data:`VAD_WINDOW_S` above :data:`VAD_DBFS` dBFS) or a word
    being spoken. The evidence flag of the audio and text modalities."""
    times = np.asarray(times, np.float64)
    out = np.zeros(len(times), bool)
    x = np.asarray(wav, np.float32)
    if x.size:
        half = int(VAD_WINDOW_S * sample_rate / 2)
        mid = np.clip(np.rint(times * sample_rate).astype(np.int64), 0, len(x))
        lo, hi = np.clip(mid - half, 0, len(x)), np.clip(mid + half, 0, len(x))
        n = np.maximum(hi - lo, 1)
        rms = np.sqrt((_energy_before(x, hi) - _energy_before(x, lo)) / n)
        out |= (hi > lo) & (20 * np.log10(np.maximum(rms, 1e-10)) > VAD_DBFS)
    for w in words or []:
        out |= (times > w.start) & (times <= w.end)
    return out


def _energy_before(x: np.ndarray, idx: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """sum(x[:j] ** 2) in float64 at each j of ``idx``: the running sum of squares, summed in sample order, one
    chunk of samples at a time (a track-long float64 array would take 8 bytes a sample)."""
    out = np.zeros(len(idx), np.float64)
    carry = 0.0
    for s in range(0, len(x), chunk):
        part = x[s:s + chunk]
        c = np.cumsum(np.concatenate([[carry], part.astype(np.float64) ** 2]))  # c[j] = sum(x[:s + j] ** 2)
        sel = (idx > s) & (idx <= s + len(part))
        out[sel] = c[idx[sel] - s]
        carry = float(c[-1])
    return out


def transcribe_words(wav: np.ndarray, p, device: str = "cpu") -> tuple[list, dict[str, Any]]:
    """Words of a 16 kHz track: ASR, then punctuation when the recogniser writes none (paper §4.2.1); ``p`` is the
    config's ``preprocess`` section. Returns (words, what ran)."""
    from rjcma.preprocess import speech
    from rjcma.preprocess.punctuation import punctuate, punctuation_plan, skip_reason

    if p.asr_backend == "none":
        return [], {"backend": "none"}
    words = speech.transcribe(wav, p.sample_rate, backend=p.asr_backend, model_dir=p.asr_model, device=device,
                              weights_dir=p.weights_dir)
    info: dict[str, Any] = {"backend": getattr(words, "backend", p.asr_backend),
                            "model_dir": str(getattr(words, "model_dir", ""))}
    punct_dir = punctuation_plan(p.punctuation_model, p.weights_dir, bool(getattr(words, "punctuates", False)))
    if punct_dir:
        words = punctuate(words, model_dir=punct_dir)
        info["punctuation_model"] = punct_dir
    else:
        info["punctuation"] = skip_reason(p.punctuation_model, bool(getattr(words, "punctuates", False)))
    return list(words), info
