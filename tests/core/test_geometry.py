import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.geometry import SlicePlane, orthonormal_frame, plane_intersection_line

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
