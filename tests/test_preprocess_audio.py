"""Audio stage: 16 kHz decoding, the VGGish log-mel front end (against an independent transcription), patches, voice
activity."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from rjcma.errors import RjcmaError
from rjcma.encoders import logmel as LM
from rjcma.preprocess import audio as A


# ---- an independent transcription of the VGGish front end (as the released code), written differently on purpose ----------
def _reference_log_mel(x: np.ndarray) -> np.ndarray:
    """Loop over frames; np.fft.rfft; HTK mel triangles built band by band from their edge frequencies."""
    sr, win, hop, nfft, bands = 16000, 400, 160, 512, 64
    hann = np.array([0.5 - 0.5 * math.cos(2 * math.pi * n / win) for n in range(win)])  # periodic
    mel = lambda f: 1127.0 * math.log(1.0 + f / 700.0)  # noqa: E731
    lo_m, hi_m = mel(125.0), mel(7500.0)
    edges = [lo_m + (hi_m - lo_m) * i / (bands + 1) for i in range(bands + 2)]
    freqs = [sr / 2 * k / (nfft // 2) for k in range(nfft // 2 + 1)]
    W = np.zeros((nfft // 2 + 1, bands))
    for b in range(bands):
        left, centre, right = edges[b], edges[b + 1], edges[b + 2]
        for k, f in enumerate(freqs):
            if k == 0:
                continue  # VGGish gives the DC bin no weight
            m = mel(f)
            if left < m <= centre:
                W[k, b] = (m - left) / (centre - left)
            elif centre < m < right:
                W[k, b] = (right - m) / (right - centre)
    rows = []
    start = 0
    while start + win <= len(x):
        seg = x[start:start + win] * hann
        spec = np.abs(np.fft.rfft(seg, nfft))
        rows.append(np.log(spec @ W + 0.01))
        start += hop
    return np.array(rows)


def test_log_mel_matches_independent_transcription():
    rng = np.random.default_rng(0)
    t = np.arange(16000 * 2) / 16000
    x = 0.3 * np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(len(t))
    x = np.round(x * 32767) / 32768.0  # int16-representable, as ffmpeg output
    got = LM.log_mel(x, 16000)
    ref = _reference_log_mel(x)
    assert got.shape == ref.shape == (1 + (len(x) - 400) // 160, 64)
    np.testing.assert_allclose(got, ref, rtol=0, atol=2e-5)


def test_log_mel_int16_and_resampling():
    t = np.arange(44100) / 44100
    x = 0.5 * np.sin(2 * np.pi * 1000 * t)
    pcm16 = np.round(np.sin(2 * np.pi * 1000 * np.arange(16000) / 16000) * 16384).astype(np.int16)
    a = LM.log_mel(pcm16, 16000)  # int16 is divided by 32768
    b = LM.log_mel(pcm16.astype(np.float64) / 32768.0, 16000)
    np.testing.assert_allclose(a, b, atol=1e-6)
    r = LM.log_mel(x, 44100)  # resampled to 16 kHz first: 1 s -> ~98 frames, peak band near 1 kHz
    assert abs(r.shape[0] - 98) <= 1
    peak_hz = 700 * (math.exp(np.linspace(LM._hertz_to_mel(125), LM._hertz_to_mel(7500), 66)[1 + r.mean(0).argmax()] / 1127) - 1)
    assert 850 < peak_hz < 1150


def test_silence_and_short_input():
    L = LM.log_mel(np.zeros(16000), 16000)
    assert np.allclose(L, math.log(0.01))
    assert LM.log_mel(np.zeros(100), 16000).shape == (0, 64)
    P = LM.frame_patches(LM.log_mel(np.zeros(1000), 16000), 25.0, 3)  # shorter than a patch: padded with log(0.01)
    assert P.shape == (3, 96, 64) and np.allclose(P, math.log(0.01))


@pytest.mark.parametrize("fps", [25.0, 30.0, 29.97])
def test_frame_patches_start_and_tail(fps):
    T = 700
    L = np.arange(T, dtype=np.float32)[:, None].repeat(64, 1)  # row value = its index
    n = int(T / 100 * fps) + 5  # more frames than the audio covers
    P = LM.frame_patches(L, fps, n)
    assert P.shape == (n, 96, 64)
    for i in range(n):
        s = min(int(round(i * 100 / fps)), T - 96)
        assert P[i, 0, 0] == s and P[i, -1, 0] == s + 95  # looks forward from i/fps
    assert (P[-1] == P[-2]).all()  # tail patches repeat the last full patch


def _write_av(path, seconds=1.0, fps=25, audio=True, rate=44100, freq=1000.0):
    import av

    with av.open(str(path), "w") as c:
        v = c.add_stream("mpeg4", rate=fps)
        v.width, v.height, v.pix_fmt = 64, 48, "yuv420p"
        a = c.add_stream("aac", rate=rate, layout="stereo") if audio else None
        for i in range(int(seconds * fps)):
            img = np.full((48, 64, 3), (i * 7) % 255, np.uint8)
            for p in v.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in v.encode():
            c.mux(p)
        if a is not None:
            n = int(seconds * rate)
            t = np.arange(n) / rate
            s = (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)
            fr = av.AudioFrame.from_ndarray(np.stack([s, s], axis=1).reshape(1, -1), format="flt", layout="stereo")
            fr.sample_rate = rate
            for p in a.encode(fr):
                c.mux(p)
            for p in a.encode():
                c.mux(p)


def test_load_audio_any_rate_to_16k_mono(tmp_path):
    p = tmp_path / "tone.mp4"
    _write_av(p, seconds=2.0, rate=44100, freq=1000.0)
    x = A.load_audio(p)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / 16000 - 2.0) < 0.1
    spec = np.abs(np.fft.rfft(x[4000:20000]))
    assert abs(spec.argmax() * 16000 / 16000 - 1000) < 20  # 16000-sample window -> 1 Hz bins
    assert abs(np.abs(x[4000:20000]).max() - 0.5) < 0.05


def test_no_audio_track_gives_silence_and_warning(tmp_path):
    p = tmp_path / "silent.mp4"
    _write_av(p, seconds=1.0, audio=False)
    with pytest.warns(A.NoAudioWarning, match="no audio track"):
        x = A.load_audio(p)
    assert abs(len(x) - 16000) < 1000 and not x.any()


@pytest.mark.parametrize("content", [b"", b"not a video at all" * 10])
def test_bad_files_name_the_file(tmp_path, content):
    p = tmp_path / "broken.mp4"
    p.write_bytes(content)
    with pytest.raises(RjcmaError, match="broken.mp4"):
        A.load_audio(p)
    with pytest.raises(RjcmaError, match="nothere.mp4"):
        A.load_audio(tmp_path / "nothere.mp4")


def test_speech_at_is_sound_or_a_word():
    """Evidence of the audio and text modalities: sound within ±0.15 s of a frame's time (above -45 dBFS), or a word
    spoken then (start < t <= end); long tracks summed in chunks give the same answer."""
    from rjcma.data.words import Word

    sr = 16000
    wav = np.zeros(3 * sr, np.float32)
    wav[sr:2 * sr] = 0.1 * np.sin(2 * np.pi * 300 * np.arange(sr) / sr)  # -23 dBFS between 1 s and 2 s
    wav[2 * sr + 4000:2 * sr + 4400] = 0.001  # -60 dBFS: not sound
    times = np.arange(30) / 10
    got = A.speech_at(wav, sr, times)
    assert got.tolist() == [0.85 < t < 2.15 for t in times]
    words = [Word(2.4, 2.6, "hi")]
    with_word = A.speech_at(wav, sr, times, words)
    assert with_word.tolist() == [g or 2.4 < t <= 2.6 for g, t in zip(got, times)]
    assert not A.speech_at(np.zeros(0, np.float32), sr, times).any()
    x = np.random.default_rng(0).normal(0, 0.1, 50_000).astype(np.float32)
    idx = np.array([0, 1, 999, 30_000, 50_000])
    np.testing.assert_allclose(A._energy_before(x, idx, chunk=4096), [np.sum(x[:j].astype(np.float64) ** 2)
                                                                      for j in idx], rtol=1e-12)
