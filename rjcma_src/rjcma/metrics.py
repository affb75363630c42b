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

**How sure a CCC is** (the second half of this module). The CCC of a partition is a function of six sums over its
valid frames (n, Σx, Σy, Σx², Σy², Σxy), and sums add over any split of the frames into *units*: so the CCC of a
bootstrap resample of units is eq. (15) of the resampled units' summed statistics (:func:`ccc_unit_stats`,
:func:`ccc_from_sums`), exact and cheap. Frames are not independent (labels and errors are smooth over seconds and
differ from subject to subject), so the resampled units are whole trials, or blocks of consecutive frames when a
fold has few trials (:func:`evaluation_units`, the rule is in its docstring). Intervals are percentile bootstrap
intervals (:func:`ccc_interval`); a difference of two systems scored on the same frames resamples the same units for
both (:func:`ccc_difference`, a *paired* bootstrap), so what they share cancels. Everything is seeded (:data:`SEED`,
:data:`RESAMPLES`) and vectorised, so the same inputs give the same interval bytes.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping, Sequence

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


# ---- how sure a CCC is: sufficient statistics per unit, resampling units, paired bootstrap ---------------------------

STAT_FIELDS = ("n", "sum_x", "sum_y", "sum_xx", "sum_yy", "sum_xy")  # the columns of ccc_unit_stats
RESAMPLES = 2000  # bootstrap resamples: the interval's ends then move by about 1-2 % of its width with the seed
SEED = 3407  # the training seed of the package's configs; any fixed value would do
LEVEL = 0.95
MIN_TRIAL_UNITS = 8  # fewer labelled trials than this: resample blocks of consecutive frames instead of trials
DECORRELATION_ACF = 0.1  # the labels' decorrelation lag: the first lag whose autocorrelation falls below this
BLOCK_LAGS = 2  # frames per block, in decorrelation lags
_DRAW_CHUNK = 250  # resamples summed at once (memory: members x 250 x units x 6 floats)


def ccc_unit_stats(pred, target, units=None, n_units: int | None = None) -> np.ndarray:
    """Sufficient statistics of eq. (15) per unit: a ``(U, 6)`` float64 array of rows (n, Σx, Σy, Σx², Σy², Σxy)
    over the frames of each unit whose target is not NaN (the frames :func:`ccc` keeps).

    ``units``: the unit (0 … U-1) of every frame, flattened like ``pred`` (None: all frames are one unit);
    ``n_units``: U (default: the largest id + 1), so a unit without a valid frame keeps its row, with n = 0.
    Raw sums lose about log2(1 + mean²/variance) bits to cancellation in :func:`ccc_from_sums`: nothing for
    valence and arousal in [-1, 1]."""
    x = np.asarray(pred, dtype=np.float64)
    y = np.asarray(target, dtype=np.float64)
    if x.shape != y.shape:
        raise ValueError(f"prediction and target shapes differ: {x.shape} vs {y.shape}")
    x, y = x.reshape(-1), y.reshape(-1)
    u = np.zeros(x.size, np.int64) if units is None else np.asarray(units).reshape(-1)
    if u.size != x.size or (u.size and not np.issubdtype(u.dtype, np.integer)):
        raise ValueError(f"units must give an integer unit to each of the {x.size} frames; got {u.dtype} x {u.size}")
    size = int(n_units) if n_units is not None else (int(u.max()) + 1 if u.size else 1)
    if u.size and (u.min() < 0 or u.max() >= size):
        raise ValueError(f"unit ids must lie in 0..{size - 1}; got {u.min()}..{u.max()}")
    keep = ~np.isnan(y)
    x, y, u = x[keep], y[keep], u[keep]
    cols = (np.ones_like(x), x, y, x * x, y * y, x * y)
    return np.stack([np.bincount(u, weights=c, minlength=size) for c in cols], axis=-1)


def _ccc_of_sums(s: np.ndarray) -> np.ndarray:
    n = s[..., 0]
    with np.errstate(divide="ignore", invalid="ignore"):
        mx, my = s[..., 1] / n, s[..., 2] / n
        vx = np.maximum(s[..., 3] / n - mx * mx, 0.0)
        vy = np.maximum(s[..., 4] / n - my * my, 0.0)
        cxy = s[..., 5] / n - mx * my
        den = vx + vy + (mx - my) ** 2
        # raw moments leave ~1e-16 of the mean square where both series are constant: that denominator is zero
        ok = (n >= 2) & (den > 1e-12 * (s[..., 3] + s[..., 4]) / n)
        return np.where(ok, concordance(mx, my, vx, vy, cxy), np.nan)  # eq. (15)


def ccc_from_sums(sums) -> float | np.ndarray:
    """Eq. (15) from statistics summed over frames, ``(..., 6)`` in the order of :data:`STAT_FIELDS`: population
    moments, as :func:`ccc`; NaN for fewer than two frames or a zero denominator. One row → ``float``."""
    r = _ccc_of_sums(np.asarray(sums, dtype=np.float64))
    return float(r) if r.ndim == 0 else r


# ---- the resampling units of one evaluation ------------------------------------------------------------------------


@dataclass(frozen=True)
class Units:
    """Resampling units of one evaluation: ``ids[k]`` is the unit of frame k, trials concatenated in their order."""

    kind: str  # "trial" or "block"
    ids: np.ndarray
    count: int
    block: int | None = None  # frames per block (block units)
    lag: int | None = None  # the labels' decorrelation lag that set ``block``

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "count": self.count, "block_frames": self.block, "decorrelation_lag": self.lag}


def decorrelation_lag(series: Sequence[Any], threshold: float = DECORRELATION_ACF) -> int:
    """First lag k >= 1 at which the within-trial autocorrelation of ``series`` (one 1-D array per trial, NaN =
    unlabelled) falls below ``threshold``; the longest trial's length if it never does.

    Each trial's mean is removed and the lagged products of all trials pooled (FFT, exact up to rounding), so the
    between-trial differences of level do not count: they do not decay within a trial at all."""
    arrays = [np.asarray(s, dtype=np.float64).reshape(-1) for s in series]
    longest = max((a.size for a in arrays), default=1)
    nfft = 1 << (2 * longest - 1).bit_length()
    num, cnt = np.zeros(longest), np.zeros(longest)
    for a in arrays:
        m = ~np.isnan(a)
        if m.sum() < 2:
            continue
        z = np.where(m, a - a[m].mean(), 0.0)
        num[: a.size] += np.fft.irfft(np.abs(np.fft.rfft(z, nfft)) ** 2, nfft)[: a.size]
        cnt[: a.size] += np.fft.irfft(np.abs(np.fft.rfft(m.astype(np.float64), nfft)) ** 2, nfft)[: a.size]
    cnt = np.rint(cnt)  # pair counts are integers; the FFT leaves ~1e-12
    if cnt[0] == 0 or num[0] <= 0:
        return longest
    with np.errstate(divide="ignore", invalid="ignore"):
        acf = np.where(cnt > 0, num / cnt, np.nan) / (num[0] / cnt[0])
    below = np.flatnonzero(acf[1:] < threshold)
    return int(below[0]) + 1 if below.size else longest


def block_ids(lengths: Sequence[int], block: int) -> tuple[np.ndarray, int]:
    """Unit ids of blocks of ``block`` consecutive frames inside each trial (a block never spans two trials); a
    trial's remainder shorter than half a block joins its last block. Returns (ids per frame, number of blocks)."""
    if block < 1:
        raise ValueError(f"block must be >= 1 frame, got {block}")
    parts, start = [], 0
    for n in lengths:
        k = np.arange(int(n)) // block
        full, rest = divmod(int(n), block)
        if full and rest and rest < block / 2:
            k[k == full] = full - 1
        parts.append(k + start)
        start += int(k.max()) + 1 if n else 0
    return (np.concatenate(parts) if parts else np.zeros(0, np.int64)), start


def evaluation_units(labels: Sequence[Any], min_trials: int = MIN_TRIAL_UNITS) -> Units:
    """The units resampled to say how sure a CCC on these trials is (``labels``: one ``(N_i,)`` or ``(N_i, k)``
    array per trial, in the order their frames are concatenated; NaN = unlabelled).

    Rule: with at least ``min_trials`` (8) labelled trials the units are the **trials**: the subject is the largest
    source of variation, frames of one trial are not independent, and a trial bootstrap answers "how would the
    score move with other recordings like these?". With fewer (a demo fold has two or three), a trial bootstrap is
    degenerate, and the units are **blocks** of N consecutive frames inside each trial, N = ``BLOCK_LAGS`` (2) ×
    the labels' decorrelation lag (:func:`decorrelation_lag`, the later of the targets), so frames of adjacent
    blocks are mostly further apart than the labels remember. On the demo corpus (synthesised with its default
    settings) that lag is about 80 frames (valence; arousal about 67), so N is about 160 frames, 5 to 6 seconds.
    Block intervals are conditional on the fold's subjects: they say how much the score depends on which stretches
    of these recordings were scored, not how it would move on new subjects, and are narrower than that. Even for
    that question they are short of 95 %: simulated folds of two (three) 700-frame trials whose labels have a
    50-frame time constant give 10 (15) blocks and cover the true CCC 82 % (90 %) of the time; trial units cover
    93-94 % with 30 to 70 simulated subjects (``tests/test_metrics.py``)."""
    arrays = [np.asarray(a, dtype=np.float64) for a in labels]
    arrays = [a.reshape(a.shape[0], -1) for a in arrays]
    if not arrays:
        raise ValueError("evaluation_units needs the labels of at least one trial")
    lengths = [a.shape[0] for a in arrays]
    labelled = sum(int((~np.isnan(a)).any(axis=1).sum() >= 2) for a in arrays)
    if labelled >= min_trials:
        return Units("trial", np.repeat(np.arange(len(arrays)), lengths), len(arrays))
    lag = max(decorrelation_lag([a[:, j] for a in arrays]) for j in range(arrays[0].shape[1]))
    ids, count = block_ids(lengths, BLOCK_LAGS * lag)
    return Units("block", ids, count, BLOCK_LAGS * lag, lag)


# ---- percentile bootstrap over units ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Interval:
    """A point estimate and its percentile bootstrap interval at ``level``."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL

    @property
    def excludes_zero(self) -> bool:
        return bool(self.low > 0 or self.high < 0)

    def as_dict(self) -> dict[str, float]:
        return {"estimate": self.estimate, "low": self.low, "high": self.high, "level": self.level}


def _strata(strata) -> list[np.ndarray]:
    """One stratum (an array ``(U, 6)``, or ``(M, U, 6)`` for M members scored on the same frames) or a sequence
    of them → a list of ``(M, U, 6)`` arrays."""
    items = [strata] if isinstance(strata, np.ndarray) else list(strata)
    out = []
    for s in items:
        a = np.asarray(s, dtype=np.float64)
        a = a[None] if a.ndim == 2 else a
        if a.ndim != 3 or a.shape[-1] != len(STAT_FIELDS) or a.shape[0] == 0:
            raise ValueError(f"a stratum is (units, 6) or (members, units, 6) statistics; got shape {a.shape}")
        if not (a[..., 0] == a[:1, :, 0]).all():
            raise ValueError("the members of a stratum must be scored on the same frames (equal n in every unit)")
        out.append(a)
    if not out:
        raise ValueError("no strata given")
    return out


def _draws(n_units: int, resamples: int, seed: int, key: int) -> np.ndarray:
    """Resampled unit indices ``(resamples, n_units)``: a function of (seed, key, n_units) only, so every system
    scored on the same units of a stratum gets the same draws (the pairing of :func:`ccc_difference`)."""
    return np.random.default_rng([int(seed), int(key)]).integers(0, n_units, size=(int(resamples), n_units))


def ccc_estimate(strata) -> float:
    """Mean over strata of the mean over members of the CCC of all units (the table's number)."""
    return float(np.mean([_ccc_of_sums(a.sum(axis=1)).mean() for a in _strata(strata)]))


def ccc_replicates(strata, resamples: int = RESAMPLES, seed: int = SEED,
                   keys: Sequence[int] | None = None) -> np.ndarray:
    """Bootstrap replicates ``(resamples,)`` of :func:`ccc_estimate`: units (with at least one valid frame) drawn
    with replacement inside each stratum, independently across strata (stratum i uses stream ``keys[i]``, default
    i), the same draws for every member. A stratum of fewer than two such units says nothing of the spread: all
    replicates are then NaN (no interval), not a zero-width interval."""
    items = _strata(strata)
    keys = list(range(len(items))) if keys is None else [int(k) for k in keys]
    if len(keys) != len(items):
        raise ValueError(f"{len(items)} strata but {len(keys)} keys")
    total = np.zeros(int(resamples))
    for a, key in zip(items, keys):
        a = a[:, a[0, :, 0] > 0]
        if a.shape[1] < 2:
            return np.full(int(resamples), np.nan)
        draws = _draws(a.shape[1], resamples, seed, key)
        for lo in range(0, draws.shape[0], _DRAW_CHUNK):
            sums = a[:, draws[lo:lo + _DRAW_CHUNK]].sum(axis=2)  # (members, chunk, 6)
            total[lo:lo + _DRAW_CHUNK] += _ccc_of_sums(sums).mean(axis=0)
    return total / len(items)


def percentile_interval(replicates, estimate: float, level: float = LEVEL) -> Interval:
    """The ``level`` percentile interval of the replicates (NaN replicates, from degenerate resamples, left out)."""
    r = np.asarray(replicates, dtype=np.float64)
    r = r[~np.isnan(r)]
    if r.size == 0 or np.isnan(estimate):
        return Interval(float(estimate), float("nan"), float("nan"), level)
    low, high = np.quantile(r, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(estimate), float(low), float(high), level)


def ccc_interval(strata, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL,
                 keys: Sequence[int] | None = None) -> Interval:
    """:func:`ccc_estimate` with its percentile bootstrap interval over units (:func:`ccc_replicates`)."""
    return percentile_interval(ccc_replicates(strata, resamples, seed, keys), ccc_estimate(strata), level)


def ccc_difference(strata_a, strata_b, resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL,
                   keys: Sequence[int] | None = None) -> Interval:
    """CCC of system a minus CCC of system b, scored on the same frames, with its **paired** bootstrap interval:
    each replicate scores both systems on the same resampled units, so errors the two share cancel."""
    a, b = _strata(strata_a), _strata(strata_b)
    if len(a) != len(b) or any(x.shape[1] != y.shape[1] or not (x[0, :, 0] == y[0, :, 0]).all() for x, y in zip(a, b)):
        raise ValueError("a paired difference needs both systems scored on the same frames (equal n in every unit)")
    reps = ccc_replicates(a, resamples, seed, keys) - ccc_replicates(b, resamples, seed, keys)
    return percentile_interval(reps, ccc_estimate(a) - ccc_estimate(b), level)
