"""The data chapter (notebook 01_data): what each modality of the demo corpus carries, and its exercises' checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from rjcma.config import Config, load_config
from rjcma.data.annotations import read_labels
from rjcma.data.synth.truth import read_truth, read_truth_trial
from rjcma.data.windows import window_starts
from rjcma.errors import RjcmaError
from rjcma.lessons.checks import Verdict, check_value


def shared_audio_cues(corpus: str | Path) -> tuple[list[str], list[list[str]], dict[str, float]] | None:
    """What the words heard tell about each subject's own words, trial by trial: the share of frames the subject
    speaks and the correlation of the word level heard (the transcript of the video's one audio track, either
    speaker's) with the word part of the subject's own labels (``heard_word_level`` and ``words`` of
    ``SYNTH_TRUTH/<trial>.csv``). Rows for the trials of a two-subject video (``_left``/``_right``, one shared audio
    track) and one for the mean over the single-subject trials; ``values``: ``single`` (that mean) and, per shared
    trial, its correlation. None for a corpus without the truth files (Aff-Wild2)."""
    try:
        truth = read_truth(corpus)
    except RjcmaError:
        return None
    rows, single, values = [], [], {}
    for video in truth.get("videos", []):
        for trial in video.get("trials", []):
            name = trial if isinstance(trial, str) else trial.get("name", "")
            try:
                t = read_truth_trial(corpus, name)
            except RjcmaError:
                return None
            if "heard_word_level" not in t or "speaking" not in t:
                return None
            ok = t["valid"] > 0 if "valid" in t else np.ones(len(t["words"]), bool)
            heard, own = t["heard_word_level"][ok], t["words"][ok]
            # no valence adjective said or heard in the trial (a short one): no correlation to speak of
            r = float(np.corrcoef(heard, own)[0, 1]) if min(heard.std(), own.std()) > 1e-6 else float("nan")
            if name.endswith(("_left", "_right")):
                shown = "–" if np.isnan(r) else f"{r:.2f}"
                rows.append([name, video.get("partition", ""), f"{t['speaking'][ok].mean():.0%}", shown])
                values[name] = r
            elif not np.isnan(r):
                single.append(r)
    if not single:
        return None
    values["single"] = float(np.mean(single))
    rows.append([f"the {len(single)} single-subject trials (mean)", "", "", f"{values['single']:.2f}"])
    return ["trial", "partition", "frames the subject speaks", "words heard vs own word part (r)"], rows, values


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
