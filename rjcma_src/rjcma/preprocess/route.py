"""The one route from a video to the model's per-frame inputs (paper §4.2.1), for preprocessing and prediction.

==========  =====================================================================================================
faces       decode the video; detect, track and align the faces: a 48 × 48 face per row and person
            (:mod:`rjcma.preprocess.faces`), or the crops of a ``cropped_aligned`` folder
audio       the 16 kHz mono track → VGGish log-mel → a 0.96 s patch at each row's time
            (:mod:`rjcma.encoders.logmel`)
speech      ASR in pieces for long tracks, then punctuation → words with times (:mod:`rjcma.preprocess.transcript`)
text        a BERT-family word vector at each row's time (:func:`rjcma.preprocess.text.text_at`)
features    the frozen encoders (cached mode) on every ``frame_stride``-th row, rows between interpolated
            (:mod:`rjcma.encoders.encode`)
==========  =====================================================================================================

:meth:`Route.run` runs the stages in this order (:data:`STAGES`), each implemented once, here. A caller says only
where the frame times come from and where the arrays go, by filling in the hooks of a subclass:

* preprocessing (:class:`rjcma.preprocess.trial.TrialRoute`): the annotation grid t_k = k / fps; the arrays go
  to the store's (memory-mapped) files; a stage whose signature is unchanged is skipped, so a run resumes;
* prediction (:class:`rjcma.scoring.VideoRoute`): the decoded stream's own times; the arrays stay in memory; one
  visual input per tracked person, whose faces are encoded as they are cut (:class:`rjcma.encoders.encode.FaceEncoder`).

Warnings raised inside a stage become the caller's notes (:meth:`Route.note`); each stage is timed (wall and
process CPU seconds) and reported to :meth:`Route.done`.
"""

from __future__ import annotations

import abc
import time
import warnings
from functools import partial
from pathlib import Path
from typing import Any, Callable, ContextManager, Iterable

import numpy as np

from rjcma.encoders.encode import FaceEncoder, encode_rows
from rjcma.encoders.logmel import log_mel
from rjcma.errors import RjcmaError
from rjcma.models.backbones import encode_faces, encode_logmel
from rjcma.preprocess.decode import DecodeCounts, iter_video
from rjcma.preprocess.faces.folder import faces_from_folder
from rjcma.preprocess.faces.stream import FaceStage, faces_at
from rjcma.preprocess.text import text_at
from rjcma.preprocess.transcript import transcribe_track

STAGES = ("faces", "audio", "speech", "text", "features")
ENCODE = {"visual": encode_faces, "audio": encode_logmel}  # the encoder's input transform and forward pass


def clock() -> np.ndarray:
    """(wall, process CPU) seconds."""
    return np.array([time.perf_counter(), time.process_time()])


class Route(abc.ABC):
    """One video on the route (module docstring): the stages, their order, and the hooks a caller fills in.

    Attributes a subclass sets: ``video`` (None: a trial without video), ``p`` (the config's ``preprocess``
    section the features depend on), ``asr`` (the ``preprocess`` section of the recogniser), ``label`` (names the
    video in notes), ``times`` (the time of each row, s; known after the faces stage where the stream sets them)
    and, where they differ from the defaults below, the rest.
    """

    video: Path | None
    p: Any
    asr: Any
    label: str
    times: np.ndarray
    device: str = "cpu"  # of the recogniser and the text encoder
    faces_dir: Path | None = None  # a cropped_aligned folder: faces from it, no detection
    detect: bool = True  # False: the faces stage only decodes the frame times
    detect_every: int = 1  # faces are detected on every this-many-th frame
    join_tracks: bool = False  # a person lost for a while and found again elsewhere stays one track
    progress: Callable[[int], None] | None = None  # called with 1 per decoded frame
    face_sink: FaceEncoder | None = None  # takes each face as it is cut; the faces are then not kept
    precision: str = "fp32"  # of the frozen encoders
    batch: int = 128  # inputs per encoder forward pass
    threads: int = 1  # torch threads of the encoder calls (0: the process's)

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.vcounts = DecodeCounts("video")
        self.acounts = DecodeCounts("audio")

    # ---- the order -------------------------------------------------------------------------------------------------
    def run(self) -> None:
        """Every stage the caller wants, in the order of :data:`STAGES`."""
        for stage in STAGES:
            if self.wants(stage):
                self.run_stage(stage, getattr(self, f"{stage}_stage"))

    def run_stage(self, stage: str, fn: Callable[[], dict[str, Any] | None]) -> None:
        """``fn()``, its warnings turned into notes and its seconds measured; then :meth:`done`."""
        before, t0 = len(self.notes), clock()
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            extra = fn() or {}
        for w in caught:
            if not issubclass(w.category, (DeprecationWarning, FutureWarning)):
                self.note(str(w.message))
        self.done(stage, extra, self.notes[before:], clock() - t0)

    def note(self, msg: str) -> None:
        self.notes.append(msg)

    # ---- the stages --------------------------------------------------------------------------------------------------
    def faces_stage(self) -> dict[str, Any] | None:
        """Decode (the frame times) and, unless ``detect`` is off, every person's face at the rows' times."""
        size = int(self.p.face_size)
        if self.faces_dir is not None:
            faces, mask, _ = faces_from_folder(self.faces_dir, len(self.times), size)
            return self.keep_folder_faces(faces, mask)
        if self.video is None:
            raise RjcmaError(f"{self.label}: neither a cropped_aligned folder nor a video to take faces from")
        if not self.detect:
            times = np.asarray([t for t, _ in iter_video(self.video, self.vcounts)], np.float64)
            return self.keep_faces(FaceStage([], times, "not needed", self.vcounts))
        found = faces_at(self.video, self.face_times(), size, self.detect_every, counts=self.vcounts,
                         progress=self.progress, sink=self.face_sink, join=self.join_tracks)
        return self.keep_faces(found)

    def audio_stage(self) -> dict[str, Any] | None:
        """The track's VGGish log-mel spectrogram; where its patches go is the caller's."""
        return self.keep_logmel(log_mel(self.track(), int(self.p.sample_rate)))  # (T, 64)

    def speech_stage(self) -> dict[str, Any] | None:
        words, info = self.transcript()
        return self.keep_words(words, info)

    def text_stage(self) -> dict[str, Any] | None:
        words = self.words()
        X_t = text_at(words, self.times, self.p.text_model, self.p.weights_dir, self.device)  # (N, d_t) float16
        if not words:
            self.note(f"{self.label}: no words recognised; text features are zeros")
        return self.keep_text(X_t)

    def features_stage(self) -> dict[str, Any] | None:
        """Each frozen encoder on its inputs (one per person for the faces): every ``frame_stride``-th row and the
        last encoded, rows between interpolated; faces the ``face_sink`` took are encoded already."""
        n = len(self.times)
        for kind in self.encoded():
            model, dim, stride = self.encoder(kind)
            fn = partial(ENCODE[kind], batch=self.batch)
            for who in self.inputs(kind):
                with self.features_out(kind, who, (n, dim)) as out:
                    if kind == "visual" and self.face_sink is not None:
                        out[:] = self.face_sink.features(who, n)
                    else:
                        encode_rows(model, fn, partial(self.rows, kind, who), n, dim, stride, self.precision,
                                    out=out, threads=self.threads)
        return self.kept_features()

    def transcript(self) -> tuple[list, dict[str, Any]]:
        """The words of the track (ASR in pieces, then punctuation) and what ran."""
        words, info = transcribe_track(self.track(), int(self.p.sample_rate), self.asr, self.device)
        if info.get("repeats_dropped"):
            self.note(f"{self.label}: the speech recogniser repeated itself; {info['repeats_dropped']} words of a "
                      "repetition loop were dropped (meta.json, asr.repeats_dropped)")
        return words, info

    # ---- where the times come from -----------------------------------------------------------------------------
    def face_times(self) -> np.ndarray | None:
        """The times the faces stage samples (None: every decoded frame, the stream's own)."""
        return self.times

    @abc.abstractmethod
    def track(self) -> np.ndarray:
        """The video's 16 kHz mono track, float32."""

    # ---- where the arrays go (and where a later stage finds them) ---------------------------------------------
    @abc.abstractmethod
    def wants(self, stage: str) -> bool:
        """Whether to run ``stage``."""

    def done(self, stage: str, extra: dict[str, Any], notes: list[str], spent: np.ndarray) -> None:
        """After ``stage``: what it returned for the record, its notes, its (wall, CPU) seconds."""

    def keep_folder_faces(self, faces: np.ndarray, mask: np.ndarray) -> dict[str, Any] | None:
        raise RjcmaError(f"{self.label}: no cropped_aligned folder was expected")

    @abc.abstractmethod
    def keep_faces(self, found: FaceStage) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def keep_logmel(self, L: np.ndarray) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def keep_words(self, words: list, info: dict[str, Any]) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    def words(self) -> list:
        """The words the speech stage kept."""

    @abc.abstractmethod
    def keep_text(self, X_t: np.ndarray) -> dict[str, Any] | None: ...

    def encoded(self) -> Iterable[str]:
        """The kinds ("visual", "audio") the features stage encodes."""
        return ("visual", "audio")

    @abc.abstractmethod
    def encoder(self, kind: str) -> tuple[Any, int, int]:
        """(frozen model, feature width, frame stride) of the ``kind`` encoder."""

    def inputs(self, kind: str) -> Iterable[Any]:
        """Who has a ``kind`` input (a tracked person's track id, or None for the one input)."""
        return (None,)

    @abc.abstractmethod
    def rows(self, kind: str, who: Any, rows: np.ndarray) -> np.ndarray:
        """The encoder inputs of ``rows`` (faces or log-mel patches)."""

    @abc.abstractmethod
    def features_out(self, kind: str, who: Any, shape: tuple[int, int]) -> ContextManager[np.ndarray]:
        """Where the (n, dim) float16 features of ``kind`` (for ``who``) are written."""

    def kept_features(self) -> dict[str, Any] | None:
        return None
