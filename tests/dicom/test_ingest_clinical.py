"""Ingest on a generated clinical exam (cmr_atlas.synth.clinical) with every SeriesDescription
blanked: each series is typed as the generator's truth says, from header physics alone, and the
cine views are the bSSFP SAX stack and long-axis planes."""

from __future__ import annotations

import shutil

import pandas as pd
import pydicom
import pytest

from cmr_atlas.core.tables import read_table
from cmr_atlas.dicom.index import ingest_folder
from cmr_atlas.synth.faults import apply_fault, outcome_matches

pytestmark = pytest.mark.slow

# generator's kind -> ingest's (kind, sequence)
EXPECTED = {
    "localizer": ("localizer", None), "cine": ("cine", "cine_ssfp"), "perfusion": ("perfusion", "perfusion"),
    "perfusion_aif": ("perfusion_aif", "perfusion"), "ti_scout": ("ti_scout", "ti_scout"),
    "lge": ("lge", "lge"), "lge_psir": ("lge_psir", "lge"), "t1map_native": ("t1map", "t1map"),
    "t1map_post": ("t1map", "t1map"),
}


@pytest.fixture(scope="module")
def blank_exam(clinical_synth_cohort, tmp_path_factory):
    root = tmp_path_factory.mktemp("blank")
    exam = next((clinical_synth_cohort / "dicom").iterdir())
    shutil.copytree(exam, root / exam.name)
    for path in (root / exam.name).rglob("*"):
        if path.is_file():
            ds = pydicom.dcmread(path)
            ds.SeriesDescription = ""
            ds.ProtocolName = ""
            ds.save_as(path)
    return root, exam.name


def test_every_series_is_typed_as_its_truth(blank_exam, clinical_synth_cohort):
    root, folder = blank_exam
    rows = ingest_folder(root, folder, "k", None)
    assert [e["status"] for e in rows.exams] == ["ok"]
    got = pd.DataFrame(rows.series).set_index("series_number")
    truth = read_table(clinical_synth_cohort / "truth" / "series.parquet").set_index("series_number")
    assert sorted(got.index) == sorted(truth.index)  # none dropped
    for number, row in truth.iterrows():
        kind, sequence = EXPECTED[row.kind]
        assert got.loc[number, "kind"] == kind, (number, row.kind, got.loc[number, "type_reason"])
        assert (got.loc[number, "sequence"] or None) == sequence or pd.isna(got.loc[number, "sequence"]) and sequence is None
    cine = truth[truth.kind == "cine"]
    roles = got.loc[cine.index, "role"]
    assert (roles[cine.view == "sax"] == "sax").all()
    for view in ("lax_2ch", "lax_3ch", "lax_4ch"):
        assert list(roles[cine.view == view]) == [view]
    exam = rows.exams[0]
    n_sax = int(read_table(clinical_synth_cohort / "truth" / "clinical_exams.parquet").n_sax_slices.iloc[0])
    assert exam["n_sax_slices"] == n_sax and exam["has_2ch"] and exam["has_4ch"]


@pytest.mark.parametrize("fault", ["truncated_perfusion", "scout_without_inversion_time", "lge_without_scout",
                                   "t1map_without_units"])
def test_clinical_faults_on_a_generated_exam_end_as_announced(clinical_synth_cohort, tmp_path, fault):
    exam = next((clinical_synth_cohort / "dicom").iterdir())
    shutil.copytree(exam, tmp_path / exam.name)
    status, reason = apply_fault(tmp_path / exam.name, fault, seed=3)
    row = ingest_folder(tmp_path, exam.name, "k", None).exams[0]
    assert outcome_matches(status, reason, row["status"], row["qc_reason"]), (fault, row["status"], row["qc_reason"])
