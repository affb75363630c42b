"""The encoders chapter (notebook 05_encoders): the ridge probe of frozen features, and the exercises' checks."""

from __future__ import annotations

import numpy as np

from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.metrics import ccc


def ridge_probe(X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, lam: float = 10.0) -> float:  # noqa: N803
    """Validation CCC of a ridge regression of ``y`` on ``X`` fitted on the ``train`` rows (standardised with
    training statistics only); rows where y is NaN are left out."""
    ok_tr, ok_va = train & ~np.isnan(y), val & ~np.isnan(y)
    mu, sd = X[ok_tr].mean(0), X[ok_tr].std(0) + 1e-6
    Z = (X - mu) / sd
    A = np.c_[Z[ok_tr], np.ones(ok_tr.sum())]
    w = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y[ok_tr])
    return float(ccc(np.c_[Z[ok_va], np.ones(ok_va.sum())] @ w, y[ok_va]))


def check_probe(answer: float | None, X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,  # noqa: N803
                lam: float = 10.0) -> Verdict:
    """Exercise: the validation CCC of a ridge probe, recomputed here."""
    if not np.asarray(val).any():
        return failed("no validation frames in this corpus: the probe has nothing to be scored on")
    return check_value(f"probe CCC (lam = {lam:g})", answer, ridge_probe(X, y, train, val, lam), 1e-6)
