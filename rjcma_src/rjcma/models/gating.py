"""Gates over recursion steps: the addition of the same authors' follow-ups (DCA, GRJCA, HGRJCA) to the recursion.

A recursive fusion produces, per modality m, the unattended features X_m^(0) and the attended features
X_m^(1), ..., X_m^(L) of its L steps. The follow-ups do not simply keep X_m^(L): per modality and per time step
t, a gate chooses among candidate features Z_m,1..n (some of X_m^(0..L)), driven by a feature vector x_m,t
(the attended X_m,t^(L) in every member)::

    w_m,t = softmax(W_m x_m,t / T)               W_m: (n, d_m) with a bias; T the temperature (released: 0.1)
    Y_m,t = ReLU(Σ_i w_m,t,i · Z_m,i,t)          (d_m,)

T → 0 turns the weights into a hard choice of one candidate per time step, T → ∞ into their plain average; at
T = 0.1 a logit gap of 0.5 already gives weights 0.99 / 0.01. :class:`Gate` is that one computation: every member
(:mod:`rjcma.models.official_family`) and our own extension below use it.

:class:`GatedRecursiveFusion` is **our own extension, not from any paper**: the paper's three-way recursion
(:class:`~rjcma.models.attention.RecursiveJointCrossModalAttention`, eqs 1–14) with GRJCA's gates over its steps,
for audio + visual + text. The authors' released GRJCA code carries a commented-out text branch, so an A+V+T gated
model was tried, but none was released or published; this one is ours.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rjcma.models.attention import RecursiveJointCrossModalAttention, check_inputs


def step_labels(steps: Sequence[int]) -> tuple[str, ...]:
    """Names of the candidates X^(l) for plots: ``step_labels([0, 2]) == ("X(0)", "X(2)")``."""
    return tuple(f"X({l})" for l in steps)


class Gate(nn.Module):
    """One modality's gate: ``gate(x, candidates)`` → ``(Y, w)``, with Y ``(B, K, d_m)`` and w ``(B, K, n)``.

    ``x`` ``(B, K, dim)`` drives the gate; ``candidates`` are n tensors ``(B, K, d_m)``. The parameters are
    ``weight`` ``(n, dim)`` and ``bias`` ``(n,)``, the keys of a released ``nn.Linear(dim, n)`` gate layer, so a
    released gate loads unchanged. Initialisation: Xavier-uniform weight and zero bias, as the released
    ``init_weights`` does to every linear layer.
    """

    def __init__(self, dim: int, n_candidates: int, temperature: float = 0.1) -> None:
        super().__init__()
        if n_candidates < 1 or dim < 1:
            raise ValueError(f"Gate needs dim >= 1 and n_candidates >= 1, got {dim}, {n_candidates}")
        if not temperature > 0:
            raise ValueError(f"the gate temperature must be > 0, got {temperature}")
        self.dim = int(dim)
        self.n_candidates = int(n_candidates)
        self.temperature = float(temperature)  # not a buffer: a released state-dict has no such key
        self.weight = nn.Parameter(torch.empty(self.n_candidates, self.dim))  # W_m
        self.bias = nn.Parameter(torch.empty(self.n_candidates))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.xavier_uniform_(self.weight)
        nn.init.zeros_(self.bias)

    def extra_repr(self) -> str:
        return f"dim={self.dim}, n_candidates={self.n_candidates}, temperature={self.temperature}"

    def weights(self, x: Tensor) -> Tensor:
        """w = softmax(W x / T) per time step: ``(B, K, dim)`` → ``(B, K, n)``, rows summing to one."""
        return torch.softmax(F.linear(x, self.weight, self.bias) / self.temperature, dim=-1)

    def forward(self, x: Tensor, candidates: Sequence[Tensor]) -> tuple[Tensor, Tensor]:
        if len(candidates) != self.n_candidates:
            raise ValueError(f"Gate: {self.n_candidates} candidates expected, got {len(candidates)}")
        w = self.weights(x)  # (B, K, n)
        Y = sum(w[..., i : i + 1] * Z for i, Z in enumerate(candidates))  # Σ_i w_i Z_i   (B, K, d_m)
        return torch.relu(Y), w


def gate_modalities(
    gates: Sequence[Gate], drivers: Sequence[Tensor], candidates: Sequence[Sequence[Tensor]]
) -> tuple[list[Tensor], list[Tensor]]:
    """One gate per modality: ``gates[m](drivers[m], candidates[m])``; returns ``(Ys, ws)``, lists per modality."""
    outs = [g(x, c) for g, x, c in zip(gates, drivers, candidates)]
    return [Y for Y, _ in outs], [w for _, w in outs]


class GatedRecursiveFusion(nn.Module):
    """Ours, not from any paper: the paper's recursion (RJCMA, eqs 1–14) with GRJCA's gates over its steps.

    Per modality m (any number ≥ 2, in the order given; the registry's ``gated-rjcma`` uses audio, visual, text)::

        X_m^(0)     = X_m / ‖X_m‖ per time step             as GRJCA normalises its inputs
        X^(1..L)    = the paper's recursion on X^(0)         eqs (1)–(13), l = L = num_iterations
        Y_m, w_m    = Gate_m(X_m^(L); X_m^(0), ..., X_m^(L))   softmax over L + 1 candidates, then ReLU
        output      = [Y_1; Y_2; ...]                         (B, K, d), in place of eq. (14)

    ``fusion(xs, return_all=True)`` returns ``(out, extras)`` with the recursion's ``features`` and ``maps`` and
    ``gates = {"gate": {"candidates": ("X(0)", ..., "X(L)"), "weights": [w_m (B, K, L + 1)]}}``.
    """

    def __init__(
        self,
        dims: Sequence[int],
        seq_len: int,
        num_iterations: int = 3,
        share_weights: bool = False,
        temperature: float = 0.1,
    ) -> None:
        super().__init__()
        self.rec = RecursiveJointCrossModalAttention(dims, seq_len, num_iterations, share_weights)
        self.dims = list(self.rec.dims)
        self.seq_len = self.rec.seq_len
        self.gates = nn.ModuleList([Gate(d_m, num_iterations + 1, temperature) for d_m in self.dims])
        self.out_dim = sum(self.dims)

    def extra_repr(self) -> str:
        return "ours (not from any paper): GRJCA's gates on the paper's recursion"

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        check_inputs(xs, self.dims, self.seq_len, type(self).__name__)
        X0 = [F.normalize(x, dim=-1) for x in xs]  # X_m^(0): unit length per time step
        _, extras = self.rec(X0, return_all=True)
        steps = [X0] + extras["features"]  # X^(0), X^(1), ..., X^(L): lists per modality
        candidates = [[X_l[m] for X_l in steps] for m in range(len(xs))]
        Ys, ws = gate_modalities(self.gates, steps[-1], candidates)
        out = torch.cat(Ys, dim=-1)  # (B, K, d)
        if not return_all:
            return out
        labels = step_labels(range(len(steps)))
        return out, {**extras, "gates": {"gate": {"candidates": labels, "weights": ws}}}

