"""A small synthetic cohort (real DICOM + truth annotations) shared by the format tests."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from cmr_atlas.formats.dicom_index import build_index
from cmr_atlas.synth.mesa.cohort import generate_cohort
from tests.formats.helpers import OBSERVER, Cohort


@pytest.fixture(scope="session")
def cohort(tmp_path_factory) -> Cohort:
    # seed 1: exam 0 is a SIEMENS exam (one series per SAX slice), exam 1 a GE exam (one SAX series)
    root = generate_cohort(tmp_path_factory.mktemp("formats") / "cohort", 2, 1, observers=1)
    truth = Path(root) / "truth"
    c, lm = pd.read_parquet(truth / "contours.parquet"), pd.read_parquet(truth / "landmarks.parquet")
    return Cohort(
        root=Path(root), index=build_index(Path(root) / "dicom"),
        contours=c[c["observer"] == OBSERVER].reset_index(drop=True),
        landmarks=lm[lm["observer"] == OBSERVER].reset_index(drop=True),
        slices=pd.read_parquet(truth / "slices.parquet"), exams=pd.read_parquet(truth / "exams.parquet"),
    )
