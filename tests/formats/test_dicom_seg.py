import dataclasses
import shutil
import subprocess

import highdicom as hd
import numpy as np
import pydicom
import pytest

from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations
from cmr_atlas.formats.dicom_index import CohortIndex
from cmr_atlas.formats.dicom_seg import export_dicom_seg, read_dicom_seg
from tests.formats.helpers import OBSERVER, contour_errors_px


@pytest.fixture(params=[0, 1], ids=["siemens_series_per_slice", "ge_one_series"])
def es_seg(cohort, tmp_path, request):
    row = cohort.exams.iloc[request.param]
    exam, es = str(row["exam_id"]), int(row["es_frame"])
    masks = cohort.sax_masks(es, exam)
    return exam, es, masks, export_dicom_seg(masks, cohort.index, exam, es, "ES", tmp_path)


def _sources(cohort, exam, frame):
    return [r for r in cohort.index.images(exam, "sax") if r.frame == frame]


def _read_back(paths, refs):
    """Segment codes of each SEG, and the combined label pixels of ``refs``' images."""
    codes, pixels = [], {}
    for p in paths:
        seg = hd.seg.segread(p)
        descr = {n: seg.get_segment_description(n).segmented_property_type for n in seg.segment_numbers}
        codes.append({n: (c.scheme_designator, c.value) for n, c in descr.items()})
        uids = [sop for _, _, sop in seg.get_source_image_uids()]
        assert not set(uids) & set(pixels)
        px = seg.get_pixels_by_source_instance(uids, combine_segments=True, assert_missing_frames_are_empty=True)
        pixels.update(zip(uids, px))
        assert seg.StudyInstanceUID == refs[0].study_uid and seg.FrameOfReferenceUID
    assert set(pixels) == {r.sop_uid for r in refs}
    return codes, np.stack([pixels[r.sop_uid] for r in refs])


def test_export_reads_back(cohort, es_seg):
    exam, es, masks, paths = es_seg
    refs = _sources(cohort, exam, es)
    n_series = len({r.series_uid for r in refs})
    assert len(paths) == n_series and (n_series == 1) == (paths[0].name == f"{exam}_ES_seg.dcm")
    codes, pixels = _read_back(paths, refs)
    # no RV in these masks: no RV segment
    assert all(c == {1: ("SCT", "49848007"), 2: ("SCT", "87878005")} for c in codes)
    np.testing.assert_array_equal(pixels, masks)


def test_rv_segment_where_present(cohort, tmp_path):
    es = int(cohort.exams["es_frame"].iloc[0])
    masks = cohort.sax_masks(es)
    masks[4, :5, :5] = 3
    refs = _sources(cohort, cohort.exam, es)
    codes, pixels = _read_back(export_dicom_seg(masks, cohort.index, cohort.exam, es, "ES", tmp_path), refs)
    assert all(c[3] == ("SCT", "53085002") for c in codes)
    np.testing.assert_array_equal(pixels, masks)


def test_dciodvfy_finds_no_errors(es_seg):
    if shutil.which("dciodvfy") is None:
        pytest.skip("dciodvfy (Debian package dicom3tools) is not installed: DICOM validation skipped")
    out = subprocess.run(["dciodvfy", str(es_seg[3][0])], capture_output=True, text=True)
    errors = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("Error")]
    assert not errors, errors


def test_import_gives_the_contours(cohort, es_seg):
    _, es, _, paths = es_seg
    ann = Annotations.concat([read_dicom_seg(p, cohort.index, observer=OBSERVER) for p in paths])
    assert set(ann.contours["phase"]) == {"ES"} and set(ann.contours["frame"]) == {es}
    err = contour_errors_px(cohort, ann.contours, es)  # the tolerance of the NIfTI round trip
    assert err.max() < 0.75 and err.mean() < 0.25, (err.max(), err.mean())


def test_unknown_segment_code(cohort, es_seg, tmp_path):
    ds = pydicom.dcmread(es_seg[3][0])
    ds.SegmentSequence[0].SegmentedPropertyTypeCodeSequence[0].CodeValue = "12345678"
    bad = tmp_path / "bad_seg.dcm"
    ds.save_as(bad)
    with pytest.raises(FormatError, match=r"bad_seg\.dcm: segment 1 has property type SCT 12345678"):
        read_dicom_seg(bad, cohort.index)


def test_referenced_image_not_in_cohort(cohort, es_seg):
    msg = r"_ES_seg(_\d+)?\.dcm: SOPInstanceUID .* \(ReferencedSOPInstanceUID\) is not an image"
    with pytest.raises(FormatError, match=msg):
        read_dicom_seg(es_seg[3][0], CohortIndex(cohort.root))


def test_not_a_seg(cohort, tmp_path):
    junk = tmp_path / "junk.dcm"
    shutil.copy(_sources(cohort, cohort.exam, 0)[0].path, junk)
    with pytest.raises(FormatError, match=r"junk\.dcm: not a readable DICOM Segmentation"):
        read_dicom_seg(junk, cohort.index)


def test_seg_on_long_axis_images(cohort, es_seg):
    lax = CohortIndex(cohort.root)
    for ref in cohort.index.by_uid.values():
        lax.add(dataclasses.replace(ref, view="lax_4ch", slice_index=0) if ref.view == "sax" else ref)
    msg = r"references the exam's lax_4ch image .*SAX masks \(orientation mismatch\)"
    with pytest.raises(FormatError, match=msg):
        read_dicom_seg(es_seg[3][0], lax)


def test_export_checks_phase_and_shape(cohort, tmp_path):
    masks = cohort.sax_masks(0)
    with pytest.raises(ValueError, match="phase ED or ES, got shape .* and phase 'frame0'"):
        export_dicom_seg(masks, cohort.index, cohort.exam, 0, "frame0", tmp_path)
    with pytest.raises(ValueError, match=r"masks of \(10, 10\) pixels, SAX images of"):
        export_dicom_seg(masks[:, :10, :10], cohort.index, cohort.exam, 0, "ED", tmp_path)
