import pytest

from tools.config import ConfigError, load_config, preset_names

YAML = """
defaults:
  task: dmc_walker_walk
  train:
    lr: 1.0e-3
    batch: 50
small:
  train:
    batch: 4
gpu:
  train:
    lr: 3.0e-4
typo:
  train:
    bacth: 4
"""


@pytest.fixture
def path(tmp_path):
    file = tmp_path / "configs.yaml"
    file.write_text(YAML)
    return file


def test_presets_compose_in_order_and_overrides_win(path):
    config = load_config(path, ["small", "gpu"], ["train.lr=5e-5", "task=atari_pong"])
    assert config.train.batch == 4 and config.train.lr == 5e-5 and config.task == "atari_pong"
    assert preset_names(path) == ["small", "gpu", "typo"]


def test_unknown_override_key_is_named(path):
    with pytest.raises(ConfigError, match="train.lrr"):
        load_config(path, [], ["train.lrr=1"])


def test_unknown_key_inside_a_preset_is_named(path):
    with pytest.raises(ConfigError, match="bacth"):
        load_config(path, ["typo"])


def test_unknown_preset_lists_valid_ones(path):
    with pytest.raises(ConfigError, match="unknown preset 'tiny'.*small, gpu"):
        load_config(path, ["tiny"])


def test_malformed_override_and_missing_file(path, tmp_path):
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, [], ["train.lr"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")


def test_config_is_read_only(path):
    config = load_config(path, ["small"])
    with pytest.raises(Exception):
        config.train.batch = 3


def test_wrong_value_type_is_named(path):
    with pytest.raises(ConfigError, match="train.batch.*expects int"):
        load_config(path, [], ["train.batch=abc"])
    assert load_config(path, [], ["train.lr=1"]).train.lr == 1  # an int may stand for a float
    batch = load_config(path, [], ["train.batch=1e2"]).train.batch  # an integral float for an int
    assert batch == 100 and isinstance(batch, int)
    with pytest.raises(ConfigError, match="expects int"):
        load_config(path, [], ["train.batch=1.5"])
