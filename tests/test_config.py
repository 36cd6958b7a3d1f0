from __future__ import annotations

from pathlib import Path

import pytest
from conftest import CONFIGS

from slotfill.config import BUNDLED, BUNDLED_ZH, Config, all_keys, apply_overrides, load_config
from slotfill.errors import ConfigError

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_at_least_the_required_configs_ship():
    names = {p.stem for p in SHIPPED}
    assert {"rnn", "jordan", "lstm", "gru", "birnn", "bilstm"} <= names


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.stem)
def test_every_shipped_config_validates_and_names_its_command(path: Path):
    cfg = load_config(path)
    assert cfg.data.path == (BUNDLED_ZH if path.stem.endswith("-zh") else BUNDLED)
    header = path.read_text().splitlines()[:4]
    assert any(f"Run: slotfill train {path.stem}" in line for line in header)


def test_the_shipped_configs_are_complete():
    """Each file sets every key, so that it documents the whole experiment."""
    import yaml
    for path in SHIPPED:
        raw = yaml.safe_load(path.read_text())
        keys = {f"{s}.{k}" for s, section in raw.items() for k in section}
        not_applicable = set()
        if raw["model"]["type"] not in ("rnn", "jordan"):
            not_applicable.add("model.nonlinearity")
        if raw["model"]["char"] == "none":
            not_applicable |= {"model.char_dim", "model.char_size"}
        if not raw["train"]["tensorboard"]:
            not_applicable.add("train.log_every")
        missing = set(all_keys()) - keys - not_applicable
        assert not missing, f"{path.name} lacks {sorted(missing)}"


def test_defaults_and_resolution(tmp_path, monkeypatch):
    cfg = Config.from_dict({})
    assert cfg.model.type == "lstm" and cfg.train.device == "auto"
    assert Config.from_dict({"model": {"type": "rnn"}}).model.nonlinearity == "tanh"
    monkeypatch.chdir(tmp_path)
    cfg = load_config(CONFIGS / "rnn.yaml", ["data.path=corpus"])
    assert cfg.data.path == str(tmp_path / "corpus")


def test_overrides_are_yaml_scalars():
    raw = {}
    apply_overrides(raw, ["model.hidden_size=256", "model.bidirectional=false",
                          "train.lr=1e-3", "model.nonlinearity=relu", "model.type=rnn"])
    cfg = Config.from_dict(raw)
    assert cfg.model.hidden_size == 256 and cfg.model.bidirectional is False
    assert cfg.train.lr == pytest.approx(0.001) and cfg.model.nonlinearity == "relu"


def test_int_accepted_where_float_expected():
    assert Config.from_dict({"train": {"lr": 1}}).train.lr == 1.0


def errors_of(raw) -> str:
    with pytest.raises(ConfigError) as info:
        Config.from_dict(raw)
    assert info.value.exit_code == 2
    return info.value.detail


def test_all_problems_reported_at_once_with_dotted_paths():
    detail = errors_of({
        "model": {"hiden_size": 10, "type": "transformer", "num_layers": 0,
                  "bidirectional": "yes"},
        "train": {"lr": "fast", "dropout": 0.2, "patience": -1},
        "trian": {},
    })
    assert "model.hiden_size: unknown key; did you mean model.hidden_size?" in detail
    assert "model.type: invalid choice 'transformer'; valid: rnn, jordan, lstm, gru" in detail
    assert "model.num_layers: must be >= 1" in detail
    assert "model.bidirectional: expected bool, got string 'yes'" in detail
    assert "train.lr: expected float" in detail
    assert "train.dropout: unknown key; did you mean model.dropout?" in detail
    assert "train.patience: must be >= 0" in detail
    assert "trian: unknown key; did you mean train?" in detail


def test_range_limits():
    assert "model.dropout: must be < 1.0" in errors_of(
        {"model": {"dropout": 1.0, "num_layers": 2}})
    assert "model.hidden_size: expected int, got boolean" in errors_of(
        {"model": {"hidden_size": True}})


def test_knob_that_does_not_apply_is_an_error():
    assert "model.nonlinearity: applies to rnn and jordan only, not lstm" in errors_of(
        {"model": {"type": "lstm", "nonlinearity": "relu"}})
    assert "model.dropout: acts between stacked layers" in errors_of(
        {"model": {"dropout": 0.5, "num_layers": 1}})


def test_section_must_be_a_mapping():
    assert "model: expected a mapping, got list" in errors_of({"model": [1, 2]})


@pytest.mark.parametrize("override", ["hidden_size", "=3", "model.=3", "a.b.c=1",
                                      "model.hidden_size=[1, 2]"])
def test_bad_overrides(override):
    with pytest.raises(ConfigError, match="Invalid override"):
        apply_overrides({}, [override])


def test_malformed_yaml_reports_line_and_column(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text("model:\n  type: lstm\n  hidden_size: [1, 2\n")
    with pytest.raises(ConfigError, match=r"Malformed YAML in .*bad.yaml at line \d+, column \d+"):
        load_config(path)


def test_missing_config_file(tmp_path):
    with pytest.raises(ConfigError, match="Config file not found"):
        load_config(tmp_path / "nope.yaml")


def test_yaml_round_trip():
    cfg = load_config(CONFIGS / "jordan.yaml")
    import yaml
    assert Config.from_dict(yaml.safe_load(cfg.to_yaml())) == cfg


def test_docs_describe_every_key_and_config():
    """The config reference is generated from the fields' help texts: each key has one,
    and the configs page lists every shipped config by name."""
    import dataclasses
    import importlib.util

    from slotfill.config import SECTIONS

    for cls in SECTIONS.values():
        for f in dataclasses.fields(cls):
            assert len(f.metadata["help"]) > 10, f.name
    spec = importlib.util.spec_from_file_location("gen_pages", CONFIGS.parent / "docs" /
                                                  "gen_pages.py")
    gen_pages = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(gen_pages)
    reference = gen_pages.config_reference()
    for key in all_keys():
        assert f"| `{key}` |" in reference, key
    page = (CONFIGS.parent / "docs" / "how-to" / "configs.md").read_text()
    for path in SHIPPED:
        assert f"| `{path.stem}` |" in page, path.name


def test_tensorboard_step_interval_applies_only_with_tensorboard():
    cfg = Config.from_dict({"train": {"tensorboard": True}})
    assert cfg.train.log_every == 50 and Config.from_dict({}).train.log_every is None
    with pytest.raises(ConfigError, match="train.log_every: applies only with"):
        Config.from_dict({"train": {"log_every": 10}})
