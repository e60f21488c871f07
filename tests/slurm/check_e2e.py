"""Checks of tests/slurm/run-slurm-e2e.sh: the jobs went through sbatch, and the tables of the
Slurm run equal those of the local run.  Prints what it found; exit 1 on any failure."""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd

# Tables compared, with their key columns (rows sorted by them before comparing).
TABLES = {
    "exams.parquet": ["exam_id"],
    "series.parquet": ["exam_id", "series_index"],
    "slices.parquet": ["exam_id", "view", "slice_index"],
    "guide_points.parquet": ["exam_id", "source", "phase", "view", "slice_index", "kind", "surface",
                             "landmark", "point_index"],
    "measures.parquet": ["exam_id", "source", "method"],
    "shapes.parquet": ["exam_id", "source", "phase", "surface", "point_index"],
    "atlas/scores.parquet": ["exam_id", "source"],
    "stats/risk_factor_auc.parquet": ["risk_factor", "source", "k"],
}
# Columns that legitimately differ between runs (none of the tables above has one today).
RUNTIME = re.compile(r"(seconds|_s$|elapsed|duration|timestamp|created|hostname|run_id)")


def submitted_jobs(log: str) -> dict[str, str]:
    """{slurm job id: rule or group} from the executor plugin's submission lines in Snakemake's log
    (its Slurm log folder is rule_<rule> or group_<group>)."""
    jobs = {}
    for m in re.finditer(r"Job \S+ has been submitted with SLURM jobid (\d+) \(log: ([^)]*)\)", log):
        name = re.search(r"(?:rule|group)_([A-Za-z0-9_]+)", m.group(2))
        jobs[m.group(1)] = name.group(1) if name else "?"
    return jobs


def compare(a: pd.DataFrame, b: pd.DataFrame, keys: list[str]) -> str | None:
    cols = [c for c in a.columns if not RUNTIME.search(c)]
    if list(a.columns) != list(b.columns):
        return f"columns differ: {sorted(set(a.columns) ^ set(b.columns))}"
    if len(a) != len(b):
        return f"{len(a)} rows vs {len(b)}"
    keys = [k for k in keys if k in a.columns]
    a = a[cols].sort_values(keys, na_position="first").reset_index(drop=True)
    b = b[cols].sort_values(keys, na_position="first").reset_index(drop=True)
    for c in cols:
        x, y = a[c], b[c]
        if pd.api.types.is_float_dtype(x):
            if not np.allclose(x.to_numpy(float), y.to_numpy(float), rtol=1e-6, atol=1e-6, equal_nan=True):
                return f"column {c}: max |diff| {np.nanmax(np.abs(x.to_numpy(float) - y.to_numpy(float))):.3g}"
        elif not x.astype(object).where(x.notna(), None).equals(y.astype(object).where(y.notna(), None)):
            return f"column {c} differs"
    return None


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--snakemake-log", required=True)
    ap.add_argument("--sacct", required=True, help="sacct -X -n -P --format=JobID,JobName,State,AllocTRES")
    ap.add_argument("--slurm-logs", required=True)
    ap.add_argument("--slurm-results", required=True)
    ap.add_argument("--local-results", required=True)
    a = ap.parse_args(argv)
    failures = []

    jobs = submitted_jobs(Path(a.snakemake_log).read_text())
    rules = sorted(set(jobs.values()))
    print(f"sbatch submissions: {len(jobs)} jobs, rules/groups: {', '.join(rules)}")
    # the shipped slurm profile groups the post-inference shard steps and the cohort steps
    # (a group's log folder is group_<group>_<its rules>)
    expected = {"ingest_shard", "infer_shard", "shard_post", "cohort"}
    missing = {e for e in expected if not any(r == e or r.startswith(e + "_") for r in rules)}
    if missing:
        failures.append(f"rules/groups not submitted through sbatch: {sorted(missing)}")

    acct = {}
    for line in Path(a.sacct).read_text().splitlines():
        parts = line.split("|")
        if len(parts) >= 4:
            acct[parts[0]] = (parts[2], parts[3])
    missing = [j for j in jobs if j not in acct]
    not_ok = {j: acct[j][0] for j in jobs if j in acct and acct[j][0] != "COMPLETED"}
    print(f"accounting: {len(acct)} jobs recorded, states {sorted({s for s, _ in acct.values()})}")
    if missing:
        failures.append(f"jobs without accounting record: {missing}")
    if not_ok:
        failures.append(f"jobs not COMPLETED: {not_ok}")
    gpu_jobs = [jobs[j] for j in jobs if j in acct and "gres/gpu=" in acct[j][1]]
    print(f"jobs allocated a GPU: {gpu_jobs}")
    if gpu_jobs != ["infer_shard"] * len(gpu_jobs) or not gpu_jobs:
        failures.append(f"expected the inference job (only) to hold a GPU, got {gpu_jobs}")

    logs = sorted(Path(a.slurm_logs).rglob("*.log"))
    print(f"Slurm job logs: {len(logs)} under {a.slurm_logs}")
    if len(logs) < len(jobs):
        failures.append(f"{len(logs)} Slurm logs for {len(jobs)} jobs")

    for table, keys in TABLES.items():
        ps, pl = Path(a.slurm_results) / table, Path(a.local_results) / table
        if not ps.is_file() or not pl.is_file():
            failures.append(f"{table}: missing ({ps.is_file()=}, {pl.is_file()=})")
            continue
        diff = compare(pd.read_parquet(ps), pd.read_parquet(pl), keys)
        n = len(pd.read_parquet(ps))
        print(f"{table}: {n} rows, {'equal' if diff is None else 'DIFFERENT: ' + diff}")
        if diff:
            failures.append(f"{table}: {diff}")

    for f in failures:
        print("FAIL:", f)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
