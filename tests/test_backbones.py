"""Encoders: IR-50 / VGGish shapes, checkpoint layouts, layer groups, frozen eval mode, stand-ins (rjcma.encoders)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

from rjcma.config import load_config
from rjcma.encoders import build
from rjcma.encoders import standins as S
from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.models import backbones as B


@pytest.fixture(scope="module")
def ir50():
    torch.manual_seed(0)
    return B.IR50().eval()


@pytest.fixture(scope="module")
def vggish():
    torch.manual_seed(0)
    return B.VGGish().eval()


def test_ir50_shapes(ir50):
    x = torch.randn(3, 3, 40, 40)
    with torch.no_grad():
        assert ir50.features_map(x).shape == (3, 512, 5, 5)  # first stage stride 1: 40 -> 40 -> 20 -> 10 -> 5
        y = ir50(x)
    assert y.shape == (3, 512)
    torch.testing.assert_close(y.norm(dim=1), torch.ones(3))  # L2-normalised
    assert [sum(1 for s in ir50.stage_of_unit if s == i) for i in range(4)] == [3, 4, 14, 3]
    ol = ir50.output_layer
    assert isinstance(ol[0], torch.nn.BatchNorm2d) and ol[1].p == 0.4 and ol[3].in_features == 512 * 25
    assert isinstance(ol[4], torch.nn.BatchNorm1d)


def test_half_width_ir50_keeps_depth_and_embedding(ir50, tmp_path):
    """IR-50 with every stage's channels halved (``benchmarks/standin_width.py`` weighs it as the demo's visual
    stand-in): the same units, strides and 512-d embedding for a quarter of the arithmetic; a stand-in file loads
    into a shell of the width it was made with."""
    from safetensors.torch import load_file, save_file

    from rjcma.encoders import standins as S

    half = B.IR50(width=0.5).eval()
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        assert half.features_map(x).shape == (2, 256, 5, 5) and half(x).shape == (2, 512)
    assert half.stage_of_unit == ir50.stage_of_unit
    n = lambda m: sum(p.numel() for p in m.body.parameters())  # noqa: E731
    assert 0.2 < n(half) / n(ir50) < 0.3
    assert S.stand_in_shell("ir50").width == S.STAND_IN_WIDTH
    for model in (half, ir50):
        path = tmp_path / f"w{model.width}.safetensors"
        save_file({k: v.contiguous() for k, v in model.state_dict().items()}, str(path))
        shell = S.stand_in_shell("ir50", load_file(str(path)))
        assert shell.width == model.width
        B.load_checked(shell, load_file(str(path)), path)
    with pytest.raises(ValueError, match="width"):
        B.IR50(width=1.5)


def test_vggish_shapes_and_keys(vggish):
    with torch.no_grad():
        assert vggish(torch.randn(2, 1, 96, 64)).shape == (2, 128)
        assert vggish(torch.randn(2, 96, 64)).shape == (2, 128)
    keys = set(vggish.state_dict())
    expected = {f"features.{i}.{w}" for i in (0, 3, 6, 8, 11, 13) for w in ("weight", "bias")}
    expected |= {f"embeddings.{i}.{w}" for i in (0, 2, 4) for w in ("weight", "bias")}
    assert keys == expected  # torchvggish's names
    assert not isinstance(vggish.embeddings[-1], torch.nn.ReLU)  # no final ReLU (as the released code)


def test_layer_groups_match_released_parameter_indices(ir50, vggish):
    """The released code releases parameter index ranges (4,10), (163,187), (142,163) of its visual backbone."""
    g = B.layer_groups(ir50)
    assert len(g) == 3
    n = [sum(len(list(m.parameters())) for m in grp) for grp in g]
    assert n == [6, 24, 21]
    assert g[0] == [ir50.output_layer] and g[1] == list(ir50.body[21:24]) and g[2] == list(ir50.body[18:21])
    ga = B.layer_groups(vggish)
    assert [grp[0].out_features for grp in ga] == [128, 4096, 4096]
    assert ga[2][0].in_features == 12288


def test_load_released_ir50_layout(tmp_path, ir50):
    sd = {f"backbone.{k}": v.clone() for k, v in ir50.state_dict().items()}
    sd["logits.weight"], sd["logits.bias"] = torch.randn(8, 512), torch.zeros(8)  # 8-class head, dropped
    p = tmp_path / B.IR50_FILE
    torch.save(sd, p)
    m = B.load_ir50(p)
    x = torch.randn(2, 3, 40, 40)
    with torch.no_grad():
        torch.testing.assert_close(m.eval()(x), ir50(x))
    # a 112x112 (7x7) output layer does not fit: one error naming the file and the shape
    sd["backbone.output_layer.3.weight"] = torch.randn(512, 512 * 49)
    torch.save(sd, p)
    with pytest.raises(RjcmaError, match=rf"{B.IR50_FILE}.*shape mismatch"):
        B.load_ir50(p)


def test_load_torchvggish_layout(tmp_path, vggish):
    p = tmp_path / B.VGGISH_FILE
    torch.save({k: v.clone() for k, v in vggish.state_dict().items()}, p)
    m = B.load_vggish(p)
    x = torch.randn(2, 1, 96, 64)
    with torch.no_grad():
        torch.testing.assert_close(m(x), vggish(x))
    sd = vggish.state_dict()
    del sd["embeddings.4.bias"]
    torch.save(sd, p)
    with pytest.raises(RjcmaError, match="missing key"):
        B.load_vggish(p)


class _Evil:
    def __reduce__(self):
        import os

        return (os.system, ("echo pwned",))


def test_missing_and_untrusted_weights(tmp_path):
    with pytest.raises(MissingAssetError, match=rf"{B.IR50_FILE}.*obtain"):
        B.load_ir50(tmp_path / B.IR50_FILE)
    cfg = load_config("demo").replace(weights_dir=str(tmp_path), store=str(tmp_path / "store"))
    with pytest.raises(MissingAssetError, match=B.VGGISH_FILE):
        build.build_audio_encoder(cfg)
    p = tmp_path / B.VGGISH_FILE
    with open(p, "wb") as f:
        pickle.dump({"x": _Evil()}, f)
    with pytest.raises(RjcmaError, match="weights-only"):
        B.load_vggish(p)


def test_frozen_encoders_stay_in_eval_mode(tmp_path):
    """Running a frozen encoder must not move its batch-norm statistics (the released code let them drift)."""
    cfg = load_config("demo").replace(store=str(tmp_path / "store"), encoder_init="seeded", weights_dir="")
    enc, info = build.build_visual_encoder(cfg, with_info=True)
    assert info.source == "seeded" and not enc.training
    assert not any(p.requires_grad for p in enc.parameters())
    bn = enc.output_layer[0]
    before = bn.running_mean.clone()
    faces = np.random.default_rng(0).integers(0, 255, (6, 48, 48, 3), dtype=np.uint8)
    a = B.encode_faces(enc, faces)
    enc.train()  # even if someone flips it, encode_faces evaluates in eval mode
    b = B.encode_faces(enc, faces)
    assert np.array_equal(a, b) and torch.equal(bn.running_mean, before)
    assert a.shape == (6, 512)


def test_stand_in_is_cached_and_deterministic(tmp_path):
    cfg = load_config("demo").replace(store=str(tmp_path / "s"), encoder_init="seeded", weights_dir="")
    m1, i1 = build.build_audio_encoder(cfg, with_info=True)
    m2, i2 = build.build_audio_encoder(cfg, with_info=True)
    assert i1.path == i2.path and i1.sha256 == i2.sha256 and i1.path.endswith("vggish-seeded-seed0.safetensors")
    other = S.make_stand_in("vggish", "seeded", 0)
    for (k, v), (k2, v2) in zip(m1.state_dict().items(), other.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    patches = np.random.default_rng(1).normal(-3, 1, (4, 96, 64)).astype(np.float32)
    y = B.encode_logmel(m1, patches)
    assert y.shape == (4, 128) and np.isfinite(y).all() and 0.01 < np.abs(y).mean() < 100  # fits float16


def test_synthetic_pretrain_tasks_are_separate_from_the_corpus():
    imgs, P = S.pretrain_faces(4, 0)
    assert imgs.shape == (4, 48, 48, 3) and imgs.dtype == np.uint8 and P.shape == (4, len(S.PRETRAIN_PARAMS))
    assert np.array_equal(S.pretrain_faces(4, 0)[0], imgs) and not np.array_equal(S.pretrain_faces(4, 1)[0], imgs)
    X, Q = S.synth_tones(2, 0)
    assert X.shape == (2, 96, 64) and Q.shape == (2, 4) and np.isfinite(X).all()


def _ridge_r(F: np.ndarray, y: np.ndarray, n_fit: int, lam: float = 1.0) -> float:
    mu, sd = F[:n_fit].mean(0), F[:n_fit].std(0) + 1e-6
    Z = (F - mu) / sd
    w = np.linalg.solve(Z[:n_fit].T @ Z[:n_fit] + lam * n_fit * np.eye(Z.shape[1]), Z[:n_fit].T @ (y[:n_fit] - y[:n_fit].mean()))
    return float(np.corrcoef(Z[n_fit:] @ w, y[n_fit:])[0, 1])


@pytest.mark.usefixtures("tiny_store")
def test_visual_stand_in_reads_the_expression(tiny_cfg):
    """The demo's visual stand-in is pretrained on expression: on faces it never saw (another seed of the
    pretraining renderer, new identities), a linear read-out of its features recovers smile and eye opening far
    better than from the seeded network it starts from."""
    enc = build.build_visual_encoder(tiny_cfg)
    seeded = S.make_stand_in("ir50", "seeded", 0)
    imgs, P = S.pretrain_faces(200, 999)
    r = {}
    for name, m in (("stand-in", enc), ("seeded", seeded)):
        F = B.encode_faces(m, imgs)
        r[name] = {k: _ridge_r(F, P[:, S.PRETRAIN_PARAMS.index(k)], 150) for k in ("smile", "eye")}
    for k in ("smile", "eye"):
        assert r["stand-in"][k] > 0.75 and r["stand-in"][k] > r["seeded"][k] + 0.15, r
