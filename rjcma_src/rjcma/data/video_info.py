"""What a video container says, read with PyAV: frame rate, frame count, duration, audio, frame size
(:func:`video_info`). The reader of the corpus keeps only the path of every video; the preprocessing and the data
chapter ask the container.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av

from rjcma.errors import RjcmaError


@dataclass(frozen=True)
class VideoInfo:
    path: Path
    fps: float  # frames per second from the container
    n_frames: int  # frame count (container header, demuxed packets or decoded frames; see ``counted_by``)
    duration: float  # seconds
    has_audio: bool
    width: int
    height: int
    counted_by: str = "container"  # how n_frames was obtained: "container", "demux" or "decode"


def video_info(path: str | Path, count: str = "auto") -> VideoInfo:
    """Frame rate, frame count, duration, audio presence and size of a video, read with PyAV.

    ``count``: ``"auto"`` takes the container's frame count and demuxes (no decoding) when the container has
    none; ``"demux"`` always counts video packets; ``"decode"`` decodes every frame (slowest, exact).
    """
    path = Path(path)
    if not path.is_file():
        raise RjcmaError(f"{path}: video not found")
    if count not in ("auto", "demux", "decode"):
        raise ValueError(f"count must be auto, demux or decode, got {count!r}")
    try:
        container = av.open(str(path))
    except (av.FFmpegError, OSError, ValueError) as e:
        raise RjcmaError(f"{path}: not a readable video ({e}); check the file or re-download it") from None
    try:
        if not container.streams.video:
            raise RjcmaError(f"{path}: has no video stream")
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate or stream.base_rate
        if not rate or float(rate) <= 0:
            raise RjcmaError(f"{path}: the container gives no frame rate")
        fps = float(rate)
        has_audio = bool(container.streams.audio)
        width, height = int(stream.codec_context.width or 0), int(stream.codec_context.height or 0)
        n_frames, counted_by = int(stream.frames or 0), "container"
        try:
            if count == "decode":
                n_frames, counted_by = sum(1 for _ in container.decode(stream)), "decode"
            elif count == "demux" or n_frames <= 0:
                n_frames = sum(1 for p in container.demux(stream) if p.size > 0)
                counted_by = "demux"
        except av.FFmpegError as e:
            raise RjcmaError(f"{path}: the video stream is damaged ({e}); re-download or re-encode it") from None
        if container.duration:
            duration = float(container.duration) / 1_000_000  # av.time_base
        elif stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        else:
            duration = n_frames / fps
    finally:
        container.close()
    return VideoInfo(path, fps, n_frames, duration, has_audio, width, height, counted_by)
