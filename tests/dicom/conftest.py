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
