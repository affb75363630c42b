"""Alignment: each face warped to the organisers' ``cropped_aligned`` framing, then resized to 48 x 48.

The models are trained on Aff-Wild2's ``cropped_aligned`` images (faces found and aligned by the organisers,
112 x 112, resized to 48 x 48). A face framed tighter, looser or tilted differs from every training image, so a video
without such crops has to give the model the same framing. :func:`align_face` maps the five landmarks onto
:data:`TEMPLATE` by the least-squares similarity transform (rotation, uniform scale, shift; Umeyama 1991), warps the
frame into a 112 x 112 crop (border pixels replicated, as in the organisers' crops) and resizes it to 48 x 48 with
PIL, as :func:`rjcma.preprocess.faces.folder.faces_from_folder` resizes the organisers' jpgs.

The template is where MTCNN puts the five landmarks *inside the corpus's own cropped_aligned images*: the median,
over the jpgs of the demo corpus (``rjcma synth --videos 12 --seconds 6``, the book's seed 7; MTCNN found a face in
1,696 of the 1,940 jpgs of its 13 subjects), of the landmarks MTCNN finds in them, in pixels of the 112 x 112 crop
(``python benchmarks/faces.py --fit-template`` recomputes it). Fitting to the detector's own landmarks, rather than
to a textbook layout, cancels any bias the detector has on every face alike, so a face aligned to it is framed like
the crops the model was trained on. The fitted points lie within 1.5 px of where the demo renderer puts the eye
centres, nose tip and mouth corners of an average face in its crops (:func:`rjcma.data.synth.draw_face`,
``crop_affine``): the template is the corpus's framing, not an artefact of the detector. The widely used 112 x 112
layout of ArcFace (:data:`ARCFACE_TEMPLATE`) frames faces tighter (eye distance 35 px against 31, mouth 41 px below
the eyes against 31); ``benchmarks/faces.py`` compares the two. The demo's layout imitates the organisers' loose
crops but is not measured on their images: for a model trained on Aff-Wild2's own crops, fit the template on a
sample of them (:func:`fit_template`) and pass it as ``template=``.

Faces without landmarks (the Haar fallback) get five pseudo-landmarks from their box: the median position of MTCNN's
landmarks relative to the Haar box on the demo corpus (:data:`HAAR_BOX_LANDMARKS`), so they are framed at the same
scale and centre, only without the roll correction. :func:`crop_square` (a square box crop, no alignment) is the
framing the alignment is measured against (``tests/test_faces.py``, ``benchmarks/faces.py``).
"""

from __future__ import annotations

from typing import Iterable

import cv2
import numpy as np
from PIL import Image

from rjcma.errors import RjcmaError
from rjcma.layout import CROP
from rjcma.preprocess.faces.boxes import Face, check_frame
from rjcma.preprocess.faces.mtcnn import MTCNNDetector

FACE_SIZE = 48  # the default of preprocess.face_size

# Where MTCNN finds the five landmarks inside the demo corpus's cropped_aligned images, in pixels of the 112 x 112
# crop (x, y): the median over the corpus (module docstring; ``python benchmarks/faces.py --fit-template``).
TEMPLATE = np.array([
    [41.09, 45.21],
    [71.93, 44.83],
    [56.68, 61.56],
    [41.91, 75.76],
    [71.59, 75.41],
], dtype=np.float64)

# The common 5-point layout of 112 x 112 ArcFace crops (for comparison; frames faces tighter than the organisers')
ARCFACE_TEMPLATE = np.array([
    [38.2946, 51.6963],
    [73.5318, 51.5014],
    [56.0252, 71.7366],
    [41.5493, 92.3655],
    [70.7299, 92.2041],
], dtype=np.float64)

# MTCNN's landmarks relative to the Haar box of the same face ((x - x0) / w, (y - y0) / h), mean over the demo
# corpus's frames where both detectors found the face (``python benchmarks/faces.py --fit-template``)
HAAR_BOX_LANDMARKS = np.array([
    [0.3420, 0.4199],
    [0.6549, 0.4115],
    [0.5002, 0.5845],
    [0.3499, 0.7355],
    [0.6536, 0.7299],
], dtype=np.float64)


def similarity_transform(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares similarity (rotation, uniform scale, shift) mapping points ``src`` onto ``dst``: 2 x 3 matrix.

    Umeyama (1991) without reflection.
    """
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.ndim != 2 or src.shape[1] != 2 or len(src) < 2:
        raise RjcmaError(f"similarity transform needs two (N, 2) point sets with N >= 2; got {src.shape}, {dst.shape}")
    ms, md = src.mean(0), dst.mean(0)
    s0, d0 = src - ms, dst - md
    var = (s0 ** 2).sum() / len(src)
    if var <= 1e-12:
        raise RjcmaError("landmarks coincide; cannot align the face")
    cov = d0.T @ s0 / len(src)
    U, S, Vt = np.linalg.svd(cov)
    D = np.eye(2)
    if np.linalg.det(U) * np.linalg.det(Vt) < 0:
        D[1, 1] = -1.0
    R = U @ D @ Vt
    scale = float(np.trace(np.diag(S) @ D)) / var
    M = np.zeros((2, 3))
    M[:, :2] = scale * R
    M[:, 2] = md - M[:, :2] @ ms
    return M


def face_landmarks(face: Face) -> np.ndarray:
    """The face's five landmarks, or for a face without them (Haar) the mean layout inside its box."""
    if face.landmarks is not None:
        return np.asarray(face.landmarks, dtype=np.float64).reshape(5, 2)
    x0, y0, x1, y1 = face.box
    return np.array([x0, y0]) + HAAR_BOX_LANDMARKS * np.array([x1 - x0, y1 - y0])


def alignment_matrix(face: Face, template: np.ndarray | None = None) -> np.ndarray:
    """2 x 3 matrix from frame pixels to the 112 x 112 aligned crop."""
    return similarity_transform(face_landmarks(face), TEMPLATE if template is None else template)


def align_face(frame_rgb: np.ndarray, face: Face, size: int = FACE_SIZE, template: np.ndarray | None = None,
               ) -> np.ndarray:
    """The aligned face as uint8 (size, size, 3): 112 x 112 similarity warp to the template, then PIL resize.

    ``size=112`` returns the crop itself (the organisers' format).
    """
    rgb = check_frame(frame_rgb)
    M = alignment_matrix(face, template)
    crop = cv2.warpAffine(rgb, M, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if size == CROP:
        return crop
    # the same resize as the organisers' jpgs get in rjcma.preprocess.faces.folder.faces_from_folder
    return np.asarray(Image.fromarray(crop).resize((size, size)), dtype=np.uint8)


def fit_template(images: Iterable[np.ndarray], detector: MTCNNDetector | None = None, batch: int = 64,
                 ) -> tuple[np.ndarray, int]:
    """(median landmarks (5, 2) in pixels of 112 x 112 crops, number of crops with a face) over aligned crops.

    Each image is resized to 112 x 112 first; the face nearest the centre counts.
    """
    det = detector or MTCNNDetector(min_face=20)
    pts: list[np.ndarray] = []
    buf: list[np.ndarray] = []

    def flush():
        for faces in det.detect_batch(buf):
            if faces:
                f = min(faces, key=lambda f: (f.centre[0] - CROP / 2) ** 2 + (f.centre[1] - CROP / 2) ** 2)
                pts.append(f.landmarks)
        buf.clear()

    for im in images:
        im = check_frame(im)
        if im.shape[:2] != (CROP, CROP):
            im = cv2.resize(im, (CROP, CROP), interpolation=cv2.INTER_AREA)
        buf.append(im)
        if len(buf) >= batch:
            flush()
    if buf:
        flush()
    if not pts:
        raise RjcmaError("no face found in any of the aligned images; cannot fit a template")
    return np.median(np.stack(pts), axis=0), len(pts)


def square_box(box, margin: float = 0.25) -> np.ndarray:
    """Square (cx, cy, side) around ``box`` enlarged by ``margin`` of its side on each edge."""
    x0, y0, x1, y1 = box
    side = max(x1 - x0, y1 - y0) * (1.0 + 2.0 * margin)
    return np.array([(x0 + x1) / 2.0, (y0 + y1) / 2.0, side], dtype=np.float64)


def crop_square(rgb: np.ndarray, cbox: np.ndarray, size: int = FACE_SIZE) -> np.ndarray:
    """Crop the square (cx, cy, side), padding with black outside the image, and resize to size x size."""
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
