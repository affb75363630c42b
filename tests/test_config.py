"""The config tree: unique leaf names, profiles, overrides and YAML round-trip."""

from collections import Counter
from dataclasses import fields

import pytest

from rjcma.config import PROFILES, Config, _section_classes, field_names, load_config
from rjcma.errors import RjcmaError


def test_leaf_names_are_unique_across_sections():
    counts = Counter(f.name for cls in _section_classes().values() for f in fields(cls))
    assert [k for k, v in counts.items() if v > 1] == []


@pytest.mark.parametrize("profile", sorted(PROFILES))
def test_profile_yaml_round_trip(profile, tmp_path):
    cfg = load_config(profile)
    cfg.save(tmp_path / "c.yaml")
    back = Config.from_yaml(tmp_path / "c.yaml")
    assert back == cfg and back.hash() == cfg.hash()


def test_k_is_defined_once_and_overrides_by_bare_or_dotted_name():
    cfg = load_config("demo", ["seq_len=64", "train.lr=0.5", "stride=32"])
    assert cfg.K == 64 == cfg.data.seq_len and cfg.train.lr == 0.5
    assert cfg.replace(tcn_visual="[8, 8]").model.tcn_visual == [8, 8]
    assert cfg.replace(share_weights="true").model.share_weights is True
    assert "seq_len" in field_names() and "corpus" in field_names()


@pytest.mark.parametrize(
    "sets",
    [["seq_len=1"], ["stride=0"], ["fusion=nonsense"], ["mode=fast"], ["min_lr=1.0"], ["no_such_field=1"], ["lr"]],
)
def test_bad_values_are_one_clear_error(sets):
    with pytest.raises(RjcmaError):
        load_config("demo", sets)


def test_unknown_profile_and_missing_file(tmp_path):
    with pytest.raises(RjcmaError, match="unknown profile"):
        load_config("nope")
    with pytest.raises(RjcmaError, match="not found"):
        Config.from_yaml(tmp_path / "missing.yaml")
