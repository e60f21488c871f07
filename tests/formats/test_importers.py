"""Every format through the one entry point and the manual path (``cmr-atlas guidepoints``' code)."""

import pandas as pd
import pytest

from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.cine.annotations import build_manual
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.cap import write_cap
from cmr_atlas.formats.cvi42 import write_cvi42
from cmr_atlas.formats.dicom_seg import export_dicom_seg
from cmr_atlas.formats.importers import import_annotations, nifti_frame
from cmr_atlas.formats.nifti import relabel, write_nifti
from tests.formats.helpers import OBSERVER, assert_same_guide_points, sax_planes

KEY = "formats-test-key"


@pytest.fixture(scope="module")
def ingested(cohort):
    rows = ingest_folders(cohort.root / "dicom", [cohort.exam], KEY, None).frames()
    manual = build_manual(cohort.root / "truth", rows["slices"], rows["exam_keys"], KEY, OBSERVER)
    return rows, manual


def _manual(ingested, ann, tmp_path):
    rows, _ = ingested
    ann.write(tmp_path / "annotations")
    return build_manual(tmp_path / "annotations", rows["slices"], rows["exam_keys"], KEY, OBSERVER)


def _phase_frames(cohort):
    return {"ED": int(cohort.exams["ed_frame"].iloc[0]), "ES": int(cohort.exams["es_frame"].iloc[0])}


def test_cvi42_and_cap_feed_the_manual_path_unchanged(cohort, ingested, tmp_path):
    _, expected = ingested
    expected = expected[expected["landmark"].fillna("") != "lv_centre"]  # in neither format
    ws = write_cvi42(cohort.annotations(), cohort.index, cohort.exam, tmp_path / "ws" / "a.cvi42wsx")
    gp = cohort.guide_points(cohort.annotations())
    write_cap(gp, planes_by_slice(cohort.slices, cohort.exam), tmp_path / "cap" / "exam1")
    for fmt, paths in (("cvi42", [ws]), ("cap", [tmp_path / "cap" / "exam1"])):
        got = _manual(ingested, import_annotations(fmt, paths, cohort.index, OBSERVER), tmp_path / fmt)
        assert_same_guide_points(expected, got, 0.1)


def _sax_keys(gp: pd.DataFrame) -> set:
    c = gp[(gp["kind"] == "contour") & (gp["view"] == "sax")]
    return set(zip(c["phase"], c["frame"], c["slice_index"], c["surface"]))


def test_label_files_per_phase_feed_the_manual_path(cohort, ingested, tmp_path):
    _, expected = ingested
    phases = _phase_frames(cohort)
    nifti, seg = [], []
    for phase, f in phases.items():
        masks = cohort.sax_masks(f)
        nifti.append(write_nifti(relabel(masks, "acdc"), sax_planes(cohort, f),
                                 tmp_path / f"patient001_frame{f + 1:02d}_gt.nii.gz"))
        seg += export_dicom_seg(masks, cohort.index, cohort.exam, f, phase, tmp_path / "seg")
    assert [nifti_frame(p) for p in nifti] == list(phases.values())
    for fmt, paths in (("nifti", nifti), ("dicom_seg", seg)):
        got = _manual(ingested, import_annotations(fmt, paths, cohort.index, OBSERVER), tmp_path / fmt)
        assert _sax_keys(got) == _sax_keys(expected), fmt
        assert set(got["exam_id"]) == set(expected["exam_id"])


def test_bad_format_and_incomplete_cap_folder(cohort, tmp_path):
    with pytest.raises(ValueError, match="unknown annotation format 'xml'"):
        import_annotations("xml", [], cohort.index, OBSERVER)
    (tmp_path / "GPFile_000.txt").write_text("x\n")
    with pytest.raises(FormatError, match=r"needs SliceInfoFile\.txt and GPFile\*\.txt"):
        import_annotations("cap", [tmp_path], cohort.index, OBSERVER)
