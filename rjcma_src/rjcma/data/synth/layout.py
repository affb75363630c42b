"""The demo generator's own names and constants; the Aff-Wild2 names it writes (folders, files, the crop size) are
:mod:`rjcma.layout`'s.

The corpus tree is drawn in the package docstring (:mod:`rjcma.data.synth`).
"""

from __future__ import annotations

from fractions import Fraction

from rjcma.layout import ANNOTATIONS_DIR, FACES_DIR, SUBJECT_MAP_NAME, TEST_LIST_DIR

VIDEOS_DIR = "videos/batch1"
TRUTH_JSON = "SYNTH_TRUTH.json"  # written last: a folder without it is an interrupted run
TRUTH_DIR = "SYNTH_TRUTH"
FPS_CYCLE = (Fraction(30), Fraction(25), Fraction(30000, 1001))
AUDIO_RATE = 44100  # AAC sample rate; espeak-ng speaks at 22050 Hz, upsampled x2
ESPEAK_RATE = 22050
MIN_VIDEOS = 4
GENERATOR_VERSION = 7  # bump when the output for a given seed changes (history: the book's data chapter)
# what a rerun may clear: everything the generator writes
MANAGED = (ANNOTATIONS_DIR, TEST_LIST_DIR, FACES_DIR, "videos", TRUTH_DIR, SUBJECT_MAP_NAME)
