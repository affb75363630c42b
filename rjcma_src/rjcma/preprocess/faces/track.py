"""Tracking: the faces of successive frames linked into one track per person, by box overlap.

A face continues the live track whose last box it overlaps most (IoU ≥ :data:`TRACK_IOU`, greedy); a face that
continues none may resume a track lost longer ago at the same place (a person the detector missed for a while),
else it starts a track. Tracks found in too few of the tried frames are false detections
(:data:`MIN_TRACK_FRACTION`, :data:`MIN_TRACK_DETECTIONS`); people are numbered left to right by their mean box
centre (:func:`rjcma.preprocess.faces.stream.faces_at`).

A person the detector misses for longer than :data:`MAX_GAP_S` and who has moved meanwhile comes back as a new
track; :meth:`Tracker.join` (prediction asks for it) makes such a track the continuation of the one that ended
before it began, near where that one was last seen, so one person stays one person.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from rjcma.preprocess.faces.boxes import Face, iou

TRACK_IOU = 0.3  # a face continues a track when its box overlaps the track's last box by this much (or is close)
MAX_GAP_S = 0.5  # a track survives this long without a detection (frames in between keep its last face)
MIN_TRACK_FRACTION = 0.05  # tracks detected in fewer of the tried frames are dropped as false detections
MIN_TRACK_DETECTIONS = 3
JOIN_DISTANCE = 1.5  # a track continues one that ended before it began when it starts within this many box sides


def match(a, b) -> float:
    """How well box ``a`` continues box ``b``: their IoU, or, for boxes of a similar size whose centres are within
    half a box of each other (a jittery detector), a score just above :data:`TRACK_IOU`."""
    o = iou(a, b)
    if o >= TRACK_IOU:
        return o
    sa, sb = max(a[2] - a[0], a[3] - a[1]), max(b[2] - b[0], b[3] - b[1])
    d = np.hypot((a[0] + a[2] - b[0] - b[2]) / 2.0, (a[1] + a[3] - b[1] - b[3]) / 2.0)
    if min(sa, sb) > 0 and max(sa, sb) / min(sa, sb) < 1.6 and d < 0.5 * max(sa, sb):
        return TRACK_IOU + 1e-3 * (1.0 - d / max(sa, sb))
    return o


class Tracker:
    """Greedy box-overlap tracking (module docstring). ``update(i, faces)`` for the detections of frame ``i``, in
    increasing frame order; :meth:`active` gives the tracks live at frame ``i`` with their last face. ``max_gap``:
    frames a track survives without a detection."""

    def __init__(self, max_gap: int):
        self.max_gap = max_gap
        self.last: dict[int, tuple[int, Face]] = {}  # track -> (frame of last detection, face)
        self.first: dict[int, tuple[int, Face]] = {}  # track -> (frame of first detection, face)
        self.detections: dict[int, int] = {}
        self.xsum: dict[int, float] = {}

    def update(self, i: int, faces: list[Face]) -> None:
        live = {k: v for k, v in self.last.items() if i - v[0] <= self.max_gap}
        pairs = sorted(((match(f.box, live[k][1].box), j, k) for j, f in enumerate(faces) for k in live), reverse=True)
        used_f, used_t = set(), set()
        for o, j, k in pairs:
            if o < TRACK_IOU or j in used_f or k in used_t:
                continue
            used_f.add(j), used_t.add(k)
            self._put(k, i, faces[j])
        for j, f in enumerate(faces):  # a face that continues no live track may resume a lost one at its place
            if j in used_f:
                continue
            lost = sorted(((match(f.box, v[1].box), k) for k, v in self.last.items() if k not in live and
                           k not in used_t), reverse=True)
            if lost and lost[0][0] >= TRACK_IOU:
                used_t.add(lost[0][1])
                self._put(lost[0][1], i, f)
            else:
                self._put(len(self.detections), i, f)

    def _put(self, k: int, i: int, face: Face) -> None:
        self.first.setdefault(k, (i, face))
        self.last[k] = (i, face)
        self.detections[k] = self.detections.get(k, 0) + 1
        self.xsum[k] = self.xsum.get(k, 0.0) + (face.box[0] + face.box[2]) / 2.0

    def active(self, i: int) -> list[tuple[int, Any]]:
        return [(k, f) for k, (j, f) in self.last.items() if i - j <= self.max_gap]

    def join(self, tracks) -> dict[int, int]:
        """{track: the track it continues, itself for a first appearance} over ``tracks``: a track continues the
        chain whose last detection came before its first one and lies nearest to it, within :data:`JOIN_DISTANCE`
        box sides and a size ratio under 1.6. The joined tracks' detections count for the first of the chain."""
        tails: dict[int, tuple[int, Face]] = {}  # chain -> its last (frame, face)
        root: dict[int, int] = {}
        for k in sorted(tracks, key=lambda t: self.first[t][0]):
            f0, face = self.first[k]
            near = []
            for r, (f1, end) in tails.items():
                sa, sb = face.size, end.size
                d = np.hypot(face.centre[0] - end.centre[0], face.centre[1] - end.centre[1]) / max(sa, sb, 1e-6)
                if f1 < f0 and min(sa, sb) > 0 and max(sa, sb) / min(sa, sb) < 1.6 and d < JOIN_DISTANCE:
                    near.append((d, r))
            root[k] = min(near)[1] if near else k
            tails[root[k]] = self.last[k]
            if root[k] != k:
                self.detections[root[k]] += self.detections.pop(k)
                self.xsum[root[k]] += self.xsum.pop(k)
        return root

    def kept(self, tracks, tried: int) -> list[int]:
        """Those of ``tracks`` that are people (detected in enough of the ``tried`` frames), left to right."""
        need = max(MIN_TRACK_DETECTIONS, int(np.ceil(MIN_TRACK_FRACTION * tried)))
        keep = [k for k in tracks if self.detections.get(k, 0) >= need]
        return sorted(keep, key=self.centre_x)

    def centre_x(self, k: int) -> float:
        """Mean box centre (pixels) of track ``k``."""
        return self.xsum[k] / self.detections[k]
