"""Faults on a clinical exam (clinical ones and the legacy ones a clinical exam draws): each gives
the outcome the faults table announces, and the series table says what happened."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from cmr_atlas.core import ids
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.synth.faults import CLINICAL_FAULT_KINDS, FAULT_KINDS, apply_fault, clinical_fault_names, \
    inject_faults, outcome_matches

KEY = "test-key-for-clinical-faults"


@pytest.fixture(scope="module")
def clean(clinical_cohort):
    root, written = clinical_cohort
    rows = ingest_folders(root, ["SIEMENS"], KEY, None)
    return root, written["SIEMENS"], rows.exams[0]


def _damaged(clean, tmp_path, fault):
    root, w, clean_exam = clean
    shutil.copytree(root / "SIEMENS", tmp_path / "dicom" / "SIEMENS")
    status, reason = apply_fault(tmp_path / "dicom" / "SIEMENS", fault, seed=2)
    rows = ingest_folders(tmp_path / "dicom", ["SIEMENS"], KEY, None)
    eid = ids.exam_id(w["study_uid"], KEY)
    exam = next(e for e in rows.exams if e["exam_id"] == eid)
    assert outcome_matches(status, reason, exam["status"], exam["qc_reason"], clean_exam["qc_reason"]), \
        (fault, status, reason, exam["status"], exam["qc_reason"])
    desc = {n: d for n, _, d in w["series"]}
    series = rows.frames()["series"]
    return series.assign(desc=series["series_number"].map(desc)).set_index("desc"), status, reason


@pytest.mark.parametrize("fault", clinical_fault_names())
def test_fault_outcome_on_clinical_exam(clean, tmp_path, fault):
    series, status, reason = _damaged(clean, tmp_path, fault)
    assert series["kind"].notna().all()
    if fault == "truncated_perfusion":
        perf = series[series["kind"] == "perfusion"]
        assert len(perf) == 2 and perf["type_reason"].fillna("").str.startswith("truncated").sum() == 1
    if fault == "scout_without_inversion_time":
        assert reason == "no_ti_scout"
        assert series.loc["TI scout", ["kind", "type_reason"]].tolist() == [
            "unknown", "inversion-recovery frames without inversion times"]
        assert (series.loc[["lge sax", "lge lax"], "kind"] == "lge").all()
    if fault == "lge_without_scout":
        assert "TI scout" not in series.index and (series.loc[["lge sax", "lge lax"], "kind"] == "lge").all()
    if fault == "t1map_without_units":
        t1 = series.loc[["T1 map native", "T1 map post"]]
        assert (t1["kind"] == "t1map").all() and (t1["type_reason"] == "no_units").all()
    if fault == "missing_lax_view":  # the 3CH is still found beside the remaining view
        assert (series["role"] == "lax_3ch").sum() == 1


def test_clinical_exams_draw_clinical_faults(tmp_path):
    # empty folders: every fault is drawn, none applies (recorded not_applied)
    legacy = [f"L{i:02d}" for i in range(len(FAULT_KINDS))]
    clinical = [f"C{i:02d}" for i in range(len(clinical_fault_names()))]
    for name in legacy + clinical:
        (tmp_path / name).mkdir()
    table = inject_faults(tmp_path, legacy + clinical, fraction=1.0, seed=3, clinical_exams=clinical)
    drawn = table.assign(kind=table["fault"].str.replace(":not_applied", "")).set_index("exam")["kind"]
    assert sorted(drawn[clinical]) == sorted(clinical_fault_names())  # each once: a seeded cycle
    assert sorted(drawn[legacy]) == sorted(FAULT_KINDS)
    assert set(clinical_fault_names()) == set(CLINICAL_FAULT_KINDS) | set(FAULT_KINDS)
    # a legacy-only cohort draws as before clinical exams existed (the recipe of the legacy faults)
    alone = inject_faults(tmp_path, legacy, fraction=1.0, seed=3)
    rng = np.random.default_rng(3)
    rng.choice(len(legacy), size=len(legacy), replace=False)
    assert list(alone["fault"].str.replace(":not_applied", "")) == list(rng.permutation(list(FAULT_KINDS)))
