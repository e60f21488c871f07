import dataclasses
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest

from cmr_atlas.formats import FormatError
from cmr_atlas.formats.dicom_index import CohortIndex
from cmr_atlas.formats.dicom_seg import export_dicom_seg, read_dicom_seg
from tests.formats.helpers import OBSERVER, contour_errors_px


@pytest.fixture()
def es_seg(cohort, tmp_path):
    es = int(cohort.exams["es_frame"].iloc[0])
    masks = cohort.sax_masks(es)
    paths = export_dicom_seg(masks, cohort.index, cohort.exam, es, "ES", tmp_path)
    return es, masks, paths


def _sources(cohort, frame):
    return [r for r in cohort.index.images(cohort.exam, "sax") if r.frame == frame]


def test_export_reads_back(cohort, es_seg):
    es, masks, paths = es_seg
    assert [p.name for p in paths] == [f"{cohort.exam}_ES_seg.dcm"]  # the synthetic SAX is one series
    seg = hd.seg.segread(paths[0])
    codes = {n: seg.get_segment_description(n).segmented_property_type for n in seg.segment_numbers}
    assert {n: (c.scheme_designator, c.value) for n, c in codes.items()} == {
        1: ("SCT", "49848007"), 2: ("SCT", "87878005")}  # no RV in these masks: no RV segment
    refs = _sources(cohort, es)
    assert {sop for _, _, sop in seg.get_source_image_uids()} == {r.sop_uid for r in refs}
    pixels = seg.get_pixels_by_source_instance([r.sop_uid for r in refs], combine_segments=True,
                                               assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels, masks)
    assert seg.StudyInstanceUID == refs[0].study_uid and seg.FrameOfReferenceUID


def test_rv_segment_where_present(cohort, tmp_path):
    es = int(cohort.exams["es_frame"].iloc[0])
    masks = cohort.sax_masks(es)
    masks[4, :5, :5] = 3
    seg = hd.seg.segread(export_dicom_seg(masks, cohort.index, cohort.exam, es, "ES", tmp_path)[0])
    assert seg.get_segment_description(3).segmented_property_type.value == "53085002"
    refs = _sources(cohort, es)
    pixels = seg.get_pixels_by_source_instance([r.sop_uid for r in refs], combine_segments=True,
                                               assert_missing_frames_are_empty=True)
    np.testing.assert_array_equal(pixels, masks)


def test_dciodvfy_finds_no_errors(es_seg):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed: DICOM validation skipped")
    out = subprocess.run(["dciodvfy", str(es_seg[2][0])], capture_output=True, text=True)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def test_import_gives_the_contours(cohort, es_seg):
    es, _, paths = es_seg
    ann = read_dicom_seg(paths[0], cohort.index, observer=OBSERVER)
    assert set(ann.contours["phase"]) == {"ES"} and set(ann.contours["frame"]) == {es}
    err = contour_errors_px(cohort, ann.contours, es)  # the tolerance of the NIfTI round trip
    assert err.max() < 0.75 and err.mean() < 0.25, (err.max(), err.mean())


def test_unknown_segment_code(cohort, es_seg, tmp_path):
    ds = pydicom.dcmread(es_seg[2][0])
    ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue = "12345678"
    bad = tmp_path / "bad_seg.dcm"
    ds.save_as(bad)
    with pytest.raises(FormatError, match=r"bad_seg\.dcm: segment 1 has property type SCT 12345678"):
        read_dicom_seg(bad, cohort.index)


def test_referenced_image_not_in_cohort(cohort, es_seg):
    msg = r"_ES_seg\.dcm: SOPInstanceUID .* \(ReferencedSOPInstanceUID\) is not an image"
    with pytest.raises(FormatError, match=msg):
        read_dicom_seg(es_seg[2][0], CohortIndex(cohort.root))


def test_not_a_seg(cohort, tmp_path):
    junk = tmp_path / "junk.dcm"
    shutil.copy(_sources(cohort, 0)[0].path, junk)
    with pytest.raises(FormatError, match=r"junk\.dcm: not a readable DICOM Segmentation"):
        read_dicom_seg(junk, cohort.index)


def test_seg_on_long_axis_images(cohort, es_seg):
    lax = CohortIndex(cohort.root)
    for ref in cohort.index.by_uid.values():
        lax.add(dataclasses.replace(ref, view="lax_4ch", slice_index=0) if ref.view == "sax" else ref)
    with pytest.raises(FormatError, match=r"references the exam's lax_4ch image .*SAX masks \(orientation mismatch\)"):
        read_dicom_seg(es_seg[2][0], lax)
