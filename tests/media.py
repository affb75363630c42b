"""Media files the decoder and prediction tests make: videos with or without sound, rotated, with a variable frame
rate or several audio streams, audio-only files, and copies with one audio packet broken the ways cameras and
downloads break them. One writer (:func:`write_media`) under all of them."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path
from typing import Sequence

import numpy as np


def write_media(path: Path, frames: np.ndarray | None, fps: float = 25.0, audio: Sequence[np.ndarray] = (),
                sr: int = 16000, vcodec: str = "libx264", acodec: str = "aac", layout: str = "mono",
                rotation: int = 0, times: np.ndarray | None = None, fmt: str | None = None, default_audio: int = 0,
                tail: bool = False) -> Path:
    """Encode ``frames`` (n, h, w, 3) uint8 (None: no video stream) and one audio stream per array of ``audio``
    (float in [-1, 1] or int16, at ``sr``). ``times`` (s): each frame's presentation time (variable frame rate);
    ``rotation``: a display matrix; ``default_audio``: the stream marked default when there are several; ``tail``:
    also encode the last, partial audio frame."""
    import av

    with av.open(str(path), "w", format=fmt) as c:
        vs = None
        if frames is not None:
            vs = c.add_stream(vcodec, rate=int(round(fps)))
            vs.width, vs.height, vs.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
            if rotation:
                vs.set_display_rotation(rotation)
            if times is not None:
                vs.codec_context.time_base = Fraction(1, 1000)
        auds = []
        for _ in audio:
            a = c.add_stream(acodec, rate=sr)
            a.layout = layout
            auds.append(a)
        if len(auds) > 1:
            for j, a in enumerate(auds):
                a.disposition = av.stream.Disposition.default if j == default_audio else av.stream.Disposition(0)
        if vs is not None:
            for i, f in enumerate(frames):
                vf = av.VideoFrame.from_ndarray(np.ascontiguousarray(f), format="rgb24")
                if times is not None:
                    vf.pts, vf.time_base = int(round(times[i] * 1000)), Fraction(1, 1000)
                for p in vs.encode(vf):
                    c.mux(p)
            for p in vs.encode():
                c.mux(p)
        ch = 2 if layout == "stereo" else 1
        for a, x in zip(auds, audio):
            x = np.asarray(x)
            pcm = x if x.dtype == np.int16 else np.clip(x * 32767, -32768, 32767).astype(np.int16)
            fr = a.codec_context.frame_size or 1024
            for s in range(0, len(pcm) - (0 if tail else fr - 1), fr):
                chunk = np.ascontiguousarray(np.repeat(pcm[s:s + fr, None], ch, 1).reshape(1, -1))
                af = av.AudioFrame.from_ndarray(chunk, format="s16", layout=layout)
                af.sample_rate, af.pts = sr, s
                for p in a.encode(af):
                    c.mux(p)
            for p in a.encode():
                c.mux(p)
    return path


def grey_video(path: Path, acodec: str = "ac3", vcodec: str = "mpeg4", seconds: float = 3.0, fps: int = 25,
               sr: int = 48000, fmt: str | None = None, rotation: int = 0, audio_streams: int = 1,
               default_audio: int = 0, times: np.ndarray | None = None, frames: int | None = None,
               video: bool = True) -> Path:
    """A small file: moving grey 96 x 64 frames (a white corner marks the top left) and a stereo tone per audio
    stream (stream j at (j + 1) * 440 Hz, amplitude 0.3)."""
    n = frames if frames is not None else int(seconds * fps)
    imgs = np.repeat(((40 + 7 * np.arange(n)) % 200).astype(np.uint8)[:, None, None, None], 64, 1)
    imgs = np.ascontiguousarray(np.broadcast_to(imgs, (n, 64, 96, 3)))
    imgs[:, :8, :16] = 255
    t = np.arange(int(seconds * sr)) / sr
    tones = [(0.3 * np.sin(2 * np.pi * 440 * (j + 1) * t) * 32767).astype(np.int16) for j in range(audio_streams)]
    return write_media(path, imgs if video else None, fps, tones, sr, vcodec, acodec, "stereo", rotation, times, fmt,
                       default_audio)


def source(tiny_corpus: Path) -> tuple[np.ndarray, np.ndarray, float]:
    """Frames (downscaled to 192 x 144), 16 kHz speech and the frame rate of the first 1.6 s of a tiny-corpus video
    (its first: two people)."""
    import av
    import cv2

    from rjcma.preprocess.audio import load_audio

    video = sorted((tiny_corpus / "videos").rglob("*.mp4"))[0]
    frames = []
    with av.open(str(video)) as c:
        s = c.streams.video[0]
        fps = float(s.average_rate)
        for f in c.decode(s):
            frames.append(cv2.resize(f.to_ndarray(format="rgb24"), (192, 144), interpolation=cv2.INTER_AREA))
            if len(frames) >= int(1.6 * fps):
                break
    return np.stack(frames), load_audio(video, 16000)[: int(1.6 * 16000)], fps


def _audio_packets(src: Path) -> list[tuple[int, int]]:
    import av

    with av.open(str(src)) as c:
        return [(p.pos, p.size) for p in c.demux(c.streams.audio[0]) if p.size and p.pos is not None]


def corrupt_audio_packet(src: Path, dst: Path, which: float = 0.5, how: str = "header") -> Path:
    """Copy ``src`` with one audio packet (at fraction ``which`` of the track) damaged: ``header`` makes its AC3
    frame-size code claim the largest frame ("incomplete frame"); ``payload`` overwrites 48 bytes in its middle;
    ``zeros`` overwrites the whole packet with zeros (an AAC decoder refuses it: "channel element is not
    allocated")."""
    data = bytearray(src.read_bytes())
    pk = _audio_packets(src)
    pos, size = pk[int(which * (len(pk) - 1))]
    if how == "header":
        j = data.find(b"\x0b\x77", pos, pos + 32)  # AC3 sync word
        assert j >= 0
        data[j + 4] = (data[j + 4] & 0xC0) | 0x3F
    elif how == "zeros":
        data[pos:pos + size] = bytes(size)
    else:
        rng = np.random.default_rng(0)
        data[pos + size // 3: pos + size // 3 + 48] = rng.integers(0, 256, 48, dtype=np.uint8).tobytes()
    dst.write_bytes(bytes(data))
    return dst


def break_every_ac3_header(src: Path, dst: Path) -> Path:
    """Copy ``src`` with every AC3 frame claiming the largest frame size: a track that yields almost nothing."""
    data = bytearray(src.read_bytes())
    for pos, _size in _audio_packets(src):
        j = data.find(b"\x0b\x77", pos, pos + 32)
        data[j + 4] = (data[j + 4] & 0xC0) | 0x3F
    dst.write_bytes(bytes(data))
    return dst


# ---- files made with the ffmpeg command line, and what ffprobe says of them ------------------------------------------
def ffmpeg(*args: str) -> None:
    """Run the system's ffmpeg quietly; fail the test on an error."""
    import shutil
    import subprocess

    subprocess.run([shutil.which("ffmpeg") or "ffmpeg", "-v", "error", "-y", *map(str, args)], check=True,
                   timeout=300, capture_output=True)


def has_encoder(name: str) -> bool:
    import shutil
    import subprocess

    exe = shutil.which("ffmpeg")
    out = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, text=True, timeout=60).stdout if exe \
        else ""
    return any(line.split()[1:2] == [name] for line in out.splitlines() if line.strip())


def ffprobe_times(path: Path) -> np.ndarray:
    """Each video frame's best-effort timestamp (s) as ffprobe gives it, NaN where it has none."""
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                          "frame=best_effort_timestamp_time", "-of", "csv=p=0", str(path)], capture_output=True,
                         text=True, timeout=300).stdout.split()
    return np.array([float(x.strip(",")) if x.strip(",") not in ("", "N/A") else np.nan for x in out])


def ffprobe_count(path: Path) -> int:
    """The video frames ``ffprobe -count_frames`` decodes."""
    import subprocess

    out = subprocess.run(["ffprobe", "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", str(path)], capture_output=True, text=True,
                         timeout=300).stdout
    return int(out.strip().strip(","))


def cut(src: Path, dst: Path, keep: float) -> Path:
    """``src`` with only its first ``keep`` fraction of bytes (a download or copy stopped early)."""
    data = src.read_bytes()
    dst.write_bytes(data[: int(len(data) * keep)])
    return dst


def variants(src: Path, d: Path, seconds: float = 2.0) -> dict[str, Path]:
    """The files a new user tries, made from the clip ``src`` with the ffmpeg command line: old AVI writers' B-frames
    (packed, as Xvid writes them, and plain), a real variable frame rate, WebM (VP9 + Opus), Matroska with HEVC and
    two audio tracks, QuickTime, 60 and 5 fps, grayscale, tiny and 4K frames, a portrait phone clip with rotation
    metadata, a path with spaces and accents, and an MP4 whose last 40 % is missing (its index in front)."""
    t = ["-t", f"{seconds}"]
    x264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]
    out = {}

    def make(name: str, *args: str) -> None:
        out[name] = d / name
        ffmpeg("-i", src, *t, *args, out[name])

    if has_encoder("libxvid"):
        make("xvid packed bframes.avi", "-r", "24", "-c:v", "libxvid", "-bf", "2", "-c:a", "libmp3lame")
    make("bframes.avi", "-c:v", "mpeg4", "-bf", "2", "-c:a", "ac3")
    make("vfr.mkv", "-vf", "select='not(eq(mod(n\\,4)\\,1))'", "-fps_mode", "vfr", *x264, "-c:a", "aac")
    make("vp9 opus.webm", "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8", "-c:a", "libopus")
    make("hevc two tracks.mkv", "-map", "0:v", "-map", "0:a", "-map", "0:a", "-c:v", "libx265", "-preset",
         "ultrafast", "-x265-params", "log-level=error", "-c:a:0", "aac", "-c:a:1", "ac3")
    make("clip.mov", *x264, "-c:a", "aac")
    make("60fps.mp4", "-r", "60", *x264[:4], "-c:a", "aac")
    make("5fps.mp4", "-r", "5", *x264, "-c:a", "aac")
    make("grey.mp4", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "gray", "-c:a", "aac")
    make("tiny.mp4", "-vf", "scale=64:36", *x264, "-an")
    make("4k.mp4", "-vf", "scale=3840:2160", *x264, "-an")
    make("portrait.mp4", "-vf", "transpose=2", "-metadata:s:v:0", "rotate=90", *x264, "-c:a", "aac")
    make("café à côté.mp4", *x264, "-c:a", "aac")
    # x264's default preset writes B-frames: the decoder holds frames back, and frame threading then loses the last
    # ones at the cut (the case the decoder's slice-only threading is for)
    make("whole.mp4", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-movflags", "+faststart")
    out["cut.mp4"] = cut(out.pop("whole.mp4"), d / "cut.mp4", 0.6)
    return out
