"""CCC / PCC / RMSE (rjcma/metrics.py, eq. 15) and the CCC loss (train/losses.py, eq. 16).

Estimator: population moments (1/N) over the valid frames, for the metric and the loss alike. torchmetrics'
ConcordanceCorrCoef uses 1/(N-1); the two agree to O(1/N), shown below.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rjcma.train.losses import ccc_loss, ccc_per_sequence
from rjcma.metrics import all_metrics, ccc, ccc_per_trial, pcc, rmse


pytestmark = pytest.mark.usefixtures("one_thread")


def _pair(n, seed=0, offset=0.3, scale=0.7):
    rng = np.random.default_rng(seed)
    y = np.tanh(np.cumsum(rng.normal(size=n)) / np.sqrt(n) * 3)
    x = scale * y + offset + 0.3 * rng.normal(size=n)
    return x, y


def test_identity_and_symmetry():
    x, y = _pair(500)
    assert ccc(y, y) == pytest.approx(1.0, abs=1e-12)
    assert ccc(x, y) == pytest.approx(ccc(y, x), abs=1e-12)
    assert pcc(x, y) == pytest.approx(pcc(y, x), abs=1e-12)
    yc = y - y.mean()
    assert ccc(-yc, yc) == pytest.approx(-1.0, abs=1e-12)
    assert -1 <= ccc(x, y) <= pcc(x, y) <= 1  # CCC <= PCC (penalises bias and scale)


def test_hand_computed_value():
    # x = [1,2,3,4], y = [2,2,4,5]: mu 2.5 / 3.25, var 1.25 / 1.6875, cov 1.375 (all 1/N)
    # rho_c = 2*1.375 / (1.25 + 1.6875 + 0.75**2) = 2.75 / 3.5 = 11/14
    assert ccc([1, 2, 3, 4], [2, 2, 4, 5]) == pytest.approx(11 / 14, abs=1e-12)
    assert pcc([1, 2, 3, 4], [2, 2, 4, 5]) == pytest.approx(1.375 / np.sqrt(1.25 * 1.6875), abs=1e-12)
    assert rmse([1, 2, 3, 4], [2, 2, 4, 5]) == pytest.approx(np.sqrt(3 / 4), abs=1e-12)


def test_nan_targets_are_ignored():
    x, y = _pair(300, seed=1)
    y_nan = y.copy()
    drop = np.zeros(300, bool)
    drop[:20] = drop[100:130] = drop[-5:] = True
    y_nan[drop] = np.nan
    assert ccc(x, y_nan) == pytest.approx(ccc(x[~drop], y[~drop]), abs=1e-12)
    assert pcc(x, y_nan) == pytest.approx(pcc(x[~drop], y[~drop]), abs=1e-12)
    assert rmse(x, y_nan) == pytest.approx(rmse(x[~drop], y[~drop]), abs=1e-12)
    assert np.isnan(ccc([0.1, 0.2, 0.3], [np.nan, 0.5, np.nan]))  # < 2 valid frames
    assert np.isnan(ccc([0.2, 0.2], [0.2, 0.2]))  # zero denominator
    with pytest.raises(ValueError, match="shapes differ"):
        ccc(np.zeros(3), np.zeros(4))


def test_torch_matches_numpy_and_is_differentiable():
    x, y = _pair(1000, seed=2)
    y[::7] = np.nan
    xt = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    yt = torch.tensor(y, dtype=torch.float64)
    for f in (ccc, pcc, rmse):
        r = f(xt, yt)
        assert isinstance(r, torch.Tensor) and r.dim() == 0
        assert float(r.detach()) == pytest.approx(f(x, y), abs=1e-12)
    ccc(xt, yt).backward()
    assert torch.isfinite(xt.grad).all() and xt.grad.abs().sum() > 0
    assert ccc(xt.float(), yt.float()).item() == pytest.approx(ccc(x, y), abs=1e-5)
    assert isinstance(ccc(x, y), float)


def test_against_torchmetrics_n_minus_1():
    """torchmetrics uses 1/(N-1) moments; ours 1/N. Equal formula otherwise; the gap shrinks like 1/N."""
    tm = pytest.importorskip("torchmetrics")
    gaps = {}
    for n in (50, 500, 5000, 50000):
        x, y = _pair(n, seed=n)
        ref = float(tm.ConcordanceCorrCoef()(torch.tensor(x), torch.tensor(y)))
        # torchmetrics == eq. (15) with unbiased (N-1) variances and covariance
        s_x, s_y = np.var(x, ddof=1), np.var(y, ddof=1)
        s_xy = np.cov(x, y, ddof=1)[0, 1]
        assert ref == pytest.approx(2 * s_xy / (s_x + s_y + (x.mean() - y.mean()) ** 2), abs=1e-6)  # float32 inside
        gaps[n] = abs(ccc(x, y) - ref)
        assert gaps[n] * n < 1.0, f"gap {gaps[n]:.2e} at N={n} is not O(1/N)"
    assert gaps[50] > 0  # the estimators do differ: ours is the population one (1/N)
    assert gaps[50000] < 1e-5 < gaps[50]


def test_ccc_per_trial_and_all_metrics():
    x, y = _pair(200)
    out = ccc_per_trial({"a": (x, y), "b": (y, y)})
    assert out["b"] == pytest.approx(1.0) and out["a"] == pytest.approx(ccc(x, y))
    m = all_metrics(x, y)
    assert set(m) == {"ccc", "pcc", "rmse"} and all(isinstance(v, float) for v in m.values())


# ---- loss (eq. 16) ----------------------------------------------------------------------------------


def test_loss_is_one_minus_ccc_per_sequence_batch_mean():
    torch.manual_seed(0)
    B, K = 4, 50
    y = torch.randn(B, K, dtype=torch.float64)
    x = 0.5 * y + 0.3 * torch.randn(B, K, dtype=torch.float64) + 0.1
    expected = np.mean([1 - ccc(x[b].numpy(), y[b].numpy()) for b in range(B)])
    assert ccc_loss(x, y).item() == pytest.approx(expected, abs=1e-7)
    assert ccc_loss(y, y).item() == pytest.approx(0.0, abs=1e-7)


def test_loss_mask_and_nan_frames_ignored():
    torch.manual_seed(1)
    B, K = 3, 40
    y = torch.randn(B, K, dtype=torch.float64)
    x = (0.8 * y + 0.2 * torch.randn(B, K, dtype=torch.float64)).requires_grad_()
    mask = torch.ones(B, K, dtype=torch.bool)
    mask[0, 30:] = False  # padding at the end of the first window
    y_nan = y.clone()
    y_nan[1, :5] = float("nan")  # unannotated frames
    loss = ccc_loss(x, y_nan, mask)
    ref = np.mean(
        [
            1 - ccc(x[0, :30].detach().numpy(), y[0, :30].numpy()),
            1 - ccc(x[1, 5:].detach().numpy(), y[1, 5:].numpy()),
            1 - ccc(x[2].detach().numpy(), y[2].numpy()),
        ]
    )
    assert loss.item() == pytest.approx(ref, abs=1e-7)
    loss.backward()
    assert torch.isfinite(x.grad).all()
    assert (x.grad[0, 30:] == 0).all() and (x.grad[1, :5] == 0).all()
    # garbage on masked frames changes nothing
    y2 = y_nan.clone()
    y2[0, 30:] = 1e6
    assert ccc_loss(x, y2, mask).item() == pytest.approx(loss.item(), abs=1e-12)


def test_loss_short_and_empty_sequences():
    x = torch.randn(3, 10, requires_grad=True)
    y = torch.randn(3, 10)
    mask = torch.zeros(3, 10, dtype=torch.bool)
    mask[0] = True
    mask[1, 0] = True  # one valid frame: excluded
    assert ccc_loss(x, y, mask).item() == pytest.approx(1 - float(ccc(x[0].detach(), y[0])), abs=1e-5)
    rho, usable = ccc_per_sequence(x, y, mask)
    assert usable.tolist() == [True, False, False] and rho.shape == (3,)
    empty = ccc_loss(x, torch.full_like(y, float("nan")))
    assert empty.item() == 0.0 and empty.requires_grad
    empty.backward()
    assert (x.grad == 0).all()


def test_loss_multi_target_and_low_precision():
    torch.manual_seed(2)
    y = torch.randn(2, 30, 2)
    x = (0.7 * y + 0.3 * torch.randn(2, 30, 2)).requires_grad_()
    per_t = [ccc_loss(x[..., t], y[..., t]).item() for t in range(2)]
    assert ccc_loss(x, y).item() == pytest.approx(np.mean(per_t), abs=1e-6)
    y_nan = y.clone()
    y_nan[:, :, 1] = float("nan")  # a target with no labels at all is left out of the mean
    assert ccc_loss(x, y_nan).item() == pytest.approx(per_t[0], abs=1e-6)
    lb = ccc_loss(x.bfloat16(), y.bfloat16())
    assert lb.dtype == torch.float32 and abs(lb.item() - ccc_loss(x, y).item()) < 0.05
    with pytest.raises(ValueError):
        ccc_loss(x, y[..., 0])
    with pytest.raises(ValueError):
        ccc_loss(x, y, torch.ones(2, 31, dtype=torch.bool))
