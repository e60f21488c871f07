"""DAG construction at cohort scale: wall time and peak memory of `snakemake -n` for a cohort of
N exam folders (empty folders are enough: the shard manifest and the DAG are about folders).

    python benchmarks/dag.py [--n-exams 5000] [--shard-size 64] [--repeats 2]

Prints, per run: shards, jobs in the DAG, wall seconds and the peak RSS of the Snakemake process
(first run: fresh results folder, manifest written; later runs: manifest read back).
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from cmr_atlas.core.config import default  # noqa: E402


def dry_run(cohort: Path, results: Path, shard_size: int) -> tuple[float, float, str]:
    """(wall s, peak RSS MiB of the child, stdout+stderr) of one `snakemake -n`."""
    env = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    cmd = [sys.executable, "-m", "snakemake", "-n", "--nolock", "--quiet", "rules", "--cores", "1",
           "--config", f"cohort_dir={cohort}", f"results_dir={results}", f"shard_size={shard_size}"]
    # each run in its own process group; RUSAGE_CHILDREN max RSS is the largest child so far, so
    # measure every run in a fresh Python helper
    helper = ("import resource,subprocess,sys,time;t=time.perf_counter();"
              "r=subprocess.run(sys.argv[1:],capture_output=True,text=True);"
              "w=time.perf_counter()-t;"
              "m=resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss/1024;"
              "sys.stdout.write(f'{w} {m} {r.returncode}\\n'+r.stdout+r.stderr)")
    out = subprocess.run([sys.executable, "-c", helper, *cmd], cwd=REPO, env=env, capture_output=True,
                         text=True, check=True).stdout
    head, _, log = out.partition("\n")
    wall, rss, rc = head.split()
    if rc != "0":
        raise RuntimeError(f"snakemake -n failed:\n{log[-3000:]}")
    return float(wall), float(rss), log


def job_count(log: str) -> int:
    m = re.search(r"^total\s+(\d+)", log, re.M)
    return int(m.group(1)) if m else -1


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-exams", type=int, default=5000)
    ap.add_argument("--shard-size", type=int, default=default("shard_size"), help="config shard_size")
    ap.add_argument("--repeats", type=int, default=2)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="cmr-dag-") as tmp:
        cohort, results = Path(tmp) / "cohort", Path(tmp) / "results"
        for i in range(a.n_exams):
            (cohort / f"EXAM-{i:06d}").mkdir(parents=True)
        n_shards = -(-a.n_exams // a.shard_size)
        print(f"cohort: {a.n_exams} empty exam folders, shard_size {a.shard_size} -> {n_shards} shards")
        print(f"snakemake {subprocess.run([sys.executable, '-m', 'snakemake', '--version'], capture_output=True, text=True).stdout.strip()}, "
              f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}")
        for r in range(a.repeats):
            wall, rss, log = dry_run(cohort, results, a.shard_size)
            kind = "fresh results (manifest written)" if r == 0 else "manifest read back"
            print(f"run {r + 1} ({kind}): {job_count(log)} jobs, {wall:.1f} s wall, peak RSS {rss:.0f} MiB")


if __name__ == "__main__":
    main()
