"""End-to-end throughput of the workflow on this machine, per stage, from Snakemake's benchmark files.

    python benchmarks/throughput.py --cohort DIR [--results DIR] [--cores 2] [--shard-size 8]
                                    [--models-dir resources/models | --tiny-models]
    python benchmarks/throughput.py --report-only --results DIR --cohort DIR

Runs `snakemake --cores N` on an existing (synthetic) cohort (`cmr-atlas synth --n-exams 50 ...`),
then reads RESULTS/benchmarks/<rule>[/<shard>].tsv (written by the rules' `benchmark:` directives)
and prints, per rule: jobs, wall seconds summed over its jobs, seconds per exam, exams per hour of
one job slot, peak memory (max_rss, MiB) of its largest job; the whole run's wall time and exams
per hour; and the extrapolation to a 5,000-exam cohort on the same machine and on a cluster.

--tiny-models uses untrained 4-channel networks (tests/slurm/tiny_models.py): every stage runs, but
the inference figure is then not that of the shipped networks (and auto fits fail early).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PER_SHARD = ["ingest_shard", "infer_shard", "auto_guide_points_shard", "manual_guide_points_shard",
             "guide_points_shard", "fit_shard"]
COHORT_RULES = ["ingest", "covariates", "guide_points", "fit", "atlas", "stats", "report"]


def read_benchmarks(results: Path) -> pd.DataFrame:
    rows = []
    for tsv in sorted((results / "benchmarks").rglob("*.tsv")):
        rule = tsv.parent.name if tsv.parent.name != "benchmarks" else tsv.stem
        df = pd.read_csv(tsv, sep="\t")
        for _, r in df.iterrows():
            rows.append({"rule": rule, "job": tsv.stem, "s": float(r["s"]),
                         "max_rss_mib": pd.to_numeric(r.get("max_rss"), errors="coerce"),
                         "cpu_time_s": pd.to_numeric(r.get("cpu_time"), errors="coerce")})
    return pd.DataFrame(rows)


def n_exams(results: Path) -> tuple[int, int]:
    ex = pd.read_parquet(results / "exams.parquet")
    return len(ex), int((ex["status"] == "ok").sum())


def report(results: Path, wall_s: float | None, cores: int, target: int = 5000) -> None:
    bm = read_benchmarks(results)
    if bm.empty:
        sys.exit(f"no benchmark files under {results}/benchmarks")
    n, n_ok = n_exams(results)
    n_shards = bm[bm.rule == "ingest_shard"].shape[0]
    print(f"cohort: {n} exams ({n_ok} ingested ok), {n_shards} shards; {os.cpu_count()} CPUs, "
          f"load {os.getloadavg()[0]:.1f}")
    print(f"{'rule':28s} {'jobs':>4s} {'sum s':>9s} {'s/exam':>8s} {'exams/h':>9s} {'cpu s':>8s} "
          f"{'max_rss MiB':>11s}")
    per_exam_total = 0.0
    agg_total = 0.0
    for rule in PER_SHARD + COHORT_RULES:
        g = bm[bm.rule == rule]
        if g.empty:
            continue
        s = g["s"].sum()
        per = s / n
        if rule in PER_SHARD:
            per_exam_total += per
            rate = f"{3600 / per:9.0f}" if per > 0 else "        -"
        else:
            agg_total += s
            rate = "        -"
        print(f"{rule:28s} {len(g):4d} {s:9.1f} {per:8.2f} {rate} {g['cpu_time_s'].sum():8.1f} "
              f"{g['max_rss_mib'].max():11.0f}")
    print(f"per-exam stages: {per_exam_total:.1f} s per exam in one job slot "
          f"= {3600 / per_exam_total:.0f} exams/hour per slot, {cores * 3600 / per_exam_total:.0f} "
          f"exams/hour on {cores} slots")
    print(f"cohort-level stages: {agg_total:.1f} s for {n} exams")
    if wall_s:
        print(f"end to end: {wall_s:.0f} s wall for {n} exams = {n * 3600 / wall_s:.0f} exams/hour "
              f"(--cores {cores})")
    # Extrapolation: per-shard stages scale with the number of exams and run in parallel over job
    # slots; cohort-level stages are assumed to grow linearly with the cohort (an upper bound for
    # the concatenations, about right for the atlas and the statistics' bootstrap).
    shard_h = per_exam_total * target / 3600
    agg_h = agg_total * target / n / 3600
    print(f"extrapolation to {target} exams: per-exam stages {shard_h:.1f} slot-hours "
          f"-> {shard_h / cores:.1f} h on this {cores}-core machine, "
          f"{shard_h / 50:.2f} h on 50 job slots; cohort-level stages about {agg_h:.1f} h (serial)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort", required=True)
    ap.add_argument("--results", default=None, help="default: a temporary folder")
    ap.add_argument("--cores", type=int, default=2)
    ap.add_argument("--shard-size", type=int, default=8,
                    help="exams per shard (small so that both cores have shards to work on)")
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--tiny-models", action="store_true")
    ap.add_argument("--report-only", action="store_true", help="only read an earlier run's benchmarks")
    ap.add_argument("--target", type=int, default=5000)
    a = ap.parse_args()
    results = Path(a.results or tempfile.mkdtemp(prefix="cmr-throughput-"))
    if a.report_only:
        report(results, None, a.cores, a.target)
        return
    models = a.models_dir
    if a.tiny_models:
        from tests.slurm.tiny_models import write_tiny_models

        models = str(write_tiny_models(results / "tiny_models"))
    cfg = results / "throughput-config.yaml"
    cfg.parent.mkdir(parents=True, exist_ok=True)
    cfg.write_text(f"cohort_dir: {Path(a.cohort).resolve()}\nresults_dir: {results.resolve()}\n"
                   f"shard_size: {a.shard_size}\nmodels_dir: {Path(models).resolve()}\ndevice: auto\n")
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "snakemake", "--cores", str(a.cores), "--configfile", str(cfg)]
    print("running:", " ".join(cmd), flush=True)
    t = time.perf_counter()
    with open(results / "throughput-snakemake.log", "w") as log:
        rc = subprocess.run(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT).returncode
    wall = time.perf_counter() - t
    if rc != 0:
        sys.exit(f"snakemake failed (exit {rc}); see {results / 'throughput-snakemake.log'}")
    report(results, wall, a.cores, a.target)
    print(f"results: {results}")


if __name__ == "__main__":
    main()
