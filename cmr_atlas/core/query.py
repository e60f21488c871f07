"""DuckDB SQL over a results folder (the ``cmr-atlas query`` command is :mod:`cmr_atlas.cli.query`).

Every ``*.parquet`` under the folder becomes a view named after its path with ``/`` replaced by
``_`` (``atlas/scores.parquet`` -> ``atlas_scores``), so ``SELECT * FROM measures`` just works.
"""

from __future__ import annotations

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


def query(results_dir: str | Path, sql: str, csv: bool = False) -> str:
    """The result of ``sql`` over ``results_dir`` as printable text: an aligned table, or CSV."""
    df = connect(results_dir).execute(sql).df()
    return df.to_csv(index=False) if csv else df.to_string(index=False)
