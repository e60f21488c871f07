"""A small synthetic cohort (real DICOM + truth annotations) shared by the format tests."""

from __future__ import annotations

import pytest

from cmr_atlas.synth.mesa.cohort import generate_cohort
from tests.formats.helpers import Cohort
from tests.shared import shared_folder


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Cohort:
    # seed 1: exam 0 is a SIEMENS exam (one series per SAX slice), exam 1 a GE exam (one SAX series)
    return Cohort.read(shared_folder(tmp_path_factory, "formats_cohort_2x1",
                                     lambda out: generate_cohort(out, 2, 1, observers=1)))
