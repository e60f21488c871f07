"""Fixtures of the cine tests.

The known LV lives in ``known_lv.py`` (a module, not only a fixture: benchmarks/fit_accuracy.py
uses it too).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.cine import known_lv
from tests.shared import shared_folder

MODELS_DIR = Path(__file__).resolve().parents[2] / "resources/models"


@pytest.fixture(scope="session")
def make_fixture():
    """``make_fixture(seed, exam_id=..., shift_sd_mm=..., ...) -> known_lv.Fixture`` (a known LV)."""
    return known_lv.make_fixture


@pytest.fixture(scope="session")
def ingested_clinical(clinical_synth_cohort, tmp_path_factory):
    """The clinical exam ingested with an image cache: (cached images, truth landmarks of its bSSFP cine)."""
    from cmr_atlas.core.imagecache import load_exam_images
    from cmr_atlas.core.tables import read_table
    from cmr_atlas.dicom.index import ingest_folder

    folder = next((clinical_synth_cohort / "dicom").iterdir()).name

    def ingest(cache: Path) -> None:
        rows = ingest_folder(clinical_synth_cohort / "dicom", folder, "k", cache)
        assert [e["status"] for e in rows.exams] == ["ok"]
        (cache / "exam_id.txt").write_text(rows.exams[0]["exam_id"])

    cache = shared_folder(tmp_path_factory, "cache_clinical", ingest)
    images = load_exam_images(cache / f"{(cache / 'exam_id.txt').read_text()}.npz")
    truth = read_table(clinical_synth_cohort / "truth" / "landmarks.parquet")
    return images, truth[(truth["observer"] == "truth") & (truth["sequence"] == "cine_ssfp")]
