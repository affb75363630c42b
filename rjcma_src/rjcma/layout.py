"""The Aff-Wild2 (6th ABAW, valence-arousal track) corpus layout: folder and file names, in one place.

The reader (:mod:`rjcma.data.abaw`) searches for these names below a corpus root; the demo generator
(:mod:`rjcma.data.synth`) writes them; prediction (:mod:`rjcma.scoring`) accepts the same video containers. The
book's data chapter shows the tree::

    ROOT/
      6th ABAW Annotations/VA_Estimation_Challenge/Train_Set/<trial>.txt        header "valence,arousal"
      6th ABAW Annotations/VA_Estimation_Challenge/Validation_Set/<trial>.txt   one row per frame, -5 = unannotated
      names_of_videos_in_each_test_set/Valence_Arousal_Estimation_Challenge_test_set_release.txt
      cropped_aligned/<trial>/00001.jpg ...                                     112 x 112 aligned faces, 1-based
      batch1/<video>.mp4 ...                                                    any folder; found by file stem
"""

from __future__ import annotations

ANNOTATIONS_DIR = "6th ABAW Annotations"  # the organisers' top folder of the annotation release
VA_DIR = "VA_Estimation_Challenge"  # the VA track's annotation folder (the reader searches for this name)
PARTITION_DIRS = {"train": "Train_Set", "validation": "Validation_Set"}  # partition -> folder
TEST_LIST_DIR = "names_of_videos_in_each_test_set"
TEST_LIST_NAME = "Valence_Arousal_Estimation_Challenge_test_set_release.txt"
TEST_SAMPLE_PATTERNS = ("*va_test_set_example.txt", "*va_test_set_sample.txt")  # sample submissions (lower case)
FACES_PREFIX = "cropped_aligned"  # face folders: cropped_aligned/, cropped_aligned_new_50_vids/, ...
FACES_DIR = FACES_PREFIX
HEADER = "valence,arousal"  # first line of every annotation file
UNANNOTATED = -5.0  # the organisers' marker of a frame without annotation
PAIR_SUFFIXES = ("_left", "_right")  # two subjects in one video: <video>_left, <video>_right
CROP = 112  # the organisers' aligned crops are 112 x 112
SUBJECT_MAP_NAME = "subject_map.csv"  # optional map trial,subject (not part of the release)

# Video containers the reader and `rjcma predict` accept, in order of preference when one stem has several files.
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".3gp", ".ts",
                  ".mts", ".ogv")
# Sound files `rjcma predict` scores too (rows at a stated rate, no face evidence), in a folder as one by one.
AUDIO_SUFFIXES = (".wav", ".m4a", ".mp3", ".ogg", ".oga", ".opus", ".flac", ".aac", ".wma", ".aiff", ".aif")


def face_file(k: int) -> str:
    """The jpg name of annotation row ``k`` (0-based): rows and jpgs are both 1-based in the release."""
    return f"{k + 1:05d}.jpg"
