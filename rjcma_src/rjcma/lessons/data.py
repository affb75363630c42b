"""The data chapter (notebook 01_data): what each modality of the demo corpus carries, and its exercises' checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rjcma.config import Config, load_config
from rjcma.data.annotations import read_labels
from rjcma.data.synth.truth import read_truth
from rjcma.data.windows import window_starts
from rjcma.errors import RjcmaError
from rjcma.lessons.checks import Verdict, check_value


def check_windows(answer: tuple[int, int] | None, n: int, K: int, stride: int) -> Verdict:  # noqa: N803
    """Exercise: (number of windows, start of the last one) of an n-frame trial."""
    s = window_starts(n, K, stride)
    return check_value(f"windows of a {n}-frame trial (K = {K}, stride {stride})",
                       None if answer is None else tuple(answer), (len(s), s[-1]), 0,
                       "the last window is aligned to the trial's end")


def check_unannotated(answer: float | None, corpus, partition: str = "validation") -> Verdict:
    """Exercise: share of a partition's frames with a target marked −5 (NaN after reading)."""
    lab = np.concatenate([read_labels(t.annotation) for t in corpus.partition(partition)])
    return check_value(f"share of {partition} frames marked -5", answer, float(np.isnan(lab).any(axis=1).mean()),
                       1e-9)


def scheme_folds_file(cfg: Config) -> Config:
    """``cfg`` whose folds of another scheme than its profile's go to a folds file of their own
    (``<store>/folds_<scheme>.json``), so that trying ``fold_scheme="released"`` here neither fails on the folds the
    profile's runs were trained with nor replaces them."""
    if cfg.data.folds_file or cfg.data.fold_scheme == load_config(cfg.profile).data.fold_scheme:
        return cfg
    return cfg.replace(folds_file=str(Path(cfg.data.store) / f"folds_{cfg.data.fold_scheme}.json"))


def modality_cues(corpus: str | Path) -> tuple[list[str], list[list[str]]] | None:
    """The demo corpus's cues, modality by modality: the latent parts it renders and how much of each target's
    variance they can explain at best, as designed (``designed_explained_variance``) and as measured on this corpus
    (``explained_variance``: R² of the written labels from those parts), both read from ``SYNTH_TRUTH.json``;
    ``(header, rows)``, or None for a corpus without that file (Aff-Wild2) or from an older generator."""
    try:
        truth = read_truth(corpus)
    except RjcmaError:
        return None
    design, measured = truth.get("design", {}), truth.get("explained_variance")
    designed = truth.get("designed_explained_variance")
    if not measured or not designed or "modalities" not in design:
        return None
    what = design.get("channels", {})
    rows = []
    for m, parts in {**design["modalities"], "all three": []}.items():
        cues = "; ".join(f"`{p}`: {what.get(p.replace('words_a', 'words'), '')}" for p in parts
                         if p != "words_a") or "every rendered part"
        rows.append([m, cues] + [f"{designed[t][key]:.2f} / {measured[t][key]:.2f}"
                                 for t in ("valence", "arousal") for key in [("all" if m == "all three" else m)]])
    return ["modality", "what it shows", "valence: designed / this corpus", "arousal: designed / this corpus"], rows
