"""One resilient decoder (PyAV) for preprocessing and prediction: what ffmpeg decodes, we decode.

Files from phones, cameras and video sites carry small faults: one broken audio packet in an AVI, a few corrupt
video frames, rotation metadata, a variable frame rate, several audio tracks. ``ffmpeg`` decodes such files with a
warning; a decoder that stops at the first error (``for f in container.decode(stream)``) loses the whole track.
Here every stream is demuxed packet by packet:

* A packet the decoder refuses is **skipped and counted** (:class:`DecodeCounts`). A skipped audio packet is
  replaced by silence of its duration, so the audio stays in step with the video (ffmpeg drops it and shifts the rest
  of the track earlier by that much). Frames the decoder marks corrupt (concealed) are kept, as ffmpeg keeps them,
  and counted.
* A stream is refused (:class:`RjcmaError` naming the file) only when it yields almost nothing: no frame at all,
  or fewer than :data:`MIN_GOOD_FRACTION` of its packets.
* Video frames come with their presentation time (first frame at 0 s; variable frame rate safe) and are turned
  upright by the container's rotation (display matrix), as ffmpeg's ``autorotate`` does.
* Of several audio streams the one marked *default* is used (else the first); :func:`probe` says which, and a
  warning names it.
* Audio-only and video-only files are described by :func:`probe`; the callers decide what a missing stream means.

The counts and the chosen stream go into ``meta.json`` (preprocessing) and the prediction JSON.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import numpy as np

from rjcma.errors import RjcmaError

MIN_GOOD_FRACTION = 0.1  # a stream that decodes fewer of its packets than this is refused


def _short(e: BaseException) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


@dataclass
class DecodeCounts:
    """What one pass over one stream decoded and what it had to skip."""

    stream: str  # "video" | "audio"
    index: int = -1
    packets: int = 0
    bad_packets: int = 0
    frames: int = 0
    corrupt_frames: int = 0
    filled_seconds: float = 0.0  # silence put in place of skipped audio packets
    first_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["filled_seconds"] = round(float(d["filled_seconds"]), 4)
        return d

    def bad(self, e: BaseException) -> None:
        self.bad_packets += 1
        if not self.first_error:
            self.first_error = _short(e)

    def check(self, path: Path) -> None:
        """Refuse a stream that yielded almost nothing; warn (one line) about what was skipped."""
        if self.frames == 0:
            why = f" ({self.first_error})" if self.first_error else ""
            raise RjcmaError(f"{path}: no {self.stream} frame could be decoded{why}; the file is corrupt or "
                             "truncated, re-download or re-encode it")
        if self.bad_packets and self.packets and (self.packets - self.bad_packets) < MIN_GOOD_FRACTION * self.packets:
            raise RjcmaError(f"{path}: the {self.stream} stream is damaged: only {self.packets - self.bad_packets} "
                             f"of {self.packets} packets decode ({self.first_error}); re-download or re-encode it")
        msg = self.warning(path)
        if msg:
            warnings.warn(msg, DecodeWarning, stacklevel=3)

    def warning(self, path: Path) -> str | None:
        parts = []
        if self.bad_packets:
            fill = f", replaced by {self.filled_seconds:.3f} s of silence" if self.stream == "audio" else ""
            parts.append(f"{self.bad_packets} of {self.packets} {self.stream} packets could not be decoded and were "
                         f"skipped{fill} (first: {self.first_error})")
        if self.corrupt_frames:
            parts.append(f"{self.corrupt_frames} {self.stream} frames were decoded with errors (kept, as ffmpeg does)")
        return f"{path}: " + "; ".join(parts) if parts else None


class DecodeWarning(UserWarning):
    """Packets were skipped or frames were damaged while decoding."""


@dataclass
class MediaInfo:
    """Container facts of one file (:func:`probe`)."""

    path: Path
    has_video: bool
    has_audio: bool
    codec: str | None = None
    width: int = 0  # upright (after rotation)
    height: int = 0
    rotation: int = 0  # degrees (counter-clockwise) the frames are turned to be upright
    container_fps: float | None = None
    container_duration_s: float | None = None
    container_frames: int = 0
    audio_streams: list[dict[str, Any]] = field(default_factory=list)
    audio_index: int | None = None  # index (among audio streams) of the stream used

    def summary(self) -> dict[str, Any]:
        return {"codec": self.codec, "container_fps": self.container_fps, "width": self.width, "height": self.height,
                "rotation": self.rotation, "has_audio": self.has_audio, "has_video": self.has_video,
                "container_duration_s": self.container_duration_s, "container_frames": self.container_frames,
                "audio_stream": self.audio_streams[self.audio_index] if self.audio_index is not None else None,
                "audio_streams": len(self.audio_streams)}


def open_container(path: str | Path):
    """``av.open`` with one-line errors naming the file."""
    import av

    path = Path(path)
    if not path.exists():
        raise RjcmaError(f"{path}: not found; give a video file or a folder of videos")
    if not path.is_file():
        raise RjcmaError(f"{path}: not a regular file; give a video file or a folder of videos")
    if path.stat().st_size == 0:
        raise RjcmaError(f"{path}: empty file (0 bytes); copy the video again")
    try:
        return av.open(str(path))
    except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError etc.
        why = _short(e).replace(f": '{path}'", "").replace(f" '{path}'", "")
        raise RjcmaError(f"{path}: not a readable video ({why}); check that the file is a complete video") from e


def _frame_rotation(frame) -> int:
    """Counter-clockwise quarter turns (0-3) that make a decoded frame upright (its display matrix), as ffmpeg's
    ``autorotate`` turns it."""
    try:
        deg = float(getattr(frame, "rotation", 0) or 0)
    except (TypeError, ValueError):
        return 0
    return int(round(deg / 90.0)) % 4


def _first_rotation(container, stream) -> int:
    try:
        for frame in container.decode(stream):
            return _frame_rotation(frame)
    except Exception:  # noqa: BLE001 - metadata only; the real decode reports errors
        return 0
    return 0


def _pick_audio(streams) -> int:
    """The audio stream marked default, else the first."""
    import av

    default = getattr(getattr(av.stream, "Disposition", None), "default", None)
    for i, s in enumerate(streams):
        if default is not None and (s.disposition & default):
            return i
    return 0


def probe(path: str | Path) -> MediaInfo:
    """Streams of ``path``; a file with neither a decodable video nor an audio stream is refused."""
    path = Path(path)
    c = open_container(path)
    with c:
        auds = list(c.streams.audio)
        vids = list(c.streams.video)
        info = MediaInfo(path=path, has_video=bool(vids), has_audio=bool(auds))
        info.audio_streams = [{"index": int(s.index), "codec": getattr(s.codec_context, "name", None),
                               "channels": int(getattr(s.codec_context, "channels", 0) or 0),
                               "sample_rate": int(s.codec_context.sample_rate or 0) if s.codec_context else 0,
                               "language": (s.metadata or {}).get("language")} for s in auds]
        if auds:
            info.audio_index = _pick_audio(auds)
        info.container_duration_s = float(c.duration) / 1e6 if c.duration else None
        if vids:
            s = vids[0]
            cc = s.codec_context
            codec = getattr(cc, "name", None) if cc is not None else None
            if cc is None or not codec:
                raise RjcmaError(f"{path}: video codec cannot be decoded by this FFmpeg build; re-encode it "
                                 "(e.g. `ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4`)")
            rate = s.average_rate or s.guessed_rate or s.base_rate
            info.codec = codec
            info.container_fps = float(rate) if rate else None
            w, h = int(cc.width or 0), int(cc.height or 0)
            info.container_frames = int(s.frames or 0)
            info.rotation = 90 * _first_rotation(c, s)
            info.width, info.height = (h, w) if info.rotation in (90, 270) else (w, h)
            if info.container_duration_s is None and s.duration and s.time_base:
                info.container_duration_s = float(s.duration * s.time_base)
        elif not auds:
            raise RjcmaError(f"{path}: has neither a video nor an audio stream; give a video file")
    return info


def iter_video(path: str | Path, counts: DecodeCounts | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time_s, upright rgb uint8 (H, W, 3)) for every decodable frame; time from pts, first frame at 0.

    Undecodable packets are skipped and counted in ``counts``; at the end :meth:`DecodeCounts.check` refuses a
    stream that gave (almost) nothing and warns about the rest.
    """
    path = Path(path)
    counts = counts if counts is not None else DecodeCounts("video")
    c = open_container(path)
    with c:
        if not c.streams.video:
            raise RjcmaError(f"{path}: has no video stream; give a video file")
        stream = c.streams.video[0]
        counts.index = int(stream.index)
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else None
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        t0 = None
        last_t = -np.inf
        try:
            packets = c.demux(stream)
            for packet in packets:
                if packet.size:
                    counts.packets += 1
                try:
                    frames = packet.decode()
                except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError and relatives: skip the packet
                    if packet.size:
                        counts.bad(e)
                    continue
                for frame in frames:
                    t = frame.pts * tb if frame.pts is not None and tb else counts.frames / rate
                    if t0 is None:
                        t0 = t
                    t = float(t - t0)
                    if t <= last_t:  # duplicate or out-of-order timestamp: keep the order, nudge the time
                        t = last_t + 1e-6
                    last_t = t
                    if getattr(frame, "is_corrupt", False):
                        counts.corrupt_frames += 1
                    rgb = frame.to_ndarray(format="rgb24")
                    turns = _frame_rotation(frame)
                    if turns:
                        rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
                    counts.frames += 1
                    yield t, rgb
        except RjcmaError:
            raise
        except Exception as e:  # noqa: BLE001 - the demuxer itself broke (truncated file): keep what we have
            counts.bad(e)
    counts.check(path)


def decode_audio(path: str | Path, sample_rate: int = 16000, counts: DecodeCounts | None = None,
                 stream_index: int | None = None) -> np.ndarray:
    """Mono int16 samples of one audio stream of ``path`` at ``sample_rate`` (libswresample, as ``ffmpeg -ac 1
    -ar``). The stream is the default one (else the first) unless ``stream_index`` (among audio streams) is given.
    Skipped packets become silence of their duration. Raises if the file has no audio stream."""
    import av

    path = Path(path)
    counts = counts if counts is not None else DecodeCounts("audio")
    c = open_container(path)
    with c:
        auds = list(c.streams.audio)
        if not auds:
            raise RjcmaError(f"{path}: has no audio stream")
        stream = auds[_pick_audio(auds) if stream_index is None else stream_index]
        counts.index = int(stream.index)
        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        chunks: list[np.ndarray] = []
        last_dur = 0.0

        def silence(seconds: float) -> None:
            n = int(round(seconds * sample_rate))
            if n > 0:
                chunks.append(np.zeros(n, np.int16))
                counts.filled_seconds += n / sample_rate

        next_t = None  # where the next packet should start (s): a later start means packets went missing

        try:
            for packet in c.demux(stream):
                t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
                dur = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else last_dur
                if packet.size:
                    counts.packets += 1
                    if t is not None and next_t is not None and dur and t - next_t > 0.5 * dur:
                        counts.bad_packets += 1  # the demuxer lost a damaged packet: silence in its place
                        counts.first_error = counts.first_error or f"packets missing before {t:.3f} s"
                        silence(t - next_t)
                    if t is not None:
                        next_t = t + dur
                try:
                    frames = packet.decode()
                except Exception as e:  # noqa: BLE001 - a broken packet: silence of its length, go on
                    if packet.size:
                        counts.bad(e)
                        silence(dur)
                    continue
                for frame in frames:
                    counts.frames += 1
                    if getattr(frame, "is_corrupt", False):
                        counts.corrupt_frames += 1
                    if frame.sample_rate:
                        last_dur = frame.samples / frame.sample_rate
                    frame.pts = None  # let the resampler run on sample counts (robust to odd timestamps)
                    try:
                        outs = resampler.resample(frame)
                    except ValueError:  # the stream changed layout or rate mid-way: a fresh resampler
                        for out in resampler.resample(None):
                            chunks.append(out.to_ndarray().reshape(-1).copy())
                        resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
                        outs = resampler.resample(frame)
                    for out in outs:
                        chunks.append(out.to_ndarray().reshape(-1).copy())
        except Exception as e:  # noqa: BLE001 - the demuxer broke (truncated file): keep what was decoded
            counts.bad(e)
        for out in resampler.resample(None):  # flush
            chunks.append(out.to_ndarray().reshape(-1).copy())
    counts.check(path)
    return np.concatenate(chunks) if chunks else np.zeros(0, np.int16)


def frame_count(path: str | Path) -> int:
    """Frames the resilient decoder yields (slow: decodes everything)."""
    return sum(1 for _ in iter_video(path))
