"""`rjcma predict` on real-world-style files made here: a camera AVI with AC3 audio and one broken packet, a street
scene with no face, no audio and no words, two people in one video, a phone video with rotation metadata, an
audio-only file, and a folder scored twice (the second run skips what is done). Preprocessing keeps a trial whose
audio has a broken packet."""

from __future__ import annotations

import contextlib
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from media import corrupt_audio_packet, source, write_media
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
    return {
        "camera_bad": bad,
        "street": write_media(d / "street.mp4", street, fps),
        "two_people": Path(shutil.copy(sorted((tiny_corpus / "videos").rglob("1-*.mp4"))[0], d / "two_people.mp4")),
        "portrait": write_media(d / "portrait.mp4", np.ascontiguousarray(np.rot90(frames, k=-1, axes=(1, 2))), fps,
                                [speech], rotation=90),
        "voice": write_media(d / "voice.m4a", None, fps, [speech], fmt="mp4"),
    }


@pytest.fixture(scope="module")
def scored_real(real, ckpt, tmp_path_factory):  # noqa: F811
    from rjcma.cli import main

    out = tmp_path_factory.mktemp("scored_real")
    err = io.StringIO()
    with contextlib.redirect_stderr(err):
        rc = main(["predict", str(real["street"].parent), str(real["voice"]), "--checkpoint", str(ckpt), "--out",
                   str(out), "--quiet"])  # a folder lists videos only: the audio-only file is named
    assert rc == 0, err.getvalue()
    return out, err.getvalue()


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


def test_audio_only_file_is_scored_from_sound(scored_real):
    rows, js = outputs(scored_real[0], "voice")
    assert not js["has_video"] and (rows["face"] == 0).all() and rows["speech"].any()
    assert np.allclose(np.diff(rows["time_s"]), 1 / 30, atol=1e-3)
    assert np.isfinite(rows["valence"][rows["speech"] == 1]).all()


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
    assert main(["predict", str(real["street"].parent), str(real["voice"]), "--checkpoint", str(ckpt), "--out",
                 str(out), "--quiet"]) == 0
    assert f"{len(real)} video(s) already scored" in capsys.readouterr().out
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
    from rjcma.predict import ENCODER_BATCH
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
        assert np.array_equal(sink.features(s.track, n), want)
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
