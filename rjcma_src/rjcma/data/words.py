"""Recognised words and their store file, ``<store>/<trial>/words.csv`` (start, end, word, confidence, punctuated).

The word record and its file format belong to the data layer: the store serves them to any reader, and the
speech recogniser (:mod:`rjcma.preprocess.speech`) produces them.
"""

from __future__ import annotations

import csv
import io
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_text

WORDS_CSV_COLUMNS = ("start", "end", "word", "confidence", "punctuated")


@dataclass
class Word:
    """One recognised word (times in seconds from the start of the audio)."""

    start: float
    end: float
    word: str
    confidence: float = 1.0  # in [0, 1] (Vosk `conf`, Whisper word probability)
    punctuated: str = ""  # the word with restored punctuation/capitalisation ("" → same as `word`)

    def __post_init__(self) -> None:
        self.start = float(self.start)
        self.end = float(self.end)
        self.confidence = float(min(1.0, max(0.0, self.confidence)))
        if not self.punctuated:
            self.punctuated = self.word

    @property
    def text(self) -> str:
        """The text a text encoder should read: the punctuated form when present."""
        return self.punctuated or self.word


def write_words_csv(path: str | Path, words: Sequence[Word]) -> None:
    """Atomic ``words.csv`` (start, end, word, confidence, punctuated), times in seconds."""
    buf = io.StringIO()
    wr = csv.writer(buf, lineterminator="\n")
    wr.writerow(WORDS_CSV_COLUMNS)
    for w in words:
        wr.writerow([f"{w.start:.3f}", f"{w.end:.3f}", w.word, f"{w.confidence:.4f}", w.punctuated])
    atomic_write_text(path, buf.getvalue())


def read_words_csv(path: str | Path) -> list[Word]:
    """Read a ``words.csv``; a malformed row raises ``RjcmaError`` naming file and line."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError as e:
        raise RjcmaError(f"{path}: missing; run `rjcma preprocess` for this trial") from e
    rows = list(csv.reader(io.StringIO(text)))
    if not rows or tuple(c.strip() for c in rows[0]) != WORDS_CSV_COLUMNS:
        raise RjcmaError(f"{path}:1: header must be {','.join(WORDS_CSV_COLUMNS)}; delete the file and rerun preprocess")
    words = []
    for ln, r in enumerate(rows[1:], start=2):
        if not r:
            continue
        if len(r) != len(WORDS_CSV_COLUMNS):
            raise RjcmaError(f"{path}:{ln}: expected {len(WORDS_CSV_COLUMNS)} columns, got {len(r)}")
        try:
            s, e, c = float(r[0]), float(r[1]), float(r[3])
        except ValueError as ex:
            raise RjcmaError(f"{path}:{ln}: start, end and confidence must be numbers ({ex})") from ex
        if not (math.isfinite(s) and math.isfinite(e)) or e < s:
            raise RjcmaError(f"{path}:{ln}: need finite times with end >= start, got {s}, {e}")
        words.append(Word(s, e, r[2], c, r[4]))
    return words
