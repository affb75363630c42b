"""Where the words' valence is lost on the way to the text model (demo corpus).

    python benchmarks/text_path.py [--profile demo] [--set KEY=VALUE ...]

The demo corpus gives the words said a designed share of valence (``rjcma.data.synth.design.SHARES``), yet the
text-only model's six-fold valence CCC stays far below the text ceiling that ``SYNTH_TRUTH.json`` records. This
script follows the cue through the text path, on the store and the runs that ``make book`` made:

1. **Speech recognition**: the lexicon adjectives in the store's transcripts (``words.csv``) against those said.
2. **Word features**: how well the stored word vectors (``bert.npy``) tell an adjective's valence level, by ridge
   regression fitted on all videos but one and scored on that one (every video in turn).
3. **The transcript's rule**: the generator's own rule applied to the recognised words (the valence level of the last
   adjective heard, held and followed with the word lag filter, delayed by the trial's annotator lag), correlated
   with the written valence label, trial by trial. This is what a text model could read at best from these words.
4. **The text model**: its validation predictions in the six-fold check, correlated with the same rule and with the
   label.

When (2) and (3) are high and (4) is low, the cue reaches the features and is lost in the learning: the text model
has to learn, from the adjectives of about ten training trials, to hold the last adjective's valence across the
words and pauses that follow it.
"""

from __future__ import annotations

import argparse
import csv
import math
import re
from pathlib import Path

import numpy as np

from rjcma.config import load_config
from rjcma.data.store import Store
from rjcma.data.synth.design import LEXICON, WORD_TAU, ema, held_word_level
from rjcma.data.synth.truth import read_truth, read_truth_trial
from rjcma.data.words import read_words_csv
from rjcma.lessons.encoders import ridge_predict
from rjcma.lessons.training import results_base
from rjcma.metrics import pcc
from rjcma.preprocess.text import word_index_at

VALENCE_OF = {w: v for (v, _a), words in LEXICON.items() for w in words}
RIDGE = 100.0  # ridge penalty on standardised word vectors (384 dimensions, a few hundred adjectives)


def adjective(word: str) -> str | None:
    w = re.sub(r"[^a-z]", "", word.lower())
    return w if w in VALENCE_OF else None


def rule_prediction(words, t: np.ndarray, lag: float) -> np.ndarray:
    """The generator's word part rebuilt from recognised words: last adjective's valence level, held, lag-filtered
    (``WORD_TAU``), then delayed by the annotator's lag."""
    heard = [{"end": w.end, "valence_level": VALENCE_OF[a], "speaker": None}
             for w in words if (a := adjective(w.word))]
    held = held_word_level(heard, t, speaker=None)
    part = ema(held, math.exp(-float(t[1] - t[0]) / WORD_TAU))
    return np.interp(t - lag, t, part, left=0.0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--profile", default="demo")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = ap.parse_args()
    cfg = load_config(args.profile, sets=args.set)
    corpus, store = Path(cfg.data.corpus), Store(cfg.data.store)
    truth = read_truth(corpus)
    info = {tr["name"]: (v, tr) for v in truth["videos"] for tr in v["trials"]}
    said = sum(1 for v in truth["videos"] for w in v["words"] if w["valence_level"] is not None)

    X, y, video, rule, recognised = [], [], [], {}, 0
    for name in store.trials():
        words_csv = store.path(name, "words")
        if name not in info or not words_csv.is_file():
            continue
        v, tr = info[name]
        words = read_words_csv(words_csv)
        if tr["side"] != "left":  # a shared audio track: count its adjectives once
            recognised += sum(1 for w in words if adjective(w.word))
        table = read_truth_trial(corpus, name)
        t = table["time"]
        vec = store.load(name, "bert", mmap=False).astype(np.float64)
        idx = word_index_at(words, t)
        for i, w in enumerate(words):
            if (a := adjective(w.word)) and (idx == i).any() and tr["side"] != "right":
                X.append(vec[idx == i].mean(0))
                y.append(VALENCE_OF[a])
                video.append(v["video"])
        if tr["partition"] != "test":
            ok = table["valid"] > 0.5
            rule[name] = (rule_prediction(words, t, tr["annotator_lag_s"]), table["valence"], ok, tr["side"])

    X, y, video = np.array(X), np.array(y), np.array(video)
    pred = np.zeros_like(y)
    for vid in sorted(set(video)):  # the chapter Encoders' ridge probe, one video held out at a time
        pred[video == vid] = ridge_predict(X, y, video != vid, video == vid, RIDGE)

    print(f"Text path of the {args.profile} profile ({corpus}, {store.root})\n")
    print(f"1. adjectives said {said}, recognised {recognised} (in {len(set(video))} videos)")
    print(f"2. adjective valence from the word vectors, one video held out at a time: r = {pcc(pred, y):.3f} "
          f"({len(y)} adjectives, {len(set(y))} levels)")
    single = [pcc(p[ok], lab[ok]) for p, lab, ok, side in rule.values() if not side]
    pair = [pcc(p[ok], lab[ok]) for p, lab, ok, side in rule.values() if side]
    print(f"3. the transcript's rule against the valence label, within each trial: mean r = {np.mean(single):.3f} "
          f"over {len(single)} one-subject trials (from {min(single):.2f} to {max(single):.2f}); "
          f"{np.mean(pair):.3f} over the {len(pair)} trials that share one audio track")

    summary = results_base(cfg) / "compare-folds" / "summary.csv"
    if not summary.is_file():
        print(f"4. no six-fold check in {summary.parent} (run `make train`)")
        return
    with open(summary, newline="") as f:
        row = next((r for r in csv.DictReader(f) if r["fusion"] == "unimodal:text"), None)
    if row is None:
        print(f"4. no text-only model in {summary}")
        return
    r_rule, r_label = [], []
    for run in row["runs"].split(";"):
        for p in sorted(Path(run, "predictions").glob("*.csv")):
            if p.stem not in rule:
                continue
            with open(p, newline="") as f:
                rows = [(int(r["frame"]), float(r["valence"])) for r in csv.DictReader(f) if r["valence"]]
            k = np.array([r[0] for r in rows])
            yhat = np.array([r[1] for r in rows])
            rp, lab, ok, _side = rule[p.stem]
            sel = ok[k]
            r_rule.append(pcc(yhat[sel], rp[k][sel]))
            r_label.append(pcc(yhat[sel], lab[k][sel]))
    print(f"4. the text model (six-fold valence CCC {row['valence']}): its predictions against the transcript's "
          f"rule, mean r = {np.nanmean(r_rule):.3f}; against the label, mean r = {np.nanmean(r_label):.3f} "
          f"({len(r_rule)} validation trials)")


if __name__ == "__main__":
    main()
