"""The audio chapter (notebook 03_audio): its exercises' checks."""

from __future__ import annotations

from typing import Sequence

from rjcma.lessons.checks import Verdict, check_value
from rjcma.encoders.logmel import PATCH_FRAMES, patch_starts

LOG_MEL_PER_SECOND = 100  # log-mel frames of 10 ms


def check_patch_starts(answer: Sequence[int] | None, frame: int, fps: Sequence[float]) -> Verdict:
    """Exercise: the log-mel frame where the patch of video frame ``frame`` starts, at each frame rate of ``fps``."""
    want = tuple(int(patch_starts(f, frame + 1)[frame]) for f in fps)
    rates = " and ".join(f"{f:g}" for f in fps)
    return check_value(f"patch starts of frame {frame} at {rates} fps", None if answer is None else tuple(answer),
                       want, 0)


def check_patch_overlap(answer: float | None, fps: float) -> Verdict:
    """Exercise: seconds of audio the patches of two consecutive video frames share (to the nearest log-mel frame)."""
    starts = patch_starts(fps, 2)
    return check_value("seconds shared by consecutive patches", answer,
                       (PATCH_FRAMES - (starts[1] - starts[0])) / LOG_MEL_PER_SECOND, 0.006,
                       "measured from the patch starts, to the nearest log-mel frame")
