"""The subjects' speech: espeak-ng utterances placed on the timeline, the adjectives they say picked by the
intended word parts, pitch and loudness by the prosody part P (arousal). Speaking rate and pauses are nuisances
(drawn per utterance, not from P): the face's mouth moves with them, so P stays a cue of the sound alone."""

from __future__ import annotations

import io
import shutil
import subprocess
import wave
from typing import Any

import numpy as np

from rjcma.data.synth.design import CLAUSES, LEXICON, VideoPlan, lexicon_cell, at_time
from rjcma.data.synth.layout import ESPEAK_RATE
from rjcma.errors import MissingAssetError, RjcmaError

PITCH_PER_STD = 18.0  # espeak-ng pitch units (0-99) per std of P, per utterance
LOUDNESS_DB_PER_STD = 6.0  # loudness per std of P, continuous


def espeak_available() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise MissingAssetError(
            "espeak-ng: not found on PATH; install it (`sudo apt-get install espeak-ng`, or "
            "`conda install -c conda-forge espeak-ng`) or run `make setup`"
        )
    return exe


def speak(text: str, voice: str, speed: int, pitch: int, exe: str = "espeak-ng") -> np.ndarray:
    """espeak-ng → float32 mono at 22050 Hz."""
    try:
        out = subprocess.run(
            [exe, "-v", voice, "-s", str(speed), "-p", str(pitch), "-a", "100", "--stdout", text],
            check=True, capture_output=True, timeout=60,
        ).stdout
    except (OSError, subprocess.SubprocessError) as e:
        raise MissingAssetError(f"espeak-ng: failed to speak {text!r} ({e}); check the espeak-ng install") from e
    with wave.open(io.BytesIO(out)) as w:
        if w.getframerate() != ESPEAK_RATE or w.getsampwidth() != 2:
            raise RjcmaError(f"espeak-ng: unexpected output format ({w.getframerate()} Hz); reinstall espeak-ng")
        pcm = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
    return pcm.astype(np.float32) / 32768.0


def _voiced_span(x: np.ndarray, rate: int) -> tuple[int, int]:
    env = np.abs(x)
    idx = np.flatnonzero(env > 0.02)
    if idx.size == 0:
        return 0, len(x)
    return int(idx[0]), int(idx[-1]) + 1


def _syllables(word: str) -> int:
    v = "aeiouy"
    n, prev = 0, False
    for ch in word.lower():
        isv = ch in v
        n += isv and not prev
        prev = isv
    return max(1, n - (word.endswith("e") and n > 1))


def plan_speech(vp: VideoPlan, rng: np.random.Generator, exe: str) -> dict[str, Any]:
    """Utterances placed on the timeline: words follow W and W_A, pitch and loudness follow P (arousal); rate and
    pauses are drawn per utterance. ``plain``: the speech track before the loudness gain (for the mouth)."""
    T = vp.n_frames / float(vp.fps)
    track = np.zeros(int(round(T * ESPEAK_RATE)) + 1, np.float32)
    plain = np.zeros_like(track)  # the same speech at one loudness (what the mouth follows)
    owner = np.full(track.size, -1, np.int8)  # which trial (index in vp.trials) speaks at each sample
    utterances, words = [], []
    t = float(rng.uniform(0.15, 0.6))
    spk = 0
    while t < T - 0.6:
        if len(vp.trials) > 1 and rng.random() < 0.5:
            spk = 1 - spk
        tp = vp.trials[spk]
        p = float(at_time(tp, "prosody", t))
        speed = int(np.clip(round(rng.normal(170.0, 15.0)), 130, 210))  # nuisance: visible on the mouth too
        pitch = int(np.clip(round(tp.identity.pitch0 + PITCH_PER_STD * p), 0, 99))
        n_clauses = int(rng.integers(2, 4))
        while True:  # near the end, shorten the utterance until it fits (no long silent tail)
            sec_per_word = 60.0 / speed
            texts, picked, tw = [], [], t + 0.1
            for _ in range(n_clauses):
                tmpl = CLAUSES[rng.integers(len(CLAUSES))]
                n_fill = len(tmpl.split()) - 1
                tw += n_fill * sec_per_word
                level = lexicon_cell(float(at_time(tp, "words", tw)), float(at_time(tp, "words_a", tw)))
                word = LEXICON[level][rng.integers(len(LEXICON[level]))]
                texts.append(tmpl.format(word))
                picked.append((word, level))
                tw += 1.4 * sec_per_word
            text = ", ".join(texts) + "."
            wav = speak(text, tp.identity.voice, speed, pitch, exe)
            a, b = _voiced_span(wav, ESPEAK_RATE)
            wav = wav[a:b]
            d = len(wav) / ESPEAK_RATE
            if t + d <= T - 0.1 or n_clauses == 1:
                break
            n_clauses -= 1
        if t + d > T - 0.1:
            break
        # loudness follows P continuously (LOUDNESS_DB_PER_STD) over the utterance; the mouth follows the speech
        # before this gain (``plain``), so loudness is heard, not seen
        ts = t + np.arange(len(wav)) / ESPEAK_RATE
        gain = 0.55 * 10 ** (LOUDNESS_DB_PER_STD * at_time(tp, "prosody", ts) / 20.0)
        i0 = int(round(t * ESPEAK_RATE))
        seg = track[i0 : i0 + len(wav)]
        seg += (wav * gain)[: len(seg)]
        plain[i0 : i0 + len(seg)] += (wav * 0.55)[: len(seg)]
        owner[i0 : i0 + len(seg)] = spk
        # word times: voiced span split in proportion to syllables (+ a short gap per word)
        all_words = text.replace(",", "").replace(".", "").split()
        syl = np.array([_syllables(w) + 0.6 for w in all_words], float)
        edges = t + d * np.concatenate([[0], np.cumsum(syl) / syl.sum()])
        levels = dict(picked)
        for k, w in enumerate(all_words):
            lv = levels.get(w)
            words.append(
                {"start": round(float(edges[k]), 3), "end": round(float(edges[k + 1]), 3), "word": w,
                 "speaker": tp.name, "valence_level": None if lv is None else lv[0],
                 "arousal_level": None if lv is None else lv[1]}
            )
        utterances.append(
            {"start": round(t, 3), "end": round(t + d, 3), "speaker": tp.name, "text": text, "voice": tp.identity.voice,
             "speed_wpm": speed, "pitch": pitch, "prosody": round(p, 4)}
        )
        pause = float(np.clip(0.4 + rng.uniform(-0.2, 0.25), 0.15, 0.9))  # nuisance, like the rate
        t += d + pause
    # room tone keeps the track from being digitally silent
    track += (rng.standard_normal(track.size) * 0.002).astype(np.float32)
    return {"track": track, "plain": plain, "owner": owner, "utterances": utterances, "words": words}


def upsample2(x: np.ndarray) -> np.ndarray:
    """Exact band-limited x2 upsampling (22050 → 44100 Hz) by zero-padding the spectrum."""
    n = len(x)
    X = np.fft.rfft(x.astype(np.float64))
    Y = np.zeros(n + 1, np.complex128)
    Y[: len(X)] = X
    y = np.fft.irfft(Y, 2 * n) * 2.0
    return np.clip(y, -1.0, 1.0).astype(np.float32)


def track_index(frame_t: np.ndarray, n_samples: int) -> np.ndarray:
    """The speech-track sample (22050 Hz) at each frame time, clipped to the track."""
    return np.clip((frame_t * ESPEAK_RATE).astype(int), 0, n_samples - 1)
