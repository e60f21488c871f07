"""``cmr-atlas config [CONFIG] [--set KEY=VALUE ...]``: validate a workflow config and print it with
every default filled in (the defaults live in cmr_atlas/core/config.schema.yaml only)."""

from __future__ import annotations

import argparse
import sys

import yaml

from cmr_atlas.core.config import (
    ConfigError,
    apply_overrides,
    defaults,
    fill_and_validate,
    load_config,
    parse_override,
    required_keys,
)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("config", nargs="?",
                   help="config file (YAML), e.g. config/config.yaml; without it and without --set, "
                        "print every default")
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override one key, dotted for a block (stats.n_pcs=5); VALUE is read as YAML")


def run(args: argparse.Namespace) -> int:
    try:
        overrides = dict(parse_override(s) for s in args.overrides)
        if args.config:
            cfg, header = load_config(args.config, overrides), f"# {args.config}: valid"
        elif overrides:
            cfg, header = fill_and_validate(apply_overrides({}, overrides)), "# --set values: valid"
        else:
            cfg = defaults()
            header = f"# every default; required keys without one: {', '.join(required_keys())}"
    except ConfigError as exc:
        print(f"cmr-atlas config: {exc}", file=sys.stderr)
        return 2
    print(header + (", defaults filled in" if args.config or overrides else ""))
    print(yaml.safe_dump(cfg, sort_keys=False, default_flow_style=False), end="")
    return 0
