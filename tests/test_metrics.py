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


# ---- how sure a CCC is: sufficient statistics, units, bootstrap -----------------------------------------------------


def _clustered_fold(rng, trials, frames, a=0.8, b=0.1, mu=0.2, su=0.5, se=0.5, sv=0.3, sf=0.4):
    """Frames of ``trials`` subjects: y = u_t + e, x = a y + b + v_t + f (subject effects u_t, v_t shared by a
    trial's frames) and the population CCC of that design, which the sample CCC estimates."""
    t = np.repeat(np.arange(trials), frames)
    u, v = mu + su * rng.standard_normal(trials), sv * rng.standard_normal(trials)
    y = u[t] + se * rng.standard_normal(t.size)
    x = a * y + b + v[t] + sf * rng.standard_normal(t.size)
    vy = su**2 + se**2
    vx = a * a * vy + sv**2 + sf**2
    return x, y, t, 2 * a * vy / (vx + vy + ((a - 1) * mu + b) ** 2)


def _ar1(rng, n, phi, burn=500):
    e = rng.standard_normal(n + burn) * np.sqrt(1 - phi * phi)
    out = np.empty_like(e)
    out[0] = e[0] / np.sqrt(1 - phi * phi)
    for k in range(1, e.size):
        out[k] = phi * out[k - 1] + e[k]
    return out[burn:]


def test_ccc_from_unit_statistics_is_ccc():
    from rjcma.metrics import STAT_FIELDS, ccc_from_sums, ccc_unit_stats

    rng = np.random.default_rng(3)
    for n in (5, 1000, 100_000):
        y = 0.2 + 0.4 * rng.standard_normal(n)
        x = 0.7 * y + 0.1 + 0.3 * rng.standard_normal(n)
        y[::11] = np.nan
        units = rng.integers(0, 9, n)
        stats = ccc_unit_stats(x, y, units, n_units=12)
        assert stats.shape == (12, len(STAT_FIELDS)) and (stats[9:] == 0).all()  # units without frames keep a row
        assert stats[:, 0].sum() == (~np.isnan(y)).sum()  # NaN targets are left out, as ccc does
        assert ccc_from_sums(stats.sum(0)) == pytest.approx(ccc(x, y), rel=1e-12)
        assert ccc_from_sums(ccc_unit_stats(x, y).sum(0)) == pytest.approx(ccc(x, y), rel=1e-12)
    assert np.isnan(ccc_from_sums(ccc_unit_stats([0.3, 0.3, 0.3], [0.3, 0.3, 0.3]).sum(0)))  # zero denominator
    assert np.isnan(ccc_from_sums(ccc_unit_stats([0.1, 0.2], [np.nan, 0.5]).sum(0)))  # one valid frame
    with pytest.raises(ValueError, match="shapes differ"):
        ccc_unit_stats(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="unit"):
        ccc_unit_stats(np.zeros(3), np.zeros(3), units=[0, 1])


def test_interval_holds_the_estimate_and_is_seeded():
    from rjcma.metrics import ccc_interval, ccc_unit_stats

    x, y, t, _ = _clustered_fold(np.random.default_rng(4), 25, 30)
    stats = ccc_unit_stats(x, y, t)
    iv = ccc_interval(stats)
    assert iv.estimate == pytest.approx(ccc(x, y), rel=1e-12)
    assert iv.low < iv.estimate < iv.high and iv.level == 0.95
    assert ccc_interval(stats) == iv  # the same seed and resamples: the same bytes
    other = ccc_interval(stats, seed=1)
    assert other != iv and abs(other.low - iv.low) < 0.2 * (iv.high - iv.low)


def test_trial_bootstrap_covers_the_true_ccc_95_percent_of_the_time():
    """Many simulated folds of 30 subjects whose population CCC is known: the trial bootstrap's 95 % interval
    covers it in about 95 % of them. Treating the frames as independent units (the wrong units) covers far less:
    frames of one subject share its offsets."""
    from rjcma.metrics import ccc_interval, ccc_unit_stats

    rng = np.random.default_rng(5)
    hits = []
    for f in range(400):
        x, y, t, truth = _clustered_fold(rng, 30, 40)
        iv = ccc_interval(ccc_unit_stats(x, y, t), resamples=1000, seed=f)
        hits.append(iv.low <= truth <= iv.high)
    assert 0.90 <= np.mean(hits) <= 0.99, np.mean(hits)
    wrong = []
    for f in range(60):
        x, y, t, truth = _clustered_fold(rng, 30, 40)
        iv = ccc_interval(ccc_unit_stats(x, y, np.arange(x.size)), resamples=200, seed=f)
        wrong.append(iv.low <= truth <= iv.high)
    assert np.mean(wrong) < 0.75, np.mean(wrong)


def test_block_bootstrap_on_few_smooth_trials():
    """Two or three trials of smooth labels (an AR(1) with a 50-frame time constant, like the demo's): the block
    units of evaluation_units cover the true CCC in most simulated folds, somewhat under 95 % (few blocks), and far
    more often than frames treated as independent."""
    from rjcma.metrics import ccc_interval, ccc_unit_stats, evaluation_units

    rng = np.random.default_rng(6)
    phi, a, b, sf = np.exp(-1 / 50), 0.8, 0.1, 0.6
    truth = 2 * a / (a * a + sf * sf + 1 + b * b)
    blocks, frames = [], []
    for f in range(150):
        ys = [_ar1(rng, 700, phi) for _ in range(2 + f % 2)]
        xs = [a * y + b + sf * _ar1(rng, 700, phi) for y in ys]
        x, y = np.concatenate(xs), np.concatenate(ys)
        units = evaluation_units(ys)
        assert units.kind == "block" and units.block == 2 * units.lag
        iv = ccc_interval(ccc_unit_stats(x, y, units.ids, units.count), resamples=500, seed=f)
        blocks.append(iv.low <= truth <= iv.high)
        iv = ccc_interval(ccc_unit_stats(x, y, np.arange(x.size)), resamples=200, seed=f)
        frames.append(iv.low <= truth <= iv.high)
    cover, naive = np.mean(blocks), np.mean(frames)
    assert 0.75 <= cover <= 0.99 and cover > naive + 0.2, (cover, naive)


def test_paired_difference_is_narrower_when_systems_share_errors():
    from rjcma.metrics import ccc_difference, ccc_replicates, ccc_unit_stats, percentile_interval

    rng = np.random.default_rng(7)
    x, y, t, _ = _clustered_fold(rng, 20, 50)
    xb = x + 0.2 * rng.standard_normal(x.size)  # b: a's errors and some more
    sa, sb = ccc_unit_stats(x, y, t), ccc_unit_stats(xb, y, t)
    paired = ccc_difference(sa, sb)
    assert paired.estimate == pytest.approx(ccc(x, y) - ccc(xb, y), rel=1e-9)
    unpaired = percentile_interval(ccc_replicates(sa, seed=1) - ccc_replicates(sb, seed=2), paired.estimate)
    assert paired.high - paired.low < 0.25 * (unpaired.high - unpaired.low)
    assert paired.excludes_zero and not unpaired.excludes_zero
    with pytest.raises(ValueError, match="same frames"):
        ccc_difference(sa, ccc_unit_stats(xb[1:], y[1:], t[1:]))


def test_a_system_against_itself_differs_by_exactly_zero():
    from rjcma.metrics import ccc_difference, ccc_unit_stats

    x, y, t, _ = _clustered_fold(np.random.default_rng(8), 6, 100)
    s = ccc_unit_stats(x, y, t)
    d = ccc_difference(s, s)
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0) and not d.excludes_zero
    # several folds (strata) and repeats (members): still exactly zero
    two = [np.stack([s, s]), ccc_unit_stats(y + 0.1, y, t)]
    d = ccc_difference(two, two, keys=[0, 3])
    assert (d.estimate, d.low, d.high) == (0.0, 0.0, 0.0)
    # one unit carries no spread: no interval rather than [0, 0]
    one = ccc_unit_stats(x, y)
    d = ccc_difference(one, one)
    assert d.estimate == 0.0 and np.isnan(d.low) and np.isnan(d.high) and not d.excludes_zero


def test_strata_and_members_average_as_the_tables_do():
    from rjcma.metrics import ccc_estimate, ccc_interval, ccc_replicates, ccc_unit_stats

    rng = np.random.default_rng(9)
    (x1, y1, t1, _), (x2, y2, t2, _) = _clustered_fold(rng, 10, 30), _clustered_fold(rng, 12, 30)
    x1b = x1 + 0.2 * rng.standard_normal(x1.size)
    fold1 = np.stack([ccc_unit_stats(x1, y1, t1), ccc_unit_stats(x1b, y1, t1)])  # two repeats on fold 1
    fold2 = ccc_unit_stats(x2, y2, t2)
    mean = ((ccc(x1, y1) + ccc(x1b, y1)) / 2 + ccc(x2, y2)) / 2
    assert ccc_estimate([fold1, fold2]) == pytest.approx(mean, rel=1e-12)
    iv = ccc_interval([fold1, fold2], keys=[1, 2])
    assert iv.low < mean < iv.high
    # a stratum's draws depend on its key only: fold 2's replicates alone are those it contributes to the mean
    both = ccc_replicates([fold1, fold2], keys=[1, 2])
    assert np.allclose(both, (ccc_replicates([fold1], keys=[1]) + ccc_replicates([fold2], keys=[2])) / 2, rtol=0,
                       atol=1e-12)
    with pytest.raises(ValueError, match="same frames"):
        ccc_replicates(np.stack([ccc_unit_stats(x1, y1, t1), ccc_unit_stats(x1[1:], y1[1:], t1[1:], 10)]))


def test_units_rule_trials_or_blocks():
    from rjcma.metrics import MIN_TRIAL_UNITS, block_ids, decorrelation_lag, evaluation_units

    rng = np.random.default_rng(10)
    phi = np.exp(-1 / 30)  # autocorrelation phi^k falls below 0.1 at k = ceil(30 ln 10) = 70
    long = [_ar1(rng, 5000, phi) for _ in range(12)]
    assert 55 <= decorrelation_lag(long) <= 90  # the estimate's own noise: about +-10 lags
    many = [np.stack([s[:300], s[300:600]], 1) for s in long[:MIN_TRIAL_UNITS]]
    u = evaluation_units(many)
    assert u.kind == "trial" and u.count == MIN_TRIAL_UNITS and u.ids.tolist() == np.repeat(range(8), 300).tolist()
    few = [s[:1000] for s in long[:3]]
    few[1] = few[1].copy()
    few[1][:200] = np.nan  # unlabelled frames count in no lag product
    u = evaluation_units(few)
    assert u.kind == "block" and u.block == 2 * u.lag and 40 <= u.lag <= 90
    assert u.count == len(np.unique(u.ids)) and u.ids.size == 3000
    # blocks never span two trials
    starts = np.cumsum([0, 1000, 1000])
    assert all(len(set(u.ids[s:s + 1000]) & set(np.delete(u.ids, np.s_[s:s + 1000]))) == 0 for s in starts)
    ids, n = block_ids([9, 13, 3, 10, 0], 4)  # rests 1 and 1 join the last block; a 3-frame trial is one block;
    assert n == 9 and ids.tolist() == ([0] * 4 + [1] * 5 + [2] * 4 + [3] * 4 + [4] * 5 + [5] * 3  # a rest of 2
                                       + [6] * 4 + [7] * 4 + [8] * 2)  # (half a block) is a block of its own
