"""The audio track of a video: decoded to 16 kHz mono, and where it has sound (paper §4.2.1, audio modality).

* :func:`load_audio` decodes any container/codec PyAV reads (the resilient decoder of
  :mod:`rjcma.preprocess.decode`: broken packets become silence and are counted), downmixes and resamples to 16 kHz
  signed 16-bit with libswresample (what ffmpeg's ``-ac 1 -ar 16000`` uses, as the released preprocessing), and
  returns float32 samples / 32768. A video without an audio track gives silence of the video's length and a
  warning. From the samples on, VGGish's front end is :mod:`rjcma.encoders.logmel`.
* :func:`speech_at`: whether there is sound (voice activity) or a word at each frame time: the evidence of the audio
  and text modalities, as the face mask is the visual one's (prediction leaves frames without evidence empty).
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from rjcma.encoders.logmel import SAMPLE_RATE
from rjcma.errors import RjcmaError
from rjcma.preprocess.decode import DecodeCounts, decode_audio, open_container, probe
from rjcma.preprocess.text import word_index_at


class NoAudioWarning(UserWarning):
    """The video has no audio track; silence is used instead."""


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE, duration: float | None = None,
               counts=None) -> np.ndarray:
    """Decode the audio of ``path`` to mono float32 at ``sample_rate`` (samples / 32768) with the resilient decoder
    (:mod:`rjcma.preprocess.decode`: the default stream of several, broken packets replaced by silence and counted
    in ``counts``, a :class:`~rjcma.preprocess.decode.DecodeCounts`).

    Without an audio stream: zeros of ``duration`` seconds (the video's length when not given) and a
    :class:`NoAudioWarning`. Unreadable files raise :class:`RjcmaError` naming the file.
    """
    path = Path(path)
    if not path.is_file():
        raise RjcmaError(f"{path}: video file not found")
    with open_container(path) as container:
        streams = list(container.streams.audio)
        if not streams:
            if duration is None:
                duration = _container_duration(container)
    if not streams:
        warnings.warn(f"{path}: no audio track; using {duration:.2f} s of silence", NoAudioWarning, stacklevel=2)
        return np.zeros(int(round(duration * sample_rate)), dtype=np.float32)
    if len(streams) > 1:
        info = probe(path)
        st = info.audio_streams[info.audio_index]
        warnings.warn(f"{path}: {len(streams)} audio streams; using stream #{st['index']} ({st['codec']}, "
                      f"{st['channels']} ch, language {st['language'] or 'unknown'}: the default one, else the first)",
                      stacklevel=2)
    pcm = decode_audio(path, sample_rate, counts if counts is not None else DecodeCounts("audio"))
    return (pcm.astype(np.float32) / 32768.0).astype(np.float32)


def _container_duration(container) -> float:
    if container.duration:
        return float(container.duration) / 1_000_000.0
    for s in container.streams:
        if s.duration and s.time_base:
            return float(s.duration * s.time_base)
    return 0.0


# ---- voice activity ----------------------------------------------------------------------------------------------
VAD_WINDOW_S = 0.3  # sound within ±0.15 s of a frame's time counts for it
VAD_DBFS = -45.0  # RMS level above which there is sound


def speech_at(wav: np.ndarray, sample_rate: int, times: np.ndarray, words: list | None = None) -> np.ndarray:
    """(N,) bool: sound at each time (s, increasing; RMS over :data:`VAD_WINDOW_S` above :data:`VAD_DBFS` dBFS) or
    a word being spoken. The evidence flag of the audio and text modalities."""
    times = np.asarray(times, np.float64)
    out = np.zeros(len(times), bool)
    x = np.asarray(wav, np.float32)
    if x.size:
        half = int(VAD_WINDOW_S * sample_rate / 2)
        mid = np.clip(np.rint(times * sample_rate).astype(np.int64), 0, len(x))
        lo, hi = np.clip(mid - half, 0, len(x)), np.clip(mid + half, 0, len(x))
        n = np.maximum(hi - lo, 1)
        rms = np.sqrt((_energy_before(x, hi) - _energy_before(x, lo)) / n)
        out |= (hi > lo) & (20 * np.log10(np.maximum(rms, 1e-10)) > VAD_DBFS)
    if words:
        out |= word_index_at(words, times) >= 0  # a word is spoken (start < t <= end)
    return out


def _energy_before(x: np.ndarray, idx: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
    """sum(x[:j] ** 2) in float64 at each j of ``idx``: the running sum of squares, summed in sample order, one
    chunk of samples at a time (a track-long float64 array would take 8 bytes a sample)."""
    out = np.zeros(len(idx), np.float64)
    carry = 0.0
    for s in range(0, len(x), chunk):
        part = x[s:s + chunk]
        c = np.cumsum(np.concatenate([[carry], part.astype(np.float64) ** 2]))  # c[j] = sum(x[:s + j] ** 2)
        sel = (idx > s) & (idx <= s + len(part))
        out[sel] = c[idx[sel] - s]
        carry = float(c[-1])
    return out
