"""The training schedule (paper §4.2.2) on fake metric sequences: warm-up, plateau, release, stop."""

from __future__ import annotations

import json

import pytest
import torch

from rjcma.train.recipe import Recipe, simulate


def _recipe(**kw):
    base = dict(lr=1e-5, min_lr=1e-8, warmup_epochs=2, patience=1, factor=0.1, early_stop=50, max_epochs=100, groups=3)
    base.update(kw)
    return Recipe(**base)


def test_warmup_ramps_within_epoch_then_constant():
    rows = simulate(_recipe(warmup_epochs=2), [0.1, 0.2, 0.3], n_steps=4)
    assert rows[0]["lrs"] == pytest.approx([2.5e-6, 5e-6, 7.5e-6, 1e-5])
    assert rows[1]["lrs"] == pytest.approx([2.5e-6, 5e-6, 7.5e-6, 1e-5])  # repetitive warm-up
    assert rows[2]["lrs"] == pytest.approx([1e-5] * 4)  # warm-up over
    assert rows[0]["events"][0] == "best"


def test_plateau_matches_torch_reduce_lr_on_plateau():
    """After the warm-up our plateau logic is ReduceLROnPlateau(mode=max, threshold=0) with the lr floor."""
    scores = [0.1, 0.2, 0.3, 0.3, 0.25, 0.31, 0.2, 0.2, 0.2, 0.4, 0.1, 0.1, 0.1]
    rec = _recipe(warmup_epochs=0, patience=2, factor=0.5, min_lr=1e-9, groups=0, early_stop=100)
    p = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([p], lr=1e-5)
    sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="max", patience=2, factor=0.5, threshold=0.0, min_lr=1e-9)
    rec.start()
    for s in scores:
        d = rec.end_epoch(s)
        sched.step(s)
        assert d.lr_next == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9)


def test_release_when_lr_at_floor_resets_lr_and_counters():
    # lr 1e-5 -> 1e-6 -> 1e-7 -> 1e-8 (floor) -> next reduction due -> release group 1
    rec = _recipe(warmup_epochs=1, patience=1)
    scores = [0.5] + [0.1] * 40
    rows = simulate(rec, scores, n_steps=2)
    releases = [(r["epoch"], r["release"]) for r in rows if r["release"] is not None]
    assert releases[0] == (9, 1)  # epoch 1 sets the new scheduler's best; 2 bad epochs per reduction
    ev = [e for r in rows for e in r["events"] if e.startswith("plateau")]
    assert ev[:3] == ["plateau:1e-06", "plateau:1e-07", "plateau:1e-08"]
    # after the release: lr back to 1e-5 with warm-up in the next epoch
    after = rows[10]
    assert after["lrs"] == pytest.approx([5e-6, 1e-5])
    # three groups: release 1 and 2, then stop because nothing is left
    assert [r for _, r in releases] == [1, 2]
    assert rows[-1]["stop"] and "nothing left to release" in rec.stop_reason


def test_release_reloads_best_and_resets_early_stop():
    rec = _recipe(warmup_epochs=0, patience=0, min_lr=1e-5, early_stop=3)  # at floor from the start
    rec.start()
    d0 = rec.end_epoch(0.5)
    assert d0.improved and not d0.reload_best
    d1 = rec.end_epoch(0.4)  # bad epoch, patience 0 -> reduction due at floor -> release group 1
    assert d1.release == 1 and d1.reload_best and rec.since_best == 0 and not d1.stop
    d2 = rec.end_epoch(0.6)
    assert d2.improved and d2.release is None and rec.best_epoch == 2


def test_best_state_reloaded_every_non_improving_epoch():
    rec = _recipe(warmup_epochs=100)
    rec.start()
    flags = [(d.improved, d.reload_best) for d in (rec.end_epoch(s) for s in [0.1, 0.05, 0.2, 0.2, 0.3])]
    assert flags == [(True, False), (False, True), (True, False), (False, True), (True, False)]


def test_early_stop_and_max_epochs():
    rec = _recipe(warmup_epochs=100, early_stop=3)
    rows = simulate(rec, [0.5, 0.1, 0.1, 0.1, 0.1])
    assert len(rows) == 4 and rows[-1]["stop"] and "early stop" in rec.stop_reason
    rec = _recipe(max_epochs=3, warmup_epochs=100)
    rows = simulate(rec, [0.1, 0.2, 0.3, 0.4])
    assert len(rows) == 3 and "max epochs" in rec.stop_reason


def test_cached_mode_degrades_to_plateau_and_stop():
    rec = _recipe(groups=0, warmup_epochs=0, patience=0, lr=1e-3, min_lr=1e-5)
    rows = simulate(rec, [0.5, 0.1, 0.1, 0.1, 0.1])
    assert rec.released == 0
    events = [e for r in rows for e in r["events"]]
    assert "plateau:0.0001" in events and "plateau:1e-05" in events
    assert rows[-1]["stop"] and "nothing left to release" in rec.stop_reason and len(rows) == 4


def test_state_dict_roundtrip_is_json_and_resumes_identically():
    scores = [0.1, 0.3, 0.2, 0.2, 0.25, 0.1, 0.1, 0.1, 0.4, 0.1, 0.1]
    full = _recipe(warmup_epochs=1, patience=1, min_lr=1e-6)
    full.start()
    ref = [full.end_epoch(s) for s in scores]
    part = _recipe(warmup_epochs=1, patience=1, min_lr=1e-6)
    part.start()
    [part.end_epoch(s) for s in scores[:5]]
    blob = json.dumps(part.state_dict())
    resumed = _recipe()
    resumed.load_state_dict(json.loads(blob))
    rest = [resumed.end_epoch(s) for s in scores[5:]]
    assert [(d.lr_next, d.release, d.stop, d.events) for d in rest] == [
        (d.lr_next, d.release, d.stop, d.events) for d in ref[5:]
    ]
