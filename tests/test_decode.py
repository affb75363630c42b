"""The resilient decoder (rjcma.preprocess.decode) on files made here the way phones, cameras and video sites make
them: a broken AC3 packet in an AVI, a broken AAC packet in an MP4, rotation metadata, two audio streams, a variable
frame rate, one frame, audio only; and, made from a demo clip with the ffmpeg command line, the formats a new user
tries (old AVI writers' B-frames, WebM, HEVC in Matroska, QuickTime, 60 and 5 fps, grey, tiny and 4K frames, a cut
download). Each is compared with what the system's ffmpeg and ffprobe decode from the same file: the same frames,
at ffprobe's best-effort timestamps."""

from __future__ import annotations

import shutil
import subprocess
import warnings
from pathlib import Path

import numpy as np
import pytest

from rjcma.errors import RjcmaError
from rjcma.preprocess import decode as D
from rjcma.preprocess.audio import load_audio

from media import (break_every_ac3_header, corrupt_audio_packet, cut, ffmpeg, ffprobe_count, ffprobe_times,
                   grey_video, has_encoder, variants)

FFMPEG = shutil.which("ffmpeg")
needs_ffmpeg = pytest.mark.skipif(FFMPEG is None, reason="ffmpeg is not installed (apt-get install ffmpeg)")


def ffmpeg_audio_seconds(path: Path) -> float:
    """Seconds of 16 kHz mono audio the system's ffmpeg decodes from ``path``."""
    out = subprocess.run([FFMPEG, "-v", "quiet", "-i", str(path), "-vn", "-f", "s16le", "-ac", "1", "-ar", "16000",
                          "-"], capture_output=True, timeout=60).stdout
    return len(out) / 2 / 16000


def ffmpeg_frames(path: Path) -> np.ndarray:
    """Every video frame ffmpeg decodes (auto-rotated), (n, h, w, 3) uint8."""
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                            "stream=width,height:stream_side_data=rotation", "-of", "csv=p=0", str(path)],
                           capture_output=True, text=True, timeout=60).stdout.split()
    w, h = (int(x) for x in probe[0].split(",")[:2])
    rot = int(float(probe[0].split(",")[2])) if len(probe[0].split(",")) > 2 and probe[0].split(",")[2] else 0
    if rot % 180:
        w, h = h, w
    raw = subprocess.run([FFMPEG, "-v", "quiet", "-i", str(path), "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                         capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, np.uint8).reshape(-1, h, w, 3)


# ---- broken audio packets ---------------------------------------------------------------------------------------------
@needs_ffmpeg
@pytest.mark.parametrize("which", [0.5, 0.0])
def test_broken_ac3_packet_in_avi_decodes_like_ffmpeg(tmp_path, which):
    """One AC3 frame claims a size larger than its packet: ffmpeg prints an error and goes on; so do we."""
    clean = grey_video(tmp_path / "cam.avi")
    bad = corrupt_audio_packet(clean, tmp_path / "cam_bad.avi", which, "header")
    counts = D.DecodeCounts("audio")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        wav = load_audio(bad, 16000, counts=counts)
    ref = load_audio(clean, 16000)
    packet = 1536 / 48000  # one AC3 frame
    assert len(wav) / 16000 == pytest.approx(len(ref) / 16000, abs=1e-6)  # silence in place of what was lost
    assert abs(len(wav) / 16000 - ffmpeg_audio_seconds(bad)) <= 2 * packet + 1e-6  # ffmpeg drops it instead
    assert ffmpeg_audio_seconds(clean) == pytest.approx(len(ref) / 16000, abs=1e-3)
    # the decoder refused the packet: counted, warned about, replaced by silence
    assert counts.bad_packets >= 1 and counts.filled_seconds == pytest.approx(packet * counts.bad_packets, abs=1e-3)
    assert any("could not be decoded" in str(w.message) and str(bad) in str(w.message) for w in ws)
    # the rest of the track is untouched: the tone after the broken packet matches the clean file sample for sample
    assert np.abs(wav[-8000:] - ref[-8000:]).max() <= 4 / 32768


@needs_ffmpeg
def test_broken_aac_packet_in_mp4_decodes_like_ffmpeg(tmp_path):
    clean = grey_video(tmp_path / "phone.mp4", acodec="aac", vcodec="libx264", sr=44100)
    bad = corrupt_audio_packet(clean, tmp_path / "phone_bad.mp4", 0.4, "payload")
    counts = D.DecodeCounts("audio")
    wav = load_audio(bad, 16000, counts=counts)
    assert abs(len(wav) / 16000 - ffmpeg_audio_seconds(bad)) <= 2 * 1024 / 44100 + 1e-6
    assert abs(len(wav) - len(load_audio(clean, 16000))) <= 2  # rounding of the filled packet to 16 kHz


def test_a_stream_that_yields_almost_nothing_is_refused(tmp_path):
    bad = break_every_ac3_header(grey_video(tmp_path / "cam.avi", seconds=2.0), tmp_path / "dead_audio.avi")
    with pytest.raises(RjcmaError) as e:
        load_audio(bad, 16000)
    msg = str(e.value)
    assert str(bad) in msg and "audio" in msg and "\n" not in msg


# ---- what phones and cameras write ------------------------------------------------------------------------------------
@needs_ffmpeg
def test_rotation_metadata_turns_frames_upright_as_ffmpeg(tmp_path):
    f = grey_video(tmp_path / "portrait.mp4", vcodec="libx264", acodec="aac", rotation=90, seconds=0.4)
    ours = np.stack([rgb for _, rgb in D.iter_video(f)])
    ref = ffmpeg_frames(f)
    assert ours.shape == ref.shape and ours.shape[1:3] == (96, 64)  # stored 96 x 64 landscape, shown portrait
    assert np.abs(ours.astype(int) - ref.astype(int)).mean() < 3
    info = D.probe(f)
    assert info.rotation == 90 and (info.width, info.height) == (64, 96)


def test_several_audio_streams_use_the_default_one_and_say_so(tmp_path):
    f = grey_video(tmp_path / "two_tracks.mkv", acodec="aac", vcodec="libx264", audio_streams=2, default_audio=1,
                seconds=1.0, sr=16000)
    info = D.probe(f)
    assert len(info.audio_streams) == 2 and info.audio_index == 1
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        wav = load_audio(f, 16000)
    assert any("2 audio streams" in str(w.message) and "#2" in str(w.message) for w in ws)
    spec = np.abs(np.fft.rfft(wav[2000:14000]))
    assert abs(np.argmax(spec) * 16000 / 12000 - 880) < 10  # stream 2 carries 880 Hz, stream 1 440 Hz


@needs_ffmpeg
def test_variable_frame_rate_times_are_the_stream_times(tmp_path):
    t = np.cumsum(np.r_[0.0, np.where(np.arange(29) % 3 == 0, 0.08, 0.03)])
    f = grey_video(tmp_path / "vfr.mkv", vcodec="libx264", acodec="aac", times=t, frames=30, seconds=1.5)
    ours = np.array([ts for ts, _ in D.iter_video(f)])
    ref = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "frame=pts_time",
                          "-of", "csv=p=0", str(f)], capture_output=True, text=True, timeout=60).stdout.split()
    ref = np.array([float(x.strip(",")) for x in ref])
    assert len(ours) == len(ref) == 30
    assert np.allclose(ours, ref - ref[0], atol=1e-3)


def test_one_frame_video_and_audio_only_file(tmp_path):
    one = grey_video(tmp_path / "one.mp4", vcodec="libx264", acodec="aac", frames=1, seconds=0.5)
    assert len(list(D.iter_video(one))) == 1
    audio_only = grey_video(tmp_path / "voice.m4a", acodec="aac", video=False, seconds=1.0, fmt="mp4")
    info = D.probe(audio_only)
    assert not info.has_video and info.has_audio
    assert len(load_audio(audio_only, 16000)) == pytest.approx(16000, abs=1100)
    with pytest.raises(RjcmaError, match="no video stream"):
        list(D.iter_video(audio_only))


@needs_ffmpeg
def test_frame_count_matches_ffmpeg(tmp_path):
    f = grey_video(tmp_path / "cam.avi", seconds=2.0)
    assert D.frame_count(f) == len(ffmpeg_frames(f)) == 50


def test_not_a_video_is_one_line_naming_it(tmp_path):
    bad = tmp_path / "notes.mp4"
    bad.write_text("hello\n" * 100)
    with pytest.raises(RjcmaError) as e:
        D.probe(bad)
    assert str(bad) in str(e.value) and "not a readable video" in str(e.value)


# ---- the formats a new user tries, against ffprobe ---------------------------------------------------------------------
INTERNALS = ("Errno", "avcodec_", "avformat_", "av_read_frame", "send_packet", "()")


@pytest.fixture(scope="module")
def made(tiny_corpus, tmp_path_factory) -> dict[str, Path]:
    src = sorted((tiny_corpus / "videos").rglob("1-*.mp4"))[0]  # the two-subject demo video (30 fps, speech)
    return variants(src, tmp_path_factory.mktemp("made with ffmpeg"), seconds=1.5)


@needs_ffmpeg
@pytest.mark.parametrize("name", ["xvid packed bframes.avi", "bframes.avi", "vfr.mkv", "vp9 opus.webm",
                                  "hevc two tracks.mkv", "clip.mov", "60fps.mp4", "5fps.mp4", "grey.mp4", "tiny.mp4",
                                  "4k.mp4", "portrait.mp4", "café à côté.mp4", "cut.mp4"])
def test_frames_and_times_are_ffprobes(made, name):
    """Every frame ffprobe counts comes out, at ffprobe's best-effort timestamp (from the first frame) within 1 ms,
    strictly increasing."""
    if name not in made:
        pytest.skip("this ffmpeg has no libxvid encoder")
    counts = D.DecodeCounts("video")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        t = np.array([ts for ts, _ in D.iter_video(made[name], counts)])
    assert len(t) == counts.frames == ffprobe_count(made[name])
    ref = ffprobe_times(made[name])
    assert len(ref) == len(t)
    have = ~np.isnan(ref)  # ffprobe leaves the time of a flushed last frame unset in some AVIs
    assert have.sum() >= len(t) - 1 and have[0]
    assert np.abs(t[have] - (ref[have] - ref[0])).max() < 1e-3
    assert (np.diff(t) > 0).all()
    assert not any(x in str(w.message) for w in ws for x in INTERNALS)


@needs_ffmpeg
def test_packed_bframes_keep_the_decoding_times(made):
    """Xvid's packed B-frames: the frames' own presentation times come out of order; each frame gets its decoding
    time, as ffprobe gives it: no time repeats and every gap is one frame (no variable frame rate)."""
    if "xvid packed bframes.avi" not in made:
        pytest.skip("this ffmpeg has no libxvid encoder")
    t = np.array([ts for ts, _ in D.iter_video(made["xvid packed bframes.avi"])])
    assert np.allclose(np.diff(t), 1 / 24, atol=1e-6)


@needs_ffmpeg
def test_a_real_variable_frame_rate_is_kept(made):
    t = np.array([ts for ts, _ in D.iter_video(made["vfr.mkv"])])
    gaps = np.round(np.diff(t) * 30).astype(int)  # every 4th frame of the 30 fps source was dropped
    assert set(gaps) == {1, 2}


@needs_ffmpeg
def test_a_cut_file_is_reported_truncated_with_both_numbers(made):
    """The MP4's index is in front and its last 40 % is missing: every frame before the cut comes out (ffprobe's
    count), the lost end is said in seconds and frames, and no message shows a library's internals."""
    counts = D.DecodeCounts("video")
    with warnings.catch_warnings(record=True) as ws:
        warnings.simplefilter("always")
        n = sum(1 for _ in D.iter_video(made["cut.mp4"], counts))
    assert n == ffprobe_count(made["cut.mp4"]) and counts.truncated
    assert counts.declared_frames == 45 and counts.declared_seconds == pytest.approx(1.5, abs=0.05)
    assert counts.decoded_seconds < 0.8 * counts.declared_seconds
    msg = " ".join(str(w.message) for w in ws)
    assert f"ends at {counts.decoded_seconds:.1f} s of the {counts.declared_seconds:.1f} s" in msg
    assert f"{n} of 45 frames" in msg and str(made["cut.mp4"]) in msg
    assert not any(x in msg for x in INTERNALS)
    assert not D.DecodeCounts("video").truncated  # nothing declared, nothing decoded: no claim


@needs_ffmpeg
def test_a_cut_file_without_its_index_is_called_incomplete(made, tmp_path):
    whole = tmp_path / "camera.mp4"
    ffmpeg("-i", made["clip.mov"], "-c", "copy", whole)  # MP4 writes its index (moov) last, as cameras do
    bad = cut(whole, tmp_path / "camera_cut.mp4", 0.6)
    for fn in (D.probe, lambda p: list(D.iter_video(p))):
        with pytest.raises(RjcmaError) as e:
            fn(bad)
        msg = str(e.value)
        assert "incomplete file (the index written at the end is missing)" in msg and str(bad) in msg
        assert "\n" not in msg and not any(x in msg for x in INTERNALS)


def test_plain_messages_hide_library_internals():
    import av

    e = av.error.InvalidDataError(1094995529, "Invalid data found when processing input", "avcodec_send_packet()")
    assert D.plain(e) == "invalid data found when processing input"
    assert D.plain(ValueError("[Errno 22] bad value: 'av_read_frame()'")) == "bad value"


def test_best_effort_timestamps_follow_libavcodec():
    """pts while they increase; after presentation times went backwards more often than decoding times, the
    decoding times; a frame with neither has none."""
    b = D.BestEffort()
    assert [b(p, d) for p, d in [(0, 0), (1, 1), (3, 2), (2, 3), (4, 4)]] == [0, 1, 3, 3, 4]
    assert b(None, None) is None
    seeded = D.BestEffort()
    seeded.faulty_pts = 1
    assert [seeded(p, d) for p, d in [(0, 0), (3, 1), (2, 2)]] == [0, 1, 2]
