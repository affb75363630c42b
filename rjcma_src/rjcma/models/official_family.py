"""The gated follow-ups of RJCMA as their released code computes them, written anew: GRJCA, HGRJCA and DCA.

The same authors changed the recipe after RJCMA. Their released code (praveena2j/GRJCA at e8ad82b:
``models/GRJCA.py`` ``GRJCA_cam``, ``models/HGRJCA.py`` ``HGRJCA_cam``; praveena2j/Dynamic-CrossAttention at
7374796: ``models/orig_cam.py`` ``CAM``) was read to learn what it computes; nothing of it is copied here. All three
are audio-visual and share one core, RJCMA's released co-attention layer (:class:`~rjcma.models.official.
ReleasedFusion`, here with the joint query projection *used*), and one gate (:class:`~rjcma.models.gating.Gate`).
Per modality m in the released order (visual, audio), L layers, K time steps::

    X_m^(0)       = X_m / ‖X_m‖ per time step                           (B, K, d_m)
    X^(l)         = l-th co-attention layer on X^(l-1), l = 1..L         ReleasedFusion(use_query=True)
    GRJCA:  Y_m   = Gate_m(X_m^(L); X_m^(0), X_m^(1), ..., X_m^(L))       L + 1 candidates
    HGRJCA: G_m^l = Gate_m^l(X_m^(l); X_m^(0), ..., X_m^(l)), l = 1..L   one gate per step
            Y_m   = Gate_m^stage(X_m^(L); G_m^1, ..., G_m^L)             a stage gate over the steps' results
    DCA:    Y_m   = Gate_m(X_m^(L); X_m^(0), X_m^(L))                     2 candidates
    output        = [Y_v; Y_a]                                           (B, K, d_v + d_a)

Each class's ``state_dict`` has exactly the keys and shapes of the released module's, except the released
sub-modules listed in its ``RELEASED_SKIPPED`` (name → why), which are not built here; ``load_released_weights``
/ ``load_released_state_dict`` of :mod:`rjcma.models.official` load a released state-dict, skipping (and listing)
those keys. ``FAMILY_DEPARTURES`` lists where these classes depart from the released code, and why.

``fusion([X_v, X_a])`` returns the fused ``(B, K, d)``; ``fusion(xs, return_all=True)`` returns ``(out, extras)``:
the co-attention's per-layer ``features`` and ``maps`` and ``gates`` = {gate name: {"candidates": labels,
"weights": [w_m (B, K, n) per modality]}}, for plotting the gate weights over time.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from rjcma.models.attention import check_inputs
from rjcma.models.gating import Gate, gate_modalities, step_labels
from rjcma.models.official import ReleasedFusion

RELEASED_NAMES = ("video", "audio")  # modality names in the released attribute names, in the released order

_HEAD = "the released regression head, never called by the released forward"
_JOINT = "an LSTM over the fused features, built but never called by the released forward"
_TEXT = "a text-branch gate, built but never read (the text branch is commented out)"


class _ReleasedGated(nn.Module):
    """What the three members share: L2-normalised inputs, the co-attention with the query used, gate layers."""

    RELEASED_ANCHOR = ""
    RELEASED_SKIPPED: dict[str, str] = {}

    def __init__(self, dims: Sequence[int], seq_len: int, num_layers: int, dropout: float, temperature: float) -> None:
        super().__init__()
        self.dims = [int(d) for d in dims]
        if len(self.dims) != 2:
            raise ValueError(f"{type(self).__name__} fuses 2 modalities (visual, audio); got dims={self.dims}")
        self.seq_len = int(seq_len)
        self.num_layers = int(num_layers)
        self.temperature = float(temperature)
        self.out_dim = sum(self.dims)
        self.coattn = ReleasedFusion(self.dims, self.seq_len, self.num_layers, dropout, use_query=True)

    def _add_gates(self, suffix: str, n_candidates: int) -> None:
        for name, d_m in zip(RELEASED_NAMES, self.dims):  # released name: f"{name}_gating_fc_layer{suffix}"
            setattr(self, f"{name}_gating_fc_layer{suffix}", Gate(d_m, n_candidates, self.temperature))

    def _gates(self, suffix: str) -> list[Gate]:
        return [getattr(self, f"{name}_gating_fc_layer{suffix}") for name in RELEASED_NAMES]

    def reset_parameters(self) -> None:
        """As the released ``init_weights``: every linear weight Xavier-uniform (gain 1), every bias zero."""
        for mod in self.modules():
            if isinstance(mod, (nn.Linear, Gate)):
                nn.init.xavier_uniform_(mod.weight)
                nn.init.zeros_(mod.bias)

    def extra_repr(self) -> str:
        return f"dims={self.dims}, K={self.seq_len}, num_layers={self.num_layers}, temperature={self.temperature}"

    def _steps(self, xs: Sequence[Tensor]) -> tuple[list[list[Tensor]], dict]:
        """[X^(0), X^(1), ..., X^(L)] (each a list per modality) and the co-attention's per-layer extras."""
        check_inputs(xs, self.dims, self.seq_len, type(self).__name__)
        X0 = [F.normalize(x, dim=-1) for x in xs]  # X_m^(0): unit length per time step
        _, extras = self.coattn(X0, return_all=True)
        return [X0] + extras["features"], extras

    def _finish(self, Ys: list[Tensor], extras: dict, gates: dict, return_all: bool):
        out = torch.cat(Ys, dim=-1)  # [Y_v; Y_a]   (B, K, d)
        if not return_all:
            return out
        return out, {"features": extras["features"], "maps": extras["maps"], "gates": gates}


class ReleasedGatedFusion(_ReleasedGated):
    """GRJCA (``GRJCA_cam``): one gate per modality over X^(0..L), driven by X^(L).

    Released: ``dims=(256, 128)`` (visual, audio), ``seq_len=300``, ``num_layers=2``, ``dropout=0.6``,
    ``temperature=0.1``. Released keys read: ``coattn.dcn_layers.*`` and ``{video,audio}_gating_fc_layer.*``;
    skipped (``RELEASED_SKIPPED``): ``vregressor``, ``aregressor``, ``Joint`` and ``text_gating_fc_layer`` — the
    released forward never reads them (5.1 M of the released module's 6.2 M parameters).
    """

    RELEASED_ANCHOR = "video_gating_fc_layer.weight"
    RELEASED_SKIPPED = {"vregressor": _HEAD, "aregressor": _HEAD, "Joint": _JOINT, "text_gating_fc_layer": _TEXT}

    def __init__(self, dims: Sequence[int], seq_len: int = 300, num_layers: int = 2, dropout: float = 0.6,
                 temperature: float = 0.1) -> None:
        super().__init__(dims, seq_len, num_layers, dropout, temperature)
        self._add_gates("", num_layers + 1)
        self.reset_parameters()

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        steps, extras = self._steps(xs)
        candidates = [[X_l[m] for X_l in steps] for m in range(2)]  # X_m^(0), ..., X_m^(L)
        Ys, ws = gate_modalities(self._gates(""), steps[-1], candidates)
        gates = {"gate": {"candidates": step_labels(range(len(steps))), "weights": ws}}
        return self._finish(Ys, extras, gates, return_all)


class ReleasedHierarchicalGatedFusion(_ReleasedGated):
    """HGRJCA (``HGRJCA_cam``): a gate per step l over X^(0..l) driven by X^(l), then a stage gate over the steps.

    Released: as :class:`ReleasedGatedFusion`. Released keys read: ``coattn.dcn_layers.*``,
    ``{video,audio}_gating_fc_layer_stage{l}.*`` (step l = 1..L, l + 1 candidates) and
    ``{video,audio}_gating_fc_layer_stage.*`` (the stage gate, L candidates); skipped: ``vregressor``,
    ``aregressor``, ``Joint`` and the three ``text_gating_fc_layer_stage*`` — never read by the released forward.
    Needs ``num_layers >= 2``: with one step the stage gate would have one candidate, a constant weight of 1.
    """

    RELEASED_ANCHOR = "video_gating_fc_layer_stage.weight"
    RELEASED_SKIPPED = {"vregressor": _HEAD, "aregressor": _HEAD, "Joint": _JOINT,
                        "text_gating_fc_layer_stage1": _TEXT, "text_gating_fc_layer_stage2": _TEXT,
                        "text_gating_fc_layer_stage": _TEXT}

    def __init__(self, dims: Sequence[int], seq_len: int = 300, num_layers: int = 2, dropout: float = 0.6,
                 temperature: float = 0.1) -> None:
        if num_layers < 2:
            raise ValueError(f"ReleasedHierarchicalGatedFusion needs num_layers >= 2 (a stage gate over the "
                             f"steps), got {num_layers}")
        super().__init__(dims, seq_len, num_layers, dropout, temperature)
        for l in range(1, num_layers + 1):
            self._add_gates(f"_stage{l}", l + 1)
        self._add_gates("_stage", num_layers)
        self.reset_parameters()

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        steps, extras = self._steps(xs)
        per_step, gates = [], {}
        for l in range(1, self.num_layers + 1):  # G_m^l = Gate_m^l(X_m^(l); X_m^(0..l))
            candidates = [[X_j[m] for X_j in steps[: l + 1]] for m in range(2)]
            G_l, ws = gate_modalities(self._gates(f"_stage{l}"), steps[l], candidates)
            per_step.append(G_l)
            gates[f"step{l}"] = {"candidates": step_labels(range(l + 1)), "weights": ws}
        candidates = [[G_l[m] for G_l in per_step] for m in range(2)]  # G_m^1, ..., G_m^L
        Ys, ws = gate_modalities(self._gates("_stage"), steps[-1], candidates)
        gates["stage"] = {"candidates": tuple(f"G({l})" for l in range(1, self.num_layers + 1)), "weights": ws}
        return self._finish(Ys, extras, gates, return_all)


class ReleasedDynamicFusion(_ReleasedGated):
    """DCA (``CAM`` of Dynamic-CrossAttention): one gate per modality over {X^(0), X^(L)}, driven by X^(L).

    Released: ``dims=(512, 512)`` (visual, audio), ``seq_len=16``, ``num_layers=2``, ``dropout=0.6``,
    ``temperature=0.1``. Released keys read: ``coattn.dcn_layers.*`` and ``{video,audio}_gating_fc_layer.*``.
    Skipped: the released model's parts around the fusion, which its forward does read but which are not the
    fusion — the front ends ``audio_extract``, ``video_extract`` (LSTMs) and ``video_attn`` (audio-guided spatial
    attention) that produce the fusion's inputs, and ``Joint``, ``vregressor``, ``aregressor`` after it. Here the
    model's TCNs and head stand around the fusion instead. The released LSTM front ends end with an L2
    normalisation, so their outputs are already X^(0); the normalisation here changes them by rounding only.

    Departure: the released audio gate's weights are repeated to the *video's* width, so unequal widths crash
    there; here each modality's weights multiply its own features, so any widths run.
    """

    RELEASED_ANCHOR = "video_gating_fc_layer.weight"
    RELEASED_SKIPPED = {
        "audio_extract": "front end of the released model (an LSTM before the fusion), not the fusion",
        "video_extract": "front end of the released model (an LSTM before the fusion), not the fusion",
        "video_attn": "front end of the released model (audio-guided spatial attention), not the fusion",
        "Joint": "an LSTM after the fusion in the released model, not the fusion",
        "vregressor": "the released model's valence head, not the fusion",
        "aregressor": "the released model's arousal head, not the fusion",
    }

    def __init__(self, dims: Sequence[int], seq_len: int = 16, num_layers: int = 2, dropout: float = 0.6,
                 temperature: float = 0.1) -> None:
        super().__init__(dims, seq_len, num_layers, dropout, temperature)
        self._add_gates("", 2)
        self.reset_parameters()

    def forward(self, xs: Sequence[Tensor], return_all: bool = False):
        steps, extras = self._steps(xs)
        candidates = [[steps[0][m], steps[-1][m]] for m in range(2)]  # X_m^(0), X_m^(L)
        Ys, ws = gate_modalities(self._gates(""), steps[-1], candidates)
        gates = {"gate": {"candidates": step_labels([0, self.num_layers]), "weights": ws}}
        return self._finish(Ys, extras, gates, return_all)


FAMILY = {"GRJCA": ReleasedGatedFusion, "HGRJCA": ReleasedHierarchicalGatedFusion, "DCA": ReleasedDynamicFusion}

# (member, aspect, released code, here, file in the released repository)
FAMILY_DEPARTURES: list[tuple[str, str, str, str, str]] = [
    ("all", "joint projection J", "query_linear([X_v; X_a]) used (RJCMA's release discards it)", "the same",
     "models/dense_coattn.py"),
    ("all", "window length K", "`nn.Linear(300, 300)` (GRJCA) or `nn.Linear(16, 16)` (DCA) hard-coded",
     "`seq_len`", "models/dense_coattn.py"),
    ("all", "temperature T", "`/0.1` written in every gate", "`temperature` (default 0.1)", "models/GRJCA.py"),
    ("all", "gate widths", "`nn.Linear(d_m, 3)` etc. written for 2 layers", "follow `num_layers`",
     "models/GRJCA.py, HGRJCA.py"),
    ("GRJCA, HGRJCA", "text branch", "a text gate built, its use commented out (A+V+T tried, not released)",
     "not built; our own A+V+T gated fusion is `gated-rjcma`", "models/GRJCA.py"),
    ("DCA", "argument order", "`CAM(audio, video)`, fused as `coattn(video, audio)`", "`fusion([X_v, X_a])`",
     "models/orig_cam.py"),
    ("DCA", "audio gate", "weights repeated to the video's width: unequal widths crash",
     "each modality's own width", "models/orig_cam.py"),
    ("DCA", "X^(0)", "the LSTM front ends' outputs (unit length)", "the inputs, normalised to unit length",
     "models/orig_cam.py, layer.py"),
]


def family_departures_markdown() -> str:
    """The released-vs-ours table of the family as markdown, with a row per released module not built here."""
    rows = ["| member | aspect | released code | here | where |", "|---|---|---|---|---|"]
    rows += [f"| {m} | {a} | {r} | {h} | `{w}` |" for m, a, r, h, w in FAMILY_DEPARTURES]
    for member, cls in FAMILY.items():
        for name, why in cls.RELEASED_SKIPPED.items():
            rows.append(f"| {member} | `{name}` | {why} | not built; its keys are skipped on loading | |")
    return "\n".join(rows)
