"""Configuration: the JSON schema that validates a config AND holds every default.

The schema (``config.schema.yaml`` beside this file, shipped as package data; the workflow's
``workflow/schemas/config.schema.yaml`` links to it) is read by Snakemake's ``validate`` with
``set_default=True`` and by :func:`load_config` here, so a bad value gets the same message either
way, and a default is written in the schema only: code reads the filled config or :func:`default`.
"""

from __future__ import annotations

import copy
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

SCHEMA_RESOURCE = "config.schema.yaml"


class ConfigError(ValueError):
    """Invalid configuration, with the offending key in the message."""


@lru_cache(maxsize=1)
def _schema_text() -> str:
    return resources.files("cmr_atlas.core").joinpath(SCHEMA_RESOURCE).read_text()


@lru_cache(maxsize=1)
def _parsed_schema() -> dict:
    # parsing the schema costs ~30 ms; per-exam code asks for defaults, so it is parsed once
    return yaml.load(_schema_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


def schema() -> dict:
    """The config schema (a fresh copy)."""
    return copy.deepcopy(_parsed_schema())


def _fill(cfg: dict, sch: dict) -> None:
    """Set missing keys of ``cfg`` to the schema's defaults, recursing into objects."""
    for key, sub in sch.get("properties", {}).items():
        if key not in cfg and "default" in sub:
            cfg[key] = copy.deepcopy(sub["default"])
        if isinstance(cfg.get(key), dict) and sub.get("type") == "object":
            _fill(cfg[key], sub)


@lru_cache(maxsize=1)
def _defaults() -> dict:
    cfg: dict = {}
    _fill(cfg, _parsed_schema())
    return cfg


def defaults() -> dict:
    """Every default of the schema as a config tree (no required key is invented; a fresh copy)."""
    return copy.deepcopy(_defaults())


def default(dotted: str) -> Any:
    """One default by dotted key, e.g. ``default("stats.n_pcs")``; KeyError names unknown keys.
    The value is a copy: changing it changes no later default."""
    node: Any = _defaults()
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(f"no default for config key {dotted!r}")
        node = node[part]
    return copy.deepcopy(node)


def with_defaults(cfg: dict) -> dict:
    """A copy of ``cfg`` with missing keys filled from the schema (not validated)."""
    out = copy.deepcopy(cfg)
    _fill(out, schema())
    return out


def required_keys() -> list[str]:
    """Top-level keys a config must set: required by the schema and without a default."""
    sch = schema()
    return [k for k in sch.get("required", []) if "default" not in sch["properties"].get(k, {})]


def parse_override(text: str) -> tuple[str, Any]:
    """``"stats.n_pcs=5"`` -> ``("stats.n_pcs", 5)``: the value is read as YAML (5, true, [a, b]),
    an empty value is the empty string."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"{text!r}: an override is KEY=VALUE (dotted KEY for a block: stats.n_pcs=5)")
    return key.strip(), (yaml.safe_load(value) if value.strip() else "")


def apply_overrides(cfg: dict, overrides: dict[str, Any]) -> dict:
    """Set each (dotted) key of ``overrides`` in ``cfg``, creating blocks as needed; returns ``cfg``."""
    for dotted, value in overrides.items():
        *blocks, leaf = dotted.split(".")
        node = cfg
        for i, part in enumerate(blocks):
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"{'.'.join(blocks[:i + 1])}: not a block, cannot set {dotted}")
        node[leaf] = value
    return cfg


def fill_and_validate(cfg: dict) -> dict:
    """A copy of ``cfg`` with every default filled, in the schema's key order; ConfigError names
    the first bad keys."""
    out = with_defaults(cfg)
    validate_config(out)
    return _schema_ordered(out, schema())


def _schema_ordered(cfg: dict, sch: dict) -> dict:
    """``cfg`` with keys in the order the schema lists them (recursing into blocks)."""
    props = sch.get("properties", {})
    keys = [k for k in props if k in cfg] + [k for k in cfg if k not in props]
    return {k: _schema_ordered(cfg[k], props[k]) if isinstance(cfg[k], dict) and k in props else cfg[k]
            for k in keys}


def load_config(path: str | Path, overrides: dict[str, Any] | None = None) -> dict:
    """Read a YAML config, apply (dotted) overrides, fill defaults, validate, and return it."""
    try:
        with open(path) as fh:
            cfg = yaml.safe_load(fh) or {}
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {path}") from None
    if not isinstance(cfg, dict):
        raise ConfigError(f"{path}: a config file holds a mapping of keys, not {type(cfg).__name__}")
    return fill_and_validate(apply_overrides(cfg, overrides or {}))


def validate_config(cfg: dict) -> None:
    """Raise :class:`ConfigError` naming the key when ``cfg`` does not match the schema."""
    import jsonschema  # here, not at the top: every per-shard job imports this module for default()

    errors = sorted(jsonschema.Draft202012Validator(schema()).iter_errors(cfg), key=lambda e: list(e.path))
    msgs = [f"{'.'.join(map(str, e.path)) or '(top level)'}: {e.message}" for e in errors]
    if not msgs:
        msgs = conflicts(cfg)
    if msgs:
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(msgs))


def conflicts(cfg: dict) -> list[str]:
    """Settings that are each valid but do not go together (on a config with every default filled)."""
    msgs = []
    if cfg.get("inference", {}).get("frames") == "ed_es" and cfg.get("fit", {}).get("all_frames"):
        msgs.append("inference.frames: ed_es runs the networks on the ED and ES images only, but "
                    "fit.all_frames (true) fits every frame: set fit.all_frames: false, or inference.frames: all")
    return msgs


def find_models_dir(models_dir: str | Path) -> Path:
    """The model folder: as given when it exists (absolute, or relative to the working folder),
    else relative to the source checkout this package runs from; FileNotFoundError names both."""
    p = Path(models_dir)
    if p.is_dir():
        return p
    checkout = Path(__file__).resolve().parents[2] / p
    if not p.is_absolute() and checkout.is_dir():
        return checkout
    tried = [str(p.resolve())] + ([str(checkout)] if not p.is_absolute() else [])
    raise FileNotFoundError(
        f"models folder {str(models_dir)!r} not found (looked in {', '.join(tried)}); "
        "set models_dir in the config or pass --models-dir")
