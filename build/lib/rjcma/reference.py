"""A slow, loop-based float64 transcription of the paper's eqs (1)–(14) (§3.4), for tests and the book.

Nothing here is vectorised over time steps or matrix entries: every entry of J, C_m, H_m and X_att,m is written
as the sum the paper's matrix product stands for, so that it can be read against the equations and used to
check :mod:`rjcma.models.attention`. The per-example functions work in the paper's layout, X_m ∈ R^{d_m×K}
(features × time). The block-level functions take and return the module's batched, time-major layout
``(B, K, d_m)`` (or one example ``(K, d_m)``) so that their outputs compare directly with the module's.

Parameters are plain float64 numpy arrays; :func:`params_of` extracts them from a
:class:`~rjcma.models.attention.JointCrossModalAttention` and :func:`params_of_recursive` from a
:class:`~rjcma.models.attention.RecursiveJointCrossModalAttention`.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


def _f64(a: Any) -> np.ndarray:
    if hasattr(a, "detach"):
        a = a.detach().cpu().double().numpy()
    return np.asarray(a, dtype=np.float64)


def params_of(block) -> dict[str, Any]:
    """Float64 copies of one block's parameters: ``W_fc`` (d, d), ``b_fc`` (d,), lists ``W_j``, ``W_c``, ``W_h``."""
    return {
        "W_fc": _f64(block.joint_fc.weight),
        "b_fc": _f64(block.joint_fc.bias),
        "W_j": [_f64(w) for w in block.W_j],
        "W_c": [_f64(w) for w in block.W_c],
        "W_h": [_f64(w) for w in block.W_h],
    }


def params_of_recursive(rec) -> list[dict[str, Any]]:
    """One parameter dict per iteration l = 1..L (the same dict repeated when weights are shared)."""
    return [params_of(rec.block_at(l)) for l in range(1, rec.num_iterations + 1)]


# ---- per example, paper layout (d_m × K) ----------------------------------------------------------------------


def joint_representation(xs: Sequence[np.ndarray], W_fc: np.ndarray, b_fc: np.ndarray) -> np.ndarray:
    """Eq. (1): J = FC([X_a; X_v; X_t]) ∈ R^{d×K}; the FC acts on each time step's concatenated column."""
    xs = [_f64(x) for x in xs]
    K = xs[0].shape[1]
    stacked = np.concatenate(xs, axis=0)  # [X_a; X_v; X_t], (d, K)
    d = stacked.shape[0]
    J = np.zeros((d, K))
    for k in range(K):  # one time step at a time
        for r in range(d):
            J[r, k] = sum(W_fc[r, c] * stacked[c, k] for c in range(d)) + b_fc[r]
    return J


def joint_cross_correlation(X_m: np.ndarray, W_j: np.ndarray, J: np.ndarray, d: int) -> np.ndarray:
    """Eqs (2)–(4): C_m = tanh(X_mᵀ W_jm J / √d) ∈ R^{K×K}; entry (i, j) = tanh(Σ_p Σ_q X[p,i] W[p,q] J[q,j] / √d)."""
    X_m, W_j, J = _f64(X_m), _f64(W_j), _f64(J)
    d_m, K = X_m.shape
    C = np.zeros((K, K))
    for i in range(K):
        for j in range(K):
            s = 0.0
            for p in range(d_m):
                for q in range(d):
                    s += X_m[p, i] * W_j[p, q] * J[q, j]
            C[i, j] = math.tanh(s / math.sqrt(d))
    return C


def attention_map(X_m: np.ndarray, W_c: np.ndarray, C_m: np.ndarray) -> np.ndarray:
    """Eqs (5)–(7): H_m = ReLU(X_m W_cm C_m) ∈ R^{d_m×K}; entry (p, j) = max(0, Σ_k Σ_l X[p,k] W[k,l] C[l,j])."""
    X_m, W_c, C_m = _f64(X_m), _f64(W_c), _f64(C_m)
    d_m, K = X_m.shape
    H = np.zeros((d_m, K))
    for p in range(d_m):
        for j in range(K):
            s = 0.0
            for k in range(K):
                for l in range(K):
                    s += X_m[p, k] * W_c[k, l] * C_m[l, j]
            H[p, j] = max(0.0, s)
    return H


def attended_features(H_m: np.ndarray, W_h: np.ndarray, X_m: np.ndarray) -> np.ndarray:
    """Eqs (8)–(13): X_att,m = H_m W_hm + X_m ∈ R^{d_m×K}; entry (p, j) = Σ_k H[p,k] W[k,j] + X[p,j]."""
    H_m, W_h, X_m = _f64(H_m), _f64(W_h), _f64(X_m)
    d_m, K = X_m.shape
    out = np.zeros((d_m, K))
    for p in range(d_m):
        for j in range(K):
            out[p, j] = sum(H_m[p, k] * W_h[k, j] for k in range(K)) + X_m[p, j]
    return out


def jca_example(xs: Sequence[np.ndarray], params: dict[str, Any]) -> dict[str, Any]:
    """One block, eqs (1)–(10), on one example in the paper's layout: ``xs[m]`` is X_m (d_m, K)."""
    xs = [_f64(x) for x in xs]
    d = sum(x.shape[0] for x in xs)
    J = joint_representation(xs, params["W_fc"], params["b_fc"])  # eq. (1)
    Cs, Hs, feats = [], [], []
    for m, X_m in enumerate(xs):
        C_m = joint_cross_correlation(X_m, params["W_j"][m], J, d)  # eqs (2)-(4)
        H_m = attention_map(X_m, params["W_c"][m], C_m)  # eqs (5)-(7)
        feats.append(attended_features(H_m, params["W_h"][m], X_m))  # eqs (8)-(10)
        Cs.append(C_m)
        Hs.append(H_m)
    return {"features": feats, "J": J, "C": Cs, "H": Hs}


# ---- batched, module layout (B, K, d_m) ----------------------------------------------------------------------


def _as_batch(xs: Sequence[Any]) -> tuple[list[np.ndarray], bool]:
    arrs = [_f64(x) for x in xs]
    single = arrs[0].ndim == 2
    return ([a[None] for a in arrs] if single else arrs), single


def jca_block_reference(xs: Sequence[Any], params: dict[str, Any]) -> dict[str, Any]:
    """Eqs (1)–(10) for inputs in the module's layout ``(B, K, d_m)`` (or ``(K, d_m)``).

    Returns ``{"features": [(B, K, d_m)], "J": (B, K, d), "C": [(B, K, K)], "H": [(B, K, d_m)]}`` — the layout
    of ``JointCrossModalAttention(..., return_maps=True)``: J and H transposed to time-major, C as in the paper.
    """
    arrs, single = _as_batch(xs)
    outs = [jca_example([a[b].T for a in arrs], params) for b in range(arrs[0].shape[0])]
    res = {
        "features": [np.stack([o["features"][m].T for o in outs]) for m in range(len(arrs))],
        "J": np.stack([o["J"].T for o in outs]),
        "C": [np.stack([o["C"][m] for o in outs]) for m in range(len(arrs))],
        "H": [np.stack([o["H"][m].T for o in outs]) for m in range(len(arrs))],
    }
    if single:
        res = {k: (v[0] if isinstance(v, np.ndarray) else [x[0] for x in v]) for k, v in res.items()}
    return res


def rjca_reference(xs: Sequence[Any], params_per_iteration: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Eqs (11)–(14): iteration l applies block l to X^{(l−1)}; the last iteration's features are concatenated.

    Returns ``{"X_att": (B, K, d), "features": [[(B, K, d_m)] per iteration], "maps": [block maps]}``.
    """
    X = [_f64(x) for x in xs]
    features, maps = [], []
    for params in params_per_iteration:
        out = jca_block_reference(X, params)
        X = out["features"]
        features.append(X)
        maps.append({k: out[k] for k in ("J", "C", "H")})
    return {"X_att": np.concatenate(X, axis=-1), "features": features, "maps": maps}  # eq. (14)
