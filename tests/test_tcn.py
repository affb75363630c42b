"""TCN (models/tcn.py, as the released code): shapes, causality, receptive field, weight-norm parametrizations, residuals."""

from __future__ import annotations

import pytest
import torch
from torch.nn.utils import parametrize

from rjcma.models.tcn import RELEASED_TCN_CHANNELS, TemporalConvNet, receptive_field


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("B,K", [(1, 7), (3, 32)])
@pytest.mark.parametrize("in_dim,channels", [(5, [8]), (6, [4, 4]), (16, [8, 8, 3])])
@pytest.mark.parametrize("kernel", [2, 5])
def test_shapes(B, K, in_dim, channels, kernel):
    tcn = TemporalConvNet(in_dim, channels, kernel_size=kernel, dropout=0.1)
    y = tcn(torch.randn(B, K, in_dim))
    assert y.shape == (B, K, channels[-1])
    assert tcn.out_dim == channels[-1]
    y, levels = tcn(torch.randn(B, K, in_dim), return_levels=True)
    assert [lv.shape for lv in levels] == [(B, K, c) for c in channels]


def test_receptive_field_formula():
    assert [receptive_field(5, L) for L in range(5)] == [1, 9, 25, 57, 121]
    assert receptive_field(2, 3) == 1 + 2 * 1 * 7
    with pytest.raises(ValueError):
        receptive_field(0, 2)


@pytest.mark.parametrize("kernel,channels", [(5, [4, 4]), (3, [3, 5, 2])])
def test_causal_and_receptive_field_exact(kernel, channels):
    """Output t depends on inputs t-R+1..t only: later inputs never matter, earlier ones stop mattering at R."""
    torch.manual_seed(0)
    K, d = 80, 3
    tcn = TemporalConvNet(d, channels, kernel_size=kernel, dropout=0.5).double().eval()
    x = torch.randn(1, K, d, dtype=torch.double, requires_grad=True)
    t = 70
    tcn(x)[0, t].sum().backward()
    touched = (x.grad[0].abs().sum(-1) > 0).nonzero().flatten().tolist()
    R = receptive_field(kernel, len(channels))
    assert tcn.receptive_field == R
    assert max(touched) == t, "output depends on a future input"
    assert min(touched) == t - R + 1, f"receptive field {t - min(touched) + 1} != {R}"
    # the same by perturbation: changing x after t leaves outputs <= t unchanged
    with torch.no_grad():
        x2 = x.detach().clone()
        x2[0, t + 1 :] += torch.randn_like(x2[0, t + 1 :]) * 10
        y1, y2 = tcn(x.detach()), tcn(x2)
    torch.testing.assert_close(y1[0, : t + 1], y2[0, : t + 1], rtol=0, atol=0)
    assert not torch.allclose(y1[0, t + 1 :], y2[0, t + 1 :])


def test_dilations_and_weight_norm_parametrizations():
    tcn = TemporalConvNet(6, [4, 4, 8], kernel_size=5)
    assert [lv.dilation for lv in tcn.levels] == [1, 2, 4]
    for lv in tcn.levels:
        for conv in (lv.conv1, lv.conv2):
            assert parametrize.is_parametrized(conv, "weight")
            names = {n for n, _ in conv.named_parameters()}
            assert names == {"bias", "parametrizations.weight.original0", "parametrizations.weight.original1"}
            g = conv.parametrizations.weight.original0
            v = conv.parametrizations.weight.original1
            # weight = g * v / ||v|| per output channel
            w = g * v / v.flatten(1).norm(dim=1).view(-1, 1, 1)
            torch.testing.assert_close(conv.weight, w)
            assert conv.padding == ((5 - 1) * lv.dilation,)
    # 1x1 residual convolution only where the width changes (6->4 and 4->8, not 4->4)
    assert [lv.downsample is not None for lv in tcn.levels] == [True, False, True]
    assert tcn.levels[0].downsample.kernel_size == (1,)


def test_gradients_reach_all_parameters():
    tcn = TemporalConvNet(5, [4, 6], kernel_size=3)
    tcn(torch.randn(2, 20, 5)).pow(2).sum().backward()
    for n, p in tcn.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, n


def test_bad_input_raises():
    tcn = TemporalConvNet(5, [4])
    with pytest.raises(ValueError, match=r"\(B, K, 5\).*\(2, 10, 6\)"):
        tcn(torch.randn(2, 10, 6))
    with pytest.raises(ValueError):
        TemporalConvNet(5, [])


def test_released_widths_build():
    tcn = TemporalConvNet(512, RELEASED_TCN_CHANNELS["visual"], kernel_size=5)
    assert tcn(torch.randn(1, 300, 512)).shape == (1, 300, 512)
    assert tcn.receptive_field == 121
