"""Find Aff-Wild2 (ABAW valence-arousal track) as the organisers ship it (paper §4.1; the book's chapter *Data
format*): every trial, its partition, annotation file, face folder, video and subject. The folder and file names live
in :mod:`rjcma.layout`; the annotation files are read by :mod:`rjcma.data.annotations`, the videos' containers by
:mod:`rjcma.data.video_info`.

Layout that :func:`find_corpus` understands (folder names may contain spaces; everything is found by
searching below the corpus root, or below the per-part overrides ``annotations_root``, ``faces_root`` and
``videos_root``)::

    ROOT/
      6th ABAW Annotations/VA_Estimation_Challenge/
        Train_Set/<trial>.txt              one file per trial: header "valence,arousal", then one row per frame
        Validation_Set/<trial>.txt
      names_of_videos_in_each_test_set/    (anywhere below ROOT; optional)
        Valence_Arousal_Estimation_Challenge_test_set_release.txt
      cropped_aligned/<trial>/00001.jpg    1-based, row k <-> f"{k+1:05d}.jpg"; some jpgs are missing
      cropped_aligned_new_50_vids/<trial>/ (any folder whose name starts with "cropped_aligned"; may be nested)
      batch1/<video>.mp4  batch2/<video>.avi  new_vids/<video>.mp4   (any folder; found by file stem)

* A trial ``<video>_left`` / ``<video>_right`` is one of two subjects in the video ``<video>``: both trials share
  that video file (its audio and transcript); each has its own annotation file and face folder.
* **Test-set list.** The organisers' list of test trials is a plain text file named exactly
  ``Valence_Arousal_Estimation_Challenge_test_set_release.txt`` (the ABAW releases put it in a folder
  ``names_of_videos_in_each_test_set/``), anywhere below the corpus root or the annotations root: one trial name
  per line (the annotation-file stem, e.g. ``2-30-640x360`` or ``10-60-1280x720_right``), no header, no file
  extension; blank lines and surrounding whitespace are ignored; ``\\r\\n`` line ends are accepted. When that file
  is absent, the trial names are taken from the organisers' sample submission file (``*VA_test_set_example.txt``
  or ``*VA_test_set_sample.txt``: header ``image_location,valence,arousal``, rows ``<trial>/<NNNNN>.jpg,v,a``)
  if one is there. Test trials have no annotation file (``Trial.annotation is None``).
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from rjcma import layout
from rjcma.config import Config
from rjcma.data.annotations import count_label_rows
from rjcma.errors import RjcmaError
from rjcma.layout import (
    FACES_PREFIX,
    PAIR_SUFFIXES,
    PARTITION_DIRS,
    TEST_LIST_NAME,
    TEST_SAMPLE_PATTERNS,
    VA_DIR,
    VIDEO_SUFFIXES,
)

PARTITION_OF_FOLDER = {folder: partition for partition, folder in PARTITION_DIRS.items()}  # "Train_Set" -> "train"


# ---------------------------------------------------------------------------------------------------------------
# Trials and the corpus
# ---------------------------------------------------------------------------------------------------------------
@dataclass
class Trial:
    """One annotated subject in one video (an annotation file)."""

    name: str  # "<video>_left" etc., the annotation file stem
    partition: str  # "train" | "validation" | "test"
    annotation: Path | None  # None for test trials
    faces_dir: Path | None  # cropped_aligned/<name>/ or None
    video: Path | None  # the (shared) video file
    video_stem: str  # name with _left/_right stripped
    subject: str  # subject id (video_stem, or from the subject map)

    def face_path(self, k: int) -> Path | None:
        """The jpg of annotation row k (0-based): ``f"{k+1:05d}.jpg"`` (:func:`rjcma.layout.face_file`); None without a face folder."""
        return None if self.faces_dir is None else self.faces_dir / layout.face_file(k)


@dataclass
class Corpus:
    """All trials found below ``root``, sorted by name."""

    root: Path
    trials: list[Trial]
    annotations_dir: Path | None = None  # the VA_Estimation_Challenge folder
    faces_dirs: list[Path] = field(default_factory=list)  # every cropped_aligned* folder found
    videos_root: Path | None = None
    test_list: Path | None = None  # the organisers' test-set name list (or sample file) when present
    notes: list[str] = field(default_factory=list)  # what the reader noticed (missing videos, face folders ...)

    def __post_init__(self) -> None:
        self.trials = sorted(self.trials, key=lambda t: t.name)
        self._index = {t.name: t for t in self.trials}

    def by_name(self, name: str) -> Trial:
        try:
            return self._index[name]
        except KeyError:
            raise RjcmaError(f"{self.root}: no trial named {name!r} in this corpus") from None

    def partition(self, p: str) -> list[Trial]:
        if p not in ("train", "validation", "test"):
            raise RjcmaError(f"unknown partition {p!r}; use train, validation or test")
        return [t for t in self.trials if t.partition == p]

    @property
    def names(self) -> list[str]:
        return [t.name for t in self.trials]

    def __len__(self) -> int:
        return len(self.trials)

    def summary(self) -> dict[str, int]:
        """Counts for tables: trials per partition, videos, face folders."""
        return {
            "train": len(self.partition("train")),
            "validation": len(self.partition("validation")),
            "test": len(self.partition("test")),
            "videos": len({t.video for t in self.trials if t.video is not None}),
            "with_faces": sum(t.faces_dir is not None for t in self.trials),
            "subjects": len({t.subject for t in self.trials}),
        }


# ---------------------------------------------------------------------------------------------------------------
# Finding the corpus
# ---------------------------------------------------------------------------------------------------------------
def video_stem_of(trial: str) -> str:
    """``10-60-1280x720_right`` → ``10-60-1280x720``; other names unchanged."""
    for suffix in PAIR_SUFFIXES:
        if trial.endswith(suffix) and len(trial) > len(suffix):
            return trial[: -len(suffix)]
    return trial


def _walk(root: Path) -> Iterable[tuple[Path, list[str], list[str]]]:
    """os.walk that never descends into face folders (hundreds of thousands of jpgs) or hidden folders."""
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        yield here, dirnames, filenames
        dirnames[:] = sorted(
            d for d in dirnames if not d.startswith(".") and not d.lower().startswith(FACES_PREFIX)
        )


def _find_annotation_dirs(root: Path) -> list[Path]:
    found = []
    if root.name.lower() == VA_DIR.lower():
        found.append(root)
    for here, dirnames, _ in _walk(root):
        for d in dirnames:
            if d.lower() == VA_DIR.lower():
                found.append(here / d)
    out = []
    for d in found:
        subs = {p.name for p in d.iterdir() if p.is_dir()} if d.is_dir() else set()
        if subs & set(PARTITION_OF_FOLDER):
            out.append(d)
    return sorted(set(out))


def _find_face_folders(root: Path) -> tuple[list[Path], dict[str, Path]]:
    """All ``cropped_aligned*`` folders below root (possibly nested in one another) and trial → folder."""
    face_roots: list[Path] = []
    stack = [root] if root.name.lower().startswith(FACES_PREFIX) else []
    for here, dirnames, _ in os.walk(root, followlinks=True):
        hits = [d for d in dirnames if d.lower().startswith(FACES_PREFIX)]
        stack.extend(Path(here) / d for d in hits)
        dirnames[:] = [d for d in dirnames if not d.startswith(".") and d not in hits]
    trials: dict[str, Path] = {}
    while stack:
        folder = stack.pop(0)
        face_roots.append(folder)
        with os.scandir(folder) as it:
            children = sorted((e for e in it if e.is_dir()), key=lambda e: e.name)
        for e in children:
            if e.name.lower().startswith(FACES_PREFIX):  # nested cropped_aligned/cropped_aligned/
                stack.append(Path(e.path))
            else:
                trials.setdefault(e.name, Path(e.path))
    return sorted(face_roots), trials


def _find_videos(root: Path) -> dict[str, Path]:
    by_stem: dict[str, list[Path]] = {}
    for here, _, filenames in _walk(root):
        for f in filenames:
            stem, ext = os.path.splitext(f)
            if ext.lower() in VIDEO_SUFFIXES and not f.startswith("."):
                by_stem.setdefault(stem, []).append(here / f)
    # several files with one stem: prefer the container order of VIDEO_SUFFIXES, then the path
    rank = {e: i for i, e in enumerate(VIDEO_SUFFIXES)}
    return {s: sorted(ps, key=lambda p: (rank[p.suffix.lower()], str(p)))[0] for s, ps in by_stem.items()}


def _find_test_list(*roots: Path) -> Path | None:
    lists, samples = [], []
    for root in roots:
        for here, _, filenames in _walk(root):
            for f in filenames:
                low = f.lower()
                if low == TEST_LIST_NAME.lower():
                    lists.append(here / f)
                elif any(Path(low).match(p) for p in TEST_SAMPLE_PATTERNS):
                    samples.append(here / f)
    if lists:
        return sorted(set(lists))[0]
    return sorted(set(samples))[0] if samples else None


def read_test_list(path: str | Path) -> list[str]:
    """Trial names of the test set: the organisers' name list (one per line) or their sample submission file
    (header ``image_location,valence,arousal``, rows ``<trial>/<NNNNN>.jpg,...``), in file order, unique."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except OSError as e:
        raise RjcmaError(f"{path}: cannot read the test-set list ({e.strerror})") from None
    names: list[str] = []
    sample = bool(lines) and lines[0].strip().lower().startswith("image_location")
    for i, line in enumerate(lines[1:] if sample else lines, start=2 if sample else 1):
        line = line.strip()
        if not line:
            continue
        if sample:
            name = line.split(",", 1)[0].split("/", 1)[0].strip()
        else:
            name = line
            if "," in name or "/" in name or "\\" in name:
                raise RjcmaError(f"{path}:{i}: {line[:60]!r} is not a trial name; expected one name per line")
            name = name[:-4] if name.lower().endswith(".txt") else name
        if name and name not in names:
            names.append(name)
    if not names:
        raise RjcmaError(f"{path}: the test-set list holds no trial names")
    return names


def read_subject_map(path: str | Path) -> dict[str, str]:
    """CSV ``trial,subject`` (a header line ``trial,subject`` is optional) → {trial: subject}."""
    path = Path(path)
    if not path.is_file():
        raise RjcmaError(f"{path}: subject map not found; give a CSV of 'trial,subject' lines or leave it empty")
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8-sig") as f:
        for i, row in enumerate(csv.reader(f), start=1):
            if not row or not "".join(row).strip():
                continue
            if i == 1 and [c.strip().lower() for c in row] == ["trial", "subject"]:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise RjcmaError(f"{path}:{i}: expected 'trial,subject', got {','.join(row)[:60]!r}")
            trial, subject = row[0].strip(), row[1].strip()
            if out.get(trial, subject) != subject:
                raise RjcmaError(f"{path}:{i}: trial {trial!r} is listed under two subjects")
            out[trial] = subject
    return out


def find_corpus(
    root: str | Path,
    annotations_root: str | Path = "",
    faces_root: str | Path = "",
    videos_root: str | Path = "",
    subject_map: str | Path = "",
) -> Corpus:
    """Find every trial of an ABAW-layout corpus (see the module docstring for the layout)."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise RjcmaError(
            f"{root}: corpus folder not found; point data.corpus at the extracted Aff-Wild2 folder, "
            f"or write the demo corpus with `rjcma synth --out {root}`"
        )
    ann_root = _part_root(annotations_root, root, "annotations_root")
    face_root = _part_root(faces_root, root, "faces_root")
    vid_root = _part_root(videos_root, root, "videos_root")
    ann_dir = _the_annotation_dir(ann_root)
    notes: list[str] = []
    labelled = _labelled_trials(ann_dir, notes)
    test_list = _find_test_list(*dict.fromkeys([root, ann_root]))
    test_names = read_test_list(test_list) if test_list else []
    clash = [n for n in test_names if n in labelled]
    if clash:
        raise RjcmaError(
            f"{test_list}: test trial {clash[0]!r} also has an annotation file ({labelled[clash[0]][1]}); "
            f"the test list and the annotation folders are from different releases"
        )

    face_roots, faces = _find_face_folders(face_root)
    videos = _find_videos(vid_root)
    subjects = read_subject_map(subject_map) if subject_map else {}
    trials: list[Trial] = []
    entries = [(n, p, f) for n, (p, f) in labelled.items()] + [(n, "test", None) for n in test_names]
    for name, partition, ann in entries:
        stem = video_stem_of(name)
        trials.append(Trial(name=name, partition=partition, annotation=ann, faces_dir=faces.get(name),
                            video=videos.get(stem) or videos.get(name), video_stem=stem,
                            subject=subjects.get(name, stem)))
    notes += _missing_notes(trials, vid_root, subjects, subject_map)
    return Corpus(root=root, trials=trials, annotations_dir=ann_dir, faces_dirs=face_roots, videos_root=vid_root,
                  test_list=test_list, notes=notes)


def _the_annotation_dir(ann_root: Path) -> Path:
    """The one VA_Estimation_Challenge folder below ``ann_root``; an error when there is none or several."""
    ann_dirs = _find_annotation_dirs(ann_root)
    if not ann_dirs:
        raise RjcmaError(
            f"{ann_root}: no '{VA_DIR}/Train_Set' or '{VA_DIR}/Validation_Set' folder found below "
            f"it; point data.corpus (or data.annotations_root) at the extracted ABAW annotations "
            f"(e.g. '6th ABAW Annotations')"
        )
    if len(ann_dirs) > 1:
        shown = "; ".join(str(d) for d in ann_dirs[:4])
        raise RjcmaError(
            f"{ann_root}: {len(ann_dirs)} '{VA_DIR}' folders found ({shown}); set data.annotations_root to "
            f"the one to use"
        )
    return ann_dirs[0]


def _labelled_trials(ann_dir: Path, notes: list[str]) -> dict[str, tuple[str, Path]]:
    """``{trial: (partition, annotation file)}`` of Train_Set and Validation_Set; a missing folder is noted."""
    labelled: dict[str, tuple[str, Path]] = {}
    for sub, partition in PARTITION_OF_FOLDER.items():
        folder = ann_dir / sub
        if not folder.is_dir():
            notes.append(f"{folder}: missing, so the corpus has no {partition} trials")
            continue
        for f in sorted(folder.iterdir()):
            if f.suffix.lower() != ".txt" or f.name.startswith(".") or not f.is_file():
                continue
            if f.stem in labelled:
                other = labelled[f.stem][1]
                raise RjcmaError(f"{f}: trial {f.stem!r} is also annotated in {other}; remove one of the two")
            labelled[f.stem] = (partition, f)
    if not labelled:
        raise RjcmaError(f"{ann_dir}: Train_Set/Validation_Set hold no .txt annotation files")
    return labelled


def _missing_notes(trials: list[Trial], vid_root: Path, subjects: dict[str, str], subject_map: str | Path) -> list[str]:
    """What the reader noticed: trials without a video or a face folder, subject-map rows for unknown trials."""
    notes: list[str] = []
    no_video = [t.name for t in trials if t.video is None]
    no_faces = [t.name for t in trials if t.faces_dir is None]
    if no_video:
        notes.append(f"{len(no_video)} trial(s) without a video below {vid_root} (e.g. {no_video[0]})")
    if no_faces:
        notes.append(f"{len(no_faces)} trial(s) without a cropped_aligned folder (e.g. {no_faces[0]})")
    unknown = sorted(set(subjects) - {t.name for t in trials})
    if unknown:
        notes.append(f"subject map {subject_map}: {len(unknown)} trial(s) not in the corpus (e.g. {unknown[0]})")
    return notes


def _part_root(value: str | Path, root: Path, name: str) -> Path:
    if not value:
        return root
    p = Path(value).expanduser()
    if not p.is_dir():
        raise RjcmaError(f"{p}: data.{name} is not a folder; fix the path or leave it empty to search the corpus")
    return p


def load_corpus(cfg: Config) -> Corpus:
    """:func:`find_corpus` with the paths of ``cfg.data``.

    The subject map is ``data.subject_map`` when set, else ``subject_map.csv`` at the corpus root when present
    (``rjcma synth`` writes one; Aff-Wild2 users may put theirs there).
    """
    d = cfg.data
    subject_map = d.subject_map
    if not subject_map and (Path(d.corpus) / "subject_map.csv").is_file():
        subject_map = str(Path(d.corpus) / "subject_map.csv")
    return find_corpus(d.corpus, d.annotations_root, d.faces_root, d.videos_root, subject_map)


def label_lengths(corpus: Corpus, partitions: Iterable[str] = ("train", "validation")) -> dict[str, int]:
    """Annotation rows per trial (the reference length N of a trial) for the given partitions."""
    wanted = set(partitions)
    return {t.name: count_label_rows(t.annotation) for t in corpus.trials if t.partition in wanted and t.annotation}


# ---------------------------------------------------------------------------------------------------------------
# A readable picture of the layout (notebook 01_data)
# ---------------------------------------------------------------------------------------------------------------
def describe_layout(root: str | Path, max_entries: int = 3, max_depth: int = 4, max_top: int = 12) -> str:
    """The folder tree below ``root`` as text: at most ``max_top`` entries of the root and ``max_entries`` of
    every deeper folder, ``max_depth`` levels deep."""
    root = Path(root)
    lines = [f"{root.name}/"]

    def walk(folder: Path, prefix: str, depth: int) -> None:
        try:
            entries = sorted(folder.iterdir(), key=lambda p: (not p.is_dir(), p.name))
        except OSError:
            return
        limit = max_top if depth == 1 else max_entries
        shown = entries[:limit]
        for i, p in enumerate(shown):
            last = i == len(shown) - 1 and len(entries) <= limit
            branch = "└── " if last else "├── "
            lines.append(f"{prefix}{branch}{p.name}{'/' if p.is_dir() else ''}")
            if p.is_dir() and depth < max_depth:
                walk(p, prefix + ("    " if last else "│   "), depth + 1)
        if len(entries) > limit:
            n_dirs = sum(p.is_dir() for p in entries[limit:])
            rest = len(entries) - limit
            kind = "folder" if n_dirs == rest else ("file" if n_dirs == 0 else "entr")
            plural = {"entr": "ies" if rest > 1 else "y"}.get(kind, "s" if rest > 1 else "")
            lines.append(f"{prefix}└── … {rest} more {kind}{plural}")

    walk(root, "", 1)
    return "\n".join(lines)
