"""Training loss: L = 1 − rho_c (paper §4.2.3, eq. 16), per sequence over its valid frames, averaged over the batch.

Same estimator as :func:`rjcma.metrics.ccc` (population moments, 1/N over the valid frames of the sequence); eq. (15)
itself is :func:`rjcma.metrics.concordance`, applied here to the moments of every sequence at once.
A frame is valid when ``mask`` is True there (False on window padding) and the target is not NaN (−5 rows).
Sequences with fewer than two valid frames carry no CCC and are left out of the batch mean; if no sequence in the
batch is usable the loss is a zero that still has a graph (so ``backward()`` works and changes nothing).
"""

from __future__ import annotations

import torch

from rjcma.metrics import concordance

# Added to the denominator of eq. (15) so a window whose prediction and target are both constant and equal gives a
# finite loss instead of 0/0; far below any real variance.
EPS = 1e-8


def ccc_per_sequence(
    pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """CCC of each sequence (and target column) over its valid frames.

    Args:
        pred, target: ``(B, K)`` or ``(B, K, T)``.
        mask: ``(B, K)`` bool, True on real frames (optional).
    Returns:
        ``(rho, usable)``: ``rho`` (B,) or (B, T) — CCC per sequence, 0 where unusable; ``usable`` bool, same shape,
        True where the sequence has at least two valid frames.
    """
    if pred.shape != target.shape:
        raise ValueError(f"ccc_loss: prediction {tuple(pred.shape)} and target {tuple(target.shape)} differ")
    if pred.dim() not in (2, 3):
        raise ValueError(f"ccc_loss expects (B, K) or (B, K, T) tensors; got {tuple(pred.shape)}")
    squeeze = pred.dim() == 2
    x = pred.float() if pred.dtype in (torch.float16, torch.bfloat16) else pred
    y = target.to(x.dtype)
    if squeeze:
        x, y = x.unsqueeze(-1), y.unsqueeze(-1)  # (B, K, 1)
    valid = ~torch.isnan(y)  # (B, K, T)
    if mask is not None:
        if mask.shape != pred.shape[:2]:
            raise ValueError(f"ccc_loss: mask must be (B, K) = {tuple(pred.shape[:2])}; got {tuple(mask.shape)}")
        valid = valid & mask.to(torch.bool).unsqueeze(-1)
    w = valid.to(x.dtype)
    y = torch.where(valid, y, torch.zeros_like(y))  # keep NaN out of the graph
    n = w.sum(dim=1)  # (B, T) valid frames per sequence
    n_safe = n.clamp(min=1.0)
    mu_x = (w * x).sum(1) / n_safe  # (B, T)
    mu_y = (w * y).sum(1) / n_safe
    dx = (x - mu_x.unsqueeze(1)) * w  # (B, K, T), zero on invalid frames
    dy = (y - mu_y.unsqueeze(1)) * w
    var_x = (dx * dx).sum(1) / n_safe  # population variance, 1/N
    var_y = (dy * dy).sum(1) / n_safe
    cov = (dx * dy).sum(1) / n_safe
    rho = concordance(mu_x, mu_y, var_x, var_y, cov, eps=EPS)  # eq. (15)
    usable = n >= 2
    rho = torch.where(usable, rho, torch.zeros_like(rho))
    if squeeze:
        rho, usable = rho.squeeze(-1), usable.squeeze(-1)
    return rho, usable


def ccc_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """1 − CCC per sequence over its valid frames (eq. 16), averaged over the batch (and then over targets).

    Args:
        pred: ``(B, K)`` or ``(B, K, T)`` predictions.
        target: same shape; NaN where the annotation is missing (−5).
        mask: ``(B, K)`` bool, False on window padding (optional).
    """
    rho, usable = ccc_per_sequence(pred, target, mask)
    if rho.dim() == 1:
        rho, usable = rho.unsqueeze(-1), usable.unsqueeze(-1)  # (B, 1)
    u = usable.to(rho.dtype)
    per_target_n = u.sum(0)  # (T,) usable sequences per target
    per_target = ((1 - rho) * u).sum(0) / per_target_n.clamp(min=1.0)  # batch mean per target
    has = per_target_n > 0
    if not bool(has.any()):
        return (pred.sum() * 0.0).to(rho.dtype)  # nothing to learn from; zero with a graph
    return per_target[has].mean()
