"""``cmr-atlas tiscout DIR`` on written DICOM: the generated clinical exam's scout, and every kind of
bad input (a specific qc_reason on one JSON line, never a traceback)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
import pytest

from cmr_atlas.cli import main


def _series_files(cohort: Path, kind: str) -> list[Path]:
    series = pd.read_parquet(cohort / "truth" / "series.parquet")
    number = int(series[series.kind == kind].series_number.iloc[0])
    files = [p for p in (cohort / "dicom").rglob("*") if p.is_file()]
    return [p for p in files if int(pydicom.dcmread(p, stop_before_pixels=True).SeriesNumber) == number]


@pytest.fixture(scope="module")
def scout_files(clinical_synth_cohort):
    return _series_files(clinical_synth_cohort, "ti_scout")


def _copy(files, dest: Path, edit=None) -> Path:
    dest.mkdir()
    for k, f in enumerate(sorted(files)):
        ds = pydicom.dcmread(f)
        if edit is not None:
            edit(k, ds)
        ds.save_as(dest / f.name)
    return dest


def _run(folder, capsys) -> tuple[int, list[dict]]:
    rc = main(["tiscout", str(folder)])
    lines = [json.loads(x) for x in capsys.readouterr().out.splitlines() if x.strip()]
    assert lines, "one JSON line per scout at least"
    return rc, lines


def test_cli_prints_the_null_point_of_the_scout(tmp_path, scout_files, clinical_synth_cohort, capsys):
    truth = pd.read_parquet(clinical_synth_cohort / "truth" / "ti_scout.parquet")
    rc, lines = _run(_copy(scout_files, tmp_path / "scout"), capsys)
    assert rc == 0 and len(lines) == 1
    r = lines[0]
    assert r["kind"] == "ti_scout" and r["qc_reason"] is None
    ti = sorted(float(pydicom.dcmread(f, stop_before_pixels=True).InversionTime) for f in scout_files)
    assert r["null_ti_ms"] == ti[r["null_frame"]]  # 0-based in order of increasing TI
    assert min(abs(r["null_frame"] - truth.obs1_frame)) <= 1
    assert len(r["p_acceptable"]) == 27 and r["window_t0"][0] == 2


def _drop_ti(k, ds):
    del ds.InversionTime


def _dup_ti(k, ds):
    ds.InversionTime = 100.0 + 40.0 * (k // 2)  # pairs of frames share one inversion time


def _shuffle_instance(k, ds):
    ds.InstanceNumber = int(np.random.default_rng(k).integers(1, 1000))


@pytest.mark.parametrize("edit, keep, reason", [
    (_drop_ti, None, "no InversionTime on 30 of 30 frames"),
    (_dup_ti, None, "duplicated inversion times"),
    (None, 6, "only 6 frames"),
])
def test_bad_scouts_get_a_specific_reason(tmp_path, scout_files, capsys, edit, keep, reason):
    files = sorted(scout_files, key=lambda f: float(pydicom.dcmread(f, stop_before_pixels=True).InversionTime))
    rc, lines = _run(_copy(files[:keep] if keep else files, tmp_path / "bad", edit), capsys)
    assert rc == 1
    assert any(reason in (r["qc_reason"] or "") for r in lines), lines
    assert all(r["null_frame"] is None for r in lines)


def test_instance_order_unlike_inversion_order_changes_nothing(tmp_path, scout_files, capsys):
    _, ref = _run(_copy(scout_files, tmp_path / "a"), capsys)
    _, shuffled = _run(_copy(scout_files, tmp_path / "b", _shuffle_instance), capsys)
    assert shuffled[0]["null_ti_ms"] == ref[0]["null_ti_ms"]


def test_a_cine_series_is_not_taken_for_a_scout(tmp_path, clinical_synth_cohort, capsys):
    rc, lines = _run(_copy(_series_files(clinical_synth_cohort, "cine"), tmp_path / "cine"), capsys)
    assert rc == 1
    assert all("not a TI scout" in r["qc_reason"] and r["null_frame"] is None for r in lines)


def test_an_empty_or_missing_folder_is_a_reason(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    for folder in (tmp_path / "empty", tmp_path / "missing"):
        rc, lines = _run(folder, capsys)
        assert rc == 1 and lines[0]["qc_reason"]
