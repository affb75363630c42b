"""Faces stage: cropped_aligned by name (defect 1), black frame + mask for missing faces, detection and tracking in
videos at frame times."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from rjcma.errors import RjcmaError
from rjcma.models.backbones import faces_to_tensor
from rjcma.preprocess.decode import iter_video
from rjcma.preprocess.faces import stream
from rjcma.preprocess.faces.boxes import Face
from rjcma.preprocess.faces.folder import faces_from_folder
from rjcma.preprocess.faces.stream import faces_from_video
from rjcma.preprocess.faces.track import Tracker


def _colour(k: int) -> tuple[int, int, int]:
    return (20 + (k * 37) % 200, 20 + (k * 91) % 200, 20 + (k * 53) % 200)


def _folder(tmp_path, present: list[int], size=(112, 112)):
    d = tmp_path / "cropped_aligned" / "trial"
    d.mkdir(parents=True)
    for k in present:  # row k -> (k+1).jpg, filled with a colour that identifies k
        Image.new("RGB", size, _colour(k)).save(d / f"{k + 1:05d}.jpg", quality=98)
    return d


def test_rows_map_to_jpg_names_not_file_order(tmp_path):
    """Defect 1: rows whose jpg is missing (e.g. the first rows, -5 in the labels) must not shift later faces."""
    N = 12
    present = [3, 4, 6, 7, 8, 11]  # rows 0-2, 5, 9, 10 have no face
    d = _folder(tmp_path, present)
    faces, mask, _ = faces_from_folder(d, N)
    assert faces.shape == (N, 48, 48, 3) and faces.dtype == np.uint8
    assert mask.tolist() == [k in present for k in range(N)]
    for k in range(N):
        if k in present:
            np.testing.assert_allclose(faces[k].reshape(-1, 3).mean(0), _colour(k), atol=3)
        else:
            assert not faces[k].any()  # black frame


def test_bright_faces_are_not_wrapped(tmp_path):
    """Defect 5 (int8 wrap): pixel values above 127 survive unchanged in the uint8 store."""
    d = tmp_path / "f"
    d.mkdir()
    Image.new("RGB", (48, 48), (250, 200, 130)).save(d / "00001.jpg", quality=100)
    faces, mask, _ = faces_from_folder(d, 2)
    assert faces.dtype == np.uint8
    np.testing.assert_allclose(faces[0].reshape(-1, 3).mean(0), (250, 200, 130), atol=2)
    assert (faces[0] > 127).all() and mask.tolist() == [True, False]
    x = faces_to_tensor(faces)
    assert x.shape == (2, 3, 40, 40) and float(x[0].min()) > 0.0  # bright pixels stay positive after (x-.5)/.5


def test_unreadable_jpg_is_a_missing_face(tmp_path):
    d = _folder(tmp_path, [0, 1])
    (d / "00002.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        faces, mask, notes = faces_from_folder(d, 3)
    assert mask.tolist() == [True, False, False] and not faces[1].any()


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(RjcmaError, match="nowhere"):
        faces_from_folder(tmp_path / "nowhere", 3)


def test_rows_take_the_frame_shown_at_their_time_variable_frame_rate(tmp_path, monkeypatch):
    """Row k at k/25 s takes the frame shown at that time (faces_at with the grid times of the preprocessing)."""
    import av
    from fractions import Fraction

    times = np.array([0.0, 0.04, 0.12, 0.13, 0.20, 0.40])
    p = tmp_path / "vfr.mkv"
    with av.open(str(p), "w") as c:
        s = c.add_stream("libx264", rate=25)
        s.width, s.height, s.pix_fmt = 64, 64, "yuv420p"
        s.codec_context.time_base = Fraction(1, 1000)
        for i, t in enumerate(times):
            f = av.VideoFrame.from_ndarray(np.full((64, 64, 3), 20 + 40 * i, np.uint8), format="rgb24")
            f.pts, f.time_base = int(round(t * 1000)), Fraction(1, 1000)
            for pk in s.encode(f):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    # a detector that sees one face filling the frame; the "crop" is the frame's grey level
    monkeypatch.setattr(stream, "face_backend", lambda detector="auto": (
        "test", lambda frames: [[Face((0.0, 0.0, 64.0, 64.0))] for _ in frames],
        lambda rgb, face, size: np.full((size, size, 3), rgb.mean(), np.uint8)))
    st = stream.faces_at(p, np.arange(12) / 25.0, size=8)
    (person,) = st.persons
    frame_of_row = np.rint((person.faces[:, 0, 0, 0].astype(float) - 20) / 40).astype(int)
    # (a frame within a quarter row after the row's time counts as shown then: pts jitter)
    assert frame_of_row.tolist() == [0, 1, 1, 3, 3, 4, 4, 4, 4, 4, 5, 5]
    assert person.mask.all() and np.allclose(st.frame_times, times, atol=1e-3)


def test_tracker_follows_two_people_and_numbers_them_left_to_right():
    tr = Tracker(max_gap=3)
    for i in range(40):
        faces = [Face((200 + i, 50, 260 + i, 110))]  # right person, drifting
        if i % 5:  # left person, missed by the detector every 5th frame
            faces.append(Face((20, 40 + (i % 3), 80, 100 + (i % 3))))
        tr.update(i, faces)
    assert len(tr.detections) == 2
    right, left = 0, 1
    assert tr.detections[right] == 40 and tr.detections[left] == 32
    assert tr.xsum[left] / tr.detections[left] < tr.xsum[right] / tr.detections[right]
    tr.update(60, [Face((24, 40, 84, 100))])  # back after a long gap at the same place: the same person
    assert len(tr.detections) == 2 and tr.detections[left] == 33
    assert tr.kept(tr.detections, 41) == [left, right]  # people, numbered left to right
    tr.update(61, [Face((300, 300, 340, 340))])  # a one-off false detection is no person
    assert len(tr.detections) == 3 and tr.kept(tr.detections, 42) == [left, right]


def _write_video(path, frames, fps=25):
    import av

    with av.open(str(path), "w") as c:
        s = c.add_stream("mpeg4", rate=fps)
        s.height, s.width = frames[0].shape[:2]
        s.pix_fmt = "yuv420p"
        for f in frames:
            for p in s.encode(av.VideoFrame.from_ndarray(f, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_video_without_face_gives_black_masked_frames(tmp_path):
    p = tmp_path / "noface.mp4"
    rng = np.random.default_rng(0)
    _write_video(p, [np.full((96, 128, 3), 90 + i, np.uint8) + rng.integers(0, 5, (96, 128, 3), dtype=np.uint8)
                     for i in range(10)])
    with pytest.warns(UserWarning, match="no face"):
        faces, mask, notes, times = faces_from_video(p, n_rows=10, fps=25.0)
    assert faces.shape == (10, 48, 48, 3) and not mask.any() and not faces.any()
    assert np.allclose(times, np.arange(10) / 25.0)


def test_detects_the_demo_face(tiny_corpus):
    videos = sorted(tiny_corpus.rglob("*.mp4"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        faces, mask, _, _ = faces_from_video(videos[0], detect_every=2)
    assert mask.mean() > 0.5  # the rendered talking face is found in most frames
    assert faces[mask].mean() > 20 and not faces[~mask].any()


@pytest.mark.parametrize("kind", ["empty", "garbage", "truncated"])
def test_bad_videos_raise_naming_the_file(tmp_path, kind):
    good = tmp_path / "good.mp4"
    _write_video(good, [np.full((64, 64, 3), 100, np.uint8)] * 10)
    bad = tmp_path / f"{kind}.mp4"
    if kind == "empty":
        bad.write_bytes(b"")
    elif kind == "garbage":
        bad.write_bytes(b"\x00garbage" * 100)
    else:
        bad.write_bytes(good.read_bytes()[:200])
    with pytest.raises(RjcmaError, match=f"{kind}.mp4"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            faces_from_video(bad)
    with pytest.raises(RjcmaError, match="missing.mp4"):
        list(iter_video(tmp_path / "missing.mp4"))
