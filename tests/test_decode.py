"""The resilient decoder (rjcma.preprocess.decode) on files made here the way phones, cameras and video sites make
them: a broken AC3 packet in an AVI, a broken AAC packet in an MP4, rotation metadata, two audio streams, a variable
frame rate, one frame, audio only. Each is compared with what the system's ffmpeg decodes from the same file."""

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

from media import break_every_ac3_header, corrupt_audio_packet, grey_video

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
