"""Faces: one 48 x 48 RGB crop per annotation row, and a mask of the rows that have a face.

Paper §4.2.1 (visual modality). Two sources:

* **cropped_aligned** (what the Aff-Wild2 organisers ship): annotation row k is the image ``f"{k+1:05d}.jpg"``
  (1-based names). The image is looked up by that name, never as "the k-th file found", so rows whose jpg is
  missing (no face) stay aligned with their labels (the released code's defect 1, FACTS §2). A missing or
  unreadable jpg gives a black frame and ``mask[k] = False``. Images are resized to 48 x 48 with PIL, as released.
* **a video without cropped_aligned** (a user's own video): decoded with PyAV; faces are found with OpenCV's
  frontal-face Haar cascade, which ships inside ``opencv-python-headless`` (no download, no torch pin). Boxes are
  made square with a margin, smoothed over time (centred moving average over detected frames), gaps of up to
  ``max_gap`` frames are bridged, and every row without a face gets a black frame and ``mask = False``. Frames are
  matched to rows by their presentation time (pts), so variable-frame-rate files map row k (time k / fps) to the
  frame shown at that time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from rjcma.errors import MissingAssetError, RjcmaError

FACE_SIZE = 48


def face_file(faces_dir: str | Path, k: int) -> Path:
    """The jpg of annotation row k (0-based): ``NNNNN.jpg`` with NNNNN = k + 1."""
    return Path(faces_dir) / f"{k + 1:05d}.jpg"


def faces_from_folder(faces_dir: str | Path, n_rows: int, size: int = FACE_SIZE) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """(faces uint8 (N, size, size, 3), mask bool (N,), warnings) from a cropped_aligned folder."""
    from PIL import Image

    faces_dir = Path(faces_dir)
    if not faces_dir.is_dir():
        raise RjcmaError(f"{faces_dir}: face folder not found; point --corpus (or data.faces_root) at cropped_aligned/")
    faces = np.zeros((n_rows, size, size, 3), dtype=np.uint8)
    mask = np.zeros(n_rows, dtype=bool)
    bad: list[str] = []
    for k in range(n_rows):
        p = face_file(faces_dir, k)
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


# ---- decoding --------------------------------------------------------------------------------------------------
def _open(path: Path):
    import av

    if not path.is_file():
        raise RjcmaError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise RjcmaError(f"{path}: empty file (0 bytes); copy the video again")
    try:
        c = av.open(str(path))
    except Exception as e:
        raise RjcmaError(f"{path}: not a readable video ({_short(e)}); check the file is complete") from e
    if not c.streams.video:
        c.close()
        raise RjcmaError(f"{path}: has no video stream; give a video file")
    return c


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


def iter_frames(path: str | Path, gray_max_side: int | None = None):
    """Yield (time_s, rgb uint8 (H, W, 3)) for every decoded frame; time from pts (VFR-safe).

    A stream that breaks after some frames ends with a warning; one that yields no frame raises RjcmaError.
    """
    path = Path(path)
    c = _open(path)
    n = 0
    with c:
        stream = c.streams.video[0]
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else None
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        try:
            for frame in c.decode(stream):
                if frame.pts is not None and tb:
                    t = frame.pts * tb
                else:
                    t = n / rate
                yield float(t), frame.to_ndarray(format="rgb24")
                n += 1
        except Exception as e:
            if n == 0:
                raise RjcmaError(f"{path}: no frame could be decoded ({_short(e)}); the file is corrupt or truncated") from e
            warnings.warn(f"{path}: decoding stopped after {n} frames ({_short(e)}); the file may be truncated", stacklevel=2)
    if n == 0:
        raise RjcmaError(f"{path}: no frame could be decoded; the file is empty or truncated")


# ---- detection -------------------------------------------------------------------------------------------------
@dataclass
class HaarDetector:
    """OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml`` from ``cv2.data``)."""

    max_side: int = 320  # frames are downscaled to this longest side for detection
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_frac: float = 0.08  # smallest face side as a fraction of the shorter image side

    def __post_init__(self) -> None:
        import cv2

        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise MissingAssetError(
                "OpenCV without Haar cascades (opencv-python-headless >= 5 moved them); "
                "install 'opencv-python-headless>=4.9,<5' to detect faces in videos without cropped_aligned/"
            )
        xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not xml.exists():
            raise MissingAssetError(f"{xml}: Haar cascade missing; reinstall 'opencv-python-headless>=4.9,<5'")
        self._cv2 = cv2
        self._cascade = cv2.CascadeClassifier(str(xml))

    def __call__(self, rgb: np.ndarray) -> tuple[float, float, float, float] | None:
        """Largest face as (x0, y0, x1, y1) in pixels of ``rgb``, or None."""
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        m = max(12, int(self.min_size_frac * min(gray.shape)))
        boxes = self._cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(m, m))
        if len(boxes) == 0:
            return None
        x, y, bw, bh = max(boxes, key=lambda b: b[2] * b[3])
        return (x / s, y / s, (x + bw) / s, (y + bh) / s)


def square_box(box, margin: float = 0.25) -> np.ndarray:
    """Square (cx, cy, side) around ``box`` enlarged by ``margin`` of its side on each edge."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0, side], dtype=np.float64)


def smooth_boxes(boxes: np.ndarray, found: np.ndarray, radius: int = 2, max_gap: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Centred moving average of (cx, cy, side) over detected frames; bridge gaps of <= max_gap frames.

    Returns (boxes (n, 3), valid (n,) bool).
    """
    n = len(found)
    out = np.zeros((n, 3), dtype=np.float64)
    valid = found.copy()
    idx = np.flatnonzero(found)
    if len(idx) == 0:
        return out, valid
    for i in idx:
        lo, hi = max(0, i - radius), min(n, i + radius + 1)
        sel = found[lo:hi]
        out[i] = boxes[lo:hi][sel].mean(axis=0)
    # bridge short gaps between two detections by linear interpolation
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= max_gap + 1:
            for j in range(a + 1, b):
                t = (j - a) / (b - a)
                out[j] = (1 - t) * out[a] + t * out[b]
                valid[j] = True
    return out, valid


def crop_square(rgb: np.ndarray, cbox: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Crop the square (cx, cy, side), padding with black outside the image, and resize to size x size."""
    import cv2

    h, w = rgb.shape[:2]
    cx, cy, side = cbox
    half = side / 2.0
    x0, y0 = int(round(cx - half)), int(round(cy - half))
    s = max(1, int(round(side)))
    canvas = np.zeros((s, s, 3), dtype=np.uint8)
    sx0, sy0 = max(0, x0), max(0, y0)
    sx1, sy1 = min(w, x0 + s), min(h, y0 + s)
    if sx1 > sx0 and sy1 > sy0:
        canvas[sy0 - y0:sy1 - y0, sx0 - x0:sx1 - x0] = rgb[sy0:sy1, sx0:sx1]
    return cv2.resize(canvas, (size, size), interpolation=cv2.INTER_AREA)


def rows_to_frames(frame_times: np.ndarray, fps: float, n_rows: int) -> np.ndarray:
    """Index of the decoded frame shown at row k's time k / fps (the last frame whose pts <= t, VFR-safe)."""
    t = np.arange(n_rows) / float(fps)
    eps = 0.25 / float(fps)  # tolerate pts jitter
    idx = np.searchsorted(np.asarray(frame_times), t + eps, side="right") - 1
    return np.clip(idx, 0, len(frame_times) - 1)


def faces_from_video(video: str | Path, n_rows: int | None = None, fps: float | None = None, size: int = FACE_SIZE,
                     detect_every: int = 1, detector: HaarDetector | None = None,
                     ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Detect, smooth and crop faces of a video: (faces (N, size, size, 3) uint8, mask (N,), warnings, frame_times).

    N = ``n_rows`` (annotation rows) or the number of decoded frames; row k takes the frame shown at k / fps.
    Two passes over the file: boxes first (kept small), then crops, so memory does not grow with resolution.
    """
    video = Path(video)
    det = detector or HaarDetector()
    times: list[float] = []
    boxes: list[np.ndarray] = []
    found: list[bool] = []
    for i, (t, rgb) in enumerate(iter_frames(video)):
        times.append(t)
        b = det(rgb) if i % max(1, detect_every) == 0 else None
        found.append(b is not None)
        boxes.append(square_box(b) if b is not None else np.zeros(3))
    ftimes = np.asarray(times, dtype=np.float64)
    ftimes = ftimes - ftimes[0]
    fnd = np.asarray(found, dtype=bool)
    sboxes, valid = smooth_boxes(np.asarray(boxes), fnd, max_gap=max(3, 2 * detect_every))
    if fps is None:
        fps = (len(ftimes) - 1) / ftimes[-1] if len(ftimes) > 1 and ftimes[-1] > 0 else 25.0
    N = int(n_rows) if n_rows is not None else len(ftimes)
    frame_of_row = rows_to_frames(ftimes, fps, N)
    need = np.zeros(len(ftimes), dtype=bool)
    need[frame_of_row] = True
    crops: dict[int, np.ndarray] = {}
    for i, (_, rgb) in enumerate(iter_frames(video)):
        if i >= len(ftimes):
            break
        if need[i] and valid[i]:
            crops[i] = crop_square(rgb, sboxes[i], size)
    faces = np.zeros((N, size, size, 3), dtype=np.uint8)
    mask = np.zeros(N, dtype=bool)
    for k, i in enumerate(frame_of_row):
        if i in crops:
            faces[k] = crops[i]
            mask[k] = True
    notes = []
    if not mask.any():
        notes.append(f"{video}: no face found in any frame; faces are black and masked")
    elif mask.mean() < 0.5:
        notes.append(f"{video}: a face was found in only {mask.mean():.0%} of the frames")
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return faces, mask, notes, ftimes


def centre_crop(faces: np.ndarray, crop: int = 40) -> np.ndarray:
    """Centre crop (..., H, W, C) to crop x crop (the evaluation transform of the released recipe)."""
    h, w = faces.shape[-3], faces.shape[-2]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    return faces[..., y0:y0 + crop, x0:x0 + crop, :]


def faces_to_tensor(faces: np.ndarray, crop: int = 40):
    """uint8 (B, 48, 48, 3) -> float32 (B, 3, crop, crop): centre crop, /255, (x - 0.5) / 0.5 (FACTS §5)."""
    import torch

    x = torch.from_numpy(np.ascontiguousarray(centre_crop(np.asarray(faces), crop)))
    x = x.permute(0, 3, 1, 2).float().div_(255.0)
    return x.sub_(0.5).div_(0.5)
