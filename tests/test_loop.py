"""Training loop: trainable-only updates, frozen backbones in eval, merge/metric plumbing, checkpoints,
the result folder, text statistics from training trials only (resume after kill -9 with identical metrics: see
test_interrupt.py)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from rjcma.errors import RjcmaError


def _batch(cfg, B=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    K = cfg.K
    b = {m: torch.randn(B, K, cfg.model.input_dim(m), generator=g) for m in cfg.model.modalities}
    b["labels"] = torch.rand(B, K, 2, generator=g) * 2 - 1
    b["labels"][:, :3] = float("nan")
    b["mask"] = torch.ones(B, K, dtype=torch.bool)
    b["mask"][0, -5:] = False
    return b


@pytest.fixture(scope="module")
def small_cfg():
    from rjcma.config import load_config

    return load_config("demo").replace(seq_len=16, stride=8, tcn_audio=[8], tcn_visual=[8], tcn_text=[8], head_hidden=8)


def test_one_step_changes_only_trainable_parameters(small_cfg):
    from rjcma.train.trainable import build_trainable, make_optimizer
    from rjcma.train.losses import ccc_loss

    model = build_trainable(small_cfg)
    frozen = [p for n, p in model.named_parameters() if n.startswith("tcn.audio")]
    for p in frozen:
        p.requires_grad_(False)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = make_optimizer(model, small_cfg, lr=1e-2)
    assert all(p.requires_grad for g in opt.param_groups for p in g["params"])
    b = _batch(small_cfg)
    model.train()
    loss = ccc_loss(model(b)["pred"], b["labels"], b["mask"])
    opt.zero_grad()
    loss.backward()
    opt.step()
    for n, p in model.named_parameters():
        changed = not torch.equal(before[n], p.detach())
        if n.startswith("tcn.audio"):
            assert not changed, f"frozen {n} changed"
    assert any(not torch.equal(before[n], p.detach()) for n, p in model.named_parameters() if p.requires_grad)


def test_frozen_batchnorm_stays_in_eval_mode():
    from rjcma.train.trainable import set_train_mode

    enc = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4), torch.nn.Linear(4, 4), torch.nn.BatchNorm1d(4))
    for p in enc.parameters():
        p.requires_grad_(False)
    for p in enc[3].parameters():  # the released group
        p.requires_grad_(True)
    holder = torch.nn.Module()
    holder.encoders = torch.nn.ModuleDict({"visual": enc})
    set_train_mode(holder, True)
    assert not enc[1].training and enc[3].training
    stats = enc[1].running_mean.clone()
    enc(torch.randn(8, 4))
    assert torch.equal(stats, enc[1].running_mean)  # frozen BN statistics do not drift (defect 8)


def test_merge_and_partition_metrics_plumbing():
    from rjcma.data.windows import take_window, window_starts
    from rjcma.metrics import ccc
    from rjcma.train.evaluation import merge_predictions, score_predictions

    rng = np.random.default_rng(0)
    K, stride = 10, 4
    lengths = {"a": 23, "b": 7}
    truth = {n: rng.uniform(-1, 1, (L, 2)).astype(np.float32) for n, L in lengths.items()}
    windows = {n: [(s, take_window(truth[n], s, K)[0]) for s in window_starts(L, K, stride)] for n, L in lengths.items()}
    merged = merge_predictions(windows, lengths, K)
    for n in lengths:
        np.testing.assert_allclose(merged[n], truth[n], atol=1e-6)
    labels = {n: truth[n] + rng.normal(0, 0.3, truth[n].shape).astype(np.float32) for n in lengths}
    labels["a"][:4] = np.nan
    m = score_predictions(merged, labels, ["valence", "arousal"])
    x = np.concatenate([merged["a"][:, 1], merged["b"][:, 1]])
    y = np.concatenate([labels["a"][:, 1], labels["b"][:, 1]])
    assert m["arousal"]["ccc"] == pytest.approx(ccc(x, y))  # all frames concatenated (ABAW)
    assert m["valence"]["per_trial"]["b"] == pytest.approx(ccc(merged["b"][:, 0], labels["b"][:, 0]))
    assert m["valence"]["frames"] == 23 + 7 - 4
    assert m["mean_ccc"] == pytest.approx((m["valence"]["ccc"] + m["arousal"]["ccc"]) / 2)


def test_checkpoint_roundtrip_and_mismatch_message(small_cfg, tmp_path):
    from rjcma.train.saved_model import load_model, save_model
    from rjcma.train.trainable import build_trainable

    model = build_trainable(small_cfg).eval()
    stats = {"mean": np.zeros(384, np.float32), "std": np.ones(384, np.float32)}
    save_model(model, small_cfg, tmp_path, stats)
    loaded, cfg2, ts = load_model(tmp_path, small_cfg)
    b = _batch(small_cfg)
    with torch.no_grad():
        torch.testing.assert_close(model(b)["pred"], loaded(b)["pred"])
    assert ts["std"].shape == (384,)
    with pytest.raises(RjcmaError, match=r"K: checkpoint 16 vs config 24"):
        load_model(tmp_path, small_cfg.replace(seq_len=24))
    with pytest.raises(RjcmaError, match=r"tcn"):
        load_model(tmp_path, small_cfg.replace(tcn_visual=[16]))


# ---- on the tiny store ---------------------------------------------------------------------------------------------
def test_text_statistics_come_from_training_trials_only(tiny_cfg, tiny_store):
    from rjcma.data.dataset import WindowDataset, compute_text_stats
    from rjcma.data.store import Store, feature_key
    from rjcma.data.folds import fold_split

    split = fold_split(tiny_cfg, 0)
    st = Store(tiny_store)
    tr = WindowDataset(st, split["train"], tiny_cfg, train=True)
    with pytest.raises(RjcmaError, match="TRAINING statistics"):
        WindowDataset(st, split["validation"], tiny_cfg, train=False)
    va = WindowDataset(st, split["validation"], tiny_cfg, train=False, text_stats=tr.text_stats)
    ref = compute_text_stats(st, split["train"], feature_key(tiny_cfg, "text"))
    np.testing.assert_allclose(va.text_stats["mean"], ref["mean"])
    item = va[0]
    K = tiny_cfg.K
    assert item["audio"].shape == (K, tiny_cfg.model.audio_dim) and item["labels"].shape == (K, 2)
    assert item["mask"].dtype == torch.bool


def test_end2end_items_crop_flip_and_scale(tiny_cfg, tiny_store):
    from rjcma.data.dataset import WindowDataset
    from rjcma.data.folds import fold_split
    from rjcma.data.windows import take_window

    cfg = tiny_cfg.replace(mode="end2end")
    split = fold_split(cfg, 0)
    tr = WindowDataset(tiny_store, split["train"], cfg, train=True)
    va = WindowDataset(tiny_store, split["validation"], cfg, train=False, text_stats=tr.text_stats)
    it = va[0]
    assert it["faces"].shape == (cfg.K, 3, 40, 40) and it["logmel"].shape == (cfg.K, 1, 96, 64)
    assert float(it["faces"].min()) >= -1.0 and float(it["faces"].max()) <= 1.0
    name, start = va.index[0]  # validation: the centre 40x40 of the 48x48 faces, not flipped, scaled to [-1, 1]
    faces = take_window(va.store.load(name, "faces"), start, cfg.K)[0][:, 4:44, 4:44]
    want = (faces.transpose(0, 3, 1, 2).astype(np.float32) / 255.0 - 0.5) / 0.5
    torch.testing.assert_close(it["faces"], torch.from_numpy(want))
    tr.set_epoch(0)
    a = [tr[i]["faces"] for i in range(4)]
    tr.set_epoch(0)
    assert torch.equal(a[0], tr[0]["faces"])  # same (seed, epoch, window) -> same crop
    tr.set_epoch(1)
    assert any(not torch.equal(a[i], tr[i]["faces"]) for i in range(4))  # another epoch, other crops


def test_train_one_writes_result_folder_and_skips_when_complete(tiny_cfg, tiny_store, tmp_path, monkeypatch):
    from rjcma.train import loop
    from rjcma.train.loop import train_one

    cfg = tiny_cfg.replace(max_epochs=2)
    run = tmp_path / "run"
    m = train_one(cfg, run_dir=run, progress=False)
    for f in ("config.yaml", "metrics.json", "history.csv", "model.safetensors", "model.json", "train_state.pt"):
        assert (run / f).exists(), f
    preds = sorted((run / "predictions").glob("*.csv"))
    assert preds and preds[0].read_text().splitlines()[0] == "frame,valence,arousal"
    assert set(m["metrics"]) >= {"valence", "arousal", "mean_ccc"}
    assert m["environment"]["torch"] == torch.__version__ and m["config_hash"]
    hist = (run / "history.csv").read_text().splitlines()
    assert hist[0].startswith("epoch,lr,train_loss") and len(hist) == 3 and "no-backbone" in hist[1]
    def no_training(*a, **k):
        raise AssertionError("a complete run was trained again")

    monkeypatch.setattr(loop, "fit", no_training)
    said = []
    again = train_one(cfg, run_dir=run, progress=False, log=said.append)
    assert again == m and "skipped" in said[0]


def test_demo_is_float32_on_every_cpu_and_bf16_falls_back_where_not_native(monkeypatch):
    from rjcma import runtime
    from rjcma.config import load_config

    demo = load_config("demo")
    assert demo.train.mixed_precision == "no" and demo.preprocess.encoder_precision == "fp32"
    for native in (True, False):
        monkeypatch.setattr(runtime, "cpu_bf16", lambda native=native: native)
        # the demo's default: the same arithmetic whatever the CPU
        assert runtime.training_precision(demo.train.mixed_precision, cpu=True) == "no"
        assert runtime.encoder_precision(demo.preprocess.encoder_precision) == "fp32"
        # auto follows the CPU
        assert runtime.training_precision("auto", cpu=True) == ("bf16" if native else "no")
        assert runtime.encoder_precision("auto") == ("bf16" if native else "fp32")
        # bf16 asked for: kept where native, else one warning and float32
        bf16 = demo.with_sets(["mixed_precision=bf16"]).train.mixed_precision
        if native:
            assert runtime.training_precision(bf16, cpu=True) == "bf16"
            assert runtime.encoder_precision("bf16") == "bf16"
        else:
            with pytest.warns(runtime.EmulatedBf16Warning, match="no native bf16.*bf16-emulated"):
                assert runtime.training_precision(bf16, cpu=True) == "no"
            with pytest.warns(runtime.EmulatedBf16Warning, match="slower"):
                assert runtime.encoder_precision("bf16") == "fp32"
        # forced emulation is kept on any CPU (resolved only: no test computes in emulated bf16)
        forced = demo.with_sets(["mixed_precision=bf16-emulated", "encoder_precision=bf16-emulated"])
        assert runtime.training_precision(forced.train.mixed_precision, cpu=True) == "bf16"
        assert runtime.encoder_precision(forced.preprocess.encoder_precision) == "bf16"
    assert demo.with_sets(["mixed_precision=fp32"]).train.mixed_precision == "no"
    assert demo.with_sets(["mixed_precision=no"]).train.mixed_precision == "no"
    assert load_config("paper").train.mixed_precision == "bf16"  # the paper's recipe on a GPU
    with pytest.raises(RjcmaError, match="'no', 'bf16', 'bf16-emulated' or 'auto'"):
        demo.with_sets(["mixed_precision=fp16"])
    with pytest.raises(RjcmaError, match="fp32, bf16, bf16-emulated or auto"):
        demo.with_sets(["encoder_precision=fp16"])


def test_runs_of_two_precisions_in_one_process(tiny_cfg, tiny_store, tmp_path, monkeypatch):
    """Accelerate allows one precision per process; a notebook or a test session trains fp32 and bf16 runs in turn.
    (Only the accelerators are made: bf16 is resolved as on a CPU with native bf16, nothing computes in it.)"""
    from rjcma import runtime
    from rjcma.train.run import make_accelerator

    monkeypatch.setattr(runtime, "cpu_bf16", lambda: True)
    for mp in ("no", "bf16", "no"):
        acc = make_accelerator(tiny_cfg.with_sets([f"mixed_precision={mp}"]))
        assert str(acc.mixed_precision) == mp
