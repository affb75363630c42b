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

from test_bad_input import _source, ckpt, outputs  # noqa: F401 - ckpt is a fixture
from test_decode import corrupt_audio_packet


def _write(path: Path, frames: np.ndarray, fps: float, audio: np.ndarray | None = None, vcodec: str = "libx264",
           acodec: str = "aac", sr: int = 16000, rotation: int = 0, video: bool = True, fmt: str | None = None) -> Path:
    import av

    with av.open(str(path), "w", format=fmt) as c:
        vs = None
        if video:
            vs = c.add_stream(vcodec, rate=int(round(fps)))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            if rotation:
                vs.set_display_rotation(rotation)
        a = None
        if audio is not None:
            a = c.add_stream(acodec, rate=sr)
            a.layout = "mono" if acodec == "aac" else "stereo"
        if vs is not None:
            for f in frames:
                for p in vs.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        if a is not None:
            x = audio if sr == 16000 else np.interp(np.arange(int(len(audio) * sr / 16000)) * 16000 / sr,
                                                    np.arange(len(audio)), audio)
            pcm = np.clip(np.asarray(x) * 32767, -32768, 32767).astype(np.int16)
            fr = a.codec_context.frame_size or 1024
            ch = 1 if acodec == "aac" else 2
            for s in range(0, len(pcm) - fr + 1, fr):
                chunk = np.ascontiguousarray(np.repeat(pcm[s:s + fr, None], ch, 1).reshape(1, -1))
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout="mono" if ch == 1 else "stereo")
                af.sample_rate, af.pts = sr, s
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


@pytest.fixture(scope="module")
def real(tiny_corpus, tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("real_videos")
    frames, speech, fps = _source(tiny_corpus)  # the two-subject demo video, 1.6 s at 192 x 144
    # two people: the demo's two-subject video itself (faces at full size)
    rng = np.random.default_rng(0)
    street = rng.integers(60, 200, frames.shape, dtype=np.uint8)
    cam = _write(d / "camera.avi", frames, fps, speech, vcodec="mpeg4", acodec="ac3", sr=48000)
    bad = corrupt_audio_packet(cam, d / "camera_bad.avi", 0.5, "header")
    cam.unlink()
    return {
        "camera_bad": bad,
        "street": _write(d / "street.mp4", street, fps),
        "two_people": Path(shutil.copy(sorted((tiny_corpus / "videos").rglob("1-*.mp4"))[0], d / "two_people.mp4")),
        "portrait": _write(d / "portrait.mp4", np.ascontiguousarray(np.rot90(frames, k=-1, axes=(1, 2))), fps,
                           speech, rotation=90),
        "voice": _write(d / "voice.m4a", frames, fps, speech, video=False, fmt="mp4"),
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


def zero_audio_packet(src: Path, dst: Path, which: float) -> Path:
    """Copy ``src`` with one AAC packet overwritten by zeros (the decoder refuses it: "channel element is not
    allocated")."""
    import av

    data = bytearray(src.read_bytes())
    with av.open(str(src)) as c:
        pk = [(p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size]
    pos, size = pk[int(which * (len(pk) - 1))]
    data[pos:pos + size] = bytes(size)
    dst.write_bytes(bytes(data))
    return dst


@pytest.mark.parametrize("which", [0.0, 0.5])
def test_preprocessing_keeps_a_trial_whose_audio_has_a_broken_packet(tiny_corpus, tiny_cfg, tmp_path, which):
    """A broken first packet used to drop the trial ("audio track cannot be decoded"), a broken middle one to cut the
    audio there; now the packet becomes silence, the trial is kept at full length and meta.json counts it."""
    from rjcma.preprocess.audio import load_audio
    from rjcma.preprocess.pipeline import preprocess_corpus

    corpus = tmp_path / "corpus"
    shutil.copytree(tiny_corpus, corpus)
    video = sorted((corpus / "videos").rglob("*.mp4"))[-1]
    clean_len = len(load_audio(video, 16000))
    zero_audio_packet(video, tmp_path / "bad.mp4", which)
    shutil.copy(tmp_path / "bad.mp4", video)
    cfg = tiny_cfg.replace(corpus=str(corpus), store=str(tmp_path / "store"))
    report = preprocess_corpus(cfg, stages="labels,audio", progress=False)
    assert report.ok, report
    metas = [json.loads(p.read_text()) for p in (tmp_path / "store").glob(f"{video.stem}*/meta.json")]
    assert metas
    for m in metas:
        audio = m["stages"]["audio"]
        assert audio["decode"]["bad_packets"] == 1
        assert abs(audio["audio_seconds"] - clean_len / 16000) < 0.1
        assert any("could not be decoded" in w for w in m["warnings"])
