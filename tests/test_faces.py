"""Face detection (MTCNN with landmarks, Haar fallback) and alignment to the template (tracking over frames:
test_preprocess_video.py).

Frames are drawn here with the demo corpus's face renderer (no file is read or downloaded). The MTCNN tests need
the weight files of facenet-pytorch, which ``make setup`` installs with ``--no-deps``.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rjcma.data.synth.design import Identity
from rjcma.data.synth.render import crop_affine, draw_face
from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.layout import CROP
from rjcma.preprocess.faces import align as AL
from rjcma.preprocess.faces import detect as D
from rjcma.preprocess.faces import mtcnn as M
from rjcma.preprocess.faces.boxes import Face

LIGHT = (180, 205, 240)  # BGR, the lightest skin of the demo corpus
DARK = (60, 80, 120)  # BGR, the darkest


def _identity(skin, eye_gap=0.38, mouth_w=0.35) -> Identity:
    return Identity(skin=skin, hair=(30, 30, 35), scale=1.0, dx=0.0, dy=0.0, eye_gap=eye_gap, mouth_w=mouth_w,
                      voice="en-us", pitch0=50.0)


def _state(cx, cy, r, roll=0.0, **kw):
    st = {"cx": cx, "cy": cy, "r": r, "roll": roll, "smile": 0.3, "brow": 0.0, "eye": 0.9, "mouth": 0.0,
          "raise": 0.5, "gaze": 0.0}
    st.update(kw)
    return st


def _background(w=384, h=288, seed=0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    g = np.linspace(0, 1, h)[:, None, None]
    c0, c1 = rng.integers(60, 200, 3), rng.integers(60, 200, 3)
    return ((c0 * (1 - g) + c1 * g) * np.ones((1, w, 1))).astype(np.uint8)


def _frame(faces, w=384, h=288, seed=0) -> np.ndarray:
    """RGB frame with the given (state, identity) faces drawn by the demo renderer (which draws BGR)."""
    img = _background(w, h, seed)
    for st, ident in faces:
        draw_face(img, st, ident, "face")
    return np.ascontiguousarray(img[:, :, ::-1])


def _drawn_landmarks(st, ident) -> np.ndarray:
    """Where the renderer puts the eye centres, nose tip and mouth corners (face units -> frame pixels)."""
    th = math.radians(st["roll"])
    c, s = math.cos(th), math.sin(th)
    mw = ident.mouth_w * (1 + 0.12 * st["smile"])
    mouth_y = 0.58 - 0.24 * st["smile"] * (1 - 0.35)
    uv = [(-ident.eye_gap, -0.12), (ident.eye_gap, -0.12), (0.0, 0.27), (-mw, mouth_y), (mw, mouth_y)]
    return np.array([(st["cx"] + st["r"] * (u * c - v * s), st["cy"] + st["r"] * (u * s + v * c)) for u, v in uv])


@pytest.fixture(scope="module")
def mtcnn():
    try:
        return D.get_detector("mtcnn")
    except MissingAssetError as e:  # a missing install step must show, not hide behind a skip
        pytest.fail(f"{e} (make setup installs it)")


# ---- detection -------------------------------------------------------------------------------------------------
def test_mtcnn_finds_the_face_and_its_landmarks(mtcnn):
    ident = _identity(LIGHT)
    st = _state(190, 150, 50)
    faces = mtcnn(_frame([(st, ident)]))
    assert len(faces) == 1
    f = faces[0]
    assert f.score > 0.9 and f.landmarks.shape == (5, 2)
    x0, y0, x1, y1 = f.box
    assert x0 < 190 < x1 and y0 < 150 < y1 and 60 < f.size < 160
    err = np.linalg.norm(f.landmarks - _drawn_landmarks(st, ident), axis=1)
    assert err.max() < 0.25 * st["r"], err  # each point within a quarter of the face's half-width
    le, re, nose, ml, mr = f.landmarks
    assert le[0] < re[0] and ml[0] < mr[0] and le[1] < nose[1] < ml[1]


def test_two_faces_left_to_right_and_none_in_an_empty_frame(mtcnn):
    a, b = _identity(LIGHT), _identity((95, 130, 180), eye_gap=0.36)
    faces = mtcnn(_frame([(_state(104, 115, 38), a), (_state(280, 115, 38), b)], w=384, h=216))
    assert len(faces) == 2
    assert faces[0].centre[0] < 192 < faces[1].centre[0]
    assert mtcnn(_background(seed=3)) == []


def test_darker_skinned_face_is_found(mtcnn):
    ident = _identity(DARK)
    st = _state(200, 150, 52, roll=6.0)
    faces = mtcnn(_frame([(st, ident)], seed=5))
    assert len(faces) == 1
    err = np.linalg.norm(faces[0].landmarks - _drawn_landmarks(st, ident), axis=1)
    assert err.max() < 0.25 * st["r"], err


def test_batch_gives_the_same_faces_as_single_frames(mtcnn):
    frames = [_frame([(_state(150 + 20 * i, 140, 45), _identity(LIGHT))], seed=i) for i in range(3)]
    frames.append(np.zeros((120, 160, 3), np.uint8))  # another size in the same batch, no face
    batch = D.detect_faces_batch(frames, detector="mtcnn")
    assert len(batch) == 4 and batch[3] == []
    for fr, got in zip(frames[:3], batch[:3]):
        one = D.detect_faces(fr, detector="mtcnn")
        assert len(one) == len(got) == 1
        np.testing.assert_allclose(one[0].box, got[0].box, atol=1e-3)
        np.testing.assert_allclose(one[0].landmarks, got[0].landmarks, atol=1e-3)


def test_bad_frame_is_one_clear_error(mtcnn):
    with pytest.raises(RjcmaError, match="RGB uint8"):
        D.detect_faces(np.zeros((10, 10), np.uint8), detector="mtcnn")
    with pytest.raises(RjcmaError, match="unknown"):
        D.detect_faces(np.zeros((10, 10, 3), np.uint8), detector="retina")


# ---- alignment -------------------------------------------------------------------------------------------------
def test_similarity_transform_recovers_rotation_scale_shift():
    rng = np.random.default_rng(0)
    th, sc, t = 0.4, 1.7, np.array([12.0, -5.0])
    R = sc * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    src = rng.uniform(0, 100, (5, 2))
    M = AL.similarity_transform(src, src @ R.T + t)
    np.testing.assert_allclose(M[:, :2], R, atol=1e-9)
    np.testing.assert_allclose(M[:, 2], t, atol=1e-9)
    with pytest.raises(RjcmaError):
        AL.similarity_transform(np.ones((5, 2)), src)


def test_landmarks_land_on_the_template():
    """Dots drawn at the landmarks of a rotated, scaled face end up on the template points of the aligned crop."""
    import cv2

    th, sc, t = math.radians(20), 2.3, np.array([140.0, 60.0])
    R = sc * np.array([[math.cos(th), -math.sin(th)], [math.sin(th), math.cos(th)]])
    lm = AL.TEMPLATE @ R.T + t  # the face in the frame: template rotated by 20 degrees, 2.3x larger
    img = np.zeros((400, 400, 3), np.uint8)
    for x, y in lm:
        cv2.circle(img, (int(round(x * 16)), int(round(y * 16))), 5 * 16, (255, 255, 255), -1, cv2.LINE_AA, 4)
    crop = AL.align_face(img, Face((0, 0, 1, 1), 1.0, lm), size=CROP)
    assert crop.shape == (CROP, CROP, 3) and crop.dtype == np.uint8
    g = crop[:, :, 0].astype(np.float64)
    yy, xx = np.mgrid[: CROP, : CROP]
    for tx, ty in AL.TEMPLATE:  # centroid of the dot near each template point
        win = (np.abs(xx - tx) < 6) & (np.abs(yy - ty) < 6)
        w = g * win
        assert w.sum() > 0
        cx, cy = (w * xx).sum() / w.sum(), (w * yy).sum() / w.sum()
        assert abs(cx - tx) < 0.6 and abs(cy - ty) < 0.6, (cx, cy, tx, ty)
    small = AL.align_face(img, Face((0, 0, 1, 1), 1.0, lm))
    assert small.shape == (48, 48, 3)


def test_aligned_crop_matches_the_corpus_framing(mtcnn):
    """The detected, aligned face agrees with the crop the demo corpus writes for the same frame, better than the
    square Haar-style box crop of the same detection."""
    import cv2

    ident = _identity((120, 160, 210))
    st = _state(190, 150, 54, roll=8.0)
    bgr = _frame([(st, ident)], seed=2)[:, :, ::-1]
    A = crop_affine(st["cx"], st["cy"], st["r"], st["roll"])
    ref = cv2.warpAffine(np.ascontiguousarray(bgr), A, (CROP, CROP), flags=cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)[:, :, ::-1]
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    f = mtcnn(rgb)[0]
    aligned = AL.align_face(rgb, f, size=CROP).astype(np.float64)
    square = AL.crop_square(rgb, AL.square_box(f.box), CROP).astype(np.float64)
    mad_aligned = np.abs(aligned - ref).mean()
    mad_square = np.abs(square - ref).mean()
    assert mad_aligned < 12 and mad_aligned < 0.7 * mad_square, (mad_aligned, mad_square)


def test_haar_face_gets_the_same_framing_from_its_box():
    x0, y0, w, h = 100.0, 50.0, 80.0, 80.0
    f = Face((x0, y0, x0 + w, y0 + h), 1.0, None)
    lm = AL.face_landmarks(f)
    np.testing.assert_allclose(lm, [x0, y0] + AL.HAAR_BOX_LANDMARKS * [w, h])
    M = AL.alignment_matrix(f)
    assert abs(M[0, 1]) < 0.02 * abs(M[0, 0])  # nearly no rotation from a box
    assert AL.align_face(np.zeros((300, 300, 3), np.uint8), f).shape == (48, 48, 3)


# ---- Haar fallback ---------------------------------------------------------------------------------------------
def test_haar_fallback_when_the_weights_are_missing(tmp_path, monkeypatch):
    monkeypatch.setattr(M, "_facenet_pytorch_data", lambda: tmp_path / "none")
    monkeypatch.delenv(M.WEIGHTS_ENV, raising=False)
    monkeypatch.setattr(D, "_CACHE", {})
    monkeypatch.setattr(D, "_WARNED", set())
    with pytest.raises(MissingAssetError, match="--no-deps facenet-pytorch"):
        D.get_detector("mtcnn")
    frame = _frame([(_state(190, 150, 60), _identity(LIGHT))])
    with pytest.warns(UserWarning, match="Haar"):
        faces = D.detect_faces(frame, detector="auto")
    assert isinstance(D.get_detector("auto"), D.HaarDetector)
    assert all(f.landmarks is None for f in faces)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once per process, not per frame
        D.detect_faces_batch([frame, frame], detector="auto")


def test_auto_asks_haar_only_where_mtcnn_found_nothing():
    class Stub:
        def detect_batch(self, frames):
            return [[Face((0, 0, 10, 10), 0.9, np.zeros((5, 2)))], []]

    class Haar:
        calls = 0

        def __call__(self, frame):
            Haar.calls += 1
            return [Face((5, 5, 50, 50), 1.0, None)]

    out = D.MTCNNThenHaar(Stub(), Haar()).detect_batch([np.zeros((60, 60, 3), np.uint8)] * 2)
    assert out[0][0].landmarks is not None and out[1][0].landmarks is None and Haar.calls == 1


def test_wrong_weight_file_is_one_clear_error(tmp_path):
    import torch

    from rjcma.models.mtcnn import load_mtcnn

    src = M.mtcnn_weights_dir()
    for name in ("pnet.pt", "rnet.pt", "onet.pt"):
        (tmp_path / name).write_bytes((src / name).read_bytes())
    torch.save({"conv1.weight": torch.zeros(1)}, tmp_path / "rnet.pt")
    with pytest.raises(RjcmaError, match="rnet.pt: not MTCNN weights"):
        load_mtcnn(tmp_path)
    (tmp_path / "onet.pt").unlink()
    with pytest.raises(MissingAssetError, match="onet.pt"):
        load_mtcnn(tmp_path)


def test_the_same_people_at_320_px_and_at_4k(mtcnn):
    """Detection runs on a copy at the working size, so a 4K copy of a clip (upscaled, with the fine sensor noise a
    4K camera adds) gives the same faces as the clip, each at the same place within 2 % of the frame's width, and
    the tracker follows the same three people. At full 4K resolution MTCNN's crops for its later stages sample the
    frame too sparsely and lose faces in that noise."""
    import cv2

    from rjcma.preprocess.faces.track import Tracker

    rng = np.random.default_rng(0)
    people = [(_identity(LIGHT), 58.0), (_identity(LIGHT, eye_gap=0.4), 160.0), (_identity(LIGHT, mouth_w=0.4), 262.0)]
    small = [_frame([(_state(x + 2 * np.sin(k / 3 + j), 120 + 3 * np.cos(k / 4), 36.0), ident)
                     for j, (ident, x) in enumerate(people)], 320, 240, seed=3) for k in range(4)]
    big = [np.clip(cv2.resize(f, (3840, 2880), interpolation=cv2.INTER_CUBIC).astype(np.int16)
                   + rng.integers(-40, 41, (2880, 3840, 3)), 0, 255).astype(np.uint8) for f in small]
    found = [D.detect_faces_batch(frames, detector="mtcnn") for frames in (small, big)]
    tracks = []
    for frames, width in zip(found, (320, 3840)):
        tracker = Tracker(max_gap=2)
        for i, faces in enumerate(frames):
            tracker.update(i, faces)
        tracks.append(sorted(tracker.centre_x(k) / width for k in tracker.kept(tracker.detections, len(frames))))
    for a, b in zip(*found):
        assert len(a) == len(b) == 3
        assert all(abs(fa.centre[0] / 320 - fb.centre[0] / 3840) < 0.02 for fa, fb in zip(a, b))
    assert len(tracks[0]) == len(tracks[1]) == 3 and np.allclose(tracks[0], tracks[1], atol=0.02)


def test_working_copy_scales_only_large_frames():
    frame = np.zeros((2160, 3840, 3), np.uint8)
    small, s = D.working_copy(frame)
    assert small.shape == (360, 640, 3) and s == pytest.approx(1 / 6)
    same, s = D.working_copy(frame[:240, :320])
    assert same.shape == (240, 320, 3) and s == 1.0


def test_a_person_lost_for_a_while_stays_one_track():
    """A face missed for longer than the tracker's gap and found again a little further on starts a new track;
    joining makes it the continuation of the track that ended before it began, near there. A person seen at the
    same time elsewhere is never joined."""
    from rjcma.preprocess.faces.track import Tracker

    box = lambda x: Face((x - 30.0, 100.0, x + 30.0, 160.0), 0.99)  # noqa: E731
    t = Tracker(max_gap=3)
    for i in range(41):
        faces = [box(400.0)]  # the other person, in every frame
        if i <= 10:
            faces.insert(0, box(100.0))
        elif i >= 30:
            faces.insert(0, box(150.0))  # back after 20 frames, 50 px (0.8 box) to the right
        t.update(i, faces)
    assert len(t.detections) == 3  # lost, then a new track
    root = t.join(list(t.detections))
    first, other, again = sorted(root, key=lambda k: t.first[k][0] * 1000 + t.first[k][1].centre[0])[:3]
    assert root[again] == first and root[other] == other and root[first] == first
    assert t.detections[first] == 22 and again not in t.detections
