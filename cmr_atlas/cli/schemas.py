"""``cmr-atlas schemas``: print the documented table schemas."""

from __future__ import annotations

import argparse

from cmr_atlas.core.tables import registered, schemas_markdown


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--markdown", action="store_true", help="full markdown (docs/outputs.md)")


def run(args: argparse.Namespace) -> int:
    if args.markdown:
        print(schemas_markdown())
    else:
        for s in registered():
            print(f"{s.group}/{s.name}: {s.description.split('.')[0]} ({len(s.columns)} columns)")
    return 0
