"""Configuration: load config/config.yaml-style files and validate them with the workflow schema.

The same JSON schema (workflow/schemas/config.schema.yaml) is used by Snakemake's
``validate`` and by the CLI, so a bad value gets the same clear message either way.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jsonschema
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO_ROOT / "workflow" / "schemas" / "config.schema.yaml"
DEFAULT_CONFIG = REPO_ROOT / "config" / "config.yaml"


class ConfigError(ValueError):
    """Invalid configuration, with the offending key in the message."""


def load_config(path: str | Path = DEFAULT_CONFIG, overrides: dict[str, Any] | None = None) -> dict:
    """Read a YAML config, apply top-level overrides, validate, and return it."""
    with open(path) as fh:
        cfg = yaml.safe_load(fh) or {}
    cfg.update(overrides or {})
    validate_config(cfg)
    return cfg


def validate_config(cfg: dict) -> None:
    """Raise :class:`ConfigError` naming the key when ``cfg`` does not match the schema."""
    with open(SCHEMA_PATH) as fh:
        schema = yaml.safe_load(fh)
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(cfg), key=lambda e: list(e.path))
    if errors:
        msgs = [f"{'.'.join(map(str, e.path)) or '(top level)'}: {e.message}" for e in errors]
        raise ConfigError("invalid configuration:\n  " + "\n  ".join(msgs))
