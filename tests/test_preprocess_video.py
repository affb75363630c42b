"""Faces stage: cropped_aligned by name (defect 1), black frame + mask for missing faces, detection in videos."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from PIL import Image

from rjcma.errors import RjcmaError
from rjcma.preprocess import video as V


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
    faces, mask, _ = V.faces_from_folder(d, N)
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
    faces, mask, _ = V.faces_from_folder(d, 2)
    assert faces.dtype == np.uint8
    np.testing.assert_allclose(faces[0].reshape(-1, 3).mean(0), (250, 200, 130), atol=2)
    assert (faces[0] > 127).all() and mask.tolist() == [True, False]
    x = V.faces_to_tensor(faces)
    assert x.shape == (2, 3, 40, 40) and float(x[0].min()) > 0.0  # bright pixels stay positive after (x-.5)/.5


def test_unreadable_jpg_is_a_missing_face(tmp_path):
    d = _folder(tmp_path, [0, 1])
    (d / "00002.jpg").write_bytes(b"\xff\xd8 truncated")
    with pytest.warns(UserWarning, match="unreadable"):
        faces, mask, notes = V.faces_from_folder(d, 3)
    assert mask.tolist() == [True, False, False] and not faces[1].any()


def test_missing_folder_names_it(tmp_path):
    with pytest.raises(RjcmaError, match="nowhere"):
        V.faces_from_folder(tmp_path / "nowhere", 3)


def test_rows_to_frames_variable_frame_rate():
    # frames at irregular times (VFR): row k at k/25 s takes the frame shown at that time
    times = np.array([0.0, 0.04, 0.12, 0.13, 0.20, 0.40])
    idx = V.rows_to_frames(times, 25.0, 12)
    # (a frame within a quarter frame after the row's time counts as shown then: pts jitter)
    assert idx.tolist() == [0, 1, 1, 3, 3, 4, 4, 4, 4, 4, 5, 5]


def test_smooth_boxes_bridges_short_gaps_only():
    found = np.array([1, 1, 0, 1, 0, 0, 0, 0, 0, 1], bool)
    boxes = np.array([[10, 10, 20]] * 10, float)
    sm, valid = V.smooth_boxes(boxes, found, max_gap=3)
    assert valid.tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 1]
    assert np.allclose(sm[valid], [10, 10, 20])


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
        faces, mask, notes, times = V.faces_from_video(p, n_rows=10, fps=25.0)
    assert faces.shape == (10, 48, 48, 3) and not mask.any() and not faces.any()
    assert np.allclose(times, np.arange(10) / 25.0)


def test_detects_the_demo_face(tiny_corpus):
    videos = sorted(tiny_corpus.rglob("*.mp4"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        faces, mask, _, _ = V.faces_from_video(videos[0], detect_every=2)
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
            V.faces_from_video(bad)
    with pytest.raises(RjcmaError, match="missing.mp4"):
        list(V.iter_frames(tmp_path / "missing.mp4"))
