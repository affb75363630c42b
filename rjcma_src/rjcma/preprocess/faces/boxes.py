"""A detected face (box, probability, five landmarks) and the one box overlap (IoU) of the package."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from rjcma.errors import RjcmaError

LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face. ``box`` (x0, y0, x1, y1) and ``landmarks`` (5, 2) in pixels of the frame.

    ``landmarks``: left eye, right eye, nose, left and right mouth corner (image left first, :data:`LANDMARK_NAMES`);
    None for a detector without landmarks (Haar). ``score``: the detector's face probability (1.0 for Haar, which
    gives none).
    """

    box: tuple[float, float, float, float]
    score: float = 1.0
    landmarks: np.ndarray | None = None

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two boxes (x0, y0, x1, y1); 0 for boxes that do not overlap or have no area."""
    x0, y0, x1, y1 = max(a[0], b[0]), max(a[1], b[1]), min(a[2], b[2]), min(a[3], b[3])
    inter = max(0.0, x1 - x0) * max(0.0, y1 - y0)
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / ua if ua > 0 else 0.0


def check_frame(frame) -> np.ndarray:
    """The frame as an RGB uint8 (H, W, 3) array, or one clear error."""
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise RjcmaError(f"face detection needs an RGB uint8 frame (H, W, 3); got {a.dtype} {a.shape}")
    return a
