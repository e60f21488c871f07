"""The workflow's manual path from cvi42 workspaces (manual_annotations_format: cvi42, rule
import_annotations) gives the guide points it gives from the annotation parquet.  Only the rules
up to guide_points_manual.parquet run (ingest, import): no inference."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import yaml

from cmr_atlas.formats.cvi42 import write_cvi42
from tests.formats.helpers import OBSERVER, assert_same_guide_points

REPO = Path(__file__).resolve().parents[2]
TARGET = "shards/s0000/guide_points_manual.parquet"


def _snakemake(config: dict, cfg_path: Path, *args: str) -> None:
    cfg_path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    r = subprocess.run([sys.executable, "-m", "snakemake", str(Path(config["results_dir"]) / TARGET),
                        "--cores", "1", "--nolock", "-s", str(REPO / "Snakefile"),
                        "--directory", str(cfg_path.parent), "--configfile", str(cfg_path), *args],
                       cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]


@pytest.mark.slow
def test_manual_guide_points_from_cvi42_equal_those_from_parquet(cohort, tmp_path):
    for exam in cohort.exams["exam_id"]:
        write_cvi42(cohort.annotations(exam), cohort.index, exam, tmp_path / "ws" / f"{exam}.cvi42wsx")
    res = tmp_path / "res"
    base = {"cohort_dir": str(cohort.root), "results_dir": str(res), "exam_id_key": "formats-workflow-key",
            "models_dir": str(REPO / "resources/models"), "manual_observer": OBSERVER}
    _snakemake({**base, "manual_annotations_format": "cvi42", "manual_annotations": str(tmp_path / "ws")},
               tmp_path / "cvi42.yaml")
    assert (res / "annotations/contours.parquet").is_file()  # the import rule's output, read by the manual path
    from_cvi42 = pd.read_parquet(res / TARGET)
    _snakemake(base, tmp_path / "parquet.yaml", "--forcerun", "manual_guide_points_shard")  # default: cohort truth/
    from_parquet = pd.read_parquet(res / TARGET)
    # lv_centre has no slot in a cvi42 workspace (nor in CAP files)
    from_parquet = from_parquet[from_parquet["landmark"].fillna("") != "lv_centre"]
    assert set(from_cvi42["exam_id"]) == set(from_parquet["exam_id"]) and from_cvi42["exam_id"].nunique() == 2
    for exam_id in from_parquet["exam_id"].unique():
        assert_same_guide_points(from_parquet[from_parquet["exam_id"] == exam_id],
                                 from_cvi42[from_cvi42["exam_id"] == exam_id], 0.1)
