"""``cmr-atlas query``: DuckDB SQL over a results folder.

Every ``*.parquet`` under the folder becomes a view named after its path with ``/`` replaced by
``_`` (``atlas/scores.parquet`` -> ``atlas_scores``), so ``SELECT * FROM measures`` just works.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import duckdb


def connect(results_dir: str | Path) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with one view per parquet table of ``results_dir``."""
    root = Path(results_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"results folder not found: {root}")
    con = duckdb.connect()
    for path in sorted(root.rglob("*.parquet")):
        rel = path.relative_to(root)
        if rel.parts[0] in ("shards", "cache"):
            continue  # per-shard intermediates: the cohort tables hold the same rows
        name = "_".join(rel.with_suffix("").parts).replace("-", "_")
        con.execute(f"CREATE VIEW \"{name}\" AS SELECT * FROM read_parquet('{path.as_posix()}')")
    return con


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("sql", help='SQL, e.g. "SELECT status, count(*) FROM exams GROUP BY 1"')
    p.add_argument("--results", default="results/demo", help="results folder (default results/demo)")
    p.add_argument("--csv", action="store_true", help="print CSV instead of a table")


def run(args: argparse.Namespace) -> int:
    con = connect(args.results)
    df = con.execute(args.sql).df()
    print(df.to_csv(index=False) if args.csv else df.to_string(index=False))
    return 0
