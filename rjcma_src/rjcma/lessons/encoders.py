"""The encoders chapter (notebook 05_encoders): the ridge probe of frozen features, and the exercises' checks."""

from __future__ import annotations

import numpy as np

from rjcma.lessons.checks import Verdict, check_value, failed
from rjcma.metrics import ccc


def ridge_predict(X: np.ndarray, y: np.ndarray, train: np.ndarray, rows: np.ndarray,  # noqa: N803
                  lam: float = 10.0) -> np.ndarray:
    """A ridge regression of ``y`` on ``X`` (with an intercept) fitted on the ``train`` rows, standardised with
    training statistics only (rows where y is NaN are left out of the fit); its predictions for ``rows``."""
    ok_tr = train & ~np.isnan(y)
    mu, sd = X[ok_tr].mean(0), X[ok_tr].std(0) + 1e-6
    Z = (X - mu) / sd
    A = np.c_[Z[ok_tr], np.ones(ok_tr.sum())]
    w = np.linalg.solve(A.T @ A + lam * np.eye(A.shape[1]), A.T @ y[ok_tr])
    return np.c_[Z[rows], np.ones(int(np.count_nonzero(rows)))] @ w


def ridge_probe(X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray, lam: float = 10.0) -> float:  # noqa: N803
    """Validation CCC of :func:`ridge_predict` fitted on the ``train`` rows; rows where y is NaN are left out."""
    ok_va = val & ~np.isnan(y)
    return float(ccc(ridge_predict(X, y, train, ok_va, lam), y[ok_va]))


def check_probe(answer: float | None, X: np.ndarray, y: np.ndarray, train: np.ndarray, val: np.ndarray,  # noqa: N803
                lam: float = 10.0) -> Verdict:
    """Exercise: the validation CCC of a ridge probe, recomputed here."""
    if not np.asarray(val).any():
        return failed("no validation frames in this corpus: the probe has nothing to be scored on")
    return check_value(f"probe CCC (lam = {lam:g})", answer, ridge_probe(X, y, train, val, lam), 1e-6)
