"""Face detectors behind one interface: ``detector(frame) -> [Face]`` and ``detector.detect_batch(frames)``.

* ``"mtcnn"``: :class:`~rjcma.preprocess.faces.mtcnn.MTCNNDetector` (boxes, probabilities, five landmarks).
* ``"haar"``: OpenCV's frontal-face Haar cascade (:class:`HaarDetector`; boxes only).
* ``"auto"`` (the default): MTCNN, and the Haar cascade on the frames where MTCNN finds no face
  (:class:`MTCNNThenHaar`), or the Haar cascade alone, with one warning, when the MTCNN weights are not installed.

Faces come back left to right. :func:`get_detector` builds each detector once per process.

**Resolution.** :func:`detect_faces_batch` detects on a copy of each frame scaled down to at most
:data:`WORK_SIDE` pixels on its longer side (area averaging) and scales the boxes and landmarks back to the frame:
the same clip at 320 px and at 4K then gives the detector the same picture, so the same people are found and
tracked, and a 4K frame costs what a 640-px one does (MTCNN's smallest face is a fraction of the frame's shorter
side, so nothing a 4K frame shows at that scale is lost). Frames no larger than that are used as they are.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import cv2
import numpy as np

from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.preprocess.faces.boxes import Face, check_frame
from rjcma.preprocess.faces.mtcnn import MTCNNDetector, mtcnn_available

DETECTORS = ("auto", "mtcnn", "haar")
WORK_SIDE = 640  # faces are detected on a copy whose longer side is at most this many pixels


@dataclass
class HaarDetector:
    """Every face OpenCV's frontal-face Haar cascade (``haarcascade_frontalface_default.xml`` from ``cv2.data``)
    finds, on a grey copy downscaled to ``max_side`` and equalised. No landmarks and no probability (``score``
    1.0)."""

    max_side: int = 320  # frames are downscaled to this longest side for detection
    scale_factor: float = 1.1
    min_neighbors: int = 5
    min_size_frac: float = 0.08  # smallest face side as a fraction of the shorter image side

    def __post_init__(self) -> None:
        if not hasattr(cv2, "CascadeClassifier") or not hasattr(cv2, "data"):
            raise MissingAssetError(
                "OpenCV without Haar cascades (opencv-python-headless >= 5 moved them); "
                "install 'opencv-python-headless>=4.9,<5' to detect faces in videos without cropped_aligned/"
            )
        xml = Path(cv2.data.haarcascades) / "haarcascade_frontalface_default.xml"
        if not xml.exists():
            raise MissingAssetError(f"{xml}: Haar cascade missing; reinstall 'opencv-python-headless>=4.9,<5'")
        self._cascade = cv2.CascadeClassifier(str(xml))

    def __call__(self, frame: np.ndarray) -> list[Face]:
        rgb = check_frame(frame)
        h, w = rgb.shape[:2]
        s = min(1.0, self.max_side / max(h, w))
        gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
        if s < 1.0:
            gray = cv2.resize(gray, (max(1, int(w * s)), max(1, int(h * s))), interpolation=cv2.INTER_AREA)
        gray = cv2.equalizeHist(gray)
        m = max(12, int(self.min_size_frac * min(gray.shape)))
        boxes = self._cascade.detectMultiScale(gray, self.scale_factor, self.min_neighbors, minSize=(m, m))
        faces = [Face((float(x / s), float(y / s), float((x + bw) / s), float((y + bh) / s)), 1.0, None)
                 for x, y, bw, bh in boxes]
        return sorted(faces, key=lambda f: f.centre[0])

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self(f) for f in frames]


class MTCNNThenHaar:
    """MTCNN, and the Haar cascade on the frames where MTCNN finds no face (``detector="auto"``).

    On the drawn demo faces each detector misses subjects the other finds (``benchmarks/RESULTS.md``: MTCNN misses
    a face whose hair has the colour of its skin, Haar a darker-skinned one); Haar faces are framed from their box
    (:data:`rjcma.preprocess.faces.align.HAAR_BOX_LANDMARKS`), so both give crops of the same framing. Haar runs
    only where MTCNN found nothing, so a frame's faces come from one detector.
    """

    def __init__(self, mtcnn: MTCNNDetector, haar: HaarDetector) -> None:
        self.mtcnn, self.haar = mtcnn, haar

    def __call__(self, frame: np.ndarray) -> list[Face]:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        out = self.mtcnn.detect_batch(frames)
        return [faces if faces else self.haar(f) for f, faces in zip(frames, out)]


_CACHE: dict[tuple, object] = {}
_WARNED: set[str] = set()


def detector_name(detector: str = "auto") -> str:
    """What ``detector`` runs here: ``auto`` is ``mtcnn+haar``, or ``haar`` without the MTCNN weights."""
    if detector == "auto":
        return "mtcnn+haar" if mtcnn_available() else "haar"
    return detector


def get_detector(detector: str = "auto", weights_dir: str | None = None, device: str = "cpu"):
    """A detector object with ``__call__(frame)`` and ``detect_batch(frames)`` (cached per process); see the module
    docstring. ``"mtcnn"`` without its weights raises MissingAssetError."""
    if detector not in DETECTORS:
        raise RjcmaError(f"face detector {detector!r} unknown; choose one of {', '.join(DETECTORS)}")
    key = (detector, str(weights_dir or ""), str(device))
    if key in _CACHE:
        return _CACHE[key]
    if detector == "haar":
        det = HaarDetector()
    elif detector == "mtcnn":
        det = MTCNNDetector(weights_dir=weights_dir, device=device)
    else:
        try:
            det = MTCNNThenHaar(MTCNNDetector(weights_dir=weights_dir, device=device), HaarDetector())
        except MissingAssetError as e:
            msg = f"{e}; falling back to OpenCV's Haar cascade (no landmarks, misses darker-skinned faces more often)"
            if msg not in _WARNED:
                _WARNED.add(msg)
                warnings.warn(msg, stacklevel=2)
            det = HaarDetector()
    _CACHE[key] = det
    return det


def detect_faces(frame_rgb: np.ndarray, detector: str = "auto", **kw) -> list[Face]:
    """Every face in one RGB uint8 frame (H, W, 3), left to right."""
    return get_detector(detector, **kw)(frame_rgb)


def working_copy(frame: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """(the frame scaled down to at most ``side`` pixels on its longer side, the scale); the frame itself and 1.0
    when it is no larger."""
    rgb = check_frame(frame)
    h, w = rgb.shape[:2]
    s = side / max(h, w)
    if s >= 1.0:
        return rgb, 1.0
    size = (max(1, int(round(w * s))), max(1, int(round(h * s))))
    return cv2.resize(rgb, size, interpolation=cv2.INTER_AREA), size[0] / w


def _scaled(face: Face, k: float) -> Face:
    b = tuple(float(v * k) for v in face.box)
    return Face(b, face.score, None if face.landmarks is None else np.asarray(face.landmarks) * k)


def detect_faces_batch(frames: Iterable[np.ndarray], detector: str = "auto", work_side: int = WORK_SIDE,
                       **kw) -> list[list[Face]]:
    """:func:`detect_faces` for many frames at once (MTCNN runs frames of one size as one batch: faster), each on
    its copy at the working size (module docstring); boxes and landmarks in pixels of the frames given."""
    copies = [working_copy(f, work_side) for f in frames]
    found = get_detector(detector, **kw).detect_batch([c for c, _ in copies])
    return [faces if s == 1.0 else [_scaled(f, 1.0 / s) for f in faces] for faces, (_, s) in zip(found, copies)]
