"""Joint cross-modal attention and its recursion, written equation by equation (paper §3.4, eqs 1–14).

Layout. The paper writes one modality's features as X_m ∈ R^{d_m×K} (features × time). The modules take and
return batched, time-major tensors ``(B, K, d_m)`` — the layout the TCNs produce — and transpose them once on the
way in (``X_m = x_m.transpose(1, 2)``, ``(B, d_m, K)``) so that every line of ``forward`` is the paper's product,
symbol for symbol, and once on the way out. The parameters are stored exactly in the paper's orientation:

=============  ======================  ===============================================================
parameter      shape                   paper symbol
=============  ======================  ===============================================================
``joint_fc``   ``nn.Linear(d, d)``     FC of eq. (1), applied per time step, d = Σ_m d_m
``W_j[m]``     ``(d_m, d)``            W_jm of eqs (2)–(4)
``W_c[m]``     ``(K, K)``              W_cm of eqs (5)–(7)
``W_h[m]``     ``(K, K)``              W_hm of eqs (8)–(10)
=============  ======================  ===============================================================

What the maps hold (``return_maps=True``): ``"J"`` is Jᵀ ``(B, K, d)``; ``"C"`` is the list of C_m
``(B, K, K)`` exactly as in the paper (row i: time step i of X_m, column j: time step j of J); ``"H"`` is the list
of H_mᵀ ``(B, K, d_m)`` (time-major, like the features).

Initialisation (the paper does not state one). With unit-variance inputs and K = 300 the K×K products sum
K or K² terms, so the usual fan-in rules are not enough to keep activations O(1):

* ``joint_fc``: Xavier-uniform weight, zero bias — J keeps the scale of the concatenated inputs.
* ``W_j``: Xavier-uniform — the argument of tanh in eq. (2) has variance 2·d_m/(d_m+d) ≤ 1 for unit inputs,
  so C_m starts in tanh's near-linear range rather than saturated.
* ``W_c``: uniform with standard deviation 1/K. Because |C_m| ≤ 1, the argument of the ReLU in eq. (5),
  X_m W_cm C_m, then has at most the variance of X_m for any K (Xavier, std 1/√K, would give √K times more:
  ≈ 17× at K = 300).
* ``W_h``: Xavier-uniform (std 1/√K) — H_m W_hm has the second moment of H_m, which is below half that of X_m,
  so each residual branch starts smaller than the features it is added to, and recursion grows them slowly.

Measured at K = 300, dims 256/128/128, unit-normal inputs, l = 1, 2, 3: std of X_att,m 1.06–1.08, 1.13–1.19,
1.21–1.31; rms of C_m 0.49–0.66; rms of H_m 0.35–0.55 (the same within ±0.1 for dims 8/6/4 and 64/64/64;
checked by ``tests/test_attention.py::test_activation_scale_at_init``).

Training note. Every W_c/W_h entry enters sums of K² (W_c) or K (W_h) products, and Adam moves every entry by
≈ lr per step whatever its gradient's size, so one step can change H_m by up to ≈ lr·K². Measured on a toy
regression (K = 300, dims 64/64/64, l = 3, batch 8, 150 steps): plain Adam at lr 1e-3 diverges (feature std
≈ 2·10⁵); at lr 1e-4 and 1e-5 it stays stable (std ≈ 1.2–1.3) but learns slowly; with
:meth:`RecursiveJointCrossModalAttention.param_groups` (lr/K for W_c and W_h, lr elsewhere) lr 1e-3 is stable
and learns fastest (loss 0.82 → 0.32). The paper's lr (1e-5) is safe with plain Adam.
"""

from __future__ import annotations

import math
from typing import Any, Sequence

import torch
from torch import Tensor, nn


def check_inputs(xs: Sequence[Tensor], dims: Sequence[int], seq_len: int, who: str) -> None:
    """Raise ``ValueError`` naming the expected and the given shapes when ``xs`` does not fit ``dims``/K."""
    expected = ", ".join(f"(B, {seq_len}, {d})" for d in dims)
    given = ", ".join(str(tuple(x.shape)) if isinstance(x, Tensor) else type(x).__name__ for x in xs)
    if len(xs) != len(dims):
        raise ValueError(
            f"{who}: expected {len(dims)} modalities with shapes [{expected}], got {len(xs)}: [{given}]"
        )
    batch = None
    for m, (x, d_m) in enumerate(zip(xs, dims)):
        if not isinstance(x, Tensor) or x.dim() != 3 or x.shape[1] != seq_len or x.shape[2] != d_m:
            raise ValueError(
                f"{who}: modality {m} should be (B, K={seq_len}, d_m={d_m}); expected shapes [{expected}], "
                f"given [{given}]"
            )
        if batch is None:
            batch = x.shape[0]
        elif x.shape[0] != batch:
            raise ValueError(f"{who}: all modalities need the same batch size; given [{given}]")


class JointCrossModalAttention(nn.Module):
    """One joint cross-modal attention block: eqs (1)–(10) of the paper (§3.4).

    ``dims`` are the widths d_m in modality order (≥ 2 modalities: audio+visual is JCA), ``seq_len`` is K.
    ``block(xs)`` maps a list of ``(B, K, d_m)`` tensors to the attended features X_att,m ``(B, K, d_m)``.
    """

    def __init__(self, dims: Sequence[int], seq_len: int) -> None:
        super().__init__()
        dims = [int(d) for d in dims]
        if len(dims) < 2:
            raise ValueError(f"JointCrossModalAttention needs at least 2 modalities, got dims={dims}")
        if any(d < 1 for d in dims) or seq_len < 1:
            raise ValueError(f"JointCrossModalAttention: widths and K must be positive, got dims={dims}, K={seq_len}")
        self.dims = dims
        self.seq_len = int(seq_len)
        self.d = sum(dims)  # d = Σ d_m
        K, d = self.seq_len, self.d
        self.joint_fc = nn.Linear(d, d)  # FC of eq. (1)
        self.W_j = nn.ParameterList([nn.Parameter(torch.empty(d_m, d)) for d_m in dims])  # eqs (2)-(4)
        self.W_c = nn.ParameterList([nn.Parameter(torch.empty(K, K)) for _ in dims])  # eqs (5)-(7)
        self.W_h = nn.ParameterList([nn.Parameter(torch.empty(K, K)) for _ in dims])  # eqs (8)-(10)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """The initialisation documented in the module docstring."""
        nn.init.xavier_uniform_(self.joint_fc.weight)
        nn.init.zeros_(self.joint_fc.bias)
        bound_c = math.sqrt(3.0) / self.seq_len  # uniform with std 1/K
        for W_j, W_c, W_h in zip(self.W_j, self.W_c, self.W_h):
            nn.init.xavier_uniform_(W_j)
            nn.init.uniform_(W_c, -bound_c, bound_c)
            nn.init.xavier_uniform_(W_h)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, K={self.seq_len}, d={self.d}"

    def forward(self, xs: Sequence[Tensor], return_maps: bool = False):
        """``block(xs)`` → [X_att,m ``(B, K, d_m)``]; with ``return_maps=True`` → ``(features, maps)``."""
        check_inputs(xs, self.dims, self.seq_len, type(self).__name__)
        J = self.joint_fc(torch.cat(list(xs), dim=-1)).transpose(1, 2)  # eq. (1): J, (B, d, K)
        scale = math.sqrt(self.d)
        features, Cs, Hs = [], [], []
        for x_m, W_j, W_c, W_h in zip(xs, self.W_j, self.W_c, self.W_h):
            X_m = x_m.transpose(1, 2)  # the paper's layout, (B, d_m, K)
            # eqs (2)-(4): (B, K, K); W_j J first: the K x K product then runs over d_m, not d (same equation)
            C_m = torch.tanh(X_m.transpose(1, 2) @ (W_j @ J) / scale)
            H_m = torch.relu(X_m @ W_c @ C_m)  # eqs (5)-(7): (B, d_m, K)
            X_att_m = H_m @ W_h + X_m  # eqs (8)-(10): (B, d_m, K)
            features.append(X_att_m.transpose(1, 2))  # back to time-major, (B, K, d_m)
            Cs.append(C_m)
            Hs.append(H_m.transpose(1, 2))
        if return_maps:
            return features, {"J": J.transpose(1, 2), "C": Cs, "H": Hs}
        return features


class RecursiveJointCrossModalAttention(nn.Module):
    """Recursive joint cross-modal attention: eqs (11)–(14) around :class:`JointCrossModalAttention` (§3.4).

    Iteration l applies ``blocks[l]`` (or the single shared block) to the outputs of iteration l−1; the result
    of the last iteration is concatenated over modalities, ``(B, K, d)`` (eq. 14). ``num_iterations=1`` with
    two modalities is JCA; more iterations, RJCA; three modalities, RJCMA (paper: l = 3).
    """

    def __init__(
        self, dims: Sequence[int], seq_len: int, num_iterations: int = 3, share_weights: bool = False
    ) -> None:
        super().__init__()
        if num_iterations < 1:
            raise ValueError(f"num_iterations must be >= 1, got {num_iterations}")
        self.dims = [int(d) for d in dims]
        self.seq_len = int(seq_len)
        self.num_iterations = int(num_iterations)
        self.share_weights = bool(share_weights)
        n_blocks = 1 if share_weights else num_iterations
        self.blocks = nn.ModuleList([JointCrossModalAttention(self.dims, seq_len) for _ in range(n_blocks)])

    @property
    def d(self) -> int:
        return sum(self.dims)

    def extra_repr(self) -> str:
        return f"num_iterations={self.num_iterations}, share_weights={self.share_weights}"

    def block_at(self, l: int) -> JointCrossModalAttention:
        """The block used at iteration l (1-based, as in the paper)."""
        return self.blocks[0] if self.share_weights else self.blocks[l - 1]

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        """``rec(xs)`` → X_att^{(l)} ``(B, K, d)``; with ``return_all=True`` → ``(X_att, extras)``.

        ``extras["features"]`` is a list over iterations of lists over modalities of X_att,m^{(l)} ``(B, K, d_m)``,
        ``extras["maps"]`` the per-iteration maps (``"J"``, ``"C"``, ``"H"``) as returned by the block.
        """
        check_inputs(xs, self.dims, self.seq_len, type(self).__name__)
        X = list(xs)  # X^{(0)}: the TCN outputs
        all_features, all_maps = [], []
        for l in range(1, self.num_iterations + 1):
            # eqs (11)-(13): X_att,m^{(l)} = H_m^{(l)} W_hm^{(l)} + X_m^{(l-1)}, H from X^{(l-1)}
            X, maps = self.block_at(l)(X, return_maps=True)
            all_features.append(X)
            all_maps.append(maps)
        X_att = torch.cat(X, dim=-1)  # eq. (14): [X_att,a; X_att,v; X_att,t]   (B, K, d)
        if return_all:
            return X_att, {"features": all_features, "maps": all_maps}
        return X_att

    def param_groups(self, lr: float, kk_lr_scale: float | None = None) -> list[dict[str, Any]]:
        """Optimizer parameter groups: the K×K matrices (W_c, W_h) at ``lr·kk_lr_scale`` (default 1/K), the rest at lr.

        Optional: plain ``Adam(rec.parameters(), lr)`` is the paper's recipe; this helps large learning rates.
        """
        scale = 1.0 / self.seq_len if kk_lr_scale is None else kk_lr_scale
        kk = [p for b in self.blocks for p in list(b.W_c) + list(b.W_h)]
        ids = {id(p) for p in kk}
        rest = [p for p in self.parameters() if id(p) not in ids]
        return [{"params": rest, "lr": lr}, {"params": kk, "lr": lr * scale}]
