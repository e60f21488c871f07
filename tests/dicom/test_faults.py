"""Synthetic faults: each one gives the outcome the faults table announces."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cmr_atlas.core import ids
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.synth.faults import FAULT_COLUMNS, FAULT_KINDS, FAULTS, apply_fault, inject_faults, outcome_matches

KEY = "test-key-for-faults"
SMALL = dict(n_slices=7, n_frames=4, rows=24, cols=24)


@pytest.fixture(scope="module")
def clean(tmp_path_factory, write_cohort):
    root = tmp_path_factory.mktemp("clean")
    written = write_cohort(root / "dicom", 2, seed=21, **SMALL)
    rows = ingest_folders(root / "dicom", ["EXAM0000", "EXAM0001"], KEY, None)
    return root / "dicom", written, rows


def _slices(rows, eid):
    f = rows.frames()["slices"]
    f = f[f["exam_id"] == eid].sort_values(["view", "slice_index"])
    return f[["view", "slice_index", "ipp_x", "ipp_y", "ipp_z", "row_cos_x", "col_cos_z"]].to_numpy()


@pytest.mark.parametrize("fault", list(FAULT_KINDS))
@pytest.mark.parametrize("folder", ["EXAM0000", "EXAM0001"])  # Siemens and GE layouts
def test_fault_outcome(clean, tmp_path, fault, folder):
    src, written, clean_rows = clean
    dst = tmp_path / "dicom"
    shutil.copytree(src / folder, dst / folder)
    status, reason = apply_fault(dst / folder, fault, seed=1)
    out = tmp_path / "out"
    rows = ingest_folders(dst, [folder], KEY, out / "cache")
    eid = ids.exam_id(written[int(folder[-1])]["study_uid"], KEY)
    exam = next(e for e in rows.exams if e["exam_id"] == eid)
    clean_exam = next(e for e in clean_rows.exams if e["exam_id"] == eid)
    assert outcome_matches(status, reason, exam["status"], exam["qc_reason"], clean_exam["qc_reason"]), \
        (status, reason, exam["status"], exam["qc_reason"])
    # nothing is written anywhere but the cache, named by exam id only
    written_files = [p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*") if p.is_file()
                     and not p.is_relative_to(dst)]
    assert written_files == ([f"out/cache/{eid}.npz"] if exam["status"] == "ok" else [])
    if fault in ("reversed_slice_order", "text_file", "odd_file_name", "description_traversal", "non_cine_series",
                 "duplicated_series"):
        assert np.array_equal(_slices(rows, eid)[:, :2], _slices(clean_rows, eid)[:, :2])
        assert np.allclose(_slices(rows, eid)[:, 2:].astype(float), _slices(clean_rows, eid)[:, 2:].astype(float))
    if fault == "duplicated_series":
        series = rows.frames()["series"]
        assert series["reason"].fillna("").str.startswith("repeat_superseded_by_series").any()
        assert series.loc[series["role"] == "sax", "series_number"].max() > 100  # the later repeat is kept
    if fault == "missing_slice":
        sl = rows.frames()["slices"]
        assert sl["gap_flag"].fillna(False).sum() == 1


def test_inject_faults_table(tmp_path, write_cohort):
    dicom = tmp_path / "dicom"
    write_cohort(dicom, 3, seed=5, **SMALL)
    folders = ["EXAM0000", "EXAM0001", "EXAM0002"]
    table = inject_faults(dicom, folders, fraction=0.67, seed=3)
    assert list(table.columns) == FAULT_COLUMNS
    assert len(table) == 2 and table["exam"].is_unique and set(table["exam"]) <= set(folders)
    assert set(table["fault"]) <= set(FAULT_KINDS)
    FAULTS.empty()  # the table schema
    from cmr_atlas.core.tables import conform

    conform(table, FAULTS)
    assert set(table["expected_status"]) <= {"ok", "failed"}
    assert inject_faults(dicom, folders, fraction=0.0, seed=3).empty
    with pytest.raises(ValueError):
        inject_faults(dicom, folders, fraction=1.5, seed=3)


def test_failed_rerun_removes_stale_cache(clean, tmp_path):
    src, written, _ = clean
    dst = tmp_path / "dicom"
    shutil.copytree(src / "EXAM0000", dst / "EXAM0000")
    eid = ids.exam_id(written[0]["study_uid"], KEY)
    ingest_folders(dst, ["EXAM0000"], KEY, tmp_path / "cache")
    assert (tmp_path / "cache" / f"{eid}.npz").exists()
    apply_fault(dst / "EXAM0000", "truncated_file", seed=0)
    rows = ingest_folders(dst, ["EXAM0000"], KEY, tmp_path / "cache")
    assert rows.exams[0]["status"] == "failed"
    assert not (tmp_path / "cache" / f"{eid}.npz").exists()


def test_incomplete_later_repeat_loses_to_complete_earlier(clean, tmp_path):
    src, written, clean_rows = clean
    dst = tmp_path / "dicom"
    shutil.copytree(src / "EXAM0000", dst / "EXAM0000")
    apply_fault(dst / "EXAM0000", "duplicated_series", seed=0)
    repeat = sorted((dst / "EXAM0000" / "repeat_series").iterdir())
    repeat[0].unlink()  # the repeat now lacks a frame
    rows = ingest_folders(dst, ["EXAM0000"], KEY, None)
    assert rows.exams[0]["status"] == "ok" and "repeated_series" in rows.exams[0]["qc_reason"]
    series = rows.frames()["series"]
    assert series.loc[series["role"] == "sax", "series_number"].max() < 100  # the complete original kept
    assert (series["reason"].fillna("").str.startswith("repeat_superseded_by_series")).sum() == 1
