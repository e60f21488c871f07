"""``cmr-atlas query``: DuckDB SQL over a results folder's parquet tables (:mod:`cmr_atlas.core.query`)."""

from __future__ import annotations

import argparse

from cmr_atlas.core.query import query


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sql", help='SQL, e.g. "SELECT status, count(*) FROM exams GROUP BY 1"')
    p.add_argument("--results", default="results/demo", help="results folder (default results/demo)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def run(args: argparse.Namespace) -> int:
    print(query(args.results, args.sql, csv=args.csv))
    return 0
