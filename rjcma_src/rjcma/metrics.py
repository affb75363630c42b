"""Evaluation metrics: concordance correlation coefficient (paper §4.2.3, eq. 15), Pearson correlation, RMSE.

The one home of the CCC: the training loss (:mod:`rjcma.train.losses`, eq. 16) and the demo generator's ceilings
(:mod:`rjcma.data.synth`) use :func:`concordance` and :func:`ccc` from here.

Estimator (stated once, used everywhere): **population moments**,
i.e. every mean, variance and covariance divides by N, the number of valid frames::

    mu_x = 1/N sum x_i                      sigma_x^2 = 1/N sum (x_i - mu_x)^2
    sigma_xy = 1/N sum (x_i - mu_x)(y_i - mu_y)
    rho_c = 2 sigma_xy / (sigma_x^2 + sigma_y^2 + (mu_x - mu_y)^2)            (eq. 15)

This is Lin's (1989) sample CCC. The released code mixes a 1/N covariance with 1/(N-1) variances (the book's
chapter *Paper vs released code*); ``torchmetrics.ConcordanceCorrCoef`` uses 1/(N-1) throughout. The three agree to O(1/N); on an
Aff-Wild2 partition (~10^5 frames or more) the difference is far below the third decimal.

Frames whose *target* is NaN (the −5 rows of the annotations) are ignored; predictions are never NaN in our
pipeline (a NaN prediction propagates, so it is noticed). Inputs are numpy arrays (→ ``float``) or torch tensors
(→ 0-d tensor, differentiable); both are flattened, so pass one target column at a time.
Fewer than two valid frames, or a zero denominator, give NaN.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np


def _is_torch(x: Any) -> bool:
    try:
        import torch
    except ImportError:  # pragma: no cover
        return False
    return isinstance(x, torch.Tensor)


def _valid_pairs(pred, target):
    """Flattened (x, y) over frames whose target is not NaN; float64 for numpy, >= float32 for torch."""
    if _is_torch(pred) or _is_torch(target):
        import torch

        x = pred if _is_torch(pred) else torch.as_tensor(np.asarray(pred))
        y = target if _is_torch(target) else torch.as_tensor(np.asarray(target), device=x.device)
        if x.shape != y.shape:
            raise ValueError(f"prediction and target shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
        dtype = torch.promote_types(torch.promote_types(x.dtype, y.dtype), torch.float32)
        x = x.reshape(-1).to(dtype)
        y = y.reshape(-1).to(dtype)
        keep = ~torch.isnan(y)
        return x[keep], y[keep], True
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"prediction and target shapes differ: {x.shape} vs {y.shape}")
    x = x.reshape(-1)
    y = y.reshape(-1)
    keep = ~np.isnan(y)
    return x[keep], y[keep], False


def _scalar(v) -> float:
    return float(v.detach()) if _is_torch(v) else float(v)


def _count(x) -> int:
    return int(x.numel()) if _is_torch(x) else int(x.size)


def _nan(is_torch: bool, like):
    if is_torch:
        import torch

        return torch.full((), float("nan"), dtype=like.dtype, device=like.device) + 0 * like.sum()
    return float("nan")


def _moments(x, y):
    """Population moments (1/N): mu_x, mu_y, sigma_x^2, sigma_y^2, sigma_xy."""
    mx, my = x.mean(), y.mean()
    dx, dy = x - mx, y - my
    return mx, my, (dx * dx).mean(), (dy * dy).mean(), (dx * dy).mean()


def concordance(mx, my, vx, vy, cxy, eps: float = 0.0):
    """Eq. (15) from the moments: ``2 sigma_xy / (sigma_x^2 + sigma_y^2 + (mu_x - mu_y)^2 + eps)``.

    Works elementwise on floats, numpy arrays and torch tensors (the loss passes per-sequence moments and a small
    ``eps`` so that two equal constant windows give a finite value)."""
    return 2 * cxy / (vx + vy + (mx - my) ** 2 + eps)


def ccc(pred, target):
    """Lin's concordance correlation coefficient (eq. 15) with population moments, NaN targets ignored.

    ``rho_c = 2 sigma_xy / (sigma_x^2 + sigma_y^2 + (mu_x - mu_y)^2)``, all moments over the N valid frames with
    1/N. numpy in → ``float``; torch in → 0-d tensor (differentiable).
    """
    x, y, is_t = _valid_pairs(pred, target)
    if _count(x) < 2:
        return _nan(is_t, x)
    mx, my, vx, vy, cxy = _moments(x, y)
    den = vx + vy + (mx - my) ** 2
    if _scalar(den) == 0.0:
        return _nan(is_t, x)
    r = concordance(mx, my, vx, vy, cxy)  # eq. (15)
    return r if is_t else float(r)


def pcc(pred, target):
    """Pearson correlation over the valid frames (population moments; the 1/N cancels)."""
    x, y, is_t = _valid_pairs(pred, target)
    if _count(x) < 2:
        return _nan(is_t, x)
    _, _, vx, vy, cxy = _moments(x, y)
    den = (vx * vy) ** 0.5
    if _scalar(den) == 0.0:
        return _nan(is_t, x)
    r = cxy / den
    return r if is_t else float(r)


def rmse(pred, target):
    """Root mean squared error over the valid frames."""
    x, y, is_t = _valid_pairs(pred, target)
    if _count(x) == 0:
        return _nan(is_t, x)
    r = ((x - y) ** 2).mean() ** 0.5
    return r if is_t else float(r)


def ccc_per_trial(pairs: Mapping[str, tuple[Any, Any]]) -> dict[str, float]:
    """``{trial: (pred, target)}`` → ``{trial: CCC}`` (NaN for trials with < 2 valid frames or constant series).

    The ABAW figure is the CCC over all frames of the partition concatenated, not the mean of these.
    """
    out: dict[str, float] = {}
    for name, (p, t) in pairs.items():
        v = ccc(p, t)
        out[name] = float(v)
    return out


def all_metrics(pred, target) -> dict[str, float]:
    """CCC, PCC and RMSE of one target column as plain floats (for metrics.json)."""
    return {"ccc": float(ccc(pred, target)), "pcc": float(pcc(pred, target)), "rmse": float(rmse(pred, target))}
