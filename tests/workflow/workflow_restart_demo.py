"""Demonstration (minutes, not a unit test): a killed workflow resumes without redoing finished
shards, leaves no partial table that looks complete, and records bad exams as failed, once.

    python tests/workflow/workflow_restart_demo.py [--cohort DIR] [--target ingest|all] [--models-dir DIR]

Without --cohort it makes one (`cmr-atlas synth --n-exams 2 --faults 0.5`); two bad folders are
added (one empty, one with a garbage .dcm file).  With shard_size 2 there are two shards or more.  Steps, each printed with what happened:
  1. run Snakemake (one job at a time); once one shard has finished ingest and the other is
     running, SIGKILL Snakemake and its job (a lost node or a killed terminal: no clean-up);
  2. every parquet file present reads back whole (atomic writes), and the cache npz files load;
  3. `snakemake --unlock`, then a dry run with --rerun-incomplete: the finished shard is not
     scheduled again, the unfinished one is;
  4. resume with --rerun-incomplete; the bad exams are in exams.parquet with status failed;
  5. a further dry run has nothing to do: failed exams are not retried.
Exit 0 when every check holds.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

REPO = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", "")}


def snakemake(*args: str, check: bool = True) -> str:
    r = subprocess.run([sys.executable, "-m", "snakemake", "--cores", "2", *args], cwd=REPO, env=ENV,
                       capture_output=True, text=True)
    if check and r.returncode != 0:
        sys.exit(f"snakemake {' '.join(args)} failed:\n{(r.stdout + r.stderr)[-4000:]}")
    return r.stdout + r.stderr


def scheduled(dry_run: str) -> list[str]:
    jobs, rule = [], None
    for line in dry_run.splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            jobs.append(rule)
        m = re.match(r"\s+wildcards: shard=(s\d+)", line)
        if m and rule:
            jobs[-1] = f"{rule}[{m.group(1)}]"
    return jobs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--cohort")
    ap.add_argument("--target", default="ingest", choices=["ingest", "all"],
                    help="ingest: the cohort exam tables (fast); all: the whole workflow (needs models)")
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--work", help="folder for the results (default: a temporary folder)")
    a = ap.parse_args()
    work = Path(a.work or tempfile.mkdtemp(prefix="cmr-restart-"))
    cohort = Path(a.cohort) if a.cohort else work / "cohort"
    if not a.cohort:
        print("making a cohort of 2 exams ...", flush=True)
        subprocess.run([sys.executable, "-m", "cmr_atlas", "synth", "--n-exams", "2", "--seed", "31",
                        "--faults", "0.5", "--jobs", "2", "--out", str(cohort)], env=ENV, check=True,
                       capture_output=True)
    # the cohort seen by the workflow: the exams (linked) plus two folders that must fail
    demo = work / "demo_cohort" / "dicom"
    demo.mkdir(parents=True, exist_ok=True)
    src = cohort / "dicom" if (cohort / "dicom").is_dir() else cohort
    for d in sorted(src.iterdir()):
        if d.is_dir() and not (demo / d.name).exists():
            (demo / d.name).symlink_to(d.resolve())
    (demo / "BAD-empty").mkdir(exist_ok=True)
    (demo / "BAD-garbage").mkdir(exist_ok=True)
    (demo / "BAD-garbage" / "IM0001.dcm").write_bytes(b"DICM" + os.urandom(2000))
    cohort = demo.parent
    results = work / "results"
    cfg = ["--config", f"cohort_dir={cohort}", f"results_dir={results}", "shard_size=2",
           f"models_dir={Path(a.models_dir).resolve()}"]
    target = [str(results / "exams.parquet")] if a.target == "ingest" else []
    checks: list[tuple[str, bool]] = []

    # 1. start, then kill hard once one shard has finished ingest and the other has started it
    tables = ("exams", "series", "slices", "exam_keys")
    done = lambda s: all((results / f"shards/{s}/{t}.parquet").exists() for t in tables)  # noqa: E731
    started = lambda s: (results / f"logs/ingest/{s}.log").exists()  # noqa: E731
    print("1. run; SIGKILL Snakemake and its jobs once one shard has finished ingest and the other "
          "is running ...", flush=True)
    proc = subprocess.Popen([sys.executable, "-m", "snakemake", "--cores", "1", *target, *cfg], cwd=REPO,
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    t0 = time.time()
    finished = unfinished = None
    while proc.poll() is None and time.time() - t0 < 1800:
        for f, u in (("s0000", "s0001"), ("s0001", "s0000")):
            if done(f) and started(u) and not done(u):
                finished, unfinished = f, u
        if finished:
            break
        time.sleep(0.1)
    killed = proc.poll() is None
    if killed:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    print(f"   killed after {time.time() - t0:.0f} s: {finished} finished, {unfinished} half done")
    checks.append(("the run was killed with one shard finished and one unfinished", killed and bool(finished)))

    # 2. nothing half-written looks complete
    bad = []
    for p in results.rglob("*.parquet"):
        try:
            pd.read_parquet(p)
        except Exception as exc:  # noqa: BLE001 - report any unreadable file
            bad.append(f"{p}: {exc}")
    for p in (results / "cache").glob("*.npz"):
        try:
            with np.load(p) as z:
                z.files
        except Exception as exc:  # noqa: BLE001
            bad.append(f"{p}: {exc}")
    tmp = [str(p) for p in results.rglob(".*.tmp")]
    print(f"2. {sum(1 for _ in results.rglob('*.parquet'))} parquet and "
          f"{sum(1 for _ in (results / 'cache').glob('*.npz'))} npz files all read back; "
          f"unreadable: {bad or 'none'}; temporary files left by the kill: {len(tmp)}")
    checks.append(("every parquet/npz present reads back whole", not bad))

    # 3. unlock (a SIGKILL leaves Snakemake's lock behind), dry run
    snakemake("--unlock", *cfg)
    dry = snakemake("-n", "--rerun-incomplete", *target, *cfg)
    jobs = scheduled(dry)
    print(f"3. after --unlock, a dry run with --rerun-incomplete schedules: {', '.join(jobs)}")
    checks.append((f"finished shard {finished} is not scheduled again", not any(f"[{finished}]" in j for j in jobs)))
    checks.append((f"unfinished shard {unfinished} is scheduled", any(f"[{unfinished}]" in j for j in jobs)))

    # 4. resume
    t1 = time.time()
    snakemake("--rerun-incomplete", *target, *cfg)
    ex = pd.read_parquet(results / "exams.parquet")
    summary = ex.groupby("status").size().to_dict()
    reasons = sorted(set(ex.loc[ex["status"] != "ok", "qc_reason"].dropna()))
    print(f"4. resumed in {time.time() - t1:.0f} s: exams by status {summary}; failure reasons {reasons}")
    checks.append(("every exam folder has a row", len(ex) == len([d for d in demo.iterdir() if d.is_dir()])))
    checks.append(("bad exams are recorded as failed", (ex["status"] != "ok").any()))

    # 5. nothing left to do: failed exams are not retried
    again = snakemake("-n", *target, *cfg)
    nothing = "Nothing to be done" in again
    print(f"5. a further dry run: {'nothing to be done' if nothing else ', '.join(scheduled(again))}")
    checks.append(("failed exams are not retried", nothing))

    for name, ok in checks:
        print(f"   [{'ok' if ok else 'FAILED'}] {name}")
    print(f"work folder: {work}")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
