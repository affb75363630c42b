"""One resilient decoder (PyAV) for preprocessing and prediction: what ffmpeg decodes, we decode, at ffmpeg's times.

Files from phones, cameras and video sites carry small faults: one broken audio packet in an AVI, a few corrupt
video frames, rotation metadata, a variable frame rate, several audio streams, a download cut short. ``ffmpeg``
decodes such files with a warning; a decoder that stops at the first error (``for f in container.decode(stream)``)
loses the whole track. Here every stream is demuxed packet by packet:

* A packet the decoder refuses is **skipped and counted** (:class:`DecodeCounts`). A skipped audio packet is
  replaced by silence of its duration, so the audio stays in step with the video (ffmpeg drops it and shifts the rest
  of the track earlier by that much). Frames the decoder marks corrupt (concealed) are kept, as ffmpeg keeps them,
  and counted.
* **Every frame comes out.** Video is decoded without frame threading (slice threads only): frame threads hold the
  last frames back, and when a damaged last packet raises its error while they are drained, the frames behind it are
  lost (a cut MP4 gave 153 of the 155 frames ``ffprobe -count_frames`` counts). The decoder is drained at the end
  even when the demuxer stops on a damaged file. Decoding a 720p H.264 stream costs the same either way (about 3 ms
  a frame here), small beside face detection.
* **Times as ffmpeg gives them**: each frame's *best-effort timestamp* (:class:`BestEffort`, libavcodec's rule),
  in seconds from the first frame. Old AVI writers pack B-frames so that the frames' own presentation times come
  out of order (Xvid's packed bitstream); the best-effort time then follows the decoding times, as ffmpeg and
  ffprobe do, instead of repeating or reordering frames.
* **Damage is compared with what the container declares**: the frames and the duration of the stream
  (:meth:`DecodeCounts.declare`); a stream that ends early is reported as truncated at X s of Y s, and a file whose
  index (the MP4 ``moov`` atom, written last by cameras and phones) is missing reads as an incomplete file.
* A stream is refused (:class:`RjcmaError` naming the file) only when it yields almost nothing: no frame at all,
  or fewer than :data:`MIN_GOOD_FRACTION` of its packets.
* Video frames are turned upright by the container's rotation (display matrix), as ffmpeg's ``autorotate`` does.
* Of several audio streams the one marked *default* is used (else the first); :func:`probe` says which.
* Audio-only and video-only files are described by :func:`probe`; the callers decide what a missing stream means.

Every message is one plain line naming the file (:func:`plain`): libav's own log lines are silenced, and no error
shows an errno or a libav function name. The counts and the chosen stream go into ``meta.json`` (preprocessing) and the prediction JSON.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterator

import av
import av.logging
import numpy as np

from rjcma.errors import RjcmaError

MIN_GOOD_FRACTION = 0.1  # a stream that decodes fewer of its packets than this is refused
VIDEO_THREADS = "SLICE"  # no frame threading: it holds frames back and loses them at a damaged end (docstring)
PREPASS_FRAMES = 48  # the frames whose timestamp faults are counted before the times are given (BestEffort)
SHORT_TOLERANCE_S = 0.5  # a stream that ends this much (or two frames) before its declared end is truncated

# libav's own log lines (decoder chatter such as "[h264 @ 0x...] Invalid NAL unit size") are not for the user, who
# sees our one-line messages; they are silenced inside libav. PyAV's Python log callback is never installed: called
# from a decoder's worker threads it can deadlock a process that decodes or encodes with frame threads.
av.logging.set_libav_level(av.logging.PANIC)

_INTERNALS = re.compile(r"\[Errno -?\d+\]\s*|:?\s*'[A-Za-z_0-9]+\(\)'|\s*\(?\b[a-z_0-9]+\(\)\)?")


def plain(e: BaseException) -> str:
    """One line saying what went wrong, without library internals (no errno, no libav function name)."""
    if isinstance(e, av.error.FFmpegError) or isinstance(e, OSError) and e.strerror:
        s = str(e.strerror or "")
    else:
        s = str(e).splitlines()[0] if str(e) else type(e).__name__
    s = _INTERNALS.sub("", s).strip(" :;,")
    return (s[:1].lower() + s[1:])[:160] if s else type(e).__name__


@dataclass
class DecodeCounts:
    """What one pass over one stream decoded, what it had to skip, and what the container declares."""

    stream: str  # "video" | "audio"
    index: int = -1
    packets: int = 0
    bad_packets: int = 0
    frames: int = 0
    corrupt_frames: int = 0
    filled_seconds: float = 0.0  # silence put in place of skipped audio packets
    first_error: str = ""
    declared_frames: int = 0  # the container's frame count of the stream (0: not declared)
    declared_seconds: float = 0.0  # the stream's declared duration (0: not declared)
    decoded_seconds: float = 0.0  # from the first frame to the end of the last one
    file_ends_early: bool = False  # the demuxer stopped with an error before the end of the stream

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("filled_seconds", "declared_seconds", "decoded_seconds"):
            d[k] = round(float(d[k]), 4)
        d["truncated"] = self.truncated
        return d

    def bad(self, e: BaseException | str) -> None:
        self.bad_packets += 1
        if not self.first_error:
            self.first_error = e if isinstance(e, str) else plain(e)

    def declare(self, stream, container) -> None:
        """Record what the container says of ``stream``: its frame count and duration (the stream's own, else the
        file's)."""
        self.index = int(stream.index)
        self.declared_frames = int(stream.frames or 0)
        if stream.duration and stream.time_base:
            self.declared_seconds = float(stream.duration * stream.time_base)
        elif container.duration:
            self.declared_seconds = float(container.duration) / 1e6

    @property
    def truncated(self) -> bool:
        """The stream ends clearly before the end its container declares (audio: and the file ends inside a packet,
        as the declared length of a variable-bitrate audio stream is only an estimate)."""
        if not self.declared_seconds or not self.decoded_seconds:
            return False
        if self.stream == "audio" and not self.file_ends_early:
            return False
        step = self.decoded_seconds / max(1, self.frames)
        return self.decoded_seconds < self.declared_seconds - max(SHORT_TOLERANCE_S, 2 * step)

    def check(self, path: Path) -> None:
        """Refuse a stream that yielded almost nothing; warn (one line) about what was skipped or missing."""
        if self.frames == 0:
            why = f" ({self.first_error})" if self.first_error else ""
            cut = "the file is incomplete (cut short)" if self.file_ends_early else "the file is corrupt or incomplete"
            raise RjcmaError(f"{path}: no {self.stream} frame could be decoded{why}; {cut}: copy or download it "
                             "again, or re-encode it")
        if self.bad_packets and self.packets and (self.packets - self.bad_packets) < MIN_GOOD_FRACTION * self.packets:
            raise RjcmaError(f"{path}: the {self.stream} stream is damaged: only {self.packets - self.bad_packets} "
                             f"of {self.packets} packets decode ({self.first_error}); re-download or re-encode it")
        msg = self.warning(path)
        if msg:
            warnings.warn(msg, DecodeWarning, stacklevel=3)

    def warning(self, path: Path) -> str | None:
        parts = []
        if self.truncated:
            missing = 1.0 - self.decoded_seconds / self.declared_seconds
            of = f", {self.frames} of {self.declared_frames} frames" if self.declared_frames else ""
            parts.append(f"truncated: the {self.stream} ends at {self.decoded_seconds:.1f} s of the "
                         f"{self.declared_seconds:.1f} s its container declares ({missing:.0%} missing{of}); the file "
                         "was cut short, copy or download it again for the rest")
        if self.bad_packets:
            fill = f", replaced by {self.filled_seconds:.3f} s of silence" if self.stream == "audio" else ""
            parts.append(f"{self.bad_packets} of {self.packets} {self.stream} packets could not be decoded and were "
                         f"skipped{fill} (first: {self.first_error})")
        if self.corrupt_frames:
            parts.append(f"{self.corrupt_frames} {self.stream} frames were decoded with errors (kept, as ffmpeg does)")
        return f"{path}: " + "; ".join(parts) if parts else None


class DecodeWarning(UserWarning):
    """Packets were skipped, frames were damaged, or the stream ends before its declared end."""


class BestEffort:
    """libavcodec's best-effort timestamp of decoded frames (``guess_correct_pts``), the time ffmpeg and ffprobe
    give a frame: its presentation time, unless the presentation times have gone backwards more often than the
    decoding times, then its decoding time. ``None`` when the frame has neither.

    Old AVI writers pack B-frames (Xvid's packed bitstream); AVI stores no presentation times, and libavformat's
    guesses for such packets come out of order (recent versions guess them, older ones leave them unset). The rule
    counts the faults only as they come, so its first frames would keep their out-of-order times, or a repeated one.
    :meth:`seeded` therefore counts the faults of the stream's first :data:`PREPASS_FRAMES` frames beforehand:
    such a stream is timed by its decoding times from the first frame on, as ffprobe times it.
    """

    def __init__(self) -> None:
        self.faulty_pts = self.faulty_dts = 0
        self.last_pts = self.last_dts = None

    def __call__(self, pts: int | None, dts: int | None) -> int | None:
        if dts is not None:
            self.faulty_dts += self.last_dts is not None and dts <= self.last_dts
            self.last_dts = dts
        elif pts is not None:
            self.last_dts = pts
        if pts is not None:
            self.faulty_pts += self.last_pts is not None and pts <= self.last_pts
            self.last_pts = pts
        elif dts is not None:
            self.last_pts = dts
        if pts is not None and (self.faulty_pts <= self.faulty_dts or dts is None):
            return pts
        return dts

    @classmethod
    def seeded(cls, path: Path, index: int) -> "BestEffort":
        """A rule that already knows the faults of the first :data:`PREPASS_FRAMES` frames of stream ``index``
        (decoded once more, not converted: a fraction of a second)."""
        ahead = cls()
        with open_container(path) as c:
            stream = c.streams[index]
            stream.thread_type = VIDEO_THREADS
            for k, frame in enumerate(_video_frames(c, stream, DecodeCounts("video"))):
                ahead(frame.pts, frame.dts)
                if k + 1 >= PREPASS_FRAMES:
                    break
        best = cls()
        best.faulty_pts, best.faulty_dts = ahead.faulty_pts, ahead.faulty_dts
        return best


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
    """``av.open`` with one-line errors naming the file; a file whose index is missing is called incomplete."""
    path = Path(path)
    if not path.exists():
        raise RjcmaError(f"{path}: not found; give a video file or a folder of videos")
    if not path.is_file():
        raise RjcmaError(f"{path}: not a regular file; give a video file or a folder of videos")
    if path.stat().st_size == 0:
        raise RjcmaError(f"{path}: empty file (0 bytes); copy the video again")
    try:
        return av.open(str(path))
    except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError and relatives, OSError
        if _index_missing(path):
            raise RjcmaError(f"{path}: incomplete file (the index written at the end is missing): the recording or "
                             "copy stopped before it was finished; copy it again, or repair it with a tool that "
                             "rebuilds the index from a complete file of the same camera") from e
        raise RjcmaError(f"{path}: not a readable video ({plain(e)}); check that the file is a complete video "
                         "or audio file") from e


def _index_missing(path: Path) -> bool:
    """Whether ``path`` is an MP4/QuickTime file (it begins with an ``ftyp`` box) whose top-level boxes hold no
    ``moov``: the index that cameras and phones write last, missing when the file was cut short."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        if f.read(8)[4:8] != b"ftyp":
            return False
        pos = 0
        while pos + 8 <= size:
            f.seek(pos)
            head = f.read(16)
            n, kind = int.from_bytes(head[:4], "big"), head[4:8]
            if kind == b"moov":
                return False
            if n == 1 and len(head) == 16:  # a 64-bit size follows the type
                n = int.from_bytes(head[8:16], "big")
            if n < 8:  # 0: the box runs to the end of the file; anything smaller is not a box
                break
            pos += n
    return True


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
    default = getattr(getattr(av.stream, "Disposition", None), "default", None)
    for i, s in enumerate(streams):
        if default is not None and (s.disposition & default):
            return i
    return 0


def probe(path: str | Path) -> MediaInfo:
    """Streams of ``path``; a file with neither a decodable video nor an audio stream is refused."""
    path = Path(path)
    with open_container(path) as c:
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
            raise RjcmaError(f"{path}: has neither a video nor an audio stream; give a video or audio file")
    return info


def _video_frames(c, stream, counts: DecodeCounts) -> Iterator:
    """Every frame of ``stream``, packet by packet: refused packets skipped and counted, the decoder drained at the
    end even when the demuxer stops early."""
    drained = False
    try:
        for packet in c.demux(stream):
            if packet.size:
                counts.packets += 1
            else:
                drained = True  # PyAV's end-of-stream packet drains the decoder
            try:
                frames = packet.decode()
            except Exception as e:  # noqa: BLE001 - av.error.InvalidDataError and relatives: skip the packet
                if packet.size:
                    counts.bad(e)
                continue
            yield from frames
    except RjcmaError:
        raise
    except Exception as e:  # noqa: BLE001 - the demuxer itself broke (a cut file): keep what we have
        counts.bad(e)
        counts.file_ends_early = True
    if not drained:
        try:
            yield from stream.codec_context.decode(None)
        except Exception as e:  # noqa: BLE001 - the frames before the error are out; the rest cannot come
            counts.bad(e)


def iter_video(path: str | Path, counts: DecodeCounts | None = None) -> Iterator[tuple[float, np.ndarray]]:
    """Yield (time_s, upright rgb uint8 (H, W, 3)) for every decodable frame: the time is the frame's best-effort
    timestamp (:class:`BestEffort`) in seconds from the first frame, strictly increasing.

    Undecodable packets are skipped and counted in ``counts``, with what the container declares; at the end
    :meth:`DecodeCounts.check` refuses a stream that gave (almost) nothing and warns about the rest (skipped
    packets, a stream that ends early).
    """
    path = Path(path)
    counts = counts if counts is not None else DecodeCounts("video")
    with open_container(path) as c:
        if not c.streams.video:
            raise RjcmaError(f"{path}: has no video stream; give a video file")
        stream = c.streams.video[0]
        counts.declare(stream, c)
        stream.thread_type = VIDEO_THREADS
        tb = float(stream.time_base) if stream.time_base else None
        rate = float(stream.average_rate) if stream.average_rate else 25.0
        best = BestEffort.seeded(path, stream.index)
        t0, last_t = None, -np.inf
        for frame in _video_frames(c, stream, counts):
            ts = best(frame.pts, frame.dts)
            step = last_t + 1.0 / rate if counts.frames else 0.0  # a frame without any time: one frame later
            if ts is not None and tb:
                t0 = float(ts * tb) - step if t0 is None else t0
                t = float(ts * tb) - t0
            else:
                t = step
            if t <= last_t and frame.dts is None:  # a frame drained at the end with only a stale time: as ffprobe,
                t = step  # which gives it none, one frame after the last (Xvid's packed B-frames)
            elif t <= last_t:  # a timestamp that repeats (a broken file): keep the order, a microsecond later
                t = last_t + 1e-6
            last_t = t
            if getattr(frame, "is_corrupt", False):
                counts.corrupt_frames += 1
            rgb = frame.to_ndarray(format="rgb24")
            turns = _frame_rotation(frame)
            if turns:
                rgb = np.ascontiguousarray(np.rot90(rgb, k=turns))
            counts.frames += 1
            counts.decoded_seconds = t + (t / (counts.frames - 1) if counts.frames > 1 else 1.0 / rate)
            yield t, rgb
    counts.check(path)


def decode_audio(path: str | Path, sample_rate: int = 16000, counts: DecodeCounts | None = None,
                 stream_index: int | None = None) -> np.ndarray:
    """Mono int16 samples of one audio stream of ``path`` at ``sample_rate`` (libswresample, as ``ffmpeg -ac 1
    -ar``). The stream is the default one (else the first) unless ``stream_index`` (among audio streams) is given.
    Skipped packets become silence of their duration. Raises if the file has no audio stream."""
    path = Path(path)
    counts = counts if counts is not None else DecodeCounts("audio")
    with open_container(path) as c:
        auds = list(c.streams.audio)
        if not auds:
            raise RjcmaError(f"{path}: has no audio stream")
        stream = auds[_pick_audio(auds) if stream_index is None else stream_index]
        counts.declare(stream, c)
        chunks = _AudioChunks(sample_rate, counts)
        try:
            for packet in c.demux(stream):
                chunks.packet(packet)
        except Exception as e:  # noqa: BLE001 - the demuxer broke (a cut file): keep what was decoded
            counts.bad(e)
            counts.file_ends_early = True
        chunks.flush()
    counts.decoded_seconds = chunks.samples / sample_rate
    counts.check(path)
    return np.concatenate(chunks.out) if chunks.out else np.zeros(0, np.int16)


class _AudioChunks:
    """The samples of one audio stream, packet by packet, resampled to mono int16; a refused or missing packet
    becomes silence of its duration."""

    def __init__(self, sample_rate: int, counts: DecodeCounts):
        self.sr, self.counts = sample_rate, counts
        self.resampler = av.AudioResampler(format="s16", layout="mono", rate=sample_rate)
        self.out: list[np.ndarray] = []
        self.samples = 0
        self.last_dur = 0.0
        self.next_t = None  # where the next packet should start (s): a later start means packets went missing

    def _keep(self, x: np.ndarray) -> None:
        self.out.append(x)
        self.samples += len(x)

    def silence(self, seconds: float) -> None:
        n = int(round(seconds * self.sr))
        if n > 0:
            self._keep(np.zeros(n, np.int16))
            self.counts.filled_seconds += n / self.sr

    def packet(self, packet) -> None:
        counts = self.counts
        t = float(packet.pts * packet.time_base) if packet.pts is not None and packet.time_base else None
        dur = float(packet.duration * packet.time_base) if packet.duration and packet.time_base else self.last_dur
        if packet.size:
            counts.packets += 1
            if t is not None and self.next_t is not None and dur and t - self.next_t > 0.5 * dur:
                counts.bad(f"packets missing before {t:.3f} s")  # the demuxer lost a damaged packet
                self.silence(t - self.next_t)
            if t is not None:
                self.next_t = t + dur
        try:
            frames = packet.decode()
        except Exception as e:  # noqa: BLE001 - a broken packet: silence of its length, go on
            if packet.size:
                counts.bad(e)
                self.silence(dur)
            return
        for frame in frames:
            counts.frames += 1
            if getattr(frame, "is_corrupt", False):
                counts.corrupt_frames += 1
            if frame.sample_rate:
                self.last_dur = frame.samples / frame.sample_rate
            frame.pts = None  # let the resampler run on sample counts (robust to odd timestamps)
            try:
                outs = self.resampler.resample(frame)
            except ValueError:  # the stream changed layout or rate mid-way: a fresh resampler
                self.flush()
                self.resampler = av.AudioResampler(format="s16", layout="mono", rate=self.sr)
                outs = self.resampler.resample(frame)
            for out in outs:
                self._keep(out.to_ndarray().reshape(-1).copy())

    def flush(self) -> None:
        for out in self.resampler.resample(None):
            self._keep(out.to_ndarray().reshape(-1).copy())


def frame_count(path: str | Path) -> int:
    """Frames the resilient decoder yields (slow: decodes everything)."""
    return sum(1 for _ in iter_video(path))
