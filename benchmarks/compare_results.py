"""Compare two results folders table by table: same schemas, same values.

The restructure check (issue "One house"): run the workflow on the same cohort before and after a
change that must not alter behaviour, then

    python benchmarks/compare_results.py RESULTS_BEFORE RESULTS_AFTER

Every cohort-level parquet table (per-shard intermediates, caches, logs and benchmark files are
skipped) is compared: column names and arrow types, row count, and values (strings and integers
exactly, floats to ``--rtol``/``--atol``, NaN equal to NaN; rows sorted by every column so row
order does not matter). Tables present only after the change are listed as additions; a table
missing after it, or any difference, makes the exit status 1.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq

SKIP_PARTS = {"shards", "cache", "logs", "benchmarks", "masks"}


def cohort_tables(root: Path) -> dict[str, Path]:
    """``{relative name: path}`` of the cohort-level parquet tables under ``root``."""
    out = {}
    for p in sorted(root.rglob("*.parquet")):
        rel = p.relative_to(root)
        if not SKIP_PARTS.intersection(rel.parts[:-1]):
            out[str(rel.with_suffix(""))] = p
    return out


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    keys = [c for c in df.columns if df[c].map(lambda v: isinstance(v, (str, int, float, bool, np.generic))
                                               or v is None).all()]
    return df.sort_values(keys, na_position="last", kind="mergesort").reset_index(drop=True) if keys else df


def compare_table(a: Path, b: Path, rtol: float, atol: float) -> list[str]:
    """Differences between two parquet files, as sentences (empty when they agree)."""
    ta, tb = pq.read_table(a), pq.read_table(b)
    if ta.schema.names != tb.schema.names:
        return [f"columns differ: {ta.schema.names} vs {tb.schema.names}"]
    problems = [f"column {f.name}: type {f.type} vs {g.type}" for f, g in zip(ta.schema, tb.schema)
                if not f.type.equals(g.type)]
    if ta.num_rows != tb.num_rows:
        return problems + [f"rows {ta.num_rows} vs {tb.num_rows}"]
    da, db = _sorted(ta.to_pandas()), _sorted(tb.to_pandas())
    for col in da.columns:
        x, y = da[col], db[col]
        if pd.api.types.is_float_dtype(x) and pd.api.types.is_float_dtype(y):
            xv, yv = x.to_numpy(float), y.to_numpy(float)
            bad = ~(np.isclose(xv, yv, rtol=rtol, atol=atol) | (np.isnan(xv) & np.isnan(yv)))
            if bad.any():
                diff = np.nanmax(np.abs(xv - yv)[bad]) if np.isfinite(xv[bad] - yv[bad]).any() else float("nan")
                problems.append(f"column {col}: {int(bad.sum())} values differ (max |diff| {diff:.3g})")
        else:
            same = (x.astype(object).where(x.notna(), None) == y.astype(object).where(y.notna(), None)) | (x.isna() & y.isna())
            if not bool(same.all()):
                problems.append(f"column {col}: {int((~same).sum())} values differ")
    return problems


def compare_results(before: Path, after: Path, rtol: float = 1e-9, atol: float = 1e-12) -> tuple[bool, list[str]]:
    """``(identical, report lines)`` for two results folders."""
    ta, tb = cohort_tables(before), cohort_tables(after)
    lines, ok = [], True
    for name in sorted(set(ta) | set(tb)):
        if name not in tb:
            ok = False
            lines.append(f"MISSING  {name}: only before")
        elif name not in ta:
            lines.append(f"ADDED    {name}: only after")
        else:
            problems = compare_table(ta[name], tb[name], rtol, atol)
            ok &= not problems
            rows = pq.read_metadata(ta[name]).num_rows
            lines.append(f"{'DIFFERS' if problems else 'same':8} {name} ({rows} rows)"
                         + "".join(f"\n           {p}" for p in problems))
    return ok, lines


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("before", type=Path)
    ap.add_argument("after", type=Path)
    ap.add_argument("--rtol", type=float, default=1e-9)
    ap.add_argument("--atol", type=float, default=1e-12)
    args = ap.parse_args(argv)
    ok, lines = compare_results(args.before, args.after, args.rtol, args.atol)
    print("\n".join(lines))
    print("identical" if ok else "DIFFERENT")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
