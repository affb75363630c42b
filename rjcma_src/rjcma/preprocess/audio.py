"""Audio: 16 kHz mono waveform, the VGGish log-mel front end, and one 96 x 64 patch per video frame.

Paper §4.2.1 (audio modality): the released preprocessing extracts the track with ``ffmpeg -ac 1 -ar 16000``
(16-bit mono), computes the VGGish log-mel spectrogram and cuts one 0.96 s patch per video frame. Here:

* :func:`load_audio` decodes any container/codec PyAV reads (the resilient decoder of
  :mod:`rjcma.preprocess.decode`: broken packets become silence and are counted), downmixes and resamples to 16 kHz
  signed 16-bit with libswresample (what ffmpeg's ``-ac 1 -ar 16000`` uses), and returns float32 samples / 32768. A
  video without an audio track gives silence of the video's length and a warning.
* :func:`log_mel` is the VGGish front end (as VGGish was trained): periodic Hann window of 400 samples (25 ms),
  hop 160 (10 ms), FFT 512, magnitude, 64 HTK mel bands 125-7500 Hz (the DC bin carries no weight), ``log(mel + 0.01)``.
  Input at another rate is resampled to 16 kHz first.
* :func:`frame_patches` gives patch i the log-mel frames starting at round(i * 100 / fps): the 0.96 s after the
  frame's time i / fps. Patches that would run past the end repeat the last full patch.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from rjcma.errors import RjcmaError

SAMPLE_RATE = 16000  # VGGish input rate
WINDOW_SAMPLES = 400  # 25 ms at 16 kHz
HOP_SAMPLES = 160  # 10 ms at 16 kHz -> 100 log-mel frames per second
FFT_LENGTH = 512  # 2 ** ceil(log2(400))
NUM_BANDS = 64
MEL_MIN_HZ = 125.0
MEL_MAX_HZ = 7500.0
LOG_OFFSET = 0.01
PATCH_FRAMES = 96  # 0.96 s
FRAMES_PER_SECOND = SAMPLE_RATE / HOP_SAMPLES  # 100


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
    from rjcma.preprocess.decode import DecodeCounts, decode_audio, open_container

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
        from rjcma.preprocess.decode import probe

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


def _short(e: Exception) -> str:
    return str(e).splitlines()[0][:160] if str(e) else type(e).__name__


def resample(waveform: np.ndarray, orig_rate: int, new_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Band-limited resampling (torchaudio's windowed sinc)."""
    if int(orig_rate) == int(new_rate):
        return np.asarray(waveform, dtype=np.float32)
    import torch
    import torchaudio.functional as AF

    x = torch.as_tensor(np.asarray(waveform, dtype=np.float32))[None]
    return AF.resample(x, int(orig_rate), int(new_rate))[0].numpy()


def _hertz_to_mel(hz: np.ndarray | float) -> np.ndarray:
    """HTK mel scale: 1127 ln(1 + f / 700)."""
    return 1127.0 * np.log1p(np.asarray(hz, dtype=np.float64) / 700.0)


@lru_cache(maxsize=4)
def mel_matrix(num_bands: int = NUM_BANDS, fft_length: int = FFT_LENGTH, sample_rate: int = SAMPLE_RATE,
               lower_hz: float = MEL_MIN_HZ, upper_hz: float = MEL_MAX_HZ) -> np.ndarray:
    """(fft_length/2 + 1, num_bands) triangular HTK mel weights; the DC bin has weight 0 (as VGGish)."""
    n_bins = fft_length // 2 + 1
    bins_mel = _hertz_to_mel(np.linspace(0.0, sample_rate / 2.0, n_bins))
    edges = np.linspace(_hertz_to_mel(lower_hz), _hertz_to_mel(upper_hz), num_bands + 2)
    lo, mid, hi = edges[:-2], edges[1:-1], edges[2:]  # (num_bands,) each
    rising = (bins_mel[:, None] - lo[None]) / (mid - lo)[None]
    falling = (hi[None] - bins_mel[:, None]) / (hi - mid)[None]
    w = np.clip(np.minimum(rising, falling), 0.0, None)
    w[0, :] = 0.0
    w.setflags(write=False)
    return w


@lru_cache(maxsize=2)
def _periodic_hann(n: int) -> np.ndarray:
    w = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(n) / n)
    w.setflags(write=False)
    return w


def log_mel(waveform: np.ndarray, sample_rate: int = SAMPLE_RATE, chunk_frames: int = 4096) -> np.ndarray:
    """VGGish log-mel spectrogram: (T, 64) float32, T = 1 + (n - 400) // 160 frames at 100 per second.

    ``waveform`` is mono float in [-1, 1] (int16 input is divided by 32768). Signals shorter than one window give
    T = 0 rows. Computed in chunks of frames so memory stays bounded for long recordings.
    """
    x = np.asarray(waveform)
    if x.ndim == 2:  # (n, channels) -> mono
        x = x.mean(axis=1)
    if x.ndim != 1:
        raise ValueError(f"waveform must be 1-D (samples) or 2-D (samples, channels); got shape {x.shape}")
    if x.dtype == np.int16:
        x = x.astype(np.float64) / 32768.0
    if int(sample_rate) != SAMPLE_RATE:
        x = resample(x.astype(np.float32), sample_rate, SAMPLE_RATE)
    x = x.astype(np.float64)
    n_frames = 1 + (len(x) - WINDOW_SAMPLES) // HOP_SAMPLES if len(x) >= WINDOW_SAMPLES else 0
    out = np.empty((n_frames, NUM_BANDS), dtype=np.float32)
    if n_frames == 0:
        return out
    window = _periodic_hann(WINDOW_SAMPLES)
    mel_w = mel_matrix()
    frames_all = np.lib.stride_tricks.sliding_window_view(x, WINDOW_SAMPLES)[::HOP_SAMPLES][:n_frames]
    for s in range(0, n_frames, chunk_frames):
        frames = frames_all[s:s + chunk_frames] * window  # (t, 400)
        magnitude = np.abs(np.fft.rfft(frames, n=FFT_LENGTH, axis=1))  # (t, 257)
        out[s:s + chunk_frames] = np.log(magnitude @ mel_w + LOG_OFFSET)
    return out


def patch_starts_at(times: np.ndarray) -> np.ndarray:
    """Start (log-mel frame index) of the patch of a frame shown at ``times`` (s): round(t * 100)."""
    return np.rint(np.asarray(times, np.float64) * FRAMES_PER_SECOND).astype(np.int64)


def patch_starts(fps: float, n_frames: int) -> np.ndarray:
    """Start (log-mel frame index) of the patch of each video frame: round(i * 100 / fps)."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return np.rint(np.arange(n_frames) * (FRAMES_PER_SECOND / float(fps))).astype(np.int64)


def patches_at(log_mel_: np.ndarray, times: np.ndarray, out: np.ndarray | None = None,
               starts: np.ndarray | None = None) -> np.ndarray:
    """(n, 96, 64) patches, patch k covering [t_k, t_k + 0.96 s] for the frame shown at ``times[k]`` (the one
    stage both preprocessing, with t_k = k / fps, and prediction, with the stream's times, use). Tail patches
    repeat the last full one; a log-mel shorter than one patch is first padded with the log of silence (log 0.01).
    ``out`` may be a preallocated (e.g. float16, memory-mapped) array to fill. ``starts`` replaces round(t * 100)
    where the caller knows the exact starts (a k / fps grid: round(k * 100 / fps), free of the rounding error of
    k / fps that would move ties at fps = 30000/1001 or 24)."""
    L = np.asarray(log_mel_)
    if L.ndim != 2 or L.shape[1] != NUM_BANDS:
        raise ValueError(f"log-mel must be (T, {NUM_BANDS}); got {L.shape}")
    if L.shape[0] < PATCH_FRAMES:
        pad = np.full((PATCH_FRAMES - L.shape[0], NUM_BANDS), np.log(LOG_OFFSET), dtype=L.dtype)
        L = np.concatenate([L, pad], axis=0)
    n = len(times)
    starts = np.minimum(patch_starts_at(times) if starts is None else np.asarray(starts), L.shape[0] - PATCH_FRAMES)
    starts = np.maximum(starts, 0)
    if out is None:
        out = np.empty((n, PATCH_FRAMES, NUM_BANDS), dtype=L.dtype)
    windows = np.lib.stride_tricks.sliding_window_view(L, PATCH_FRAMES, axis=0)  # (T-95, 64, 96)
    for s in range(0, n, 1024):
        out[s:s + 1024] = windows[starts[s:s + 1024]].transpose(0, 2, 1)
    return out


def frame_patches(log_mel_: np.ndarray, fps: float, n_frames: int, out: np.ndarray | None = None) -> np.ndarray:
    """:func:`patches_at` at the frame times k / fps of a constant-frame-rate grid of ``n_frames`` rows."""
    if fps <= 0:
        raise ValueError(f"fps must be > 0, got {fps}")
    return patches_at(log_mel_, np.arange(int(n_frames)) / float(fps), out=out, starts=patch_starts(fps, n_frames))
