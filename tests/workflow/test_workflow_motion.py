"""The per-frame fits in the workflow: fit_shard reads the shard's inference outputs and writes the
volume curves, function indices and trajectories; rule atlas writes the motion atlas and its AUC
table (a dry run on the .test configuration, printing each job's inputs and outputs)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _jobs() -> dict[str, list[tuple[str, str]]]:
    r = subprocess.run([sys.executable, "-m", "snakemake", "--directory", ".test", "--dry-run", "--nolock",
                        "--configfile", str(REPO / ".test/config/config.yaml")], cwd=REPO,
                       env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    jobs: dict[str, list[tuple[str, str]]] = {}
    rule, inp = None, ""
    for line in r.stdout.splitlines():
        m = re.match(r"(?:local)?rule (\w+):", line)
        if m:
            rule = m.group(1)
            continue
        m = re.match(r"\s+input: (.+)", line)
        if m:
            inp = m.group(1)
        m = re.match(r"\s+output: (.+)", line)
        if m and rule:
            jobs.setdefault(rule, []).append((inp, m.group(1)))
            rule, inp = None, ""
    return jobs


@pytest.mark.slow
def test_fit_writes_volume_curves_and_atlas_the_motion_modes():
    jobs = _jobs()
    inp, out = jobs["fit_shard"][0]
    for name in ("masks", "phases.parquet", "landmarks.parquet", "segmentation_qc.parquet"):
        assert name in inp, inp
    for name in ("volume_curves.parquet", "function_indices.parquet", "motion_shapes.parquet"):
        assert name in out, out
    _, out = jobs["fit"][0]
    assert "/volume_curves.parquet" in out and "/function_indices.parquet" in out
    inp, out = jobs["atlas"][0]
    assert "motion_shapes.parquet" in inp and "covariates.parquet" in inp
    assert "atlas/motion_scores.parquet" in out and "stats/motion_auc.parquet" in out
