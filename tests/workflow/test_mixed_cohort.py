"""A cohort folder that mixes legacy MESA exams and a modern clinical exam runs through the whole
default workflow with the shipped (GRE-trained) networks: the run succeeds, every exam has a
status, and the legacy exams' results are there whatever happens to the clinical one."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cmr_atlas.core.tables import read_table

REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def test_mixed_cohort_runs_end_to_end(tmp_path, legacy_synth_cohort, clinical_synth_cohort):
    pytest.importorskip("snakemake")
    cohort = tmp_path / "cohort"
    shutil.copytree(legacy_synth_cohort, cohort)  # two legacy exams
    clinical = next((clinical_synth_cohort / "dicom").iterdir())
    shutil.copytree(clinical, cohort / "dicom" / clinical.name)
    # covariates of both protocols' subjects in the one table the workflow reads
    subjects = pd.concat([pd.read_parquet(cohort / "truth" / "subjects.parquet"),
                          pd.read_parquet(clinical_synth_cohort / "truth" / "subjects.parquet")])
    subjects.to_parquet(cohort / "truth" / "subjects.parquet")
    results = tmp_path / "results"
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({
        "cohort_dir": str(cohort), "results_dir": str(results), "exam_id_key": "mixed-test-key",
        "models_dir": str(REPO / "resources" / "models"), "shard_size": 2,
        "stats": {"folds": 2, "bootstrap": 10, "n_pcs": 2}, "atlas": {"n_components": 2},
    }))
    out = subprocess.run([sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "--cores", "2",
                          "--configfile", str(config), "-q"], cwd=tmp_path, capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert out.returncode == 0, out.stderr[-4000:]
    status = read_table(results / "exam_status.parquet")
    assert status.exam_id.nunique() == 3
    assert status[status.status != "ok"].qc_reason.notna().all()  # a failure is a reason, not a crash
    exams = read_table(results / "exams.parquet")
    assert (exams.status == "ok").all()
    assert (exams.n_series > 20).sum() == 1  # the clinical exam, every series typed and listed
    measures = read_table(results / "measures.parquet")
    legacy = exams[exams.n_series < 10].exam_id
    assert set(legacy) <= set(measures.exam_id)  # legacy results whatever the clinical exam gave
    assert (results / "report" / "index.html").exists()
    # the clinical exam's other pipelines, from the series cache, in the default targets
    clinical_id = exams[exams.n_series > 20].exam_id.iloc[0]
    ti = read_table(results / "ti_selection.parquet")
    assert set(ti.exam_id) == {clinical_id} and ti.null_ti_ms.notna().any()  # one or two scouts (SAX, 4CH)
    assert set(read_table(results / "lge_ti_audit.parquet").exam_id) == {clinical_id}
    segments = read_table(results / "perfusion_segments.parquet")
    assert set(segments.exam_id) == {clinical_id}
    auto = segments[segments.source == "auto"]
    assert set(auto.condition) == {"stress", "rest"} and auto.aha_segment.between(1, 16).all()
    assert auto.mbf_ml_min_g.between(0.1, 8.0).mean() > 0.8  # physiological flows, not NaN or junk
    glob = read_table(results / "perfusion_global.parquet")
    assert set(glob.exam_id) == {clinical_id}
