"""Ceilings of the demo corpus: designed (from the variance shares) and measured (the best linear predictor from the
rendered signals against the written labels). Both go into ``SYNTH_TRUTH.json``; the package docstring explains them."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np

from rjcma.data.synth.design import LATENT_STD, NOISE_STD, SHARES
from rjcma.data.synth.layout import TRUTH_DIR
from rjcma.metrics import ccc


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
        with open(root / TRUTH_DIR / f"{tr['name']}.csv") as f:
            rows = list(csv.DictReader(f))
        cols: dict[str, Any] = {k: np.array([float(r[k]) for r in rows]) for k in rows[0]}
        cols["_lag"], cols["_fps"] = tr["annotator_lag_s"], tr["fps"]
        by_part[tr["partition"]].append(cols)
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
