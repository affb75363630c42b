"""The words of a 16 kHz track: speech recognition in pieces, then punctuation (paper §4.2.1, text modality).

:func:`transcribe_track` recognises a track (:mod:`rjcma.preprocess.speech`) whole, or, when it is longer than
:data:`ASR_PIECE_S`, in pieces cut at its quietest moments (:func:`pieces`), word times shifted back to the
track's: the recogniser's working memory stays that of one piece (Whisper's features of a whole track take ~55 MB
a minute at once). Punctuation (:mod:`rjcma.preprocess.punctuation`) follows when the recogniser writes none.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from rjcma.preprocess import speech
from rjcma.preprocess.punctuation import punctuate, punctuation_plan, skip_reason

ASR_PIECE_S = 120.0  # longer tracks are recognised in pieces of at most this length, cut at their quietest moment:
ASR_CUT_WINDOW_S = 20.0  # the cut is sought in the last this-many seconds of a piece


def transcribe_words(wav: np.ndarray, sample_rate: int, p, device: str = "cpu") -> tuple[list, dict[str, Any]]:
    """Words of one stretch of audio: ASR, then punctuation when the recogniser writes none (paper §4.2.1); ``p`` is
    the config's ``preprocess`` section. Returns (words, what ran)."""
    if p.asr_backend == "none":
        return [], {"backend": "none"}
    words = speech.transcribe(wav, sample_rate, backend=p.asr_backend, model_dir=p.asr_model, device=device,
                              weights_dir=p.weights_dir)
    info: dict[str, Any] = {"backend": getattr(words, "backend", p.asr_backend),
                            "model_dir": str(getattr(words, "model_dir", ""))}
    if getattr(words, "repeats_dropped", 0):  # a recogniser's repetition loop, removed (rjcma.preprocess.speech)
        info["repeats_dropped"] = int(words.repeats_dropped)
    punct_dir = punctuation_plan(p.punctuation_model, p.weights_dir, bool(getattr(words, "punctuates", False)))
    if punct_dir:
        words = punctuate(words, model_dir=punct_dir)
        info["punctuation_model"] = punct_dir
    else:
        info["punctuation"] = skip_reason(p.punctuation_model, bool(getattr(words, "punctuates", False)))
    return list(words), info


def pieces(wav: np.ndarray, sr: int) -> list[tuple[int, int]]:
    """(start, end) samples of pieces of at most :data:`ASR_PIECE_S`, each cut at the quietest 0.1 s of the last
    :data:`ASR_CUT_WINDOW_S` before its limit (a pause between words)."""
    piece, win, hop = int(ASR_PIECE_S * sr), int(ASR_CUT_WINDOW_S * sr), max(1, sr // 10)
    out, s = [], 0
    while len(wav) - s > piece:
        lo = s + piece - win
        seg = wav[lo:s + piece]
        e = np.add.reduceat(np.square(seg, dtype=np.float32), np.arange(0, len(seg), hop))  # energy per 0.1 s
        cut = lo + int(np.argmin(e)) * hop + hop // 2
        out.append((s, cut))
        s = cut
    return out + [(s, len(wav))]


def transcribe_track(wav: np.ndarray, sr: int, p, device: str = "cpu") -> tuple[list, dict[str, Any]]:
    """:func:`transcribe_words` on the whole track, or on its :func:`pieces`, word times shifted back to the
    track's. Returns (words, what ran; ``pieces`` when there were several)."""
    cuts = pieces(wav, sr)
    words, asr, dropped = [], {}, 0
    for a, e in cuts:
        ws, asr = transcribe_words(wav[a:e], sr, p, device)
        dropped += int(asr.pop("repeats_dropped", 0))
        words += [dataclasses.replace(w, start=w.start + a / sr, end=w.end + a / sr) if a else w for w in ws]
    if len(cuts) > 1:
        asr = {**asr, "pieces": len(cuts)}
    if dropped:
        asr["repeats_dropped"] = dropped
    return words, asr
