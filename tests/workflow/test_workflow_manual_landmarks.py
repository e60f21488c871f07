"""With ``manual_landmarks_from_auto``, the manual guide points of a shard read that shard's
automated guide points (the landmarks the annotations lack come from there); without it, or without
manual annotations, they do not (dry runs on the .test configuration)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
RULE = "rule manual_guide_points_shard:"


def _manual_inputs(tmp_path: Path, config: dict) -> dict[str, str]:
    """``{shard: input line}`` of the planned manual_guide_points_shard jobs."""
    (tmp_path / "extra.yaml").write_text(yaml.safe_dump(config))
    r = subprocess.run([sys.executable, "-m", "snakemake", "--directory", ".test", "--dry-run", "--nolock",
                        "--configfile", str(REPO / ".test/config/config.yaml"), str(tmp_path / "extra.yaml")],
                       cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True,
                       timeout=300)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    out, jobs = r.stdout.splitlines(), {}
    for i, line in enumerate(out):
        if line.strip() == RULE:
            block = out[i + 1:i + 12]
            inputs = next(b for b in block if b.strip().startswith("input:"))
            shard = next(b for b in block if b.strip().startswith("wildcards:")).split("shard=")[1].split(",")[0]
            jobs[shard.strip()] = inputs
    return jobs


@pytest.mark.slow
def test_auto_guide_points_are_an_input_of_the_manual_path_only_when_switched_on(tmp_path):
    ann = tmp_path / "annotations"  # a dry run needs the files to exist, not to hold rows
    ann.mkdir()
    for name in ("contours.parquet", "landmarks.parquet"):
        (ann / name).touch()
    off = _manual_inputs(tmp_path, {"manual_annotations": str(ann)})
    on = _manual_inputs(tmp_path, {"manual_annotations": str(ann), "manual_landmarks_from_auto": True})
    assert sorted(off) == sorted(on) == ["s0000", "s0001"]  # .test: two shards
    assert not any("guide_points_auto.parquet" in line for line in off.values())
    for shard, line in on.items():
        assert f"results/shards/{shard}/guide_points_auto.parquet" in line, line
        assert str(ann / "landmarks.parquet") in line
    # no manual annotations: the manual path is empty and needs nothing of the automated one
    none = _manual_inputs(tmp_path, {"manual_landmarks_from_auto": True})
    assert len(none) == 2 and not any("guide_points_auto.parquet" in line for line in none.values())
