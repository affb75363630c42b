"""A speech recogniser's repetition loop: the copies of a trailing run of words that no one can have said.

At temperature 0 only (deterministic words, :mod:`rjcma.preprocess.speech`), faster-whisper keeps a decode that
loops: with AVX2 kernels forced on an AVX-512 CPU, Whisper wrote "sad" 80 more times at one instant after "so sad"
(``benchmarks/RESULTS.md``, "Issue 24, fifth pass"). :func:`trailing_loop` finds such a run at the end of a
segment, :func:`stacked_loop_words` picks the copies stacked at one instant; copies said one after another take time
and stay. :func:`rjcma.preprocess.speech.whisper_words` applies it to segments above faster-whisper's own
repetitiveness threshold.
"""

from __future__ import annotations

from typing import Any

LOOP_MIN_COPIES = 3  # a trailing n-gram repeated at least this many times in a row is a loop (n = 1 ... LOOP_MAX_N)
LOOP_MAX_N = 4
LOOP_MIN_SECONDS_PER_WORD = 0.1  # a loop's copy starting sooner than this per word after the last one kept is stacked


def _loop_key(word: str) -> str:
    return "".join(ch for ch in word.lower() if ch.isalnum())


def trailing_loop(words: list[str]) -> tuple[int, int]:
    """``(n, copies)`` of the longest run at the end of ``words`` made of the same n words (n = 1 …
    :data:`LOOP_MAX_N`, case and marks ignored) repeated at least :data:`LOOP_MIN_COPIES` times in a row;
    ``(0, 0)`` when there is none."""
    keys = [_loop_key(w) for w in words]
    best = (0, 0)
    for n in range(1, min(LOOP_MAX_N, len(keys)) + 1):
        unit, copies = keys[len(keys) - n:], 0
        while len(keys) >= (copies + 1) * n and keys[len(keys) - (copies + 1) * n: len(keys) - copies * n] == unit:
            copies += 1
        if copies >= LOOP_MIN_COPIES and copies * n > best[0] * best[1]:
            best = (n, copies)
    return best


def stacked_loop_words(words: list[Any]) -> list[int]:
    """Indices of the words of a trailing loop (:func:`trailing_loop`; ``words`` have ``.word`` and ``.start``) that
    no one can have said: each copy that starts less than :data:`LOOP_MIN_SECONDS_PER_WORD` per word after the last
    copy kept. Whisper stacks a loop's copies at one instant (80 copies of "sad" at 22.30 s); copies said one after
    another ("thank you" six times) take time and stay."""
    n, copies = trailing_loop([w.word for w in words])
    if not copies:
        return []
    first = len(words) - n * copies
    drop, last = [], float(words[first].start)
    for c in range(1, copies):
        i = first + c * n
        if float(words[i].start) - last < LOOP_MIN_SECONDS_PER_WORD * n:
            drop.extend(range(i, i + n))
        else:
            last = float(words[i].start)
    return drop
