"""Joint cross-modal attention and its recursion (paper §3.4) against the loop-based float64 reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rjcma import reference as ref
from rjcma.models.attention import JointCrossModalAttention, RecursiveJointCrossModalAttention


pytestmark = pytest.mark.usefixtures("one_thread")


def _inputs(B, K, dims, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(B, K, d, generator=g, dtype=dtype) for d in dims]


# ---- shapes and contract ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("B", [1, 3])
@pytest.mark.parametrize("K", [1, 7, 32])
@pytest.mark.parametrize("dims", [(5, 3), (8, 6, 4), (4, 4, 4, 2)])
def test_block_shapes(B, K, dims):
    block = JointCrossModalAttention(dims, K)
    xs = _inputs(B, K, dims, dtype=torch.float32)
    feats, maps = block(xs, return_maps=True)
    assert [tuple(f.shape) for f in feats] == [(B, K, d) for d in dims]
    assert tuple(maps["J"].shape) == (B, K, sum(dims))
    assert [tuple(c.shape) for c in maps["C"]] == [(B, K, K)] * len(dims)
    assert [tuple(h.shape) for h in maps["H"]] == [(B, K, d) for d in dims]
    plain = block(xs)
    assert all(torch.equal(a, b) for a, b in zip(plain, feats))


def test_parameter_names_and_orientation():
    dims, K = (8, 6, 4), 11
    block = JointCrossModalAttention(dims, K)
    d = sum(dims)
    assert isinstance(block.joint_fc, torch.nn.Linear) and tuple(block.joint_fc.weight.shape) == (d, d)
    assert isinstance(block.W_j, torch.nn.ParameterList)
    assert [tuple(w.shape) for w in block.W_j] == [(d_m, d) for d_m in dims]
    assert [tuple(w.shape) for w in block.W_c] == [(K, K)] * 3
    assert [tuple(w.shape) for w in block.W_h] == [(K, K)] * 3
    keys = set(block.state_dict())
    assert {"joint_fc.weight", "joint_fc.bias", "W_j.0", "W_c.2", "W_h.1"} <= keys


@pytest.mark.parametrize("B", [1, 2])
@pytest.mark.parametrize("K", [5, 16])
@pytest.mark.parametrize("dims", [(6, 4), (8, 6, 4)])
@pytest.mark.parametrize("iterations", [1, 2, 4])
@pytest.mark.parametrize("share", [False, True])
def test_recursive_shapes(B, K, dims, iterations, share):
    rec = RecursiveJointCrossModalAttention(dims, K, num_iterations=iterations, share_weights=share)
    assert isinstance(rec.blocks, torch.nn.ModuleList)
    assert len(rec.blocks) == (1 if share else iterations)
    xs = _inputs(B, K, dims, dtype=torch.float32)
    out = rec(xs)
    assert tuple(out.shape) == (B, K, sum(dims))
    out2, extras = rec(xs, return_all=True)
    assert torch.equal(out, out2)
    assert len(extras["features"]) == iterations == len(extras["maps"])
    assert all([tuple(f.shape) for f in it] == [(B, K, d) for d in dims] for it in extras["features"])
    # eq. (14): the output is the last iteration's features concatenated in modality order
    assert torch.equal(out, torch.cat(extras["features"][-1], dim=-1))


def test_shared_weights_really_shared():
    rec = RecursiveJointCrossModalAttention((4, 3), 6, num_iterations=3, share_weights=True)
    n_shared = sum(p.numel() for p in rec.parameters())
    rec_sep = RecursiveJointCrossModalAttention((4, 3), 6, num_iterations=3, share_weights=False)
    assert sum(p.numel() for p in rec_sep.parameters()) == 3 * n_shared
    assert rec.block_at(1) is rec.block_at(3)


# ---- equations against the reference ----------------------------------------------------------------------------


@pytest.mark.parametrize("dims", [(5, 3), (6, 4, 3)])
@pytest.mark.parametrize("K", [1, 4, 7])
def test_block_matches_reference(dims, K):
    torch.manual_seed(1)
    block = JointCrossModalAttention(dims, K).double()
    with torch.no_grad():  # larger W_c so that the ReLU of eq. (5) is really exercised
        for w in block.W_c:
            w.mul_(K)
    xs = _inputs(2, K, dims, seed=2)
    with torch.no_grad():
        feats, maps = block(xs, return_maps=True)
    r = ref.jca_block_reference(xs, ref.params_of(block))
    for m in range(len(dims)):
        np.testing.assert_allclose(feats[m].numpy(), r["features"][m], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(maps["C"][m].numpy(), r["C"][m], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(maps["H"][m].numpy(), r["H"][m], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(maps["J"].numpy(), r["J"], rtol=1e-10, atol=1e-12)
    assert any((h == 0).any() and (h > 0).any() for h in r["H"])  # both ReLU branches were taken


def test_reference_single_example_layout():
    """The per-example functions use the paper's d_m × K layout; the block functions the module's."""
    torch.manual_seed(0)
    dims, K = (3, 2), 4
    block = JointCrossModalAttention(dims, K).double()
    xs = _inputs(1, K, dims)
    p = ref.params_of(block)
    X = [x[0].numpy().T for x in xs]  # paper layout (d_m, K)
    J = ref.joint_representation(X, p["W_fc"], p["b_fc"])
    assert J.shape == (sum(dims), K)
    C0 = ref.joint_cross_correlation(X[0], p["W_j"][0], J, sum(dims))
    assert C0.shape == (K, K)
    H0 = ref.attention_map(X[0], p["W_c"][0], C0)
    assert H0.shape == (dims[0], K)
    A0 = ref.attended_features(H0, p["W_h"][0], X[0])
    single = ref.jca_block_reference([x[0] for x in xs], p)
    np.testing.assert_allclose(single["features"][0], A0.T, rtol=1e-12)
    np.testing.assert_allclose(single["C"][0], C0, rtol=1e-12)


@pytest.mark.parametrize("share", [False, True])
@pytest.mark.parametrize("dims", [(4, 3), (5, 4, 3)])
def test_recursive_matches_reference(share, dims):
    torch.manual_seed(3)
    K = 5
    rec = RecursiveJointCrossModalAttention(dims, K, num_iterations=3, share_weights=share).double()
    xs = _inputs(2, K, dims, seed=4)
    with torch.no_grad():
        out, extras = rec(xs, return_all=True)
    r = ref.rjca_reference(xs, ref.params_of_recursive(rec))
    np.testing.assert_allclose(out.numpy(), r["X_att"], rtol=1e-10, atol=1e-12)
    for l in range(3):
        for m in range(len(dims)):
            np.testing.assert_allclose(extras["features"][l][m].numpy(), r["features"][l][m], rtol=1e-10, atol=1e-12)
            np.testing.assert_allclose(extras["maps"][l]["C"][m].numpy(), r["maps"][l]["C"][m], rtol=1e-10, atol=1e-12)


def test_iteration_feeds_previous_outputs():
    """Eqs (11)-(13): running the blocks by hand one after another gives the recursion's output."""
    torch.manual_seed(5)
    rec = RecursiveJointCrossModalAttention((4, 3, 2), 6, num_iterations=3)
    xs = _inputs(2, 6, (4, 3, 2), dtype=torch.float32)
    X = xs
    for b in rec.blocks:
        X = b(X)
    torch.testing.assert_close(rec(xs), torch.cat(X, dim=-1))


# ---- gradients, errors, scale ----------------------------------------------------------------------------------


@pytest.mark.parametrize("share", [False, True])
def test_gradients_reach_every_parameter(share):
    torch.manual_seed(6)
    rec = RecursiveJointCrossModalAttention((6, 5, 4), 8, num_iterations=2, share_weights=share)
    xs = [x.requires_grad_() for x in _inputs(2, 8, (6, 5, 4), dtype=torch.float32)]
    rec(xs).pow(2).sum().backward()
    for name, p in rec.named_parameters():
        assert p.grad is not None, name
        assert torch.isfinite(p.grad).all() and p.grad.abs().sum() > 0, name
    assert all(x.grad is not None and x.grad.abs().sum() > 0 for x in xs)


def test_gradcheck_block():
    torch.manual_seed(7)
    block = JointCrossModalAttention((3, 2), 4).double()
    xs = [x.requires_grad_() for x in _inputs(1, 4, (3, 2), seed=8)]
    assert torch.autograd.gradcheck(lambda a, b: torch.cat(block([a, b]), -1), tuple(xs))


def test_errors_name_shapes():
    block = JointCrossModalAttention((8, 6, 4), 10)
    with pytest.raises(ValueError, match=r"\(B, 10, 8\).*\(2, 9, 8\)"):
        block([torch.zeros(2, 9, 8), torch.zeros(2, 9, 6), torch.zeros(2, 9, 4)])
    with pytest.raises(ValueError, match=r"\(B, 10, 6\).*\(2, 10, 7\)"):
        block([torch.zeros(2, 10, 8), torch.zeros(2, 10, 7), torch.zeros(2, 10, 4)])
    with pytest.raises(ValueError, match="expected 3 modalities"):
        block([torch.zeros(2, 10, 8), torch.zeros(2, 10, 6)])
    with pytest.raises(ValueError, match="same batch"):
        block([torch.zeros(2, 10, 8), torch.zeros(3, 10, 6), torch.zeros(2, 10, 4)])
    with pytest.raises(ValueError, match="at least 2"):
        JointCrossModalAttention((8,), 10)
    with pytest.raises(ValueError, match="at least 2"):
        RecursiveJointCrossModalAttention([16], 10)
    with pytest.raises(ValueError, match="num_iterations"):
        RecursiveJointCrossModalAttention((8, 6), 10, num_iterations=0)
    rec = RecursiveJointCrossModalAttention((8, 6), 10)
    with pytest.raises(ValueError, match=r"\(B, 10, 8\)"):
        rec([torch.zeros(2, 300, 8), torch.zeros(2, 300, 6)])


@pytest.mark.parametrize("dims", [(256, 128, 128), (8, 6, 4)])
def test_activation_scale_at_init(dims):
    """At K = 300 with unit-normal inputs nothing saturates or explodes through l = 3 iterations."""
    torch.manual_seed(0)
    K = 300
    rec = RecursiveJointCrossModalAttention(dims, K, num_iterations=3)
    with torch.no_grad():
        _, extras = rec(_inputs(2, K, dims, dtype=torch.float32), return_all=True)
    for feats, maps in zip(extras["features"], extras["maps"]):
        for X, C, H in zip(feats, maps["C"], maps["H"]):
            assert 0.9 < X.std().item() < 1.6
            assert 0.3 < C.pow(2).mean().sqrt().item() < 0.8  # tanh in its working range, not saturated
            assert 0.2 < H.pow(2).mean().sqrt().item() < 1.0


def test_param_groups_cover_parameters_once():
    rec = RecursiveJointCrossModalAttention((4, 3), 9, num_iterations=2)
    groups = rec.param_groups(1e-3)
    ids = [id(p) for g in groups for p in g["params"]]
    assert sorted(ids) == sorted(id(p) for p in rec.parameters())
    assert groups[1]["lr"] == pytest.approx(1e-3 / 9)


def test_small_model_learns():
    """A few Adam steps reduce the error on a learnable toy mapping."""
    torch.manual_seed(0)
    dims, K = (6, 5, 4), 32
    rec = RecursiveJointCrossModalAttention(dims, K, num_iterations=3)
    head = torch.nn.Linear(sum(dims), 1)
    opt = torch.optim.Adam(rec.param_groups(3e-3) + [{"params": head.parameters(), "lr": 3e-3}])
    g = torch.Generator().manual_seed(1)
    xs = [torch.randn(4, K, d, generator=g) for d in dims]
    y = torch.tanh(xs[0][..., :1] - xs[2][..., 1:2])
    losses = []
    for _ in range(40):
        loss = (torch.tanh(head(rec(xs))) - y).pow(2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert np.isfinite(losses).all()
    assert np.mean(losses[-5:]) < 0.5 * np.mean(losses[:5])
