"""Configs: one YAML per paper with named presets, composed with OmegaConf and overridden from the CLI.

A paper's ``configs.yaml`` has a ``defaults`` block that declares every key, and named blocks (presets)
that override some of them. ``load_config(path, ["small"], ["train.lr=1e-3"])`` merges
``defaults <- small <- overrides``. Keys are strict: a preset or override that names a key the defaults do
not declare is an error that names the key, never a silent no-op.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException


class ConfigError(ValueError):
    """A config problem the user can fix: unknown preset, unknown key, bad value."""


def preset_names(path: str | Path) -> list[str]:
    """The presets a config file offers (every top-level block but ``defaults``)."""
    raw = OmegaConf.load(path)
    return [name for name in raw.keys() if name != "defaults"]


def load_config(path: str | Path, presets: Sequence[str] = (), overrides: Sequence[str] = ()) -> DictConfig:
    """Merge ``defaults``, then each named preset in order, then ``key=value`` overrides."""
    path = Path(path)
    if not path.exists():
        raise ConfigError(f"config file not found: {path}")
    raw = OmegaConf.load(path)
    if "defaults" not in raw:
        raise ConfigError(f"{path} has no 'defaults' block")
    defaults = OmegaConf.create(OmegaConf.to_container(raw.defaults))
    config = defaults
    OmegaConf.set_struct(config, True)
    valid = preset_names(path)
    for name in presets:
        if name not in valid:
            raise ConfigError(f"unknown preset {name!r} in {path.name}; valid presets: {', '.join(valid)}")
        config = _merge(config, raw[name], f"preset {name!r}")
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form key=value")
        key = item.split("=", 1)[0].strip()
        config = _merge(config, OmegaConf.from_dotlist([item]), f"override {key!r}")
    _check_types(defaults, config)
    OmegaConf.set_readonly(config, True)
    return config


def _merge(base: DictConfig, update: DictConfig, where: str) -> DictConfig:
    try:
        merged = OmegaConf.merge(base, update)
    except OmegaConfBaseException as error:
        key = getattr(error, "full_key", None) or "?"
        raise ConfigError(f"{where}: unknown or invalid config key {key!r} ({type(error).__name__}: "
                          f"{str(error).splitlines()[0]})") from None
    OmegaConf.set_struct(merged, True)
    return merged


def _check_types(defaults: DictConfig, config: DictConfig, prefix: str = "") -> None:
    """A value keeps the type its default declares (an int may stand for a float; a null default takes any)."""
    for key, default in defaults.items():
        value, name = config[key], f"{prefix}{key}"
        if isinstance(default, DictConfig):
            if not isinstance(value, DictConfig):
                raise ConfigError(f"config key {name!r} must be a mapping, got {value!r}")
            _check_types(default, value, f"{name}.")
        elif _integral_float_for_int(default, value):
            config[key] = int(value)  # `--set run.steps=1e5` means the int 100000
        elif default is not None and value is not None and not _same_kind(default, value):
            raise ConfigError(f"config key {name!r} expects {type(default).__name__} (default {default!r}), "
                              f"got {value!r}")


def _integral_float_for_int(default: object, value: object) -> bool:
    return (isinstance(default, int) and not isinstance(default, bool) and isinstance(value, float)
            and value.is_integer())


def _same_kind(default: object, value: object) -> bool:
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, float):
        return isinstance(value, (int, float))
    if isinstance(default, (list, tuple)) or type(default).__name__ == "ListConfig":
        return type(value).__name__ in ("ListConfig", "list", "tuple")
    return isinstance(value, type(default))


def to_yaml(config: DictConfig) -> str:
    return OmegaConf.to_yaml(config, resolve=True)
