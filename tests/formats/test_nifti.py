import nibabel as nib
import numpy as np
import pytest

from cmr_atlas.core.vocab import LABELS
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.nifti import LPS_TO_RAS, export_sax_nifti, read_nifti_labels, relabel, write_nifti
from tests.formats.helpers import OBSERVER, contour_errors_px, sax_planes as _sax


@pytest.fixture()
def ed_label_map(cohort, tmp_path):
    ed = int(cohort.exams["ed_frame"].iloc[0])
    masks = cohort.sax_masks(ed)
    return ed, masks, write_nifti(relabel(masks, "acdc"), _sax(cohort, ed), tmp_path / "ed_gt.nii.gz")


def test_label_map_round_trip(cohort, ed_label_map):
    ed, masks, path = ed_label_map
    ann = read_nifti_labels(path, cohort.index, cohort.exam, frame=ed, labels="acdc", observer=OBSERVER)
    c = ann.contours
    truth = cohort.contours[(cohort.contours["view"] == "sax") & (cohort.contours["frame"] == ed)]
    assert set(zip(c["slice_index"], c["surface"])) == set(zip(truth["slice_index"], truth["surface"]))
    assert set(c["phase"]) == {"ED"}
    # Tolerance in pixels, since the label map is the contour quantised to whole pixels: a pixel is
    # labelled when its centre is inside, so the mask boundary lies up to half a pixel from the
    # contour, and the import traces the 0.5 level of the lightly smoothed mask (0.7 px Gaussian),
    # which rounds corners a little more.  Measured on both test exams at ED and ES: max 0.45-0.54
    # px, mean 0.14 px; the bounds (3/4 px, 1/4 px) fail for the same contours shifted by half a
    # pixel (max 0.93-0.95 px, mean 0.33-0.34 px).
    err = contour_errors_px(cohort, c, ed)
    assert err.max() < 0.75 and err.mean() < 0.25, (err.max(), err.mean())


def test_axis_order_and_flips_are_followed(cohort, ed_label_map, tmp_path):
    ed, _, path = ed_label_map
    img = nib.load(path)
    data = np.asarray(img.dataobj)
    # file voxel (a, b, k) = our voxel (i, j, k) with i = C - 1 - b, j = a
    swap = np.array([[0, -1, 0, data.shape[0] - 1], [1, 0, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1.0]])
    other = tmp_path / "swapped.nii.gz"
    nib.save(nib.Nifti1Image(np.ascontiguousarray(data[::-1].transpose(1, 0, 2)), img.affine @ swap), other)
    a = read_nifti_labels(path, cohort.index, cohort.exam, frame=ed)
    b = read_nifti_labels(other, cohort.index, cohort.exam, frame=ed)
    np.testing.assert_allclose(a.contours[["x_mm", "y_mm", "z_mm"]], b.contours[["x_mm", "y_mm", "z_mm"]], atol=1e-9)


def test_export_affine_maps_voxels_to_pixel_centres(cohort, tmp_path):
    planes = _sax(cohort, 0)
    images = np.random.default_rng(0).random((len(planes), 3, *planes[0].shape), dtype=np.float32)
    masks = np.zeros(images.shape, dtype=np.uint8)
    masks[2, 1, 10, 20] = LABELS["lv_cavity"]
    sa, seg = export_sax_nifti(images, planes, tmp_path, "E1", masks=masks, labels="ukbb", frame_ms=40.0)
    img, lab = nib.load(sa), nib.load(seg)
    assert img.shape == (planes[0].shape[1], planes[0].shape[0], len(planes), 3)
    np.testing.assert_array_equal(np.asarray(img.dataobj)[:, :, 4, 2], images[4, 2].T)
    assert np.asarray(lab.dataobj)[20, 10, 2, 1] == 1  # ukbb: LV cavity = 1
    assert int(img.header["qform_code"]) == 1 and int(img.header["sform_code"]) == 1
    for k in (0, len(planes) - 1):
        ras = img.affine @ np.array([20.0, 10.0, k, 1.0])
        lps = (LPS_TO_RAS @ ras)[:3]
        np.testing.assert_allclose(lps, planes[k].pixel_to_patient(np.array([10.0, 20.0])), atol=0.05)


def test_export_of_ed_es_masks_writes_the_fully_segmented_frames(cohort, tmp_path):
    """Masks of an ED + ES run (config inference.frames): a 3D file per frame whose every slice
    was segmented, no 4D file with empty frames."""
    planes = _sax(cohort, 0)
    images = np.zeros((len(planes), 4, *planes[0].shape), dtype=np.float32)
    masks = np.zeros(images.shape, dtype=np.uint8)
    masks[1, 3, 10, 20] = LABELS["lv_cavity"]
    segmented = np.zeros((len(planes), 4), bool)
    segmented[:, [0, 3]] = True
    segmented[:3, 1] = True  # a curve slice's frame: not every slice
    paths = export_sax_nifti(images, planes, tmp_path, "E1", masks=masks, segmented=segmented)
    assert [p.name for p in paths] == ["E1_sa.nii.gz", "E1_sa_seg_frame00.nii.gz", "E1_sa_seg_frame03.nii.gz"]
    es = nib.load(paths[2])
    assert es.shape == (planes[0].shape[1], planes[0].shape[0], len(planes))
    assert np.asarray(es.dataobj)[20, 10, 1] == LABELS["lv_cavity"]
    np.testing.assert_allclose(es.affine, nib.load(paths[0]).affine)


def test_orientation_mismatch(cohort, ed_label_map, tmp_path):
    ed, _, path = ed_label_map
    img = nib.load(path)
    rot = np.eye(4)
    rot[:2, :2] = [[np.cos(0.05), -np.sin(0.05)], [np.sin(0.05), np.cos(0.05)]]  # 3 degrees in plane
    bad = tmp_path / "rotated.nii.gz"
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), img.affine @ rot), bad)
    msg = r"rotated\.nii\.gz: affine does not match the SAX stack of exam .* \(orientation mismatch: voxel axes"
    with pytest.raises(FormatError, match=msg):
        read_nifti_labels(bad, cohort.index, cohort.exam, frame=ed)
    moved = tmp_path / "moved.nii.gz"
    shift = img.affine.copy()
    shift[:3, 3] += 3 * img.affine[:3, 2]
    nib.save(nib.Nifti1Image(np.asarray(img.dataobj), shift), moved)
    with pytest.raises(FormatError, match=r"moved\.nii\.gz: .*orientation mismatch: grid .* at voxel offset"):
        read_nifti_labels(moved, cohort.index, cohort.exam, frame=ed)


def test_bad_values_and_missing_frame(cohort, ed_label_map, tmp_path):
    ed, masks, path = ed_label_map
    with pytest.raises(FormatError, match=r"ed_gt\.nii\.gz: a 3D label map needs the frame"):
        read_nifti_labels(path, cohort.index, cohort.exam)
    odd = write_nifti(np.where(masks > 0, 7, 0).astype(np.uint8), _sax(cohort, ed), tmp_path / "odd.nii.gz")
    with pytest.raises(FormatError, match=r"odd\.nii\.gz: label values \[7\] are not in the label set"):
        read_nifti_labels(odd, cohort.index, cohort.exam, frame=ed)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not nifti")
    with pytest.raises(FormatError, match=r"junk\.nii\.gz: not a readable NIfTI file"):
        read_nifti_labels(junk, cohort.index, cohort.exam, frame=ed)


def test_4d_map_and_exam_found_by_geometry(cohort, tmp_path):
    ed, es = int(cohort.exams["ed_frame"].iloc[0]), int(cohort.exams["es_frame"].iloc[0])
    n_frames = int(cohort.exams["n_frames"].iloc[0])
    planes = _sax(cohort, 0)
    masks = np.zeros((len(planes), n_frames, *planes[0].shape), dtype=np.uint8)
    masks[:, ed], masks[:, es] = cohort.sax_masks(ed), cohort.sax_masks(es)
    path = write_nifti(relabel(masks, "ukbb"), planes, tmp_path / "seg_sa.nii.gz")
    ann = read_nifti_labels(path, cohort.index, labels="ukbb", observer=OBSERVER)  # no exam, no frame
    assert set(ann.contours["exam_id"]) == {cohort.exam}
    assert ann.contours.groupby("frame")["phase"].unique().map(list).to_dict() == {ed: ["ED"], es: ["ES"]}
    for f in (ed, es):
        err = contour_errors_px(cohort, ann.contours[ann.contours["frame"] == f], f)
        assert err.max() < 0.75 and err.mean() < 0.25
