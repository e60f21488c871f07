import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.geometry import (PLANE_FIELDS, PLANE_VECTOR_LENGTH, SlicePlane, nearest_plane, orthonormal_frame,
                                     plane_from_vector, plane_intersection_line, plane_to_row, plane_vector,
                                     planes_by_slice, row_to_plane, slice_spacing_mm)

unit = st.tuples(*[st.floats(-1, 1)] * 3).map(np.array).filter(lambda v: np.linalg.norm(v) > 0.2)


def _plane(axis, hint, spacing=(1.5, 1.7), shape=(160, 256), centre=(10.0, -20.0, 30.0)):
    f = orthonormal_frame(axis, hint if abs(np.dot(axis, hint)) < 0.99 * np.linalg.norm(axis) * np.linalg.norm(hint) else np.array([1.0, 0.3, 0.1]))
    return SlicePlane.centred(np.array(centre), f[:, 0], f[:, 1], spacing, shape)


@settings(max_examples=60, deadline=None)
@given(unit, unit, st.floats(0.5, 3.0), st.floats(0.5, 3.0),
       st.lists(st.floats(-50, 300), min_size=2, max_size=2))
def test_pixel_patient_round_trip(axis, hint, sr, sc, rc):
    plane = _plane(axis, hint, spacing=(sr, sc))
    rc = np.array(rc)
    xyz = plane.pixel_to_patient(rc)
    back, dist = plane.patient_to_pixel(xyz)
    np.testing.assert_allclose(back, rc, atol=1e-8)
    assert abs(dist) < 1e-8


def test_dicom_convention_row_cosine_moves_along_columns():
    # IOP [1,0,0, 0,1,0]: column index grows along +x, row index along +y.
    p = SlicePlane.from_dicom([0, 0, 0], [1, 0, 0, 0, 1, 0], (2.0, 3.0), (10, 20))
    np.testing.assert_allclose(p.pixel_to_patient(np.array([0, 1])), [3.0, 0, 0])
    np.testing.assert_allclose(p.pixel_to_patient(np.array([1, 0])), [0, 2.0, 0])
    np.testing.assert_allclose(p.normal, [0, 0, 1])
    a = p.affine
    np.testing.assert_allclose(a @ [1, 1, 0, 1], [3.0, 2.0, 0, 1])


def test_affine_matches_pixel_to_patient():
    p = _plane(np.array([0.3, -0.5, 0.8]), np.array([1.0, 0, 0]))
    rc = np.array([[3.5, 7.25], [100, 5]])
    hom = np.c_[rc, np.zeros(2), np.ones(2)]
    np.testing.assert_allclose((p.affine @ hom.T).T[:, :3], p.pixel_to_patient(rc))


def test_centred_plane_centre():
    c = np.array([1.0, 2.0, 3.0])
    p = SlicePlane.centred(c, [0, 1, 0], [0, 0, -1], (1.4, 1.4), (160, 256))
    np.testing.assert_allclose(p.centre_mm, c, atol=1e-9)


def test_supersampled_grid_averages_to_pixel_centres():
    p = _plane(np.array([0.2, 0.1, 1.0]), np.array([1.0, 0, 0]), shape=(4, 5))
    fine = p.pixel_grid_mm(supersample=3)
    np.testing.assert_allclose(fine.mean(axis=2), p.pixel_grid_mm(), atol=1e-9)


@settings(max_examples=40, deadline=None)
@given(unit, unit)
def test_plane_intersection_lies_on_both(a1, a2):
    if np.linalg.norm(np.cross(a1, a2)) < 0.1 * np.linalg.norm(a1) * np.linalg.norm(a2):
        return
    pa, pb = _plane(a1, np.array([1.0, 0.2, 0])), _plane(a2, np.array([0.1, 1.0, 0]), centre=(0, 5, 0))
    point, d = plane_intersection_line(pa, pb)
    for q in (point, point + 37.0 * d):
        assert abs(pa.patient_to_pixel(q)[1]) < 1e-6
        assert abs(pb.patient_to_pixel(q)[1]) < 1e-6


def test_image_cache_round_trip(tmp_path):
    from cmr_atlas.core.imagecache import ExamImages, load_exam_images, save_exam_images

    planes = [_plane(np.array([0.3, -0.5, 0.8]), np.array([1.0, 0, 0]), shape=(8, 9), centre=(0, 0, 10.0 * i)) for i in range(3)]
    lax_plane = _plane(np.array([1.0, 0, 0.2]), np.array([0, 1.0, 0]), shape=(7, 6))
    img = ExamImages("E1", np.random.rand(3, 4, 8, 9).astype(np.float32), planes, np.arange(4) * 40.0,
                     {"lax_4ch": np.ones((4, 7, 6), np.float32)}, {"lax_4ch": lax_plane})
    p = save_exam_images(img, tmp_path / "E1.npz")
    back = load_exam_images(p)
    np.testing.assert_array_equal(back.sax, img.sax)
    assert back.exam_id == "E1" and set(back.lax) == {"lax_4ch"} and back.sax_masks is None
    np.testing.assert_allclose(back.sax_planes[2].affine, planes[2].affine)
    np.testing.assert_allclose(back.lax_planes["lax_4ch"].affine, lax_plane.affine)


def _same(a: SlicePlane, b: SlicePlane) -> bool:
    return (np.allclose(a.affine, b.affine) and a.shape == b.shape and a.thickness_mm == b.thickness_mm
            and a.pixel_spacing_mm == b.pixel_spacing_mm)


def test_one_plane_serialisation_for_rows_and_cache_vectors():
    """Row columns and cache vector share PLANE_FIELDS' order; both round-trip exactly."""
    p = SlicePlane.from_dicom([-12.5, 30.25, 101.0], [0.6, 0.8, 0, 0, 0, -1], (1.25, 1.5), (192, 156), 8.0)
    row = plane_to_row("E1", "sax", 4, p)
    assert list(row) == ["exam_id", "view", "slice_index", *(f.name for f in PLANE_FIELDS)]
    v = plane_vector(p)
    assert v.shape == (PLANE_VECTOR_LENGTH,) and v.dtype == np.float64
    assert list(v[:len(PLANE_FIELDS)]) == [row[f.name] for f in PLANE_FIELDS]
    np.testing.assert_array_equal(v[len(PLANE_FIELDS):], 0.0)
    # the cache's historical layout, byte for byte
    legacy = np.array([*p.position_mm, *p.row_cosine, *p.col_cosine, *p.pixel_spacing_mm,
                       p.shape[0], p.shape[1], p.thickness_mm, 0.0, 0.0, 0.0], dtype=float)
    assert v.tobytes() == legacy.tobytes()
    assert _same(plane_from_vector(v), p) and _same(row_to_plane(row), p)
    assert isinstance(row["rows"], int) and isinstance(row["slice_index"], int)


def test_planes_by_slice_picks_one_exam():
    planes = [_plane(np.array([0.2, 0.1, 1.0]), np.array([1.0, 0, 0]), centre=(0, 0, 8.0 * i)) for i in range(3)]
    rows = [plane_to_row("E1", "sax", i, p) for i, p in enumerate(planes)]
    rows.append(plane_to_row("E2", "lax_2ch", 0, planes[0]))
    got = planes_by_slice(pd.DataFrame(rows), "E1")
    assert sorted(got) == [("sax", 0), ("sax", 1), ("sax", 2)]
    assert _same(got[("sax", 2)], planes[2])


@settings(max_examples=40, deadline=None)
@given(unit, st.floats(4.0, 12.0), st.permutations(range(5)), st.floats(-1.9, 1.9))
def test_slice_spacing_and_nearest_plane(axis, gap, order, off):
    f = orthonormal_frame(axis, np.array([1.0, 0.3, 0.1]) if abs(axis[0]) < 0.9 * np.linalg.norm(axis) else np.array([0, 1.0, 0.2]))
    stack = [SlicePlane.centred(f[:, 2] * gap * k + f[:, 0] * k, f[:, 0], f[:, 1], (1.5, 1.5), (32, 32)) for k in range(5)]
    shuffled = [stack[k] for k in order]
    assert abs(slice_spacing_mm(shuffled) - gap) < 1e-9
    assert slice_spacing_mm(stack[:1]) is None and slice_spacing_mm([]) is None
    # points on slice 2, displaced along the normal by less than the tolerance
    pts = stack[2].pixel_to_patient(np.array([[3.0, 4.0], [20.0, 11.0], [9.0, 30.0]])) + off * stack[2].normal
    assert nearest_plane(pts, shuffled) == order.index(2)
    far = pts + 3.0 * np.sign(off or 1.0) * stack[2].normal
    assert nearest_plane(far, [stack[2]]) is None
    assert nearest_plane(pts[:0], shuffled) is None and nearest_plane(pts, []) is None


def test_nearest_plane_tolerance_is_inclusive():
    p = SlicePlane.from_dicom([0, 0, 0], [1, 0, 0, 0, 1, 0], (1.0, 1.0), (10, 10))
    pts = np.array([[1.0, 2.0, 2.0], [3.0, 1.0, -2.0]])
    assert nearest_plane(pts, [p], tol_mm=2.0) == 0
    assert nearest_plane(pts, [p], tol_mm=1.999) is None



@settings(max_examples=30, deadline=None)
@given(unit, unit, st.lists(st.floats(-50, 50), min_size=3, max_size=3), st.floats(-30, 30))
def test_in_plane_part_and_projection(axis, hint, v, off):
    plane = _plane(axis, hint)
    v = np.asarray(v)
    part = plane.in_plane_part(v)
    assert abs(part @ plane.normal) < 1e-9 and np.allclose(part + (v @ plane.normal) * plane.normal, v)
    p = plane.position_mm + part + off * plane.normal  # a point off the plane by ``off`` mm
    q = plane.project(p)
    assert np.allclose(q, plane.position_mm + part) and np.allclose(plane.project(np.stack([p, q])), [q, q])
