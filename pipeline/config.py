"""Pipeline configuration: packaged defaults + a user YAML + ``--set`` overrides, validated up front.

``configs/default.yaml`` is the one place where keys and defaults live; the type of every key is
the type of its default.  Validation happens before any Beam work starts, so a typo in a 3-hour
run's config fails in the first second with the dotted key that is wrong.
"""
from __future__ import annotations

import copy
import importlib.resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml


class ConfigError(ValueError):
    """A config key is unknown or has the wrong type; the message names the dotted key."""


def load_defaults() -> dict[str, Any]:
    text = importlib.resources.files("configs").joinpath("default.yaml").read_text(encoding="utf-8")
    data = yaml.safe_load(text) or {}
    if not isinstance(data, dict):
        raise ConfigError("configs/default.yaml must be a mapping")
    return data


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def _check_value(key: str, default: Any, value: Any) -> Any:
    """Return ``value`` if it fits the type of ``default``; raise ConfigError otherwise."""
    if default is None:  # null default: an optional string (a path, a model name)
        if value is None or isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}: expected a string or null, got {_type_name(value)} {value!r}")
    if isinstance(default, bool):  # before int: bool is a subclass of int
        if isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected true/false, got {_type_name(value)} {value!r}")
    if isinstance(default, int):
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise ConfigError(f"config key {key!r}: expected an integer, got {_type_name(value)} {value!r}")
    if isinstance(default, float):
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        raise ConfigError(f"config key {key!r}: expected a number, got {_type_name(value)} {value!r}")
    if isinstance(default, str):
        if isinstance(value, str):
            return value
        raise ConfigError(f"config key {key!r}: expected a string, got {_type_name(value)} {value!r}")
    if isinstance(default, list):
        if not isinstance(value, list):
            raise ConfigError(f"config key {key!r}: expected a list, got {_type_name(value)} {value!r}")
        # Element type: that of the default's elements, when the default has any.
        if default:
            return [_check_value(f"{key}[{i}]", default[0], v) for i, v in enumerate(value)]
        return list(value)
    if isinstance(default, dict):
        if not isinstance(value, dict):
            raise ConfigError(f"config key {key!r}: expected a mapping, got {_type_name(value)} {value!r}")
        return _merge(default, value, prefix=key + ".")
    raise ConfigError(f"config key {key!r}: unsupported default type {_type_name(default)}")


def _merge(defaults: Mapping[str, Any], user: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out = copy.deepcopy(dict(defaults))
    for k, v in user.items():
        dotted = f"{prefix}{k}"
        if not isinstance(k, str):
            raise ConfigError(f"config key {dotted!r}: keys must be strings")
        if k not in defaults:
            known = ", ".join(sorted(str(x) for x in defaults)) or "(none)"
            raise ConfigError(f"unknown config key {dotted!r} (known keys here: {known})")
        out[k] = _check_value(dotted, defaults[k], v)
    return out


def merge_config(defaults: Mapping[str, Any], user: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merge ``user`` into ``defaults``, validating every key against the default's type."""
    if user is None:
        return copy.deepcopy(dict(defaults))
    if not isinstance(user, Mapping):
        raise ConfigError(f"a config must be a mapping at the top level, got {_type_name(user)}")
    return _merge(defaults, user)


def parse_override(item: str) -> dict[str, Any]:
    """``"quality.min_chars=200"`` -> ``{"quality": {"min_chars": 200}}`` (value parsed as YAML)."""
    if "=" not in item:
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    dotted, raw = item.split("=", 1)
    parts = [p for p in dotted.strip().split(".")]
    if not dotted.strip() or any(not p for p in parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value")
    try:
        value = yaml.safe_load(raw) if raw.strip() else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"--set {item!r}: value is not valid YAML: {exc}") from None
    nested: dict[str, Any] = {parts[-1]: value}
    for p in reversed(parts[:-1]):
        nested = {p: nested}
    return nested


def _deep_update(base: dict[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    for k, v in upd.items():
        if isinstance(v, Mapping) and isinstance(base.get(k), dict):
            _deep_update(base[k], v)
        else:
            base[k] = copy.deepcopy(v)
    return base


def load_config(path: str | Path | None = None, overrides: Iterable[str] = ()) -> dict[str, Any]:
    """Defaults, then the YAML file at ``path``, then ``--set`` overrides; all validated."""
    user: dict[str, Any] = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"config file not found: {p}")
        try:
            loaded = yaml.safe_load(p.read_text(encoding="utf-8"))
        except yaml.YAMLError as exc:
            raise ConfigError(f"config file {p} is not valid YAML: {exc}") from None
        if loaded is None:
            loaded = {}
        if not isinstance(loaded, dict):
            raise ConfigError(f"config file {p}: top level must be a mapping, got {_type_name(loaded)}")
        user = loaded
    user = copy.deepcopy(user)
    for item in overrides:
        _deep_update(user, parse_override(item))
    return merge_config(load_defaults(), user)


def section(config: Mapping[str, Any], name: str) -> dict[str, Any]:
    return dict(config.get(name) or {})


def enabled(config: Mapping[str, Any], name: str) -> bool:
    return bool(section(config, name).get("enabled", True))
