"""The text chapter (notebook 04_text): the marks after a word, and the exercises' checks."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from rjcma.lessons.checks import Verdict, check_value
from rjcma.preprocess.text import word_index_at

RELEASED_MARKS = ".,!?;"  # the only marks the released split kept (defect 3)


def check_frame_words(answer: Sequence[int] | None, words, fps: float, n_frames: int) -> Verdict:
    """Exercise: index of the word each frame takes (−1 for none)."""
    want = word_index_at(words, np.arange(n_frames) / fps).tolist()
    return check_value("word of each frame", None if answer is None else list(answer), want, 0)


def trailing_marks(punctuated: str) -> str:
    """The punctuation after a word's last letter or digit ("plan:" → ":")."""
    end = len(punctuated)
    while end > 0 and not punctuated[end - 1].isalnum():
        end -= 1
    return punctuated[end:]


def check_dropped_marks(answer: int | None, words) -> Verdict:
    """Exercise: marks of a transcript outside the released split's `. , ! ? ;` (defect 3)."""
    lost = sum(ch not in RELEASED_MARKS for w in words for ch in trailing_marks(w.punctuated))
    return check_value("marks the released split drops", answer, lost, 0)
