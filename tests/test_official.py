"""The released-code fusion (``ReleasedFusion``): state-dict layout, forward pass, checkpoint loading."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rjcma.errors import MissingAssetError, RjcmaError
from rjcma.models.official import (
    DEPARTURES,
    ReleasedFusion,
    departures_markdown,
    load_released_state_dict,
    load_released_weights,
)


pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(B, K, dims, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, K, d, generator=g, dtype=dtype) for d in dims]


def expected_released_shapes(dims=(256, 128, 128), K=300, num_layers=2) -> dict[str, tuple[int, ...]]:
    """The released DCNLayer(dims, num_layers, ·)'s state-dict, written out from the released code."""
    d = sum(dims)
    out: dict[str, tuple[int, ...]] = {}
    for i in range(num_layers):
        p = f"dcn_layers.{i}."
        out[p + "dense_coattn.query_linear.weight"] = (d, d)
        out[p + "dense_coattn.query_linear.bias"] = (d,)
        for m in range(1, len(dims) + 1):
            out[p + f"dense_coattn.key{m}_linear.weight"] = (K, K)
            out[p + f"dense_coattn.key{m}_linear.bias"] = (K,)
        for m, d_m in enumerate(dims, start=1):
            out[p + f"dense_coattn.value{m}_linear.weight"] = (d_m, d_m)
            out[p + f"dense_coattn.value{m}_linear.bias"] = (d_m,)
        for m, d_m in enumerate(dims):
            out[p + f"linears.{m}.0.weight"] = (d_m, d)
            out[p + f"linears.{m}.0.bias"] = (d_m,)
    return out


def test_state_dict_equals_released_layout():
    fusion = ReleasedFusion((256, 128, 128), seq_len=300, num_layers=2, dropout=0.6)
    got = {k: tuple(v.shape) for k, v in fusion.state_dict().items()}
    assert got == expected_released_shapes()
    assert len(got) == 40


# ---- an independent, loop-based transcription of what the released DCNLayer computes in eval mode --------------


def released_loop_reference(xs, sd, num_layers, use_query=False):
    """Per example and entry, from the released code's operations (dropout is the identity in eval mode).
    ``use_query``: the follow-ups' joint J = query_linear([X_1; X_2; ...]) in place of the plain concatenation."""
    sd = {k: v.detach().double().numpy() for k, v in sd.items()}
    X = [x.detach().double().numpy().copy() for x in xs]  # (B, K, d_m)
    n = len(X)
    B, K = X[0].shape[:2]
    dims = [x.shape[2] for x in X]
    d = sum(dims)
    for i in range(num_layers):
        p = f"dcn_layers.{i}."
        new = []
        for m in range(n):
            Wk, bk = sd[p + f"dense_coattn.key{m + 1}_linear.weight"], sd[p + f"dense_coattn.key{m + 1}_linear.bias"]
            Wv, bv = sd[p + f"dense_coattn.value{m + 1}_linear.weight"], sd[p + f"dense_coattn.value{m + 1}_linear.bias"]
            Wl, bl = sd[p + f"linears.{m}.0.weight"], sd[p + f"linears.{m}.0.bias"]
            out = np.zeros_like(X[m])
            for b in range(B):
                joint = np.concatenate([X[j][b] for j in range(n)], axis=1)  # (K, d)
                if use_query:
                    Wq, bq = sd[p + "dense_coattn.query_linear.weight"], sd[p + "dense_coattn.query_linear.bias"]
                    joint = np.array([[sum(Wq[r, c] * joint[t, c] for c in range(d)) + bq[r] for r in range(d)]
                                      for t in range(K)])  # (K, d): the FC per time step
                x = X[m][b]  # (K, d_m)
                key = np.array([[sum(Wk[s, t] * x[t, q] for t in range(K)) + bk[s] for s in range(K)]
                                for q in range(dims[m])])  # (d_m, K): Linear along time of x^T
                val = np.array([[sum(Wv[r, q] * x[t, q] for q in range(dims[m])) + bv[r] for r in range(dims[m])]
                                for t in range(K)])  # (K, d_m)
                scores = np.array([[math.tanh(sum(key[q, t] * joint[t, c] for t in range(K)) / math.sqrt(d))
                                    for c in range(d)] for q in range(dims[m])])  # (d_m, d)
                weighted = np.array([[max(0.0, math.tanh(sum(val[t, q] * scores[q, c] for q in range(dims[m]))))
                                      for c in range(d)] for t in range(K)])  # (K, d)
                for t in range(K):
                    for r in range(dims[m]):
                        out[b, t, r] = x[t, r] + max(0.0, sum(Wl[r, c] * weighted[t, c] for c in range(d)) + bl[r])
            new.append(out)
        X = new
    return X


@pytest.mark.parametrize("dims", [(5, 3, 4), (4, 3)])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_forward_matches_loop_reference(dims, num_layers):
    torch.manual_seed(0)
    K = 6
    fusion = ReleasedFusion(dims, seq_len=K, num_layers=num_layers).double().eval()
    xs = _inputs(2, K, dims, seed=1)
    with torch.no_grad():
        out = fusion(xs)
    r = released_loop_reference(xs, fusion.state_dict(), num_layers)
    assert len(out) == len(dims)
    for m in range(len(dims)):
        assert tuple(out[m].shape) == (2, K, dims[m])
        np.testing.assert_allclose(out[m].numpy(), r[m], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("dims", [(5, 3), (4, 3, 2)])
def test_use_query_matches_loop_reference(dims):
    torch.manual_seed(0)
    K = 5
    fusion = ReleasedFusion(dims, seq_len=K, num_layers=2, use_query=True).double().eval()
    xs = _inputs(2, K, dims, seed=4)
    with torch.no_grad():
        out = fusion(xs)
        plain = ReleasedFusion(dims, seq_len=K, num_layers=2).double().eval()
        plain.load_state_dict(fusion.state_dict())
        assert not torch.allclose(out[0], plain(xs)[0])  # the projection changes the output
    r = released_loop_reference(xs, fusion.state_dict(), 2, use_query=True)
    for m in range(len(dims)):
        np.testing.assert_allclose(out[m].numpy(), r[m], rtol=1e-10, atol=1e-12)


def test_used_query_projection_is_trained():
    dims, K = (8, 6), 10
    fusion = ReleasedFusion(dims, seq_len=K, dropout=0.0, use_query=True)
    sum(o.pow(2).sum() for o in fusion(_inputs(2, K, dims, dtype=torch.float32))).backward()
    for name, p in fusion.named_parameters():
        assert p.requires_grad and p.grad is not None and p.grad.abs().sum() > 0, name


def test_return_all_and_compute_query():
    torch.manual_seed(0)
    dims, K = (4, 3, 2), 5
    fusion = ReleasedFusion(dims, seq_len=K, num_layers=2).eval()
    xs = _inputs(2, K, dims, dtype=torch.float32)
    out, extras = fusion(xs, return_all=True)
    assert len(extras["features"]) == 2
    assert [tuple(c.shape) for c in extras["maps"][0]["C"]] == [(2, d_m, sum(dims)) for d_m in dims]
    assert [tuple(h.shape) for h in extras["maps"][0]["H"]] == [(2, K, sum(dims))] * 3
    assert all(torch.equal(a, b) for a, b in zip(out, extras["features"][-1]))
    fq = ReleasedFusion(dims, seq_len=K, num_layers=2, compute_query=True).eval()
    fq.load_state_dict(fusion.state_dict())
    assert all(torch.equal(a, b) for a, b in zip(out, fq(xs)))


def test_dropout_active_only_in_training():
    torch.manual_seed(0)
    dims, K = (8, 6, 4), 10
    fusion = ReleasedFusion(dims, seq_len=K, dropout=0.6)
    xs = _inputs(3, K, dims, dtype=torch.float32)
    fusion.train()
    a, b = fusion(xs), fusion(xs)
    assert not all(torch.equal(x, y) for x, y in zip(a, b))
    fusion.eval()
    a, b = fusion(xs), fusion(xs)
    assert all(torch.equal(x, y) for x, y in zip(a, b))


def test_gradients_reach_every_trainable_parameter():
    torch.manual_seed(0)
    dims, K = (8, 6, 4), 10
    fusion = ReleasedFusion(dims, seq_len=K, dropout=0.0)
    sum(o.pow(2).sum() for o in fusion(_inputs(2, K, dims, dtype=torch.float32))).backward()
    for name, p in fusion.named_parameters():
        if "query_linear" in name:  # computed and unused in the released code: frozen here
            assert not p.requires_grad and p.grad is None, name
        else:
            assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_errors():
    fusion = ReleasedFusion((8, 6, 4), seq_len=10)
    with pytest.raises(ValueError, match=r"\(B, 10, 8\).*\(2, 300, 8\)"):
        fusion([torch.zeros(2, 300, 8), torch.zeros(2, 300, 6), torch.zeros(2, 300, 4)])
    with pytest.raises(ValueError, match="expected 3 modalities"):
        fusion([torch.zeros(2, 10, 8), torch.zeros(2, 10, 6)])
    with pytest.raises(ValueError, match="at least 2"):
        ReleasedFusion((8,), seq_len=10)


def test_departures_table():
    md = departures_markdown()
    assert md.count("\n") == len(DEPARTURES) + 1
    assert "query_linear" in md and "Linear(300, 300)" in md


# ---- released checkpoints --------------------------------------------------------------------------------------


def _fake_released_model_state(fusion_sd, prefix="coattn."):
    """A whole-model state-dict in the layout of the released RCMA: the fusion under `coattn.`, plus other parts."""
    sd = {prefix + k: v.clone() for k, v in fusion_sd.items()}
    sd[prefix.replace("coattn.", "") + "regressor1.weight"] = torch.randn(256, 512)
    sd[prefix.replace("coattn.", "") + "temporal.video.network.0.conv1.bias"] = torch.randn(256)
    return sd


@pytest.mark.parametrize("prefix", ["", "coattn.", "module.coattn."])
@pytest.mark.parametrize("wrap", [None, "state_dict", "model_weights"])
def test_load_released_checkpoint_round_trip(tmp_path, prefix, wrap):
    dims, K = (16, 8, 8), 12
    src = ReleasedFusion(dims, seq_len=K)
    sd = _fake_released_model_state(src.state_dict(), prefix) if prefix else dict(src.state_dict())
    obj = {wrap: sd, "epoch": 3} if wrap else sd
    path = tmp_path / "model_state_dict0.55.pth"
    torch.save(obj, path)
    dst = ReleasedFusion(dims, seq_len=K)
    assert load_released_state_dict(dst, path) == prefix
    assert load_released_weights(ReleasedFusion(dims, seq_len=K), sd) == (prefix, [])  # no released part skipped
    for k, v in src.state_dict().items():
        assert torch.equal(v, dst.state_dict()[k]), k
    xs = _inputs(2, K, dims, dtype=torch.float32)
    src.eval(), dst.eval()
    assert all(torch.equal(a, b) for a, b in zip(src(xs), dst(xs)))


def test_load_released_checkpoint_errors(tmp_path):
    dims = (16, 8, 8)
    with pytest.raises(MissingAssetError, match="not found"):
        load_released_state_dict(ReleasedFusion(dims, seq_len=12), tmp_path / "nope.pth")
    # another K: the key linears are K x K
    path = tmp_path / "k20.pth"
    torch.save(_fake_released_model_state(ReleasedFusion(dims, seq_len=20).state_dict()), path)
    with pytest.raises(RjcmaError, match=r"k20.pth: coattn\.dcn_layers.*\(20, 20\).*\(12, 12\)"):
        load_released_state_dict(ReleasedFusion(dims, seq_len=12), path)
    # another number of layers
    path = tmp_path / "l1.pth"
    torch.save(ReleasedFusion(dims, seq_len=12, num_layers=1).state_dict(), path)
    with pytest.raises(RjcmaError, match="missing.*dcn_layers.1"):
        load_released_state_dict(ReleasedFusion(dims, seq_len=12, num_layers=2), path)
    # not a fusion checkpoint
    path = tmp_path / "other.pth"
    torch.save({"conv.weight": torch.zeros(3)}, path)
    with pytest.raises(RjcmaError, match="no released fusion weights"):
        load_released_state_dict(ReleasedFusion(dims, seq_len=12), path)
    # a pickle that is not weights-only is refused, not executed
    path = tmp_path / "evil.pth"
    torch.save({"obj": _NotWeights()}, path)
    with pytest.raises(RjcmaError, match="weights-only"):
        load_released_state_dict(ReleasedFusion(dims, seq_len=12), path)


class _NotWeights:
    pass
