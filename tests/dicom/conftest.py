"""Fixtures of the DICOM tests: small cine exams with an exactly known geometry (``exams.py``, a
module because benchmarks/ingest.py writes its cohort with it too).

The builders take arguments, so each fixture returns its function or class.
"""

from __future__ import annotations

import pytest

from tests.dicom import exams


@pytest.fixture(scope="session")
def exam_spec() -> type[exams.ExamSpec]:
    """The ``ExamSpec`` dataclass: vendor, size, geometry, multiframe, transfer syntax, ..."""
    return exams.ExamSpec


@pytest.fixture(scope="session")
def write_exam():
    """``write_exam(folder, spec=None) -> {"study_uid", "planes", "files"}``."""
    return exams.write_exam


@pytest.fixture(scope="session")
def write_cohort():
    """``write_cohort(dicom_dir, n_exams, seed=0, **spec_kwargs) -> [write_exam result, ...]``."""
    return exams.write_cohort


@pytest.fixture(scope="session")
def clinical_cohort(tmp_path_factory):
    """Two written clinical-like exams with every series type and blank descriptions (Siemens:
    one cine series per SAX slice; GE: one for the stack): ``(dicom_dir, {folder: write result})``.
    Tests that damage an exam copy its folder first."""
    from tests.dicom import clinical_exams

    root = tmp_path_factory.mktemp("clinical") / "dicom"
    written = {vendor: clinical_exams.write_clinical_exam(root / vendor, clinical_exams.ClinicalSpec(
        vendor=vendor, seed=i, perfusion_frames=45, scout_frames=20, patient_id=f"PID-CLIN-{i}"))
        for i, vendor in enumerate(("SIEMENS", "GE"))}
    return root, written
