"""The chapter *Paper vs released code* (notebook 13_paper_vs_code): the released CCC, for comparison, and the
exercises' checks."""

from __future__ import annotations

import numpy as np

from rjcma.lessons.checks import Verdict, check_value


def released_ccc(x: np.ndarray, y: np.ndarray) -> float:
    """The released code's CCC (defect 6): the covariance over N, the variances over N − 1. For comparison only;
    the package's CCC is :func:`rjcma.metrics.ccc`."""
    cov = np.mean((x - x.mean()) * (y - y.mean()))
    return float(2 * cov / (x.var(ddof=1) + y.var(ddof=1) + (x.mean() - y.mean()) ** 2))


def check_released_ceiling(answer: float | None, n: int, seed: int = 0) -> Verdict:
    """Exercise: what a perfect prediction scores by the released CCC on a window of ``n`` frames."""
    y = np.random.default_rng(seed).normal(size=n)
    return check_value(f"released CCC of a perfect prediction, N = {n}", answer, released_ccc(y, y), 1e-9,
                       "measured with the released formula")


def check_kk_parameters(answer: int | None, fusion) -> Verdict:
    """Exercise: how many of the paper fusion's parameters are in its K × K matrices W_c and W_h."""
    want = sum(p.numel() for n, p in fusion.named_parameters() if ".W_c." in n or ".W_h." in n)
    return check_value("parameters in W_c and W_h", answer, want, 0, "counted on the module")
