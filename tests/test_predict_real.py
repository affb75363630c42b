"""`rjcma predict` on real-world-style files made here: a camera AVI with AC3 audio and one broken packet, a street
scene with no face, no audio and no words, two people in one video, a phone video with rotation metadata, audio-only
files (m4a, wav) found in a folder like videos, an MP4 cut short, a file that is not media, and a folder scored twice
(the second run skips what is done). Each file's outcome is said: scored, already scored, failed or passed over,
with why. Preprocessing keeps a trial whose audio has a broken packet. ``rjcma.predict`` gives the rows as a
DataFrame."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from media import corrupt_audio_packet, cut, source, write_media
from test_bad_input import ckpt, outputs  # noqa: F401 - ckpt is a fixture


@pytest.fixture(scope="module")
def real(tiny_corpus, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real_videos")
    frames, speech, fps = source(tiny_corpus)  # the two-subject demo video, 1.6 s at 192 x 144
    # two people: the demo's two-subject video itself (faces at full size)
    rng = np.random.default_rng(0)
    street = rng.integers(60, 200, frames.shape, dtype=np.uint8)
    speech48k = np.interp(np.arange(3 * len(speech)) / 3, np.arange(len(speech)), speech)  # a camera's 48 kHz
    cam = write_media(d / "camera.avi", frames, fps, [speech48k], 48000, "mpeg4", "ac3", "stereo")
    bad = corrupt_audio_packet(cam, d / "camera_bad.avi", 0.5, "header")
    cam.unlink()
    (d / "notes.txt").write_text("not a video\n")  # passed over, and named
    whole = d.parent / "whole.mp4"
    from media import ffmpeg

    ffmpeg("-i", sorted((tiny_corpus / "videos").rglob("1-*.mp4"))[0], "-t", "2", "-c", "copy", "-movflags",
           "+faststart", whole)  # the index in front, as a streaming site writes it
    return {
        "camera_bad": bad,
        "street": write_media(d / "street.mp4", street, fps),
        "two_people": Path(shutil.copy(sorted((tiny_corpus / "videos").rglob("1-*.mp4"))[0], d / "two_people.mp4")),
        "portrait": write_media(d / "portrait.mp4", np.ascontiguousarray(np.rot90(frames, k=-1, axes=(1, 2))), fps,
                                [speech], rotation=90),
        "voice": write_media(d / "voice.m4a", None, fps, [speech], fmt="mp4"),
        "memo": write_media(d / "memo.wav", None, fps, [speech], acodec="pcm_s16le", fmt="wav"),
        "cut": cut(whole, d / "cut.mp4", 0.6),
    }


@pytest.fixture(scope="module")
def scored_real(real, ckpt, tmp_path_factory):  # noqa: F811
    from rjcma.cli import main

    out = tmp_path_factory.mktemp("scored_real")
    err, std = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(std):
        rc = main(["predict", str(real["street"].parent), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"])
    assert rc == 0, err.getvalue()
    return out, err.getvalue(), std.getvalue()


def test_camera_avi_with_a_broken_ac3_packet_is_scored(scored_real, real):
    rows, js = outputs(scored_real[0], "camera_bad")
    a = js["decode"]["audio"]
    assert a["bad_packets"] >= 1 and a["filled_seconds"] > 0 and js["audio_stream"]["codec"] == "ac3"
    assert any("could not be decoded" in w for w in js["warnings"])
    assert "could not be decoded" in scored_real[1]  # and printed
    assert js["words"] > 0 and rows["speech"].any()
    # browsers do not play MPEG-4 Part 2: the report links an H.264 copy next to it
    from rjcma.preprocess.decode import probe

    web = scored_real[0] / "camera_bad.web.mp4"
    assert probe(web).codec == "h264" and 'src="camera_bad.web.mp4"' in (scored_real[0] / "camera_bad.html").read_text()
    assert abs(probe(web).container_duration_s - js["duration_s"]) < 0.1


def test_street_scene_without_face_audio_or_words_gets_no_values(scored_real, real, ckpt, tmp_path):  # noqa: F811
    rows, js = outputs(scored_real[0], "street")
    assert js["faces_found"] == 0 and js["words"] == 0 and not js["has_audio"]
    assert (rows["face"] == 0).all() and (rows["speech"] == 0).all()
    assert np.isnan(rows["valence"]).all() and np.isnan(rows["arousal"]).all()  # nothing invented
    assert any("neither a face nor sound" in w for w in js["warnings"])
    # --fill asks for the model's output anyway
    from rjcma.cli import main

    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["predict", str(real["street"]), "--checkpoint", str(ckpt), "--out", str(tmp_path), "--quiet",
                     "--fill"]) == 0
    rows, js = outputs(tmp_path, "street")
    assert js["fill"] is True and np.isfinite(rows["valence"]).all()


def test_two_people_are_two_trials_with_shared_audio(scored_real):
    rows, js = outputs(scored_real[0], "two_people", person=None)
    assert js["persons"] == 2 and sorted(set(rows["person"].astype(int))) == [0, 1]
    p0, p1 = rows[rows["person"] == 0], rows[rows["person"] == 1]
    assert len(p0) == len(p1) and (p0["frame"] == p1["frame"]).all()
    assert (p0["speech"] == p1["speech"]).all()  # one audio track, one transcript
    assert p0["face"].mean() > 0.5 and p1["face"].mean() > 0.5
    assert not np.allclose(np.nan_to_num(p0["valence"]), np.nan_to_num(p1["valence"]))  # each its own face
    assert len(js["people"]) == 2


def test_rotated_phone_video_is_upright(scored_real):
    rows, js = outputs(scored_real[0], "portrait")
    # stored turned a quarter clockwise (144 x 192) with a display matrix that turns it back: upright 192 x 144
    assert js["rotation"] == 90 and (js["width"], js["height"]) == (192, 144)
    assert rows["face"].mean() > 0.5  # faces are found once the frames are upright


@pytest.mark.parametrize("stem", ["voice", "memo"])
def test_audio_only_files_in_a_folder_are_scored_from_sound(scored_real, stem):
    rows, js = outputs(scored_real[0], stem)
    assert not js["has_video"] and (rows["face"] == 0).all() and rows["speech"].any()
    assert np.allclose(np.diff(rows["time_s"]), 1 / 30, atol=1e-3) and js["row_fps"] == 30.0
    assert np.isfinite(rows["valence"][rows["speech"] == 1]).all()


def test_fps_sets_the_rows_of_a_sound_file(real, ckpt, tmp_path):  # noqa: F811
    from rjcma.cli import main

    with contextlib.redirect_stderr(io.StringIO()):
        assert main(["predict", str(real["memo"]), "--checkpoint", str(ckpt), "--out", str(tmp_path), "--quiet",
                     "--fps", "10"]) == 0
    rows, js = outputs(tmp_path, "memo")
    assert np.allclose(np.diff(rows["time_s"]), 0.1, atol=1e-4) and js["row_fps"] == 10.0
    assert len(rows) == pytest.approx(10 * js["container_duration_s"], abs=1)


def test_a_cut_file_is_scored_and_said_to_be_truncated(scored_real, real):
    """An MP4 whose last 40 % is missing: every frame before the cut is scored, and the JSON and the console
    say where it ends against what its container declares."""
    from media import ffprobe_count

    rows, js = outputs(scored_real[0], "cut", person=None)
    assert js["frames"] == ffprobe_count(real["cut"]) == len(set(rows["frame"].astype(int)))
    tr, whole = js["truncated"], real["cut"].parent.parent / "whole.mp4"  # the file before it was cut
    assert tr["declared_s"] == pytest.approx(2.0, abs=0.1) and tr["decoded_s"] < 0.8 * tr["declared_s"]
    assert tr["declared_frames"] == ffprobe_count(whole) and tr["decoded_frames"] == js["frames"]
    said = f"ends at {tr['decoded_s']:.1f} s of the {tr['declared_s']:.1f} s"
    assert any(said in w for w in js["warnings"]) and said in scored_real[1]
    assert outputs(scored_real[0], "two_people")[1]["truncated"] is None


def test_a_folder_run_names_every_file_it_did_not_score(scored_real, real):
    """Scored, already scored, failed and passed over, each counted in the closing summary; the file that is not
    media is named with why."""
    err, std = scored_real[1], scored_real[2]
    assert f"rjcma predict: {len(real)} scored, 0 already scored" in std and "0 failed, 1 passed over" in std
    assert f"passed over: {real['street'].parent / 'notes.txt'}: not a video or sound file" in err


def test_errors_are_printed_when_they_happen_and_again_at_the_end(real, ckpt, tmp_path, capsys):  # noqa: F811
    from rjcma.cli import main

    d = tmp_path / "in"
    d.mkdir()
    (d / "a_broken.mp4").write_bytes(b"\x00" * 1000)
    shutil.copy(real["portrait"], d / "b_phone.mp4")
    capsys.readouterr()
    assert main(["predict", str(d), "--checkpoint", str(ckpt), "--out", str(tmp_path / "out"), "--quiet"]) == 2
    out, err = capsys.readouterr()
    lines = err.splitlines()
    first = next(i for i, ln in enumerate(lines) if ln.startswith("rjcma predict: error: ") and "a_broken" in ln)
    later = [i for i, ln in enumerate(lines) if "b_phone" in ln and ln.startswith("warning:")]
    assert later and first < min(later)  # said before the next file was scored
    assert any(ln.startswith("  failed: ") and "a_broken" in ln for ln in lines)
    assert "1 scored, 0 already scored" in out and "1 failed" in out
    assert not any(x in err for x in ("Errno", "avcodec_", "avformat_", "()"))


def test_rjcma_predict_gives_a_dataframe(real, ckpt, scored_real):  # noqa: F811
    import rjcma

    df = rjcma.predict(real["two_people"], ckpt)
    rows, js = outputs(scored_real[0], "two_people", person=None)
    assert list(df.columns) == list(rows.dtype.names)
    assert len(df) == len(rows) and (df["person"].to_numpy() == rows["person"]).all()
    assert np.allclose(df["time_s"], rows["time_s"], atol=1e-4)
    assert np.allclose(df["valence"].to_numpy(), rows["valence"], atol=1e-5, equal_nan=True)
    assert df.attrs["persons"] == js["persons"] == 2 and df.attrs["frames"] == js["frames"]


def test_smoothing_is_a_switch(real, ckpt, tmp_path):  # noqa: F811
    """The output is filtered over the width chosen on validation; --no-smooth gives the raw model output, which
    is rougher, and the smoothed output's JSON says its width."""
    from rjcma.cli import main
    from rjcma.train.smoothing import WIDTH_S, roughness

    for flag in ("--smooth", "--no-smooth"):
        with contextlib.redirect_stderr(io.StringIO()):
            assert main(["predict", str(real["two_people"]), "--checkpoint", str(ckpt), "--out",
                         str(tmp_path / flag), "--quiet", flag]) == 0
    smooth, js = outputs(tmp_path / "--smooth", "two_people")
    raw, js_raw = outputs(tmp_path / "--no-smooth", "two_people")
    assert js["smoothing"]["width_s"] == WIDTH_S and js_raw["smoothing"]["width_s"] == 0.0
    for k in ("valence", "arousal"):
        assert roughness(smooth[k]) < roughness(raw[k])


def test_report_sits_next_to_the_csv(scored_real):
    page = (scored_real[0] / "two_people.html").read_text()
    assert 'id="video"' in page and "two_people.mp4" in page and page.count('"valence"') >= 1
    assert len(json.loads(page.split('<script id="data" type="application/json">')[1].split("</script>")[0])
               ["people"]) == 2


def test_folder_is_resumable(scored_real, real, ckpt, capsys):  # noqa: F811
    from rjcma.cli import main

    out = scored_real[0]
    before = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    capsys.readouterr()
    assert main(["predict", str(real["street"].parent), "--checkpoint", str(ckpt), "--out", str(out), "--quiet"]) == 0
    said = capsys.readouterr().out
    assert f"0 scored, {len(real)} already scored" in said and f"skipped: {real['voice']}: already scored" in said
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == before  # nothing rewritten
    real["street"].touch()  # a changed file is scored again
    assert main(["predict", str(real["street"].parent), "--checkpoint", str(ckpt), "--out", str(out),
                 "--quiet"]) == 0
    assert (out / "street.json").stat().st_mtime_ns != before["street.json"]


def test_preprocessing_keeps_trials_whose_audio_has_a_broken_packet(tiny_corpus, tiny_cfg, tmp_path):
    """A broken first packet used to drop the trial ("audio track cannot be decoded"), a broken middle one to cut the
    audio there; now the packet becomes silence, the trial is kept at full length and meta.json counts it. One
    corpus, one preprocessing run: a video broken at its first packet, another in the middle."""
    from rjcma.preprocess.audio import load_audio
    from rjcma.preprocess.pipeline import preprocess_corpus

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    broken = dict(zip(sorted((corpus / "videos").rglob("*.mp4"))[-2:], (0.5, 0.0)))
    clean_len = {}
    for video, which in broken.items():
        clean_len[video] = len(load_audio(video, 16000))
        corrupt_audio_packet(video, tmp_path / "bad.mp4", which, "zeros")  # the AAC decoder refuses the packet
        shutil.copy(tmp_path / "bad.mp4", video)
    cfg = tiny_cfg.replace(corpus=str(corpus), store=str(tmp_path / "store"))
    report = preprocess_corpus(cfg, stages="labels,audio", progress=False)
    assert report.ok, report
    for video in broken:
        metas = [json.loads(p.read_text()) for p in (tmp_path / "store").glob(f"{video.stem}*/meta.json")]
        assert metas
        for m in metas:
            audio = m["stages"]["audio"]
            assert audio["decode"]["bad_packets"] == 1
            assert abs(audio["audio_seconds"] - clean_len[video] / 16000) < 0.1
            assert any("could not be decoded" in w for w in m["warnings"])


def test_faces_are_encoded_as_they_are_cut(real, ckpt):  # noqa: F811
    """Prediction never holds a video's faces: the visual encoder runs on each face as faces_at cuts it, at the
    store's rows only. Same people, same masks, and the same features as encoding every kept face afterwards."""
    from functools import partial

    from rjcma.bundle import load_bundle
    from rjcma.encoders.encode import FaceEncoder, encode_rows
    from rjcma.models.backbones import encode_faces
    from rjcma.scoring import ENCODER_BATCH
    from rjcma.preprocess.faces.stream import faces_at

    b = load_bundle(ckpt)
    vi = b.encoder_info["visual"]
    kept = faces_at(real["two_people"], None, 48, 6)
    sink = FaceEncoder(b.encoders["visual"], encode_faces, vi["dim"], vi["frame_stride"], b.precision, 48,
                       ENCODER_BATCH)
    streamed = faces_at(real["two_people"], None, 48, 6, sink=sink)
    n = len(streamed.frame_times)
    sink.finish(n)
    assert len(kept.persons) == len(streamed.persons) == 2 and vi["frame_stride"] > 1
    for a, s in zip(kept.persons, streamed.persons):
        assert s.faces is None and np.array_equal(a.mask, s.mask) and 0.5 < s.mask.mean() < 1.0
        want = encode_rows(b.encoders["visual"], partial(encode_faces, batch=ENCODER_BATCH), lambda r: a.faces[r], n,
                           vi["dim"], vi["frame_stride"], b.precision)
        got = sink.features(s.track, n)
        # the same faces through the same encoder: equal up to the float16 rounding of another batching (oneDNN's
        # float32 sums may run in another order for another batch size or thread count)
        diff = np.abs(got.astype(np.float32) - want.astype(np.float32)).max()
        assert got.shape == want.shape and diff <= 2e-4, f"streamed features differ by up to {diff}"
    black = encode_rows(b.encoders["visual"], partial(encode_faces, batch=ENCODER_BATCH),
                        lambda r: np.zeros((1, 48, 48, 3), np.uint8), 1, vi["dim"], 1, b.precision, threads=0)
    assert np.array_equal(sink.features(None, n), np.broadcast_to(black, (n, vi["dim"])))  # nobody: black faces


def test_long_tracks_are_recognised_in_pieces_cut_in_pauses():
    """A track longer than ASR_PIECE_S is cut into pieces no longer than that, end to end, each cut in a pause."""
    from rjcma.preprocess.transcript import ASR_PIECE_S, pieces

    sr = 16000
    rng = np.random.default_rng(0)
    wav = (0.1 * rng.standard_normal(int(3.3 * ASR_PIECE_S * sr))).astype(np.float32)
    # one pause inside the last ASR_CUT_WINDOW_S of each piece (each piece starts at the previous cut)
    pauses = [int(s * sr) for s in (ASR_PIECE_S - 7.0, 2 * ASR_PIECE_S - 15.0, 3 * ASR_PIECE_S - 30.0)]
    for p in pauses:
        wav[p:p + sr // 2] = 0.0
    cuts = pieces(wav, sr)
    assert cuts[0][0] == 0 and cuts[-1][1] == len(wav) and len(cuts) == 4
    assert all(a[1] == b[0] for a, b in zip(cuts, cuts[1:]))
    assert all(0 < e - a <= ASR_PIECE_S * sr for a, e in cuts)
    for (_, cut), p in zip(cuts, pauses):
        assert p <= cut < p + sr // 2
    assert pieces(wav[: int(ASR_PIECE_S * sr)], sr) == [(0, int(ASR_PIECE_S * sr))]  # short tracks: one piece
