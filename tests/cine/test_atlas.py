import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from cmr_atlas.cine.atlas import (
    EXPLAINED_VARIANCE,
    SCORES,
    Atlas,
    build_atlas,
    build_atlases,
    explained_variance_frame,
    generalized_procrustes,
    grid_faces,
    kabsch,
    scores_frame,
    shape_vectors,
    write_vtp_surfaces,
)
from cmr_atlas.core.config import default
from cmr_atlas.core.tables import conform

# the config's default atlas settings (read from the schema, not copied)
ATLAS = {"n_components": default("atlas.n_components"), "scaling": default("atlas.scaling")}


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_kabsch_recovers_rotation_never_reflection(seed):
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(20, 3))
    a -= a.mean(axis=0)
    R = Rotation.random(random_state=rng).as_matrix()
    r, s = kabsch(a, a @ R.T, scaling=False)
    np.testing.assert_allclose(r, R, atol=1e-9)
    # a mirrored target: the best proper rotation, det +1
    r, _ = kabsch(a, a * np.array([1, 1, -1]), scaling=False)
    assert np.linalg.det(r) == pytest.approx(1.0)
    r, s = kabsch(a, 2.5 * a @ R.T, scaling=True)
    assert s == pytest.approx(2.5)


def test_gpa_removes_rigid_transforms(lv_shape):
    base = lv_shape()
    rng = np.random.default_rng(1)
    copies = np.stack([base @ Rotation.random(random_state=rng).as_matrix().T + rng.normal(0, 40, 3)
                       for _ in range(6)])
    g = generalized_procrustes(copies, scaling=False)
    assert g.converged
    spread = np.abs(g.aligned - g.aligned[0]).max()
    assert spread < 1e-6
    # the mean is the base shape up to a rigid transform: same pairwise distances
    d = lambda p: np.linalg.norm(p[:50, None] - p[None, :50], axis=-1)  # noqa: E731
    np.testing.assert_allclose(d(g.mean), d(base), atol=1e-6)
    assert np.allclose([np.linalg.det(r) for r in g.rotations], 1.0)


def test_gpa_scaling_option(lv_shape):
    base = lv_shape()
    copies = np.stack([base * s for s in (0.8, 1.0, 1.3)])
    assert np.abs(generalized_procrustes(copies, scaling=True).aligned.std(axis=0)).max() < 1e-6
    assert np.abs(generalized_procrustes(copies, scaling=False).aligned.std(axis=0)).max() > 1.0


def test_pca_recovers_two_factors_and_is_pose_invariant(shape_cohort):
    shapes, lat = shape_cohort(n=15)
    atlas = build_atlas(shapes, "auto", n_components=5, scaling=False)
    assert atlas.n_components == 5
    assert atlas.variance_ratio[:2].sum() > 0.98  # two latent factors
    # scores of the first two modes are a linear function of the factors
    coef, res, *_ = np.linalg.lstsq(np.c_[lat, np.ones(15)], atlas.scores[:, :2], rcond=None)
    pred = np.c_[lat, np.ones(15)] @ coef
    assert np.corrcoef(pred[:, 0], atlas.scores[:, 0])[0, 1] > 0.99
    # same cohort without random poses: same variances
    untransformed = build_atlas(shape_cohort(n=15, transform=False)[0], "auto", n_components=5, scaling=False)
    np.testing.assert_allclose(untransformed.variance, atlas.variance, rtol=1e-6, atol=1e-9)


def test_projection_of_training_exams_and_new_pose(tmp_path, shape_cohort, shape_grid):
    shapes, _ = shape_cohort(n=10)
    atlas = build_atlas(shapes, "manual", n_components=4, scaling=False)
    np.testing.assert_allclose(atlas.project(shapes), atlas.scores, atol=1e-6)
    R = Rotation.from_euler("xyz", [30, -50, 10], degrees=True).as_matrix()
    moved = shapes[3] @ R.T + [100, -20, 5]
    np.testing.assert_allclose(atlas.project(moved)[0], atlas.scores[3], atol=1e-6)
    p = atlas.save(tmp_path / "atlas" / "manual.npz")
    back = Atlas.load(p)
    assert back.source == "manual" and back.exam_ids == atlas.exam_ids and back.grid == shape_grid
    np.testing.assert_allclose(back.project(shapes), atlas.scores, atol=1e-6)
    with pytest.raises(ValueError, match="shape must be"):
        atlas.project(np.zeros((5, 3)))


def test_shape_vectors_order_and_exclusion(shape_cohort, shape_table):
    shapes, _ = shape_cohort(n=4)
    tab = shape_table(shapes)
    tab = tab.sample(frac=1.0, random_state=0)  # order of rows must not matter
    tab = tab[~((tab["exam_id"] == "E002") & (tab["surface"] == "epi") & (tab["phase"] == "ES")
                & (tab["point_index"] == 5))]
    tab.loc[(tab["exam_id"] == "E003") & (tab["point_index"] == 0), "x_mm"] = np.nan
    s = shape_vectors(tab, "auto")
    assert s.exam_ids == ["E000", "E001"]
    assert s.excluded == {"E002": "ES-epi: 80 of 81 points", "E003": "ED-endo: non-finite coordinates"}
    np.testing.assert_allclose(s.points[1], shapes[1])
    dup = pd.concat([shape_table(shapes[:2]), shape_table(shapes[:1]).query("phase == 'ES'")])
    assert shape_vectors(dup, "auto").excluded == {"E000": "ES-endo: duplicate point indices"}


def test_build_atlases_on_common_exams_and_tables(shape_cohort, shape_table):
    auto, _ = shape_cohort(n=8, seed=2)
    manual = auto + np.random.default_rng(3).normal(0, 0.5, auto.shape)
    tab = pd.concat([shape_table(auto, "auto"), shape_table(manual[:7], "manual")])
    exams = pd.DataFrame({"exam_id": [f"E{i:03d}" for i in range(8)], "status": ["ok"] * 7 + ["failed"]})
    exams.loc[0, "status"] = "failed"
    b = build_atlases(tab, exams, n_components=25, scaling=False)
    assert set(b.atlases) == {"auto", "manual"}
    assert b.atlases["auto"].exam_ids == b.atlases["manual"].exam_ids == [f"E{i:03d}" for i in range(1, 7)]
    assert b.atlases["auto"].n_components == 5  # E - 1
    assert b.excluded["auto"]["E000"] == "exam status not ok"
    sc = pd.concat([scores_frame(a) for a in b.atlases.values()])
    conform(sc, SCORES)
    assert sc["pc6"].isna().all() and sc["pc5"].notna().all()
    ev = pd.concat([explained_variance_frame(a) for a in b.atlases.values()])
    conform(ev, EXPLAINED_VARIANCE)
    assert ev.groupby("source")["cumulative"].max().round(9).eq(1.0).all()
    only_auto = build_atlases(shape_table(auto, "auto"), **ATLAS)
    assert set(only_auto.atlases) == {"auto"} and any("no manual" in n for n in only_auto.notes)


def test_grid_faces_closed_ring_and_vtp(tmp_path, lv_shape, shape_cohort, shape_grid):
    f = grid_faces(4, 5)
    assert f.shape == ((4 - 1) * 5 * 2, 3) and f.max() == 19
    # duplicated seam column: no wrap-around triangles
    pts = lv_shape(n_long=4, n_circ=5)[:20].reshape(4, 5, 3).copy()
    pts[:, -1] = pts[:, 0]
    assert len(grid_faces(4, 5, pts.reshape(-1, 3))) == 3 * 4 * 2
    atlas = build_atlas(shape_cohort(n=6)[0], "auto", n_components=3, scaling=False)
    paths = write_vtp_surfaces(atlas, tmp_path, n_modes=2)
    assert len(paths) == (1 + 2 * 2) * 4
    import pyvista as pv

    mesh = pv.read(paths[0])
    n_long, n_circ = shape_grid
    assert mesh.n_points == n_long * n_circ and mesh.n_cells == (n_long - 1) * n_circ * 2


def test_grid_faces_drop_collapsed_apex_ring(lv_shape):
    pts = lv_shape(n_long=5, n_circ=6)[:30].copy()
    pts[:6] = pts[:6].mean(axis=0)  # apex ring collapsed to one point, as in the synthetic grid
    f = grid_faces(5, 6, pts)
    assert len(f) == 4 * 6 * 2 - 6  # one triangle per quad of the first band is degenerate
    p = pts[f]
    assert (np.linalg.norm(np.cross(p[:, 1] - p[:, 0], p[:, 2] - p[:, 0]), axis=1) > 0).all()


def test_top_singular_matches_full_svd():
    from cmr_atlas.cine.atlas import _top_singular

    rng = np.random.default_rng(5)
    x = rng.normal(size=(12, 40)) * np.linspace(5, 0.1, 40)
    x -= x.mean(axis=0)
    _u, sv, vt = np.linalg.svd(x, full_matrices=False)
    for a in (x, x.T):  # E < D (Gram path) and E > D (plain SVD)
        s2, v2 = _top_singular(a, 5)
        _u, sv, vt = np.linalg.svd(a, full_matrices=False)
        np.testing.assert_allclose(s2, sv[:5], rtol=1e-10)
        np.testing.assert_allclose(np.abs(np.sum(v2 * vt[:5], axis=1)), 1.0, atol=1e-8)
