"""Windows of K frames and their merge (paper §4.2.1: K = 300, stride 200; one window aligned to the end)."""

from __future__ import annotations

import numpy as np
import pytest

from rjcma.data.windows import index_windows, merge_windows, take_window, window_starts


@pytest.mark.parametrize(
    "n, K, stride, expected",
    [
        (1, 300, 200, [0]),  # shorter than K: one padded window
        (299, 300, 200, [0]),
        (300, 300, 200, [0]),  # exactly K
        (301, 300, 200, [0, 1]),  # one frame more: the extra window aligned to the end
        (700, 300, 200, [0, 200, 400]),  # regular starts reach the end exactly: no extra window
        (900, 300, 200, [0, 200, 400, 600]),
        (1000, 300, 200, [0, 200, 400, 600, 700]),  # long: regular starts + one aligned to the end
        (10, 4, 4, [0, 4, 6]),
        (12, 4, 4, [0, 4, 8]),  # exact multiple of the stride
        (10, 4, 1, list(range(7))),
    ],
)
def test_window_starts(n, K, stride, expected):
    assert window_starts(n, K, stride) == expected


def test_window_starts_cover_every_frame_and_fit():
    for n in range(1, 400, 7):
        starts = window_starts(n, 64, 48)
        covered = np.zeros(n, bool)
        for s in starts:
            covered[s : s + 64] = True
            assert s == 0 or s + 64 <= n  # only the first window of a short trial overhangs
        assert covered.all()
        assert starts == sorted(set(starts))


def test_window_starts_bad_arguments():
    with pytest.raises(ValueError):
        window_starts(0, 300, 200)
    with pytest.raises(ValueError):
        window_starts(10, 0, 1)


def test_take_window_pads_and_masks_short_trials():
    x = np.arange(10, dtype=np.float32).reshape(5, 2) + 1
    w, m = take_window(x, 0, 8)
    assert w.shape == (8, 2) and w.dtype == np.float32
    np.testing.assert_array_equal(w[:5], x)
    assert (w[5:] == 0).all()
    np.testing.assert_array_equal(m, [True] * 5 + [False] * 3)
    w, m = take_window(x, 3, 2)  # inside
    np.testing.assert_array_equal(w, x[3:5])
    assert m.all()
    faces = np.ones((3, 4, 4, 3), np.uint8)
    w, m = take_window(faces, 1, 4)
    assert w.shape == (4, 4, 4, 3) and w.dtype == np.uint8 and m.tolist() == [True, True, False, False]
    with pytest.raises(ValueError):
        take_window(x, 5, 2)


def test_take_window_reads_memory_maps(tmp_path):
    x = np.random.default_rng(0).normal(size=(1000, 3)).astype(np.float16)
    np.save(tmp_path / "x.npy", x)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    w, m = take_window(mm, 900, 300)
    assert isinstance(w, np.ndarray) and not isinstance(w, np.memmap)
    np.testing.assert_array_equal(w[:100], x[900:])
    assert m.sum() == 100


@pytest.mark.parametrize("n", [1, 7, 299, 300, 301, 600, 700, 1000, 1234])
@pytest.mark.parametrize("K, stride", [(300, 200), (32, 16), (50, 50), (5, 3)])
def test_merge_inverts_windowing(n, K, stride):
    seq = np.random.default_rng(n).normal(size=(n, 2))
    starts = window_starts(n, K, stride)
    windows = [take_window(seq, s, K)[0] for s in starts]
    np.testing.assert_array_equal(merge_windows(windows, starts, n, K), seq)


def test_merge_averages_overlaps():
    n, K = 10, 4
    starts = window_starts(n, K, 4)  # [0, 4, 6]: frames 6, 7 are covered twice
    preds = [np.full((K, 1), v, dtype=np.float32) for v in (1.0, 2.0, 4.0)]
    merged = merge_windows(preds, starts, n, K)
    assert merged.dtype == np.float32
    np.testing.assert_allclose(merged[:, 0], [1, 1, 1, 1, 2, 2, 3, 3, 4, 4])


def test_merge_ignores_padding_and_handles_1d():
    preds = [np.array([1.0, 2.0, 99.0, 99.0])]  # a 2-frame trial in a K=4 window
    np.testing.assert_array_equal(merge_windows(preds, [0], 2, 4), [1.0, 2.0])


def test_merge_errors():
    with pytest.raises(ValueError, match="covered by no window"):
        merge_windows([np.zeros((4, 1))], [0], 10, 4)
    with pytest.raises(ValueError, match="2 windows but 1 starts"):
        merge_windows([np.zeros((4, 1))] * 2, [0], 4, 4)
    with pytest.raises(ValueError, match="K=4"):
        merge_windows([np.zeros((3, 1))], [0], 3, 4)


def test_index_windows():
    idx = index_windows({"b": 1000, "a": 100}, 300, 200)
    assert idx == [("b", 0), ("b", 200), ("b", 400), ("b", 600), ("b", 700), ("a", 0)]
