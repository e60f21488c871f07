"""workflow/rules/ingest.smk: per-shard ingest and cohort aggregation under Snakemake."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from cmr_atlas.dicom.index import EXAMS, LINKAGE
from cmr_atlas.core.tables import read_table

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("linkage", [False, True])
def test_ingest_rules_shard_and_aggregate(tmp_path, linkage, write_cohort):
    pytest.importorskip("snakemake")
    cohort, results = tmp_path / "cohort", tmp_path / "results"
    write_cohort(cohort / "dicom", 3, seed=9, n_slices=6, n_frames=3, rows=16, cols=16)
    tables = ["exams", "series", "slices", "exam_keys"] + (["linkage"] if linkage else [])
    snakefile = tmp_path / "Snakefile"
    snakefile.write_text(
        f'configfile: "{REPO}/config/config.yaml"\n'
        f'include: "{REPO}/workflow/rules/common.smk"\n'
        f'include: "{REPO}/workflow/rules/ingest.smk"\n'
        f"rule all:\n    input: {[str(results / f'{t}.parquet') for t in tables]}\n"
    )
    cmd = [sys.executable, "-m", "snakemake", "-s", str(snakefile), "--cores", "1", "-q", "--config",
           f"cohort_dir={cohort}", f"results_dir={results}", "shard_size=2", f"linkage={linkage}"]
    out = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    exams = read_table(results / "exams.parquet", EXAMS)
    assert len(exams) == 3 and (exams["status"] == "ok").all()
    assert sorted(p.parent.name for p in results.glob("shards/*/exams.parquet")) == ["s0000", "s0001"]
    assert len(list((results / "cache").glob("E*.npz"))) == 3
    assert (results / "linkage.parquet").exists() == linkage
    if linkage:
        assert len(read_table(results / "linkage.parquet", LINKAGE)) == 3
    log = "".join(p.read_text() for p in (results / "logs" / "ingest").glob("*.log"))
    assert "EXAM000" not in log and "PID-" not in log and "cmr-atlas-demo-key" not in log
