"""Whole model (models/rjcma.py) and the baselines (models/baselines.py): every fusion string builds, runs
forward and backward with gradients reaching every trainable parameter, checks its inputs, and learns a toy task."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from rjcma.config import FUSIONS, MODALITIES, load_config
from rjcma.models.baselines import ConcatFusion, LeaderFollowerFusion, UnimodalFusion
from rjcma.models.rjcma import RAW_INPUT_KEYS, build_model, fusion_modalities
from rjcma.train.losses import ccc_loss

K = 12
WIDTHS = {"audio": 5, "visual": 6, "text": 7}


pytestmark = pytest.mark.usefixtures("one_thread")


def small_cfg(fusion="rjcma", target="both", **over):
    base = dict(
        fusion=fusion,
        target=target,
        seq_len=K,
        stride=K // 2,
        audio_dim=WIDTHS["audio"],
        visual_dim=WIDTHS["visual"],
        text_dim=WIDTHS["text"],
        tcn_audio=[8, 4],
        tcn_visual=[8, 6],
        tcn_text=[8, 5],
        tcn_dropout=0.0,
        head_hidden=8,
        num_iterations=2,
    )
    base.update(over)
    return load_config("demo").replace(**base)


def inputs(B=3, k=K, seed=0, mods=MODALITIES):
    g = torch.Generator().manual_seed(seed)
    return {m: torch.randn(B, k, WIDTHS[m], generator=g) for m in mods}


def _needs_official(fusion):
    if fusion == "rjcma-released":
        pytest.importorskip("rjcma.models.official", reason="models/official.py (ReleasedFusion) not written yet")


@pytest.mark.parametrize("fusion", FUSIONS)
def test_every_fusion_forward_backward(fusion):
    _needs_official(fusion)
    torch.manual_seed(0)
    cfg = small_cfg(fusion)
    model = build_model(cfg)
    out = model(inputs())
    assert out["pred"].shape == (3, K, 2)
    assert out["pred"].abs().max() <= 1.0
    assert [x.shape[-1] for x in out["tcn"]] == [cfg.model.tcn_channels(m)[-1] for m in model.modalities]
    assert bool(out["gates"]) == (fusion in ("grjca", "hgrjca", "dca", "gated-rjcma"))  # gate weights, gated only
    (out["pred"] ** 2).sum().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    frozen = [n for n, p in model.named_parameters() if not p.requires_grad]
    assert all(".query_linear." in n for n in frozen), frozen  # only the released, unused query_linear is frozen
    for name, p in trainable:
        assert p.grad is not None, f"{fusion}: no gradient reaches {name}"
        assert torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"{fusion}: zero gradient at {name}"


def test_modalities_per_fusion():
    assert fusion_modalities(small_cfg("rjcma")) == ["audio", "visual", "text"]
    assert fusion_modalities(small_cfg("jca")) == ["audio", "visual"]
    assert fusion_modalities(small_cfg("rjca")) == ["audio", "visual"]
    assert fusion_modalities(small_cfg("unimodal:text")) == ["text"]
    assert fusion_modalities(small_cfg("concat", modalities=["visual", "text"])) == ["visual", "text"]
    # a model reads only what its fusion needs, and builds no TCN for the rest
    model = build_model(small_cfg("unimodal:audio"))
    assert list(model.tcn) == ["audio"]
    assert model(inputs(mods=["audio"]))["pred"].shape == (3, K, 2)
    assert build_model(small_cfg("jca"))(inputs(mods=["audio", "visual"]))["pred"].shape == (3, K, 2)
    with pytest.raises(ValueError, match="at least two"):
        build_model(small_cfg("rjcma", modalities=["audio"]))
    with pytest.raises(ValueError, match="leader"):
        build_model(small_cfg("leader-follower", modalities=["audio", "text"]))


@pytest.mark.parametrize("iterations,share", [(1, False), (3, False), (3, True)])
def test_rjcma_features_and_maps(iterations, share):
    cfg = small_cfg("rjcma", target="valence", num_iterations=iterations, share_weights=share)
    model = build_model(cfg).eval()
    out = model(inputs())
    assert out["pred"].shape == (3, K, 1)
    assert len(out["features"]) == iterations and len(out["maps"]) == iterations
    assert len(model.fusion.rec.blocks) == (1 if share else iterations)
    for feats, maps in zip(out["features"], out["maps"]):
        assert [f.shape for f in feats] == [x.shape for x in out["tcn"]]
        assert [c.shape for c in maps["C"]] == [(3, K, K)] * 3
    # the head sees eq. (14): the last iteration's features concatenated
    fused = torch.cat(out["features"][-1], dim=-1)
    torch.testing.assert_close(model.head(fused), out["pred"])
    # JCA is one iteration of the same block
    jca = build_model(small_cfg("jca", num_iterations=4))
    assert len(jca.fusion.rec.blocks) == 1 and len(jca(inputs())["maps"]) == 1


def test_released_variant_state_dict_keys():
    pytest.importorskip("rjcma.models.official", reason="models/official.py (ReleasedFusion) not written yet")
    cfg = small_cfg("rjcma-released", released_layers=2)
    model = build_model(cfg)
    keys = set(model.fusion.released.state_dict())
    for i in range(2):
        for name in ("query_linear", "key1_linear", "value1_linear", "value3_linear"):
            assert f"dcn_layers.{i}.dense_coattn.{name}.weight" in keys
        assert f"dcn_layers.{i}.linears.2.0.bias" in keys
    assert model.modalities == ["visual", "audio", "text"]  # the released DCNLayer's order
    out = model(inputs())
    assert len(out["features"]) == 2 and len(out["maps"]) == 2


def test_check_inputs_errors():
    model = build_model(small_cfg("rjcma"))
    x = inputs()
    with pytest.raises(ValueError, match=r"missing input 'text'.*expected"):
        model({k: v for k, v in x.items() if k != "text"})
    with pytest.raises(ValueError, match=rf"'visual' should be \(B, {K}, 6\), given \(3, {K + 1}, 6\)"):
        model({**x, "visual": torch.randn(3, K + 1, 6)})
    with pytest.raises(ValueError, match=rf"'audio' should be \(B, {K}, 5\), given \(3, {K}, 4\)"):
        model({**x, "audio": torch.randn(3, K, 4)})
    with pytest.raises(ValueError, match="batch sizes differ"):
        model({**x, "audio": torch.randn(2, K, 5)})
    with pytest.raises(ValueError):
        build_model(small_cfg("concat"), encoders={"smell": nn.Identity()})


def test_baseline_modules_directly():
    xs = [torch.randn(2, 9, 4), torch.randn(2, 9, 3), torch.randn(2, 9, 5)]
    assert UnimodalFusion(4)([xs[0]]) is xs[0]
    c = ConcatFusion([4, 3, 5])
    assert c(xs).shape == (2, 9, 12) and c.out_dim == 12
    lf = LeaderFollowerFusion([4, 3, 5], leader=1, attn_dim=8)
    y, scores = lf(xs, return_scores=True)
    assert y.shape == (2, 9, lf.out_dim) and lf.out_dim == 3 + 3 * 8
    torch.testing.assert_close(y[..., :3], xs[1])  # the leader's features pass through
    torch.testing.assert_close(scores.sum(-1), torch.ones(2, 9, 3))  # softmax over the 3 modality tokens
    # per frame: frame t's output depends on frame t only
    xs2 = [x.clone() for x in xs]
    xs2[0][:, 5] += 1.0
    d = (lf(xs2) - y).abs().sum(-1)
    assert (d[:, 5] > 0).all() and (d[:, [0, 1, 2, 3, 4, 6, 7, 8]] == 0).all()
    with pytest.raises(ValueError, match=r"modality 2 expected \(B, K, 5\)"):
        c([xs[0], xs[1], torch.randn(2, 9, 4)])


class _TinyFaceEncoder(nn.Module):
    def __init__(self, d):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, d)

    def forward(self, x):  # (N, 3, 8, 8) -> (N, d)
        return self.fc(self.bn(self.conv(x)).mean((2, 3)))


def test_end2end_encoders():
    cfg = small_cfg("rjca", target="arousal")
    enc = _TinyFaceEncoder(WIDTHS["visual"])
    model = build_model(cfg, encoders={"visual": enc})
    faces = torch.randn(2, K, 3, 8, 8)
    audio = torch.randn(2, K, WIDTHS["audio"])
    out = model({RAW_INPUT_KEYS["visual"]: faces, "audio": audio})
    assert out["pred"].shape == (2, K, 1)
    # the encoder runs per frame: same as encoding the B*K frames one by one
    model.eval()
    ref = torch.stack([enc(faces[:, k]) for k in range(K)], dim=1)
    torch.testing.assert_close(model.encoders["visual"](faces), ref)
    # frozen encoder stays in eval mode (defect 8 of the book's chapter *Paper vs released code*); a released one trains
    for p in enc.parameters():
        p.requires_grad_(False)
    model.train()
    assert model.tcn["audio"].training and not enc.training and not enc.bn.training
    enc.fc.requires_grad_(True)  # part released: its frozen BatchNorm still stays in eval
    model.train()
    assert enc.training and not enc.bn.training
    counts = model.param_counts()
    assert counts["encoder.visual"][1] == sum(p.numel() for p in enc.fc.parameters())
    assert "encoder.visual" in model.describe() and "total" in model.describe()
    with pytest.raises(ValueError, match="raw input"):
        model({"faces": torch.randn(2, K - 1, 3, 8, 8), "audio": audio})


def test_describe_counts_add_up():
    model = build_model(small_cfg("rjcma"))
    counts = model.param_counts()
    parts = sum(n for k, (n, _) in counts.items() if k != "total")
    assert parts == counts["total"][0] == sum(p.numel() for p in model.parameters())
    text = model.describe()
    for part in ("tcn.audio", "bn.text", "fusion (rjcma)", "head"):
        assert part in text


@pytest.mark.parametrize("fusion", ["rjcma", "gated-rjcma"])  # both built on the paper's recursion
def test_param_groups_cover_trainable_parameters_once(fusion):
    model = build_model(small_cfg(fusion))
    groups = model.param_groups(1e-3)
    assert [g["lr"] for g in groups] == [1e-3, pytest.approx(1e-3 / K)]
    assert len(groups[1]["params"]) == 2 * 3 * model.fusion.rec.num_iterations  # W_c, W_h per modality and l
    ids = [id(p) for g in groups for p in g["params"]]
    assert len(ids) == len(set(ids)) == len([p for p in model.parameters() if p.requires_grad])
    assert len(build_model(small_cfg("concat")).param_groups(1e-3)) == 1
    assert len(build_model(small_cfg("grjca")).param_groups(1e-3)) == 1


def _toy_batch(cfg, B=8, seed=0):
    """A learnable toy: valence = a smoothed projection of the visual+text features, arousal of the audio ones."""
    g = torch.Generator().manual_seed(seed)
    x = {m: torch.randn(B, K, WIDTHS[m], generator=g) for m in MODALITIES}
    kernel = torch.ones(1, 1, 3) / 3

    def smooth(s):
        return torch.nn.functional.conv1d(s.unsqueeze(1), kernel, padding=1).squeeze(1)

    v = torch.tanh(smooth(x["visual"][..., 0] + x["text"][..., 1]))
    a = torch.tanh(smooth(x["audio"][..., 0] - x["audio"][..., 2]))
    return x, torch.stack([v, a], dim=-1)


@pytest.mark.parametrize("fusion", ["unimodal:visual", "rjcma", "grjca", "gated-rjcma"])
def test_loss_decreases_on_toy_task(fusion):
    torch.manual_seed(0)
    cfg = small_cfg(fusion, num_iterations=2, tcn_audio=[16], tcn_visual=[16], tcn_text=[16], head_hidden=16)
    model = build_model(cfg)
    x, y = _toy_batch(cfg)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(50):
        opt.zero_grad()
        loss = ccc_loss(model(x)["pred"], y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], f"{fusion}: loss {losses[0]:.3f} -> {losses[-1]:.3f}"
