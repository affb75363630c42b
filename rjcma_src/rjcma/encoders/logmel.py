"""VGGish's input stage: a 16 kHz track → log-mel spectrogram → one 96 x 64 patch per video frame (paper §4.2.1).

The released preprocessing extracts the track with ``ffmpeg -ac 1 -ar 16000``, computes the VGGish log-mel
spectrogram and cuts one 0.96 s patch per video frame. Decoding the track is the preprocessing's job
(:func:`rjcma.preprocess.audio.load_audio`); from the samples on, this module is the front end as VGGish was trained:

* :func:`resample`: band-limited resampling (torchaudio's windowed sinc); the one resampler of the package (the
  speech recognisers use it too).
* :func:`log_mel`: periodic Hann window of 400 samples (25 ms), hop 160 (10 ms), FFT 512, magnitude, 64 HTK mel
  bands 125-7500 Hz (the DC bin carries no weight), ``log(mel + 0.01)``. Input at another rate is resampled to
  16 kHz first.
* :func:`patches_at`: the patch of a frame shown at time t covers the 0.96 s after it (log-mel frames from
  round(t * 100)); :func:`frame_patches` on the grid t_k = k / fps. Patches that would run past the end repeat the
  last full patch.

It sits in the encoders layer because the audio stand-in's pretraining (:mod:`rjcma.encoders.standins`) feeds VGGish
through the same front end as the corpus.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import torch
import torchaudio.functional as AF

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


def resample(waveform: np.ndarray, rate_in: int, rate_out: int = SAMPLE_RATE) -> np.ndarray:
    """float32 samples at ``rate_out``: band-limited resampling (torchaudio's windowed sinc); unchanged (as float32)
    when the rates agree or there are no samples."""
    x = np.asarray(waveform, dtype=np.float32)
    if int(rate_in) == int(rate_out) or x.size == 0:
        return x
    return AF.resample(torch.from_numpy(np.ascontiguousarray(x)), int(rate_in), int(rate_out)).numpy()


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
        x = resample(x, sample_rate, SAMPLE_RATE)
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
    """(n, 96, 64) patches, patch k covering [t_k, t_k + 0.96 s] for the frame shown at ``times[k]`` (preprocessing
    passes t_k = k / fps, prediction the stream's times). Tail patches repeat the last full one; a log-mel shorter
    than one patch is first padded with the log of silence (log 0.01). ``out`` may be a preallocated (e.g. float16,
    memory-mapped) array to fill. ``starts`` replaces round(t * 100) where the caller knows the exact starts (a
    k / fps grid: round(k * 100 / fps), free of the rounding error of k / fps that would move ties at
    fps = 30000/1001 or 24)."""
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
