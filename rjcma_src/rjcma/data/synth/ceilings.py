"""Ceilings of the demo corpus: designed (from the variance shares) and measured (the best linear predictor from the
rendered signals against the written labels), and the share of each target's variance each modality can explain by
construction (:func:`explained_variance`). All go into ``SYNTH_TRUTH.json``; the package docstring explains them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.data.synth.design import CHANNELS, LATENT_STD, NOISE_STD, SHARES
from rjcma.data.synth.layout import TRUTH_DIR
from rjcma.metrics import ccc

# the latent part (column of the truth tables) -> its key in SHARES, per target
SHARE_OF = {"valence": {"face": "face", "words": "words"},
            "arousal": {"prosody": "prosody", "motion": "motion", "words_a": "words"}}


def designed_ceilings() -> dict[str, dict[str, float]]:
    """CCC of the best predictor that sees given parts exactly: 2 s / (1 + s + n), s = variance share."""
    out: dict[str, dict[str, float]] = {}
    for target, shares in SHARES.items():
        nshare = (NOISE_STD / LATENT_STD[target]) ** 2
        parts = [k for k in shares if k != "residual"]
        d = {p: shares[p] for p in parts}
        d["all"] = sum(shares[p] for p in parts)
        out[target] = {k: round(2 * s / (1 + s + nshare), 3) for k, s in d.items()}
    return out


def designed_explained() -> dict[str, dict[str, float]]:
    """The share of each target's variance that each modality's parts (:data:`CHANNELS`) hold by design (the sum of
    their ``SHARES``; the residual is rendered nowhere), and all modalities together."""
    return {target: {**{m: round(sum(shares.get(SHARE_OF[target].get(p, ""), 0.0) for p in parts), 3)
                        for m, parts in CHANNELS.items()},
                     "all": round(sum(v for k, v in shares.items() if k != "residual"), 3)}
            for target, shares in SHARES.items()}


def explained_variance(root: Path, trials: list[dict]) -> dict[str, dict[str, float]]:
    """R² of each target's written labels from the latent parts each modality renders (:data:`CHANNELS`), each part
    delayed by its trial's annotator lag, least squares over every annotated frame of the training and validation
    trials: the fraction of the variance a modality can explain at best, by construction (the models see the parts
    only through rendering, encoders and speech recognition, and reach less). ``all``: every rendered part."""
    cols = [_read(root, tr) for tr in trials if tr["partition"] != "test"]
    out: dict[str, dict[str, float]] = {}
    for target in ("valence", "arousal"):
        y = np.concatenate([c[target][c["valid"] > 0.5] for c in cols])
        res = {}
        for m, parts in {**CHANNELS, "all": tuple(p for ps in CHANNELS.values() for p in ps)}.items():
            X = np.concatenate([np.stack([np.interp(c["time"] - c["_lag"], c["time"], c[p]) for p in parts]
                                         + [np.ones(len(c["time"]))], 1)[c["valid"] > 0.5] for c in cols])
            w, *_ = np.linalg.lstsq(X, y, rcond=None)
            res[m] = round(float(1 - np.var(y - X @ w) / np.var(y)), 3)
        out[target] = res
    return out


def _read(root: Path, tr: dict) -> dict[str, Any]:
    with open(root / TRUTH_DIR / f"{tr['name']}.csv") as f:
        rows = list(csv.DictReader(f))
    cols: dict[str, Any] = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
    cols["_lag"], cols["_fps"] = tr["annotator_lag_s"], tr["fps"]
    return cols


def measured_ceilings(root: Path, trials: list[dict], evaluate_on: str = "train+validation") -> dict[str, Any]:
    """CCC of the least-squares linear predictor from the rendered signals (one global delay, chosen on the fit).

    ``evaluate_on="train+validation"``: fitted and scored on all annotated frames (an in-sample ceiling with 2–3
    coefficients); ``"validation"``: fitted on the training trials, scored on the validation trials (what a model
    trained on the official split could reach at best with these signals).
    """
    by_part: dict[str, list[dict[str, Any]]] = {"train": [], "validation": []}
    for tr in trials:
        if tr["partition"] == "test":
            continue
        by_part[tr["partition"]].append(_read(root, tr))
    fit = by_part["train"] + (by_part["validation"] if evaluate_on == "train+validation" else [])
    score = by_part["validation"] if evaluate_on == "validation" else fit
    sets = {
        "valence": {"visual": ["face", "motion"], "audio": ["heard_prosody"], "text": ["heard_word_level"]},
        "arousal": {"visual": ["motion", "face"], "audio": ["heard_prosody"], "text": ["heard_word_arousal"]},
    }
    out: dict[str, Any] = {}
    for target, mods in sets.items():
        feats_all = sorted({f for fs in mods.values() for f in fs})
        # one global delay (a causal model can learn one fixed delay), chosen on the fitting trials
        lag = max((0.5, 0.75, 1.0), key=lambda d: _fit_ccc(fit, fit, feats_all, target, d))
        res: dict[str, float] = {m: round(_fit_ccc(fit, score, fs, target, lag), 3) for m, fs in mods.items()}
        res["all"] = round(_fit_ccc(fit, score, feats_all, target, lag), 3)
        res["oracle_latent"] = round(_oracle(score, target), 3)
        res["lag_used_s"] = lag
        out[target] = res
    return out


def _stack(trs: list[dict], feats: list[str], target: str, lag: float):
    X, y = [], []
    for cols in trs:
        sh = int(round(lag * cols["_fps"]))
        valid = cols["valid"] > 0.5
        f = np.stack([cols[k] for k in feats], 1)
        f = np.concatenate([np.repeat(f[:1], sh, 0), f[: len(f) - sh]], 0) if sh else f  # causal delay
        X.append(f[valid])
        y.append(cols[target][valid])
    X = np.concatenate(X)
    return np.concatenate([X, np.ones((len(X), 1))], 1), np.concatenate(y)


def _fit_ccc(fit: list[dict], score: list[dict], feats: list[str], target: str, lag: float) -> float:
    X, y = _stack(fit, feats, target, lag)
    w, *_ = np.linalg.lstsq(X, y, rcond=None)
    Xs, ys = _stack(score, feats, target, lag)
    return ccc(Xs @ w, ys)


def _oracle(trs, target) -> float:
    """Labels vs the noise-free latent delayed by each trial's annotator lag: only noise and clipping limit it."""
    p, y = [], []
    for cols in trs:
        v = cols["valid"] > 0.5
        y.append(cols[target][v])
        delayed = np.interp(cols["time"] - cols["_lag"], cols["time"], cols[f"{target}_latent"])
        p.append(delayed[v])
    return float("nan") if not p else ccc(np.concatenate(p), np.concatenate(y))
