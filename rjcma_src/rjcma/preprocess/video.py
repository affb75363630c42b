"""Faces: one 48 x 48 RGB crop per annotation row, and a mask of the rows that have a face.

Paper §4.2.1 (visual modality). Two sources:

* **cropped_aligned** (what the Aff-Wild2 organisers ship): annotation row k is the image ``f"{k+1:05d}.jpg"``
  (1-based names). The image is looked up by that name, never as "the k-th file found", so rows whose jpg is
  missing (no face) stay aligned with their labels (the released code's defect 1, chapter *Paper vs released
  code*). A missing or unreadable jpg gives a black frame and ``mask[k] = False``. Images are resized to 48 x 48
  with PIL, as released.
* **a video without cropped_aligned** (a user's own video): :func:`faces_from_video` runs the shared face stage
  (:func:`rjcma.preprocess.stages.faces_at`: the resilient decoder, MTCNN with alignment to the cropped_aligned
  framing, or OpenCV's frontal-face Haar cascade as the fallback, tracking by box overlap). Every row without a face
  gets a black frame and ``mask = False``. Frames are matched to rows by their presentation time (pts), so
  variable-frame-rate files map row k (time k / fps) to the frame shown at that time.
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


# ---- decoding ----------------------------------------------------------------------------------------------------
def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


def iter_frames(path: str | Path, gray_max_side: int | None = None):
    """Yield (time_s, upright rgb uint8 (H, W, 3)) for every decodable frame: the resilient decoder of
    :mod:`rjcma.preprocess.decode` (time from pts, VFR-safe; broken packets skipped, counted and warned about; a
    stream that yields almost nothing raises RjcmaError naming the file)."""
    from rjcma.preprocess.decode import iter_video

    path = Path(path)
    if not path.is_file():
        raise RjcmaError(f"{path}: video file not found")
    yield from iter_video(path)


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
        boxes = self.all(rgb)
        return max(boxes, key=lambda b: (b[2] - b[0]) * (b[3] - b[1])) if boxes else None

    def all(self, rgb: np.ndarray) -> list[tuple[float, float, float, float]]:
        """Every face as (x0, y0, x1, y1) in pixels of ``rgb``."""
        cv2 = self._cv2
        h, w = rgb.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        m = max(12, int(self.min_size_frac * min(gray.shape)))
        boxes = self._cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(m, m))
        return [(x / s, y / s, (x + bw) / s, (y + bh) / s) for x, y, bw, bh in boxes]


def square_box(box, margin: float = 0.25) -> np.ndarray:
    """Square (cx, cy, side) around ``box`` enlarged by ``margin`` of its side on each edge."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0, side], dtype=np.float64)


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


def faces_from_video(video: str | Path, n_rows: int | None = None, fps: float | None = None, size: int = FACE_SIZE,
                     detect_every: int = 1, trial: str = "", detector: str = "auto",
                     ) -> tuple[np.ndarray, np.ndarray, list[str], np.ndarray]:
    """Faces of one person of a video: (faces (N, size, size, 3) uint8, mask (N,), warnings, frame_times).

    :func:`rjcma.preprocess.stages.faces_at` at the grid t_k = k / fps (N = ``n_rows``, or the decoded frames);
    of several people the one ``trial`` names (``_left``/``_right``), else the one seen most.
    """
    from rjcma.preprocess.stages import faces_at

    video = Path(video)
    if n_rows is None or fps is None:
        from rjcma.preprocess.decode import probe

        info = probe(video)
        fps = fps or info.container_fps or 25.0
        if n_rows is None:
            from rjcma.preprocess.decode import frame_count

            n_rows = frame_count(video)
    N = int(n_rows)
    st = faces_at(video, np.arange(N) / float(fps), size=size, detect_every=detect_every, detector=detector)
    person = st.person_for_trial(trial)
    faces = person.faces if person is not None else np.zeros((N, size, size, 3), np.uint8)
    mask = person.mask if person is not None else np.zeros(N, bool)
    notes = []
    if not mask.any():
        notes.append(f"{video}: no face found in any frame; faces are black and masked")
    elif mask.mean() < 0.5:
        notes.append(f"{video}: a face was found in only {mask.mean():.0%} of the frames")
    for n in notes:
        warnings.warn(n, stacklevel=2)
    return faces, mask, notes, st.frame_times


def centre_crop(faces: np.ndarray, crop: int = 40) -> np.ndarray:
    """Centre crop (..., H, W, C) to crop x crop (the evaluation transform of the released recipe)."""
    h, w = faces.shape[-3], faces.shape[-2]
    y0, x0 = (h - crop) // 2, (w - crop) // 2
    return faces[..., y0:y0 + crop, x0:x0 + crop, :]


def faces_to_tensor(faces: np.ndarray, crop: int = 40):
    """uint8 (B, 48, 48, 3) -> float32 (B, 3, crop, crop): :func:`rjcma.models.backbones.faces_to_tensor`."""
    from rjcma.models.backbones import faces_to_tensor as to_tensor

    return to_tensor(faces, crop)
