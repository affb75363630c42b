"""Corpus reader (layout discovery), strict annotation files, video containers, length reconciliation.

Every corpus here is hand-made in the organisers' layout (the book's chapter *Data format*) inside a tmp dir: tiny annotation files,
cropped_aligned jpgs and real 1-second videos written with PyAV.
"""

from __future__ import annotations

import warnings
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from rjcma.data.abaw import (
    Corpus,
    describe_layout,
    find_corpus,
    label_lengths,
    read_subject_map,
    read_test_list,
    video_stem_of,
)
from rjcma.data.annotations import LengthMismatchWarning, count_label_rows, fit_length, read_labels, reconcile_length
from rjcma.data.video_info import video_info
from rjcma.errors import RjcmaError

ANN = "6th ABAW Annotations/VA_Estimation_Challenge"
TEST_LIST = "names_of_videos_in_each_test_set/Valence_Arousal_Estimation_Challenge_test_set_release.txt"


# ---------------------------------------------------------------------------------------------------------------
# helpers: tiny organiser-style files
# ---------------------------------------------------------------------------------------------------------------
def write_video(path: Path, frames: int = 25, fps: int = 25, size: int = 32, audio: bool = False) -> Path:
    """A real video: ``frames`` frames of size×size at ``fps`` (H.264 in .mp4, MPEG-4 part 2 otherwise)."""
    import av

    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "libx264" if path.suffix == ".mp4" else "mpeg4"
    with av.open(str(path), "w") as out:
        vs = out.add_stream(codec, rate=fps)
        vs.width = vs.height = size
        vs.pix_fmt = "yuv420p"
        aus = None
        if audio:
            aus = out.add_stream("aac", rate=16000)
            aus.layout = "mono"
        for i in range(frames):
            img = np.full((size, size, 3), (i * 9) % 256, dtype=np.uint8)
            for packet in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(packet)
        for packet in vs.encode():
            out.mux(packet)
        if aus is not None:
            samples = int(16000 * frames / fps)
            t = np.arange(samples) / 16000
            wave = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)[None]
            chunk = 1024
            for s in range(0, samples, chunk):
                af = av.AudioFrame.from_ndarray(np.ascontiguousarray(wave[:, s : s + chunk]), format="fltp",
                                                layout="mono")
                af.sample_rate = 16000
                af.pts = s
                af.time_base = Fraction(1, 16000)
                for packet in aus.encode(af):
                    out.mux(packet)
            for packet in aus.encode():
                out.mux(packet)
    return path


def write_labels(path: Path, rows, header: str = "valence,arousal") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    lines = [header] + [r if isinstance(r, str) else f"{r[0]},{r[1]}" for r in rows]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_faces(folder: Path, n: int, missing=()) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k in range(n):
        if k not in missing:
            (folder / f"{k + 1:05d}.jpg").write_bytes(b"\xff\xd8\xff\xd9")  # name is what the reader checks
    return folder


def smooth_rows(n: int, seed: int = 0) -> list[tuple[float, float]]:
    rng = np.random.default_rng(seed)
    va = np.tanh(rng.normal(0, 0.1, size=(n, 2)).cumsum(axis=0))
    return [(round(v, 4), round(a, 4)) for v, a in va]


@pytest.fixture(scope="module")
def organiser_corpus(tmp_path_factory) -> Path:
    """A corpus as the organisers ship it: spaces in folder names, .mp4 and .avi in batch folders, a
    _left/_right pair sharing one video, nested and extra cropped_aligned folders, missing jpgs, -5 rows,
    a test list and a test trial."""
    root = tmp_path_factory.mktemp("affwild2")
    n = 25
    ann = root / ANN
    rows = smooth_rows(n)
    # -5 first (trial 1) and in the middle (trial 2)
    first = ["-5,-5"] * 3 + [f"{v},{a}" for v, a in rows[3:]]
    middle = [f"{v},{a}" for v, a in rows[:10]] + ["-5,-5"] * 4 + [f"{v},{a}" for v, a in rows[14:]]
    write_labels(ann / "Train_Set/1-30-640x360.txt", first)
    write_labels(ann / "Train_Set/video2_left.txt", middle)
    write_labels(ann / "Train_Set/video2_right.txt", rows)
    write_labels(ann / "Validation_Set/val-01.txt", rows)
    (ann / "Train_Set/.DS_Store").write_bytes(b"\0")
    (ann / "Train_Set/readme.md").write_text("not an annotation")
    # test list (CRLF line ends, a blank line, padding spaces)
    (root / TEST_LIST).parent.mkdir(parents=True)
    (root / TEST_LIST).write_bytes(b"test-01\r\n\r\n  test-02_left  \r\n")
    # videos: batch folders with spaces, an .avi shared by the left/right pair, a stray non-video file
    write_video(root / "videos/batch 1/1-30-640x360.mp4", audio=True)
    write_video(root / "videos/batch2/video2.avi")
    write_video(root / "videos/new_vids/val-01.mp4")
    write_video(root / "videos/new_vids/test-01.mp4")
    write_video(root / "videos/new_vids/test-02.mp4")
    (root / "videos/batch2/notes.txt").write_text("x")
    # faces: nested cropped_aligned/cropped_aligned, an extra cropped_aligned_new_50_vids, one trial without
    faces = root / "faces/cropped_aligned/cropped_aligned"
    write_faces(faces / "1-30-640x360", n, missing={0, 12})
    write_faces(faces / "video2_left", n)
    write_faces(faces / "video2_right", n, missing={24})
    write_faces(root / "faces/cropped_aligned_new_50_vids/test-01", n)
    # val-01 and test-02_left have no face folder
    return root


# ---------------------------------------------------------------------------------------------------------------
# layout
# ---------------------------------------------------------------------------------------------------------------
def test_finds_every_part_of_the_organiser_layout(organiser_corpus):
    c = find_corpus(organiser_corpus)
    assert isinstance(c, Corpus)
    assert c.names == sorted(c.names)
    assert [t.name for t in c.partition("train")] == ["1-30-640x360", "video2_left", "video2_right"]
    assert [t.name for t in c.partition("validation")] == ["val-01"]
    assert [t.name for t in c.partition("test")] == ["test-01", "test-02_left"]
    assert c.annotations_dir == organiser_corpus / ANN
    assert c.test_list == organiser_corpus / TEST_LIST
    t = c.by_name("1-30-640x360")
    assert t.annotation == organiser_corpus / ANN / "Train_Set/1-30-640x360.txt"
    assert t.video == organiser_corpus / "videos/batch 1/1-30-640x360.mp4"
    assert t.faces_dir == organiser_corpus / "faces/cropped_aligned/cropped_aligned/1-30-640x360"
    assert t.face_path(0).name == "00001.jpg" and not t.face_path(0).exists()  # missing jpg: row 0
    assert t.face_path(1).exists()
    assert c.by_name("val-01").faces_dir is None
    assert c.by_name("test-01").faces_dir == organiser_corpus / "faces/cropped_aligned_new_50_vids/test-01"
    assert len(c.faces_dirs) == 3  # faces/cropped_aligned, its nested twin, cropped_aligned_new_50_vids
    with pytest.raises(RjcmaError, match="no trial named"):
        c.by_name("nope")


def test_left_right_pair_shares_the_video_and_the_subject(organiser_corpus):
    c = find_corpus(organiser_corpus)
    left, right = c.by_name("video2_left"), c.by_name("video2_right")
    assert left.video == right.video == organiser_corpus / "videos/batch2/video2.avi"
    assert left.video_stem == right.video_stem == "video2"
    assert left.subject == right.subject == "video2"
    assert left.faces_dir != right.faces_dir and left.annotation != right.annotation
    assert video_stem_of("a_b_right") == "a_b" and video_stem_of("_left") == "_left"


def test_test_trials_have_no_annotation_but_a_video(organiser_corpus):
    c = find_corpus(organiser_corpus)
    t1, t2 = c.by_name("test-01"), c.by_name("test-02_left")
    assert t1.annotation is None and t1.partition == "test"
    assert t1.video == organiser_corpus / "videos/new_vids/test-01.mp4"
    assert t2.video == organiser_corpus / "videos/new_vids/test-02.mp4"  # the stem without _left
    assert c.summary() == {"train": 3, "validation": 1, "test": 2, "videos": 5, "with_faces": 4, "subjects": 5}
    assert label_lengths(c) == {"1-30-640x360": 25, "video2_left": 25, "video2_right": 25, "val-01": 25}
    assert any("without a cropped_aligned folder" in n for n in c.notes)


def test_per_part_overrides(organiser_corpus, tmp_path):
    # annotations moved elsewhere, faces and videos pointed at directly
    ann = tmp_path / "annotations only" / "VA_Estimation_Challenge"
    write_labels(ann / "Train_Set/1-30-640x360.txt", smooth_rows(25))
    write_labels(ann / "Validation_Set/val-01.txt", smooth_rows(25))
    c = find_corpus(
        organiser_corpus,
        annotations_root=ann,  # the VA_Estimation_Challenge folder itself
        faces_root=organiser_corpus / "faces/cropped_aligned",
        videos_root=organiser_corpus / "videos/new_vids",
    )
    assert c.annotations_dir == ann
    assert [t.name for t in c.trials if t.partition != "test"] == ["1-30-640x360", "val-01"]
    assert c.by_name("1-30-640x360").video is None  # not below the videos override
    assert c.by_name("val-01").video == organiser_corpus / "videos/new_vids/val-01.mp4"
    assert c.by_name("1-30-640x360").faces_dir is not None
    assert c.by_name("test-01").faces_dir is None  # cropped_aligned_new_50_vids is outside the faces override
    with pytest.raises(RjcmaError, match="faces_root is not a folder"):
        find_corpus(organiser_corpus, faces_root=tmp_path / "nope")


def test_missing_root_or_annotations_say_what_was_looked_for(tmp_path):
    with pytest.raises(RjcmaError, match="corpus folder not found.*rjcma synth"):
        find_corpus(tmp_path / "absent")
    (tmp_path / "cropped_aligned/x").mkdir(parents=True)
    with pytest.raises(RjcmaError, match="VA_Estimation_Challenge/Train_Set"):
        find_corpus(tmp_path)
    (tmp_path / "VA_Estimation_Challenge/Train_Set").mkdir(parents=True)
    with pytest.raises(RjcmaError, match="no .txt annotation files"):
        find_corpus(tmp_path)


def test_two_annotation_releases_are_refused(tmp_path):
    for rel in ("5th ABAW Annotations", "6th ABAW Annotations"):
        write_labels(tmp_path / rel / "VA_Estimation_Challenge/Train_Set/a.txt", smooth_rows(3))
    with pytest.raises(RjcmaError, match="2 'VA_Estimation_Challenge' folders.*annotations_root"):
        find_corpus(tmp_path)
    c = find_corpus(tmp_path, annotations_root=tmp_path / "6th ABAW Annotations")
    assert c.names == ["a"]


def test_a_trial_annotated_twice_or_also_in_the_test_list_is_refused(tmp_path):
    write_labels(tmp_path / ANN / "Train_Set/a.txt", smooth_rows(3))
    write_labels(tmp_path / ANN / "Validation_Set/a.txt", smooth_rows(3))
    with pytest.raises(RjcmaError, match="also annotated"):
        find_corpus(tmp_path)
    (tmp_path / ANN / "Validation_Set/a.txt").unlink()
    (tmp_path / TEST_LIST).parent.mkdir(parents=True)
    (tmp_path / TEST_LIST).write_text("a\n")
    with pytest.raises(RjcmaError, match="test trial 'a' also has an annotation file"):
        find_corpus(tmp_path)


def test_subject_map(organiser_corpus, tmp_path):
    m = tmp_path / "subjects.csv"
    m.write_text("trial,subject\n1-30-640x360,alice\nval-01,alice\nunknown-trial,bob\n")
    c = find_corpus(organiser_corpus, subject_map=m)
    assert c.by_name("1-30-640x360").subject == c.by_name("val-01").subject == "alice"
    assert c.by_name("video2_left").subject == "video2"
    assert any("not in the corpus" in n for n in c.notes)
    bad = tmp_path / "bad.csv"
    bad.write_text("a,s1\nb\n")
    with pytest.raises(RjcmaError, match=r"bad\.csv:2: expected 'trial,subject'"):
        read_subject_map(bad)
    bad.write_text("a,s1\na,s2\n")
    with pytest.raises(RjcmaError, match=r"bad\.csv:2: .*two subjects"):
        read_subject_map(bad)
    with pytest.raises(RjcmaError, match="subject map not found"):
        read_subject_map(tmp_path / "none.csv")


def test_test_list_formats(tmp_path):
    plain = tmp_path / "list.txt"
    plain.write_bytes(b"\xef\xbb\xbfb-1\r\na-2_left\r\n\r\nb-1\n")
    assert read_test_list(plain) == ["b-1", "a-2_left"]  # file order, unique, BOM and CRLF handled
    sample = tmp_path / "CVPR_6th_ABAW_VA_test_set_example.txt"
    sample.write_text("image_location,valence,arousal\nx-1/00001.jpg,0,0\nx-1/00002.jpg,0,0\ny_right/00001.jpg,0,0\n")
    assert read_test_list(sample) == ["x-1", "y_right"]
    bad = tmp_path / "bad.txt"
    bad.write_text("a\nb,c\n")
    with pytest.raises(RjcmaError, match=r"bad\.txt:2: .*not a trial name"):
        read_test_list(bad)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    with pytest.raises(RjcmaError, match="no trial names"):
        read_test_list(empty)


def test_the_sample_submission_file_stands_in_for_a_missing_test_list(tmp_path):
    write_labels(tmp_path / ANN / "Train_Set/a.txt", smooth_rows(3))
    s = tmp_path / "test release/CVPR_6th_ABAW_VA_test_set_example.txt"
    s.parent.mkdir()
    s.write_text("image_location,valence,arousal\nt-9/00001.jpg,0,0\n")
    c = find_corpus(tmp_path)
    assert c.test_list == s and [t.name for t in c.partition("test")] == ["t-9"]


def test_describe_layout(organiser_corpus):
    text = describe_layout(organiser_corpus, max_entries=2)
    assert text.splitlines()[0] == f"{organiser_corpus.name}/"
    assert "6th ABAW Annotations/" in text and "… " in text


# ---------------------------------------------------------------------------------------------------------------
# labels
# ---------------------------------------------------------------------------------------------------------------
def test_minus_five_first_and_in_the_middle_become_nan(organiser_corpus):
    ann = organiser_corpus / ANN / "Train_Set"
    first = read_labels(ann / "1-30-640x360.txt")
    middle = read_labels(ann / "video2_left.txt")
    assert first.dtype == np.float32 and first.shape == (25, 2)
    assert np.isnan(first[:3]).all() and not np.isnan(first[3:]).any()
    assert np.isnan(middle[10:14]).all() and not np.isnan(middle[:10]).any() and not np.isnan(middle[14:]).any()
    expected = np.array(smooth_rows(25), dtype=np.float32)
    np.testing.assert_array_equal(middle[14:], expected[14:])


def test_one_column_minus_five_is_nan_only_there(tmp_path):
    p = write_labels(tmp_path / "a.txt", ["0.5,-5", "-5,0.25", "1,-1", "-1.0,1.0"])
    got = read_labels(p)
    assert np.isnan(got[0, 1]) and got[0, 0] == 0.5 and np.isnan(got[1, 0]) and got[1, 1] == 0.25
    np.testing.assert_array_equal(got[2:], [[1, -1], [-1, 1]])


@pytest.mark.parametrize(
    "content, line, what",
    [
        ("", 1, "empty file"),
        ("   \n\n", 1, "empty file"),
        ("valence,arousal\n", 2, "no frame rows"),
        ("arousal,valence\n0.1,0.2\n", 1, "wrong header"),
        ("0.1,0.2\n0.3,0.4\n", 1, "wrong header"),
        ("valence,arousal,expression\n0.1,0.2\n", 1, "wrong header"),
        ("valence,arousal\n0.1,0.2\n0.1,abc\n", 3, "arousal 'abc' is not a number"),
        ("valence,arousal\n0.1,0.2\nnan,0.1\n", 3, "valence"),
        ("valence,arousal\n0.1,0.2\n0x1p-2,0.1\n", 3, "valence '0x1p-2' is not a number"),
        ("valence,arousal\n0.1,0.2\n0.1,\n", 3, "arousal '' is not a number"),
        ("valence,arousal\n0.1,0.2\n0.1,0.2,0.3\n", 3, "3 columns"),
        ("valence,arousal\n0.1,0.2\n0.3,0.4\n0.1\n", 4, "1 columns"),
        ("valence,arousal\n0.1;0.2\n", 2, "1 columns"),
        ("valence,arousal\n0.1,0.2\n\n0.1,0.2\n", 3, "empty line"),
        ("valence,arousal\n0.1,0.2\n0.3,1.5\n", 3, "arousal 1.5 is outside [-1, 1]"),
        ("valence,arousal\n-1.01,0.2\n", 2, "valence -1.01 is outside [-1, 1]"),
        ("valence,arousal\n-4,0.2\n", 2, "not -5"),
        ("valence,arousal\n0.1,inf\n", 2, "arousal"),
    ],
)
def test_malformed_labels_name_file_and_line(tmp_path, content, line, what):
    p = tmp_path / "sub dir" / "trial-x.txt"
    p.parent.mkdir()
    p.write_text(content)
    with pytest.raises(RjcmaError) as e:
        read_labels(p)
    msg = str(e.value)
    assert msg.startswith(f"{p}:{line}: "), msg
    assert what in msg, msg
    assert "\n" not in msg


def test_missing_label_file(tmp_path):
    with pytest.raises(RjcmaError, match="annotation file not found"):
        read_labels(tmp_path / "none.txt")


def test_tolerated_variations_parse_like_the_plain_file(tmp_path):
    rows = smooth_rows(50, seed=3)
    plain = read_labels(write_labels(tmp_path / "plain.txt", rows))
    crlf = tmp_path / "crlf.txt"
    crlf.write_bytes(("valence,arousal\r\n" + "\r\n".join(f"{v},{a}" for v, a in rows) + "\r\n\r\n").encode())
    bom = tmp_path / "bom.txt"
    bom.write_bytes(b"\xef\xbb\xbf" + ("Valence, Arousal\n" + "\n".join(f" {v} , {a}" for v, a in rows)).encode())
    exp = tmp_path / "exp.txt"  # exponents, explicit +, .5 style (valid numbers the fast path may hand over)
    exp.write_text("valence,arousal\n" + "\n".join(f"{v:+.3e},{a:.6g}" for v, a in rows))
    np.testing.assert_array_equal(read_labels(crlf), plain)
    np.testing.assert_array_equal(read_labels(bom), plain)
    np.testing.assert_allclose(read_labels(exp), plain, atol=1e-3)
    dot = write_labels(tmp_path / "dot.txt", [".5,-.25", "+0.5,5e-1"])
    np.testing.assert_array_equal(read_labels(dot), [[0.5, -0.25], [0.5, 0.5]])


def test_fast_path_agrees_with_a_plain_parser(tmp_path):
    rng = np.random.default_rng(1)
    va = np.tanh(rng.normal(0, 0.05, size=(3000, 2)).cumsum(axis=0))
    va[:7] = -5
    va[1000:1010, 1] = -5
    p = tmp_path / "long.txt"
    p.write_text("valence,arousal\n" + "\n".join(f"{v!r},{a!r}" for v, a in va.tolist()) + "\n")
    got = read_labels(p)
    ref = np.loadtxt(p, delimiter=",", skiprows=1, dtype=np.float64)
    ref[ref == -5] = np.nan
    np.testing.assert_array_equal(got, ref.astype(np.float32))
    assert count_label_rows(p) == 3000


# ---------------------------------------------------------------------------------------------------------------
# videos and lengths
# ---------------------------------------------------------------------------------------------------------------
def test_video_info_reads_the_container(organiser_corpus):
    mp4 = video_info(organiser_corpus / "videos/batch 1/1-30-640x360.mp4")
    assert mp4.fps == pytest.approx(25.0) and mp4.n_frames == 25 and mp4.has_audio
    assert (mp4.width, mp4.height) == (32, 32) and mp4.duration == pytest.approx(1.0, abs=0.1)
    avi = video_info(organiser_corpus / "videos/batch2/video2.avi")
    assert avi.fps == pytest.approx(25.0) and avi.n_frames == 25 and not avi.has_audio
    for count in ("demux", "decode"):
        assert video_info(organiser_corpus / "videos/batch2/video2.avi", count=count).n_frames == 25


def test_video_info_other_rates_and_containers(tmp_path):
    mkv = video_info(write_video(tmp_path / "v.mkv", frames=30, fps=30))
    assert mkv.fps == pytest.approx(30.0) and mkv.n_frames == 30 and mkv.counted_by in ("container", "demux")
    c = find_corpus(_corpus_with_video(tmp_path, "v.mkv"))
    assert c.by_name("v").video.suffix == ".mkv"


def _corpus_with_video(tmp_path: Path, video: str) -> Path:
    write_labels(tmp_path / ANN / "Train_Set" / f"{Path(video).stem}.txt", smooth_rows(3))
    return tmp_path


def test_video_info_errors(tmp_path):
    with pytest.raises(RjcmaError, match="video not found"):
        video_info(tmp_path / "none.mp4")
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"this is not a video" * 10)
    with pytest.raises(RjcmaError, match="not a readable video"):
        video_info(bad)
    empty = tmp_path / "empty.avi"
    empty.write_bytes(b"")
    with pytest.raises(RjcmaError, match=str(empty)):
        video_info(empty)


def test_rows_and_frames_reconcile(organiser_corpus):
    info = video_info(organiser_corpus / "videos/batch2/video2.avi")
    rows = read_labels(organiser_corpus / ANN / "Train_Set/video2_left.txt")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reconcile_length(len(rows), info.n_frames, "video2_left")  # equal: silent
    with pytest.warns(LengthMismatchWarning, match=r"video2_left: 25 decoded frames but 26 annotation rows"):
        reconcile_length(26, info.n_frames, "video2_left")
    with pytest.raises(RjcmaError, match=r"video2_left: 25 decoded frames but 30 annotation rows"):
        reconcile_length(30, info.n_frames, "video2_left")


def test_reconcile_length_thresholds():
    with pytest.warns(LengthMismatchWarning, match="1000 decoded frames but 1050 annotation rows.*padding"):
        reconcile_length(1050, 1000, "t")  # 4.8 %
    with pytest.warns(LengthMismatchWarning, match="cutting"):
        reconcile_length(1000, 1050, "t")  # 5.0 %: still tolerated
    with pytest.raises(RjcmaError, match="more than 5%"):
        reconcile_length(1000, 1051, "t")
    with pytest.raises(RjcmaError, match="more than 10%"):
        reconcile_length(100, 80, "t", max_gap=0.1)
    with pytest.raises(RjcmaError, match="no annotation rows"):
        reconcile_length(0, 10, "t")


def test_fit_length_pads_by_repeating_and_cuts():
    a = np.arange(12).reshape(6, 2)
    np.testing.assert_array_equal(fit_length(a, 4), a[:4])
    padded = fit_length(a, 8)
    np.testing.assert_array_equal(padded[:6], a)
    np.testing.assert_array_equal(padded[6:], [a[-1], a[-1]])
    assert fit_length(a, 6) is a
    with pytest.raises(ValueError):
        fit_length(np.zeros((0, 2)), 3)


# ---------------------------------------------------------------------------------------------------------------
# the demo corpus reads like the hand-made one
# ---------------------------------------------------------------------------------------------------------------
def test_demo_corpus_has_the_same_structure(tiny_corpus):
    c = find_corpus(tiny_corpus)
    assert c.partition("train") and c.partition("validation") and c.partition("test")
    assert c.test_list is not None and c.test_list.name.endswith("test_set_release.txt")
    pairs = [t for t in c.trials if t.name.endswith(("_left", "_right"))]
    assert len({t.video for t in pairs}) * 2 == len(pairs)
    for t in c.trials:
        assert t.video is not None and t.faces_dir is not None, t.name
        if t.annotation is None:
            continue
        labels = read_labels(t.annotation)
        info = video_info(t.video)
        reconcile_length(len(labels), info.n_frames, t.name)
        assert 25 <= info.fps <= 30
