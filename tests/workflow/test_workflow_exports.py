"""The exports are opt-in targets: rule all asks for one job per shard of each format switched on
in the config, and for none by default (dry runs on the .test configuration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
EXPORT_RULES = {"dicom_seg": "export_dicom_seg_shard", "nifti": "export_nifti_shard", "cap": "export_cap_shard"}


def _planned(tmp_path: Path, export: dict | None) -> str:
    args = ["--configfile", str(REPO / ".test/config/config.yaml")]
    if export is not None:
        (tmp_path / "export.yaml").write_text(yaml.safe_dump({"export": export}))
        args.append(str(tmp_path / "export.yaml"))
    r = subprocess.run([sys.executable, "-m", "snakemake", "--directory", ".test", "--dry-run", "--quiet", "rules",
                        "--nolock", *args], cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)},
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r.stdout


@pytest.mark.slow
def test_exports_are_planned_per_shard_only_when_switched_on(tmp_path):
    assert not any(rule in _planned(tmp_path, None) for rule in EXPORT_RULES.values())
    out = _planned(tmp_path, {"nifti": True, "cap": True})
    counts = {rule: int(line.split()[1]) for line in out.splitlines() for rule in EXPORT_RULES.values()
              if line.split()[:1] == [rule]}
    assert counts == {"export_nifti_shard": 2, "export_cap_shard": 2}  # .test: two shards
