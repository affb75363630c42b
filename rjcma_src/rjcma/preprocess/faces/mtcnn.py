"""MTCNN (Zhang et al. 2016): every face of a batch of frames with a box, a probability and five landmarks.

The networks are :mod:`rjcma.models.mtcnn`; the weights are the files ``pnet.pt``, ``rnet.pt``, ``onet.pt`` shipped
inside the ``facenet-pytorch`` package (MIT), found without importing it (:mod:`rjcma.preprocess.faces` says why).
The pipeline is the paper's: an image pyramid (factor 0.709) through the proposal network P-Net, non-maximum
suppression (NMS), box regression and squaring; the surviving boxes cropped to 24 x 24 for R-Net, again to 48 x 48
for O-Net, which adds the landmarks; a last NMS that measures overlap by the smaller box. Thresholds 0.6 / 0.7 / 0.7
as released. Crops are taken with ``torchvision.ops.roi_align`` (area averaging, zeros outside the image), so every
stage of a batch of frames runs as one tensor operation.

Weights are looked up in: the ``weights_dir`` argument; ``$RJCMA_WEIGHTS_DIR/mtcnn``; the installed facenet-pytorch.
"""

from __future__ import annotations

import importlib.util
import math
import os
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from rjcma.errors import MissingAssetError
from rjcma.models.mtcnn import PIXEL_MEAN, PIXEL_SCALE, WEIGHT_FILES, load_mtcnn
from rjcma.preprocess.faces.boxes import Face, check_frame

WEIGHTS_ENV = "RJCMA_WEIGHTS_DIR"
MIN_FACE_FRAC = 0.08
MAX_BATCH_PIXELS = 8_000_000  # float32 RGB: about 100 MB per batch


# ---- MTCNN weights ---------------------------------------------------------------------------------------------
def mtcnn_weights_dir(weights_dir: str | os.PathLike | None = None) -> Path:
    """The folder holding pnet.pt, rnet.pt and onet.pt, or MissingAssetError naming every place searched."""
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
    key = (str(weights), str(device))
    with _NETS_LOCK:
        if key not in _NETS:
            _NETS[key] = load_mtcnn(weights, device)
        return _NETS[key]


@dataclass
class MTCNNDetector:
    """MTCNN's three-stage cascade over batches of frames (see the module docstring).

    ``min_face``: the smallest face side searched, in pixels; None = max(20, 8 % of the shorter image side), the
    smallest face of the Haar path (:class:`rjcma.preprocess.faces.detect.HaarDetector`). The pyramid, and so the time,
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
            by_shape.setdefault(check_frame(f).shape, []).append(i)
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
        from torchvision.ops import roi_align

        rois = torch.cat([img[:, None].to(boxes.dtype), boxes[:, :4]], 1)
        # 2 x 2 bilinear samples per output pixel: close to area averaging for boxes up to 4x the crop side
        crops = roi_align(x, rois, (size, size), spatial_scale=1.0, sampling_ratio=2, aligned=True)
        return (crops - PIXEL_MEAN) * PIXEL_SCALE

    def _refine(self, x, boxes, img):
        reg, prob = self.rnet(self._crops(x, boxes, img, 24))
        ok = prob > self.thresholds[1]
        boxes, img, reg, prob = boxes[ok], img[ok], reg[ok], prob[ok]
        keep = _nms_each(boxes[:, :4], prob, img, 0.7)
        boxes, img, reg, prob = boxes[keep], img[keep], reg[keep], prob[keep]
        return _square(torch.cat([_regress(boxes[:, :4], reg), prob[:, None]], 1)), img

    def _output(self, x, boxes, img):
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
    from torchvision.ops import nms

    keep = [torch.nonzero(img == i, as_tuple=True)[0] for i in torch.unique(img)]
    keep = [k[nms(boxes[k], scores[k], thr)] for k in keep]
    return torch.sort(torch.cat(keep))[0] if keep else torch.zeros(0, dtype=torch.long, device=boxes.device)


def _regress(boxes, off):
    """MTCNN box regression: each edge moves by its offset times the box width (x) or height (y)."""
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    return boxes + off * torch.stack([w, h, w, h], 1)


def _square(b):
    """Boxes made square around their centre (side = the longer side), score column kept."""
    out = b.clone()
    w, h = b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]
    side = torch.maximum(w, h)
    cx, cy = b[:, 0] + w / 2, b[:, 1] + h / 2
    out[:, 0], out[:, 1] = cx - side / 2, cy - side / 2
    out[:, 2], out[:, 3] = cx + side / 2, cy + side / 2
    return out


def _nms_min(boxes, scores, img, thr: float):
    """NMS with overlap = intersection / smaller area (MTCNN's last stage: drops a box inside a bigger face)."""
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
