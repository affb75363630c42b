"""``load_config(profile, path=...)``: a YAML file applies on top of the profile (only the fields it names), then
``--set`` items on top of both; ``train.release_groups`` caps the released backbone groups."""

from __future__ import annotations

import pytest

from rjcma.config import PROFILES, Config, load_config
from rjcma.errors import RjcmaError


def test_yaml_applies_over_the_profile(tmp_path):
    f = tmp_path / "mine.yaml"
    f.write_text("train:\n  lr: 0.002\n  max_epochs: 3\nmodel:\n  fusion: concat\n")
    cfg = load_config("demo", path=f)
    assert cfg.train.lr == 0.002 and cfg.train.max_epochs == 3 and cfg.model.fusion == "concat"
    # everything the file does not name keeps the profile's value, not the dataclass default
    demo = load_config("demo")
    assert cfg.train.kk_lr_scale == PROFILES["demo"]["train"]["kk_lr_scale"] == demo.train.kk_lr_scale
    assert cfg.data.stride == demo.data.stride == 150 != Config().data.stride
    assert cfg.model.tcn_audio == demo.model.tcn_audio
    # and --set wins over the file
    assert load_config("demo", ["lr=0.5"], path=f).train.lr == 0.5


def test_yaml_profile_key(tmp_path):
    f = tmp_path / "paper.yaml"
    f.write_text("profile: paper\ntrain:\n  max_epochs: 2\n")
    cfg = load_config(path=f)  # no profile asked for: the file's
    assert cfg.profile == "paper" and cfg.train.max_epochs == 2 and cfg.train.mode == "end2end"
    with pytest.raises(RjcmaError, match="written for profile 'paper'"):
        load_config("demo", path=f)


def test_saved_config_round_trips(tmp_path):
    """A run's config.yaml (every field) loads back as exactly that config."""
    cfg = load_config("demo").replace(lr=3e-4, fold=2, fusion="jca", num_iterations=1)
    cfg.save(tmp_path / "config.yaml")
    assert load_config(path=tmp_path / "config.yaml") == cfg


def test_bad_yaml_files(tmp_path):
    with pytest.raises(RjcmaError, match="config file not found"):
        load_config("demo", path=tmp_path / "none.yaml")
    f = tmp_path / "bad.yaml"
    f.write_text("train: [1, 2\n")
    with pytest.raises(RjcmaError, match="not valid YAML"):
        load_config("demo", path=f)
    f.write_text("lr: 0.1\n")
    with pytest.raises(RjcmaError, match="expected sections"):
        load_config("demo", path=f)
    f.write_text("trian:\n  lr: 0.1\n")
    with pytest.raises(RjcmaError, match="unknown config section 'trian'"):
        load_config("demo", path=f)
    f.write_text("train:\n  learning_rate: 0.1\n")
    with pytest.raises(RjcmaError, match="learning_rate"):
        load_config("demo", path=f)


def test_release_groups_caps_the_released_groups():
    from rjcma.models.backbones import VGGish, seeded_init
    from rjcma.models.rjcma import build_model
    from rjcma.train.trainable import layer_groups, release_count

    cfg = load_config("demo").replace(seq_len=4, stride=2, fusion="unimodal:audio", modalities=["audio"])
    model = build_model(cfg, {"audio": seeded_init(VGGish(), 0)})
    assert len(layer_groups(model)) == 3  # paper §4.2.2: three groups per backbone
    assert release_count(model, cfg) == 3
    assert release_count(model, cfg.replace(release_groups=1)) == 1
    assert release_count(model, cfg.replace(release_groups=5)) == 3
    assert release_count(build_model(cfg), cfg) == 0  # cached mode: no backbone
