"""The fusion as the released code computes it (praveena2j/RJCMA at 489f33d, ``DCNLayer``), written anew.

The paper (§3.4) and the released implementation differ (the book's chapter *Paper vs released code*); this module reproduces the released
computation so both can be trained and compared, and so a released checkpoint's fusion weights load unchanged:
``ReleasedFusion(dims).state_dict()`` has exactly the keys and shapes of the released ``DCNLayer``.

Per layer and modality m (time-major tensors, X_m: ``(B, K, d_m)``, joint width d = Σ d_m)::

    Jc      = [X_1, X_2, X_3]                       plain concatenation, (B, K, d)
    (unused)  query_linear(Jc)                       the released code computes it and never reads it
                                                     (``use_query=True``: Jc ← query_linear(Jc), the FC of the
                                                     paper's eq. 1, as the follow-ups GRJCA and DCA use it)
    Key_m   = key{m}_linear(X_mᵀ)                    Linear(K, K) applied along time, (B, d_m, K)
    Val_m   = value{m}_linear(X_m)                   Linear(d_m, d_m), (B, K, d_m)
    C_m     = Dropout(tanh(Key_m · Jc / √d))          over features, (B, d_m, d)
    H_m     = ReLU(tanh(Val_m · C_m))                (B, K, d)
    X_m    ← X_m + Dropout(ReLU(linears[m](H_m)))    linears[m] = Linear(d, d_m)

The released DCNLayer is built as ``DCNLayer(256, 128, 128, 2, 0.6)`` and called with
``(video, logmel, bert)``: its modality order is **visual, audio, text** (256/128/128). To use released weights,
pass the inputs in that order. The time-axis ``Linear(300, 300)`` is hard-coded in the released code; here it is
``Linear(seq_len, seq_len)``.

``query_linear`` never influences the output, so it never gets a gradient in the released code either; it is
kept (for the state-dict) with ``requires_grad=False`` so that optimizers and DDP see no unused trainable
parameter. Its initial values are what a released training run leaves in it too.

The same co-attention layer is the core of the same authors' gated follow-ups (GRJCA, HGRJCA, DCA), with the
query projection used: :mod:`rjcma.models.official_family` builds them on :class:`ReleasedFusion`. Every released
layout loads through :func:`load_released_state_dict` (a file) or :func:`load_released_weights` (a mapping).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch
from torch import Tensor, nn

from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.models.attention import check_inputs

# (aspect, paper §3.4, released code at 489f33d, file in the released repository)
DEPARTURES: list[tuple[str, str, str, str]] = [
    (
        "joint representation J",
        "J = FC([X_a; X_v; X_t]) (eq. 1)",
        "plain concatenation; the FC (`query_linear`) is computed and its output never used",
        "models/dense_coattn.py",
    ),
    (
        "joint cross-correlation C_m",
        "tanh(X_mᵀ W_jm J / √d), K×K over time steps (eqs 2–4)",
        "tanh(Key_m(X_mᵀ) · [X] / √d), d_m×d over feature channels; Key_m = Linear(300, 300) along time",
        "models/dense_coattn.py",
    ),
    (
        "attention map H_m",
        "ReLU(X_m W_cm C_m), W_cm ∈ R^{K×K} (eqs 5–7)",
        "ReLU(tanh(Value_m(X_m) · C_m)), Value_m = Linear(d_m, d_m); H_m is K×d, not d_m×K",
        "models/dense_coattn.py",
    ),
    (
        "attended features",
        "H_m W_hm + X_m, W_hm ∈ R^{K×K} (eqs 8–10)",
        "X_m + Dropout(ReLU(Linear(d, d_m)(H_m)))",
        "models/av_crossatten.py",
    ),
    ("dropout", "none stated", "0.6 on C_m and on each residual branch", "models/dense_coattn.py, av_crossatten.py"),
    ("iterations", "l = 3 (Table 3 explores 1–4)", "2 layers, separate weights (`DCNLayer(..., 2, 0.6)`)", "models/model.py"),
    (
        "window length",
        "K = 300 as a data setting",
        "`nn.Linear(300, 300)` hard-coded in the fusion: other K cannot run",
        "models/dense_coattn.py",
    ),
    (
        "widths and order",
        "not stated; order a, v, t",
        "DCNLayer(256, 128, 128) called as (video, logmel, bert); configs.py's TCN outputs (512/128/512) do not "
        "match, so the committed HEAD does not run as is",
        "models/model.py, configs.py",
    ),
    (
        "regression head",
        "MLP",
        "Linear(d, 256) → BatchNorm1d → LeakyReLU → Linear(256, 1) → tanh",
        "models/model.py",
    ),
]


def departures_markdown() -> str:
    """The paper-vs-released table as markdown (used by the book's 'paper vs released code' chapter)."""
    rows = ["| aspect | paper | released code | where |", "|---|---|---|---|"]
    rows += [f"| {a} | {p} | {r} | `{w}` |" for a, p, r, w in DEPARTURES]
    return "\n".join(rows)


class _ReleasedCoAttention(nn.Module):
    """Released ``DenseCoAttn`` for n modalities (attribute names kept so the state-dict keys match).

    ``query`` says what happens to the joint projection ``query_linear``: ``"unused"`` (RJCMA's release, which
    computes it and discards it: not evaluated here, frozen), ``"computed"`` (evaluated and discarded, to time the
    released code faithfully) or ``"used"`` (the follow-ups: J = query_linear([X_1; ...]), trained).
    """

    QUERY_MODES = ("unused", "computed", "used")

    def __init__(self, dims: Sequence[int], seq_len: int, dropout: float, query: str = "unused") -> None:
        super().__init__()
        if query not in self.QUERY_MODES:
            raise ValueError(f"query must be one of {self.QUERY_MODES}, got {query!r}")
        self.dims = list(dims)
        self.d = sum(self.dims)
        self.query = query
        self.dropouts = nn.ModuleList([nn.Dropout(p=dropout) for _ in self.dims])
        self.query_linear = nn.Linear(self.d, self.d)
        if query != "used":
            self.query_linear.requires_grad_(False)  # output unused in RJCMA's release: never trained there either
        for i, d_m in enumerate(self.dims, start=1):
            setattr(self, f"key{i}_linear", nn.Linear(seq_len, seq_len))  # along time: K → K
        for i, d_m in enumerate(self.dims, start=1):
            setattr(self, f"value{i}_linear", nn.Linear(d_m, d_m))

    def forward(self, xs: Sequence[Tensor]) -> tuple[list[Tensor], list[Tensor]]:
        joint = torch.cat(list(xs), dim=-1)  # (B, K, d): [X_1; X_2; ...]
        if self.query == "used":
            joint = self.query_linear(joint)  # the FC of eq. (1), per time step: (B, K, d)
        elif self.query == "computed":
            self.query_linear(joint)  # computed and discarded, as RJCMA's release does (only costs time)
        scale = math.sqrt(self.d)
        Hs, Cs = [], []
        for i, X_m in enumerate(xs, start=1):
            key = getattr(self, f"key{i}_linear")(X_m.transpose(1, 2))  # (B, d_m, K)
            value = getattr(self, f"value{i}_linear")(X_m)  # (B, K, d_m)
            C_m = self.dropouts[i - 1](torch.tanh(key @ joint / scale))  # (B, d_m, d)
            H_m = torch.relu(torch.tanh(value @ C_m))  # (B, K, d)
            Hs.append(H_m)
            Cs.append(C_m)
        return Hs, Cs


class _ReleasedSubLayer(nn.Module):
    """Released ``NormalSubLayer``: co-attention, then a gated residual per modality."""

    def __init__(self, dims: Sequence[int], seq_len: int, dropout: float, query: str) -> None:
        super().__init__()
        d = sum(dims)
        self.dense_coattn = _ReleasedCoAttention(dims, seq_len, dropout, query)
        self.linears = nn.ModuleList(
            [nn.Sequential(nn.Linear(d, d_m), nn.ReLU(), nn.Dropout(p=dropout)) for d_m in dims]
        )

    def forward(self, xs: Sequence[Tensor]) -> tuple[list[Tensor], dict[str, list[Tensor]]]:
        Hs, Cs = self.dense_coattn(xs)
        out = [X_m + lin(H_m) for X_m, lin, H_m in zip(xs, self.linears, Hs)]  # (B, K, d_m)
        return out, {"C": Cs, "H": Hs}


class ReleasedFusion(nn.Module):
    """What the released ``DCNLayer(dims..., num_layers, dropout)`` computes (see module docstring).

    ``fusion(xs)`` takes a list of ``(B, K, d_m)`` tensors (released order: visual, audio, text) and returns
    the list of fused features, same shapes. ``fusion(xs, return_all=True)`` also returns
    ``{"features": [[...] per layer], "maps": [{"C": [(B, d_m, d)], "H": [(B, K, d)]} per layer]}``.
    ``compute_query=True`` also evaluates the unused ``query_linear`` (for timing the released code faithfully);
    ``use_query=True`` uses it as the follow-ups do (J = query_linear([X_1; ...]); it is then trained).
    """

    RELEASED_ANCHOR = "dcn_layers.0.dense_coattn.query_linear.weight"  # a key that marks this layout in a file
    RELEASED_SKIPPED: dict[str, str] = {}  # released modules not built here (none: every key loads)

    def __init__(
        self,
        dims: Sequence[int],
        seq_len: int = 300,
        num_layers: int = 2,
        dropout: float = 0.6,
        compute_query: bool = False,
        use_query: bool = False,
    ) -> None:
        super().__init__()
        self.dims = [int(d) for d in dims]
        if len(self.dims) < 2:
            raise ValueError(f"ReleasedFusion needs at least 2 modalities, got dims={self.dims}")
        if num_layers < 1:
            raise ValueError(f"num_layers must be >= 1, got {num_layers}")
        self.seq_len = int(seq_len)
        self.num_layers = int(num_layers)
        query = "used" if use_query else "computed" if compute_query else "unused"
        self.dcn_layers = nn.ModuleList(
            [_ReleasedSubLayer(self.dims, self.seq_len, dropout, query) for _ in range(num_layers)]
        )

    @property
    def d(self) -> int:
        return sum(self.dims)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, K={self.seq_len}, num_layers={self.num_layers}"

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        check_inputs(xs, self.dims, self.seq_len, type(self).__name__)
        X = list(xs)
        features, maps = [], []
        for layer in self.dcn_layers:
            X, m = layer(X)
            features.append(X)
            maps.append(m)
        if return_all:
            return X, {"features": features, "maps": maps}
        return X


_CONTAINER_KEYS = ("state_dict", "model_state_dict", "model_weights", "model", "net")


def _unwrap(obj: Any) -> dict[str, Tensor]:
    """Find the flat name → tensor mapping inside a saved object (plain state-dict or a dict holding one)."""
    if isinstance(obj, dict) and obj and all(isinstance(v, Tensor) for v in obj.values()):
        return obj
    if isinstance(obj, dict):
        for k in _CONTAINER_KEYS:
            if k in obj and isinstance(obj[k], dict):
                return _unwrap(obj[k])
    raise ValueError("no state-dict (a mapping of names to tensors) found")


def load_released_state_dict(module: nn.Module, path: str | Path) -> str:
    """Load a released checkpoint's fusion weights into ``module``; return the key prefix that was stripped.

    ``module`` is a :class:`ReleasedFusion` or one of the gated follow-ups of
    :mod:`rjcma.models.official_family`. ``path`` is a ``.pth``/``.pt`` file read with
    ``torch.load(..., weights_only=True)`` (no code runs). It may hold the fusion's own state-dict
    (``dcn_layers....``), or a whole released model (``RCMA`` keeps the fusion as ``coattn.``, GRJCA's ``LFAN`` as
    ``GRJCA.``; a ``DataParallel`` save adds ``module.``), or a dict wrapping one under ``state_dict`` /
    ``model_state_dict`` / ``model_weights`` / ``net``. Shape or key mismatches raise :class:`RjcmaError` naming
    the file; :func:`load_released_weights` says which keys are read and which skipped.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingAssetError(f"{path}: checkpoint not found; give the path of a released RJCMA .pth file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # pickles with code, corrupt files
        raise RjcmaError(f"{path}: cannot be read as a weights-only torch checkpoint ({type(e).__name__}: {e})") from e
    try:
        sd = _unwrap(obj)
    except ValueError as e:
        raise RjcmaError(f"{path}: {e}; expected a released model or fusion state-dict") from e
    prefix, _skipped = load_released_weights(module, sd, source=str(path))
    return prefix


def _describe(module: nn.Module) -> str:
    return f"{type(module).__name__}(dims={module.dims}, seq_len={module.seq_len}, num_layers={module.num_layers})"


def load_released_weights(
    module: nn.Module, state_dict: dict[str, Tensor], source: str = "state dict"
) -> tuple[str, list[str]]:
    """Load a released layout from a name → tensor mapping into ``module``; return ``(prefix, skipped keys)``.

    The module's class names its layout: ``RELEASED_ANCHOR``, a key that marks it (its prefix is found from the
    key that ends with it), and ``RELEASED_SKIPPED``, the released sub-modules it does not build (name → why: never
    read by the released forward, or a part of the released model outside the fusion). Under the prefix, keys of
    the module's own top-level parts must match its state-dict exactly (every key, every shape); keys of the
    skipped parts are skipped and returned; other keys (the rest of a whole released model) are ignored.
    """
    own = module.state_dict()
    anchor = module.RELEASED_ANCHOR
    prefixes = sorted({k[: -len(anchor)] for k in state_dict
                       if k.endswith(anchor) and (k == anchor or k[-len(anchor) - 1] == ".")})
    if not prefixes:
        raise RjcmaError(f"{source}: no released fusion weights in it (no key ending in {anchor!r}) "
                         f"for {type(module).__name__}")
    if len(prefixes) > 1:
        raise RjcmaError(f"{source}: several fusions in it (prefixes {prefixes}); extract one first")
    prefix = prefixes[0]
    parts = {k.split(".")[0] for k in own}
    under = {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}
    sub = {k: v for k, v in under.items() if k.split(".")[0] in parts}
    skipped = sorted(k for k in under if k.split(".")[0] in module.RELEASED_SKIPPED)
    missing = sorted(set(own) - set(sub))
    unexpected = sorted(set(sub) - set(own))
    if missing or unexpected:
        raise RjcmaError(
            f"{source}: fusion keys under {prefix!r} do not match {_describe(module)}: "
            f"missing {missing[:6]}{'...' if len(missing) > 6 else ''}, "
            f"unexpected {unexpected[:6]}{'...' if len(unexpected) > 6 else ''}"
        )
    bad = [(k, tuple(sub[k].shape), tuple(own[k].shape)) for k in own if tuple(sub[k].shape) != tuple(own[k].shape)]
    if bad:
        k, got, exp = bad[0]
        raise RjcmaError(
            f"{source}: {prefix}{k} has shape {got}, {_describe(module)} expects {exp} ({len(bad)} mismatching "
            f"tensors); build the fusion with the checkpoint's widths and K"
        )
    module.load_state_dict(sub, strict=True)
    return prefix, skipped
