"""Six cross-validation folds over the train and validation trials (paper §4.2.2, Table 1).

Fold 0 is the official split: train on ``Train_Set``, validate on ``Validation_Set``. Folds 1…5 re-partition
train + validation. Both schemes cut the train trials into ``num_folds − 1`` chunks and keep the official
validation set as one more chunk; fold f validates on train chunk ``(C − f) mod C`` (C chunks, 0-based) and
trains on every other chunk, the official validation set included — the rotation of the released code, which
rolls the list of six chunks by f and validates on the last one.

``released`` (the paper profile's default)
    The released code's chunks: train trials sorted by name, cut in order into 5 chunks of ⌊n/5⌋ trials (the
    last takes the remainder). Only these folds are the paper's folds, so the paper profile uses them and Table 1
    names the scheme. They ignore subjects, so the two sides of a ``_left``/``_right`` video can land on both
    sides of a fold (the book's chapters *Paper vs released code* and *Reproducing on Aff-Wild2*).
``subject`` (the default of the config and the demo)
    Trials are first grouped so that a group is never split: the two sides of one video, and every trial that
    the subject map lists under one subject, form one group. Groups touching the official validation set form
    the validation chunk; the other groups are dealt, largest first, to the chunk holding the fewest frames
    (or trials, ``balance="trials"``), ties to the lower chunk index, so the chunks are balanced and the result
    is deterministic.

Folds are written once (``<store>/folds.json`` or ``data.folds_file``) and reused, so every run of a fold sees the
same trials; a file made for another scheme, fold count or trial set is refused rather than silently replaced.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

from rjcma import __version__
from rjcma.config import Config
from rjcma.data.abaw import Corpus, label_lengths, load_corpus, read_subject_map
from rjcma.errors import RjcmaError
from rjcma.io import atomic_write_json

Folds = dict[int, dict[str, list[str]]]
SCHEMES = ("subject", "released")
FORMAT_VERSION = 1


def make_folds(
    corpus: Corpus,
    scheme: str = "subject",
    num_folds: int = 6,
    subject_map: str | Path = "",
    balance: str = "frames",
    lengths: dict[str, int] | None = None,
) -> Folds:
    """{fold: {"train": [...], "validation": [...]}} for folds 0 … num_folds−1, names sorted in each list."""
    return _build(corpus, scheme, num_folds, subject_map, balance, lengths)[0]


def _build(
    corpus: Corpus,
    scheme: str,
    num_folds: int,
    subject_map: str | Path,
    balance: str,
    lengths: dict[str, int] | None,
) -> tuple[Folds, list[str]]:
    if scheme not in SCHEMES:
        raise RjcmaError(f"unknown fold scheme {scheme!r}; use one of {', '.join(SCHEMES)}")
    if balance not in ("frames", "trials"):
        raise RjcmaError(f"fold balance must be 'frames' or 'trials', got {balance!r}")
    if num_folds < 1:
        raise RjcmaError(f"num_folds must be >= 1, got {num_folds}")
    train = sorted(t.name for t in corpus.partition("train"))
    val = sorted(t.name for t in corpus.partition("validation"))
    if not train:
        raise RjcmaError(f"{corpus.root}: no train trials, so no folds can be made")
    notes: list[str] = []
    folds: Folds = {0: {"train": list(train), "validation": list(val)}}
    n_chunks = num_folds - 1
    if n_chunks == 0:
        return folds, notes

    if scheme == "released":
        chunks, moved = _released_chunks(train, n_chunks), []
    else:
        subjects = {t.name: t.subject for t in corpus.trials}
        if subject_map:
            subjects.update(read_subject_map(subject_map))
        pool = [t for t in corpus.trials if t.partition in ("train", "validation")]
        group_of = _groups(pool, subjects)
        if balance == "frames":
            lengths = lengths if lengths is not None else label_lengths(corpus)
            weight = {n: int(lengths.get(n, 0)) for n in train + val}
        else:
            weight = {n: 1 for n in train + val}
        chunks, moved = _subject_chunks(train, val, group_of, weight, n_chunks)
        if moved:
            notes.append(
                f"{len(moved)} official train trial(s) share a subject with the official validation set and stay "
                f"with it in folds 1-{n_chunks} (e.g. {moved[0]}); fold 0 keeps the official split"
            )
    if len(chunks) < n_chunks:
        notes.append(
            f"only {len(chunks)} train chunk(s) could be formed for {n_chunks} folds; folds repeat chunks cyclically"
        )
        warnings.warn(notes[-1], stacklevel=3)

    all_chunks = chunks + [sorted(val + moved)]  # the official validation set (with its subjects' train trials)
    for f in range(1, num_folds):
        # the released rotation: roll [c_0 … c_{C-1}, V] by f, validate on the last element → c_{(C-f) mod C}
        v = (len(chunks) - f) % len(chunks)
        validation = sorted(all_chunks[v])
        taken = set(validation)
        training = sorted(n for c in all_chunks for n in c if n not in taken)
        folds[f] = {"train": training, "validation": validation}
    return folds, notes


def _released_chunks(train: list[str], n_chunks: int) -> list[list[str]]:
    """Sorted names cut in order into chunks of ⌊n/C⌋ trials, the last taking the remainder (the released code's
    ranges: 341 trials → 68, 68, 68, 68, 69)."""
    c = min(n_chunks, len(train))
    size = len(train) // c
    return [train[i * size : (i + 1) * size if i < c - 1 else len(train)] for i in range(c)]


def _groups(trials: list, subjects: dict[str, str]) -> dict[str, str]:
    """Union-find over trials linked by a shared video or subject → {trial: group id (its smallest name)}."""
    parent = {t.name: t.name for t in trials}

    def find(x: str) -> str:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    def union(a: str, b: str) -> None:
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    first: dict[tuple[str, str], str] = {}
    for t in sorted(trials, key=lambda t: t.name):
        for key in (("video", t.video_stem), ("subject", subjects.get(t.name, t.subject))):
            if key in first:
                union(first[key], t.name)
            else:
                first[key] = t.name
    return {n: find(n) for n in parent}


def _subject_chunks(
    train: list[str], val: list[str], group_of: dict[str, str], weight: dict[str, int], n_chunks: int
) -> tuple[list[list[str]], list[str]]:
    val_groups = {group_of[v] for v in val}
    moved = sorted(n for n in train if group_of[n] in val_groups)
    groups: dict[str, list[str]] = {}
    for n in train:
        if group_of[n] not in val_groups:
            groups.setdefault(group_of[n], []).append(n)
    order = sorted(groups.items(), key=lambda kv: (-sum(weight[n] for n in kv[1]), kv[0]))
    c = min(n_chunks, len(order))
    if c == 0:
        raise RjcmaError("every train trial shares a subject with the validation set; folds 1-5 cannot be formed")
    chunks: list[list[str]] = [[] for _ in range(c)]
    load = [0] * c
    for _, members in order:
        i = min(range(c), key=lambda j: (load[j], j))
        chunks[i].extend(members)
        load[i] += sum(weight[n] for n in members) or 1
    return [sorted(ch) for ch in chunks], moved


# ---------------------------------------------------------------------------------------------------------------
# Written once, reused
# ---------------------------------------------------------------------------------------------------------------
def folds_path(cfg: Config) -> Path:
    return Path(cfg.data.folds_file) if cfg.data.folds_file else Path(cfg.data.store) / "folds.json"


def _digest(names: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(names)).encode()).hexdigest()[:16]


def _file_digest(path: str | Path) -> str:
    if not path:
        return ""
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:16]
    except OSError:
        raise RjcmaError(f"{path}: subject map not found; fix data.subject_map or leave it empty") from None


def load_or_make_folds(corpus: Corpus, cfg: Config, balance: str = "frames") -> Folds:
    """The folds of ``cfg`` (scheme, count, subject map): read from the folds file when it exists and was made
    for the same scheme, fold count and trials; otherwise made and written atomically."""
    d = cfg.data
    path = folds_path(cfg)
    pool = sorted(t.name for t in corpus.trials if t.partition in ("train", "validation"))
    digest = _digest([f"{t.partition}:{t.name}" for t in corpus.trials if t.partition in ("train", "validation")])
    map_digest = _file_digest(d.subject_map)
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            folds = {int(k): {"train": list(v["train"]), "validation": list(v["validation"])}
                     for k, v in saved["folds"].items()}
            made = (saved["scheme"], int(saved["num_folds"]), saved["trials_digest"], saved["subject_map_digest"])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise RjcmaError(f"{path}: not a folds file written by rjcma ({e}); delete it to rebuild the folds") from None
        if made[0] != d.fold_scheme or made[1] != d.num_folds:
            raise RjcmaError(
                f"{path}: holds {made[1]} '{made[0]}' folds but the config asks for {d.num_folds} "
                f"'{d.fold_scheme}' folds; delete the file to rebuild, or set data.folds_file to another path"
            )
        if made[3] != map_digest and d.fold_scheme == "subject":
            raise RjcmaError(
                f"{path}: made with another subject map than {d.subject_map or '(none)'}; delete the file to rebuild "
                f"the folds with this one"
            )
        if made[2] != digest:
            known = {n for f in folds.values() for part in f.values() for n in part}
            added, gone = sorted(set(pool) - known), sorted(known - set(pool))
            raise RjcmaError(
                f"{path}: made for other trials ({len(added)} new, {len(gone)} missing, e.g. "
                f"{(added or gone or ['a trial that changed partition'])[0]}); delete the file to rebuild the folds "
                f"for this corpus"
            )
        return folds
    folds, notes = _build(corpus, d.fold_scheme, d.num_folds, d.subject_map, balance, None)
    atomic_write_json(
        path,
        {
            "format": FORMAT_VERSION,
            "scheme": d.fold_scheme,
            "num_folds": d.num_folds,
            "balance": balance,
            "subject_map": str(d.subject_map),
            "corpus": str(corpus.root),
            "trials_digest": digest,
            "subject_map_digest": map_digest,
            "rjcma_version": __version__,
            "notes": notes,
            "folds": {str(k): v for k, v in folds.items()},
        },
    )
    return folds


def fold_split(cfg: Config, fold: int | None = None) -> dict[str, list[str]]:
    """Train/validation trial names of fold ``fold`` (default ``train.fold``) from the folds file; the corpus is
    scanned only when the file is not there yet (:func:`load_or_make_folds` then writes it)."""
    fold = cfg.train.fold if fold is None else fold
    ff = folds_path(cfg)
    folds = None
    if ff.is_file():
        try:
            folds = json.loads(ff.read_text())["folds"]
        except (ValueError, KeyError, TypeError):
            folds = None
    if folds is None:
        folds = load_or_make_folds(load_corpus(cfg), cfg)
    folds = {int(k): v for k, v in folds.items()}
    if fold not in folds:
        raise RjcmaError(f"{ff}: fold {fold} not in the folds file (has {sorted(folds)}); choose --fold in that range")
    return {k: list(v) for k, v in folds[fold].items()}


# ---------------------------------------------------------------------------------------------------------------
# The table of the book
# ---------------------------------------------------------------------------------------------------------------
def fold_table(folds: Folds, corpus: Corpus, lengths: dict[str, int] | None = None) -> list[dict[str, Any]]:
    """One row per fold: trials, subjects and frames on each side."""
    lengths = lengths if lengths is not None else label_lengths(corpus)
    subject = {t.name: t.subject for t in corpus.trials}
    rows = []
    for f in sorted(folds):
        tr, va = folds[f]["train"], folds[f]["validation"]
        rows.append(
            {
                "fold": f,
                "train_trials": len(tr),
                "val_trials": len(va),
                "train_subjects": len({subject.get(n, n) for n in tr}),
                "val_subjects": len({subject.get(n, n) for n in va}),
                "train_frames": sum(int(lengths.get(n, 0)) for n in tr),
                "val_frames": sum(int(lengths.get(n, 0)) for n in va),
            }
        )
    return rows


def straddling(folds: Folds, corpus: Corpus) -> dict[int, list[str]]:
    """Per fold, the subjects or videos found on both sides (empty lists for a subject-aware fold)."""
    out = {}
    by_name = {t.name: t for t in corpus.trials}
    for f, parts in folds.items():
        keys = [{k for n in parts[p] for k in (("s", by_name[n].subject), ("v", by_name[n].video_stem))}
                for p in ("train", "validation")]
        out[f] = sorted(f"{k}:{v}" for k, v in keys[0] & keys[1])
    return out


def format_table(rows: list[dict[str, Any]], markdown: bool = False) -> str:
    """The fold table as aligned text (CLI) or a Markdown table (notebook)."""
    heads = ["fold", "train trials", "val trials", "train subjects", "val subjects", "train frames", "val frames"]
    keys = ["fold", "train_trials", "val_trials", "train_subjects", "val_subjects", "train_frames", "val_frames"]
    cells = [[f"{r[k]:,}" if isinstance(r[k], int) and k.endswith("frames") else str(r[k]) for k in keys]
             for r in rows]
    if markdown:
        lines = ["| " + " | ".join(heads) + " |", "|" + "|".join("---:" for _ in heads) + "|"]
        lines += ["| " + " | ".join(c) + " |" for c in cells]
        return "\n".join(lines)
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(heads)]
    lines = ["  ".join(h.rjust(w) for h, w in zip(heads, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)
