"""The gated family: the gate, GRJCA / HGRJCA / DCA as released (parity with a fabricated released state-dict and an
independent transcription of the released forward), our gated-rjcma, and their registry rows."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rjcma.config import load_config
from rjcma.fusions import FUSIONS
from rjcma.models.gating import Gate, GatedRecursiveFusion
from rjcma.models.official import load_released_state_dict, load_released_weights
from rjcma.models.official_family import (
    FAMILY,
    ReleasedDynamicFusion,
    ReleasedGatedFusion,
    ReleasedHierarchicalGatedFusion,
    family_departures_markdown,
)
from rjcma.models.rjcma import build_model
from rjcma.reference import params_of_recursive, rjca_reference

pytestmark = pytest.mark.usefixtures("one_thread")

T = 0.1


def _inputs(B, K, dims, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, K, d, generator=g, dtype=dtype) for d in dims]


# ---- the released layouts, written out from the released code --------------------------------------------------


def _linear(out, name, n_out, n_in, bias=True):
    out[f"{name}.weight"] = (n_out, n_in)
    if bias:
        out[f"{name}.bias"] = (n_out,)


def _lstm(out, name, embed, dim, layers=2):
    """The released ``layer.LSTM(embed, dim, layers)``: a bidirectional nn.LSTM of width dim // 2 and a linear."""
    h = dim // 2
    out[f"{name}.init_hidden"] = (4 * layers, h)
    _linear(out, f"{name}.linear", dim, dim + embed)
    for l in range(layers):
        for sfx in ("", "_reverse"):
            out[f"{name}.rnn.weight_ih_l{l}{sfx}"] = (4 * h, embed if l == 0 else 2 * h)
            out[f"{name}.rnn.weight_hh_l{l}{sfx}"] = (4 * h, h)
            out[f"{name}.rnn.bias_ih_l{l}{sfx}"] = (4 * h,)
            out[f"{name}.rnn.bias_hh_l{l}{sfx}"] = (4 * h,)


def _dcn(out, dims, K, L):
    d = sum(dims)
    for i in range(L):
        p = f"coattn.dcn_layers.{i}."
        _linear(out, p + "dense_coattn.query_linear", d, d)
        for m, d_m in enumerate(dims, start=1):
            _linear(out, p + f"dense_coattn.key{m}_linear", K, K)
            _linear(out, p + f"dense_coattn.value{m}_linear", d_m, d_m)
        for m, d_m in enumerate(dims):
            _linear(out, p + f"linears.{m}.0", d_m, d)


def _regressors(out):
    for r in ("vregressor", "aregressor"):
        _linear(out, f"{r}.0", 128, 512)
        _linear(out, f"{r}.3", 1, 128)


def released_layout(member, dims, K, L):
    """{key: shape} of the released module (GRJCA_cam, HGRJCA_cam, CAM), sized for dims/K/L where the released code
    derives sizes from them; the parts it hard-codes (heads, LSTMs, text gates) at the released sizes."""
    out: dict[str, tuple[int, ...]] = {}
    _dcn(out, dims, K, L)
    _regressors(out)
    _lstm(out, "Joint", 1024, 512)
    names = ("video", "audio")
    if member == "GRJCA":
        for n, d_m in zip(names, dims):
            _linear(out, f"{n}_gating_fc_layer", L + 1, d_m)
        _linear(out, "text_gating_fc_layer", 3, 128)  # the unused text gate: released sizes whatever L
    elif member == "HGRJCA":
        for n, d_m in zip(names, dims):
            for l in range(1, L + 1):
                _linear(out, f"{n}_gating_fc_layer_stage{l}", l + 1, d_m)
            _linear(out, f"{n}_gating_fc_layer_stage", L, d_m)
        for name, n_out in (("stage2", 3), ("stage1", 2), ("stage", 2)):
            _linear(out, f"text_gating_fc_layer_{name}", n_out, 128)
    else:  # DCA's CAM: LSTM front ends, audio-guided visual attention, two gates of 2 candidates
        _lstm(out, "audio_extract", 512, 512)
        _lstm(out, "video_extract", 512, 512)
        for n, o, i, b in (("affine_audio", 512, 512, True), ("affine_video", 512, 512, True),
                           ("affine_v", 49, 512, False), ("affine_g", 49, 512, False), ("affine_h", 1, 49, False),
                           ("affine_feat", 512, 512, True)):
            _linear(out, f"video_attn.attn.{n}", o, i, b)
        for n, d_m in zip(names, dims):
            _linear(out, f"{n}_gating_fc_layer", 2, d_m)
    return out


SKIPPED = {  # the released parts each member does not build, as documented in its docstring
    "GRJCA": {"vregressor", "aregressor", "Joint", "text_gating_fc_layer"},
    "HGRJCA": {"vregressor", "aregressor", "Joint", "text_gating_fc_layer_stage1", "text_gating_fc_layer_stage2",
               "text_gating_fc_layer_stage"},
    "DCA": {"audio_extract", "video_extract", "video_attn", "Joint", "vregressor", "aregressor"},
}


def fabricate(layout, seed=0):
    """A fixed state-dict in the released layout: every tensor from one seeded generator, float64."""
    g = torch.Generator().manual_seed(seed)
    return {k: 0.5 * torch.randn(*s, generator=g, dtype=torch.float64) for k, s in layout.items()}


# ---- an independent transcription of the released forward (eval mode), plain torch ops -------------------------


def _lin(sd, name, x):
    return x @ sd[f"{name}.weight"].T + sd[f"{name}.bias"]


def released_layers(sd, X, L):
    """X^(1..L) of the released DCNLayer with the query used: J = FC([X_v; X_a]); C = tanh(key(Xᵀ) J / √d)."""
    steps = [X]
    for i in range(L):
        p = f"coattn.dcn_layers.{i}."
        J = _lin(sd, p + "dense_coattn.query_linear", torch.cat(X, -1))  # (B, K, d)
        new = []
        for m in range(2):
            key = _lin(sd, p + f"dense_coattn.key{m + 1}_linear", X[m].transpose(1, 2))  # (B, d_m, K)
            val = _lin(sd, p + f"dense_coattn.value{m + 1}_linear", X[m])  # (B, K, d_m)
            C = torch.tanh(key @ J / math.sqrt(J.shape[-1]))  # (B, d_m, d)
            H = torch.relu(torch.tanh(val @ C))  # (B, K, d)
            new.append(X[m] + torch.relu(_lin(sd, p + f"linears.{m}.0", H)))
        X = new
        steps.append(X)
    return steps


def released_gate(sd, name, driver, cands):
    w = torch.softmax(_lin(sd, name, driver) / T, dim=-1)
    return torch.relu(sum(w[..., i, None] * c for i, c in enumerate(cands)))


def released_forward(member, sd, xs, L):
    X0 = [x / x.norm(dim=-1, keepdim=True).clamp_min(1e-12) for x in xs]
    steps = released_layers(sd, X0, L)
    out = []
    for m, n in enumerate(("video", "audio")):
        if member == "GRJCA":
            out.append(released_gate(sd, f"{n}_gating_fc_layer", steps[L][m], [s[m] for s in steps]))
        elif member == "DCA":
            out.append(released_gate(sd, f"{n}_gating_fc_layer", steps[L][m], [steps[0][m], steps[L][m]]))
        else:
            G = [released_gate(sd, f"{n}_gating_fc_layer_stage{l}", steps[l][m], [s[m] for s in steps[: l + 1]])
                 for l in range(1, L + 1)]
            out.append(released_gate(sd, f"{n}_gating_fc_layer_stage", steps[L][m], G))
    return torch.cat(out, -1)


# ---- parity ------------------------------------------------------------------------------------------------------

CASES = [("GRJCA", (256, 128), 300, 2), ("GRJCA", (5, 3), 7, 1), ("GRJCA", (4, 6), 5, 3),
         ("HGRJCA", (256, 128), 300, 2), ("HGRJCA", (5, 3), 7, 3),
         ("DCA", (512, 512), 16, 2), ("DCA", (5, 3), 7, 1), ("DCA", (3, 8), 4, 3)]


@pytest.mark.parametrize("member,dims,K,L", CASES)
def test_parity_with_a_fabricated_released_state_dict(member, dims, K, L):
    layout = released_layout(member, dims, K, L)
    sd = fabricate(layout, seed=L)
    fusion = FAMILY[member](dims, seq_len=K, num_layers=L).double().eval()
    own = {k: tuple(v.shape) for k, v in fusion.state_dict().items()}
    assert own == {k: s for k, s in layout.items() if k.split(".")[0] not in SKIPPED[member]}
    assert set(fusion.RELEASED_SKIPPED) == SKIPPED[member]
    prefix, skipped = load_released_weights(fusion, sd)
    assert prefix == "" and skipped == sorted(k for k in layout if k.split(".")[0] in SKIPPED[member])
    xs = _inputs(2, K, dims, seed=3)
    with torch.no_grad():
        ours = fusion(xs)
        ref = released_forward(member, sd, xs, L)
    assert ours.shape == (2, K, sum(dims))
    assert (ours - ref).abs().max() / ref.abs().max() < 1e-10


def test_released_checkpoint_files_load(tmp_path):
    dims, K = (6, 4), 5
    sd = {k: v.float() for k, v in fabricate(released_layout("GRJCA", dims, K, 2)).items()}
    torch.save({"model_state_dict": {"GRJCA." + k: v for k, v in sd.items()} | {"regressor1.weight": torch.ones(2)}},
               tmp_path / "lfan.pth")  # GRJCA's LFAN keeps the fusion as `GRJCA.`
    fusion = ReleasedGatedFusion(dims, seq_len=K)
    assert load_released_state_dict(fusion, tmp_path / "lfan.pth") == "GRJCA."
    assert torch.equal(fusion.video_gating_fc_layer.weight, sd["video_gating_fc_layer.weight"])
    sd = {k: v.float() for k, v in fabricate(released_layout("DCA", dims, K, 2)).items()}
    torch.save({"net": sd, "best_Val_accV": 0.5}, tmp_path / "cam.pt")  # DCA saves {"net": CAM.state_dict(), ...}
    fusion = ReleasedDynamicFusion(dims, seq_len=K)
    assert load_released_state_dict(fusion, tmp_path / "cam.pt") == ""
    with pytest.raises(Exception, match="no key ending in 'video_gating_fc_layer_stage.weight'"):
        load_released_state_dict(ReleasedHierarchicalGatedFusion(dims, seq_len=K), tmp_path / "cam.pt")
    with pytest.raises(Exception, match=r"cam.pt: coattn.dcn_layers.*\(5, 5\).*\(9, 9\)"):
        load_released_state_dict(ReleasedDynamicFusion(dims, seq_len=9), tmp_path / "cam.pt")


# ---- the gate ----------------------------------------------------------------------------------------------------


def _gate_case(temperature, n=3, d=4, seed=0):
    g = torch.Generator().manual_seed(seed)
    gate = Gate(d, n, temperature).double()
    with torch.no_grad():
        gate.weight.copy_(torch.randn(n, d, generator=g, dtype=torch.float64))
        gate.bias.copy_(torch.randn(n, generator=g, dtype=torch.float64))
    x = torch.randn(2, 6, d, generator=g, dtype=torch.float64)
    cands = [torch.randn(2, 6, d, generator=g, dtype=torch.float64) for _ in range(n)]
    return gate, x, cands


def test_gate_weights_sum_to_one_and_output_is_relu_of_the_mix():
    gate, x, cands = _gate_case(T)
    Y, w = gate(x, cands)
    assert w.shape == (2, 6, 3) and (w >= 0).all()
    torch.testing.assert_close(w.sum(-1), torch.ones(2, 6, dtype=torch.float64))
    torch.testing.assert_close(Y, torch.relu((w.unsqueeze(-1) * torch.stack(cands, -2)).sum(-2)))
    with pytest.raises(ValueError, match="3 candidates expected, got 2"):
        gate(x, cands[:2])
    with pytest.raises(ValueError, match="temperature must be > 0"):
        Gate(4, 3, 0.0)


def test_temperature_to_zero_is_the_argmax_choice():
    gate, x, cands = _gate_case(1e-4)
    Y, w = gate(x, cands)
    pick = (x @ gate.weight.T + gate.bias).argmax(-1)  # (B, K)
    chosen = torch.gather(torch.stack(cands, -2), -2, pick[..., None, None].expand(-1, -1, 1, 4)).squeeze(-2)
    torch.testing.assert_close(Y, torch.relu(chosen))
    assert (w.max(-1).values > 1 - 1e-6).all()
    # and a cooler gate is never closer to uniform than a warmer one (the released T = 0.1 between)
    ent = [-(gate_w * gate_w.clamp_min(1e-300).log()).sum(-1).mean()
           for gate_w in (_gate_case(t)[0].weights(x) for t in (0.01, 0.1, 1.0, 10.0))]
    assert all(a < b for a, b in zip(ent, ent[1:]))


def test_large_temperature_is_the_uniform_average():
    gate, x, cands = _gate_case(1e6)
    Y, w = gate(x, cands)
    torch.testing.assert_close(w, torch.full_like(w, 1 / 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(Y, torch.relu(sum(cands) / 3), atol=1e-5, rtol=0)


@pytest.mark.parametrize("member", list(FAMILY))
def test_member_temperature_limits(member):
    dims, K = (5, 3), 6
    xs = _inputs(2, K, dims, seed=1)
    sd = FAMILY[member](dims, seq_len=K).double().state_dict()
    hard, uniform = (lambda w: w.max(-1).values > 1 - 1e-9), (lambda w: (w - 1 / w.shape[-1]).abs() < 1e-5)
    for temp, check in ((1e-6, hard), (1e6, uniform)):
        fusion = FAMILY[member](dims, seq_len=K, temperature=temp).double().eval()
        fusion.load_state_dict(sd)
        _, extras = fusion(xs, return_all=True)
        for gate in extras["gates"].values():
            assert all(check(w).all() for w in gate["weights"]), (member, temp)


# ---- every member: gates, gradients, shapes ----------------------------------------------------------------------


@pytest.mark.parametrize("member", list(FAMILY))
@pytest.mark.parametrize("dims,K,L", [((7, 3), 1, 2), ((4, 9), 5, 2), ((6, 6), 16, 3)])
def test_shapes_and_gates_at_other_widths_and_lengths(member, dims, K, L):
    fusion = FAMILY[member](dims, seq_len=K, num_layers=L).eval()
    out, extras = fusion(_inputs(3, K, dims, dtype=torch.float32), return_all=True)
    assert out.shape == (3, K, sum(dims)) and fusion.out_dim == sum(dims)
    assert len(extras["features"]) == len(extras["maps"]) == L
    expected = {"GRJCA": {"gate": L + 1}, "DCA": {"gate": 2},
                "HGRJCA": {**{f"step{l}": l + 1 for l in range(1, L + 1)}, "stage": L}}[member]
    assert {k: len(g["candidates"]) for k, g in extras["gates"].items()} == expected
    for g in extras["gates"].values():
        for w in g["weights"]:
            assert w.shape == (3, K, len(g["candidates"]))
            torch.testing.assert_close(w.sum(-1), torch.ones(3, K))


@pytest.mark.parametrize("fusion", [ReleasedGatedFusion((8, 6), seq_len=10, dropout=0.0),
                                    ReleasedHierarchicalGatedFusion((8, 6), seq_len=10, dropout=0.0),
                                    ReleasedDynamicFusion((8, 6), seq_len=10, dropout=0.0),
                                    GatedRecursiveFusion((8, 6, 4), seq_len=10, num_iterations=2)],
                         ids=["GRJCA", "HGRJCA", "DCA", "gated-rjcma"])
def test_gradients_reach_every_parameter(fusion):
    torch.manual_seed(0)
    xs = _inputs(2, 10, fusion.dims, dtype=torch.float32)
    (fusion(xs) ** 2).sum().backward()
    never_read = {n for n, p in fusion.named_parameters() if p.grad is None or p.grad.abs().sum() == 0}
    assert never_read == set()  # the released query projection is used here; unread released parts are not built
    assert all(p.requires_grad for p in fusion.parameters())


def test_errors():
    with pytest.raises(ValueError, match="num_layers >= 2"):
        ReleasedHierarchicalGatedFusion((4, 3), seq_len=5, num_layers=1)
    with pytest.raises(ValueError, match="fuses 2 modalities"):
        ReleasedGatedFusion((4, 3, 2), seq_len=5)
    with pytest.raises(ValueError, match=r"\(B, K=5, d_m=4\)"):
        ReleasedDynamicFusion((4, 3), seq_len=5)([torch.zeros(1, 6, 4), torch.zeros(1, 6, 3)])


def test_departures_table_lists_every_skipped_part():
    md = family_departures_markdown()
    for member, names in SKIPPED.items():
        for n in names:
            assert f"| {member} | `{n}` |" in md
    assert "unequal widths crash" in md


# ---- ours: gated-rjcma -------------------------------------------------------------------------------------------


def test_gated_rjcma_is_the_papers_recursion_then_a_gate():
    torch.manual_seed(0)
    dims, K, L = (4, 3, 5), 6, 2
    fusion = GatedRecursiveFusion(dims, seq_len=K, num_iterations=L).double().eval()
    xs = _inputs(2, K, dims, seed=2)
    with torch.no_grad():
        out, extras = fusion(xs, return_all=True)
    X0 = [x.numpy() / np.linalg.norm(x.numpy(), axis=-1, keepdims=True) for x in xs]
    steps = [X0] + rjca_reference(X0, params_of_recursive(fusion.rec))["features"]
    for m, gate in enumerate(fusion.gates):
        W, b = gate.weight.detach().numpy(), gate.bias.detach().numpy()
        z = (steps[-1][m] @ W.T + b) / T
        w = np.exp(z - z.max(-1, keepdims=True))
        w /= w.sum(-1, keepdims=True)
        Y = np.maximum(0.0, sum(w[..., i, None] * s[m] for i, s in enumerate(steps)))
        np.testing.assert_allclose(out[..., sum(dims[:m]): sum(dims[: m + 1])].numpy(), Y, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(extras["gates"]["gate"]["weights"][m].numpy(), w, rtol=1e-9, atol=1e-12)
    assert extras["gates"]["gate"]["candidates"] == ("X(0)", "X(1)", "X(2)")


# ---- the registry rows -------------------------------------------------------------------------------------------

ROWS = {"grjca": "GRJCA", "hgrjca": "HGRJCA", "dca": "DCA", "gated-rjcma": None}


@pytest.mark.parametrize("name", list(ROWS))
def test_registry_rows_build_and_return_gate_weights(name):
    spec = FUSIONS[name]
    cfg = load_config("demo").replace(fusion=name, modalities=spec.compare_modalities(), seq_len=6, stride=3,
                                      tcn_audio=[8], tcn_visual=[6], tcn_text=[5], head_hidden=8)
    model = build_model(cfg).eval()
    widths = {"audio": 128, "visual": 512, "text": 384}
    out = model({m: torch.randn(2, 6, widths[m]) for m in model.modalities})
    assert out["pred"].shape == (2, 6, 2)
    if ROWS[name]:
        assert isinstance(model.fusion, FAMILY[ROWS[name]]) and model.modalities == ["visual", "audio"]
        assert spec.compare_modalities() == ["audio", "visual"] and "released code" in spec.label
    else:
        assert isinstance(model.fusion, GatedRecursiveFusion) and model.modalities == ["audio", "visual", "text"]
        assert "not from any paper" in spec.label and "ours" in spec.run_label
    assert out["gates"] and all(w.shape[:2] == (2, 6) for g in out["gates"].values() for w in g["weights"])
    assert len(next(iter(out["gates"].values()))["weights"]) == len(model.modalities)
