"""LV model: Hermite field, prolate coordinates, fitting with breath-hold correction, measures."""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.cine.lvmodel import measures, prolate
from cmr_atlas.cine.lvmodel.run import fit_all
from cmr_atlas.cli.fit import run
from cmr_atlas.cine.lvmodel.exam import fit_exam
from cmr_atlas.cine.lvmodel.hermite import HermiteMesh
from cmr_atlas.cine.lvmodel.outputs import TABLES
from cmr_atlas.core.config import default
from cmr_atlas.core.tables import conform, read_table, write_table

MESH = HermiteMesh()
# the config's default fit settings (read from the schema, not copied)
FIT = {"breath_hold": default("fit.breath_hold"), "shift_reference": default("fit.shift_reference")}


# ---------------------------------------------------------------- Hermite field and coordinates
def _constant(value):
    from cmr_atlas.cine.lvmodel.fit import _constant_params

    return _constant_params(MESH, value)


@given(st.floats(0, MESH.mu_max), st.floats(0, 2 * np.pi))
@settings(max_examples=30, deadline=None)
def test_constant_field_is_constant_with_zero_derivatives(mu, theta):
    x = _constant(0.7)
    lam, lm, lt = MESH.evaluate(x, np.array([mu]), np.array([theta]), ((0, 0), (1, 0), (0, 1)))
    assert lam[0] == pytest.approx(0.7)
    assert abs(lm[0]) < 1e-12 and abs(lt[0]) < 1e-12


def test_basis_derivatives_match_finite_differences():
    rng = np.random.default_rng(1)
    x = rng.normal(size=MESH.n_params)
    mu = rng.uniform(0.05, MESH.mu_max - 0.05, 20)
    th = rng.uniform(0, 2 * np.pi, 20)
    h = 1e-6
    for dm, dt in ((1, 0), (0, 1)):
        analytic = MESH.basis(mu, th, dm, dt) @ x
        fd = (MESH.basis(mu + h * dm, th + h * dt) @ x - MESH.basis(mu - h * dm, th - h * dt) @ x) / (2 * h)
        np.testing.assert_allclose(analytic, fd, atol=1e-5)
    # evaluate() and basis() agree
    np.testing.assert_allclose(MESH.evaluate(x, mu, th)[0], MESH.basis(mu, th) @ x, atol=1e-12)


def test_apex_is_one_point_and_smooth():
    rng = np.random.default_rng(2)
    x = rng.normal(size=MESH.n_params)
    th = np.linspace(0, 2 * np.pi, 13)
    lam0 = MESH.evaluate(x, np.zeros_like(th), th)[0]
    assert np.ptp(lam0) < 1e-12
    # near the pole the field is l0 + mu (a cos th + b sin th): the slope is a first harmonic
    # (exact at the nodes, cubic-Hermite interpolated between them)
    slope = MESH.evaluate(x, np.zeros_like(th), th, ((1, 0),))[0]
    a, b = x[1], x[2]
    np.testing.assert_allclose(slope, a * np.cos(th) + b * np.sin(th), atol=0.02 * np.hypot(a, b))


@given(st.floats(0.1, 1.5), st.floats(0.01, 3.1), st.floats(0, 6.28), st.floats(20, 90))
@settings(max_examples=50, deadline=None)
def test_prolate_round_trip(lam, mu, theta, d):
    p = prolate.to_cartesian(np.array([lam]), np.array([mu]), np.array([theta]), d)
    lam2, mu2, th2 = prolate.to_prolate(p, d)
    np.testing.assert_allclose(prolate.to_cartesian(lam2, mu2, th2, d), p, atol=1e-6)


def test_triangulation_matches_cap_topology():
    tris = measures.triangles()
    assert tris.shape == (1595, 3)
    assert set(np.unique(tris)) == set(range(841))
    assert all(len(set(t)) == 3 for t in tris.tolist())


def test_volume_of_confocal_spheroid_cut_at_its_equator():
    # lambda constant = a spheroid with semi-axes d cosh(l), d sinh(l); half of it below z = 0
    d, lam = 60.0, 0.5
    x = _constant(lam)
    pts = measures.sample_surface(MESH, d, x, np.zeros(3), np.array([0, 0, 1.0]), 81, 128)
    vol = measures.enclosed_volume_ml(pts, measures.triangles(81, 128), np.zeros(3))
    exact = 2 / 3 * np.pi * d * np.cosh(lam) * (d * np.sinh(lam)) ** 2 / 1000
    assert vol == pytest.approx(exact, rel=2e-3)
    # the 29 x 29 sampling ends on the base plane at i_mu = 28 and starts at the apex
    grid = measures.sample_surface(MESH, d, x, np.zeros(3), np.array([0, 0, 1.0]))
    assert np.abs(grid[-29:, 2]).max() < 1e-6
    np.testing.assert_allclose(grid[:29], np.tile([0, 0, d * np.cosh(lam)], (29, 1)), atol=1e-9)


def test_aha_segments():
    seg = measures.aha_segment(np.array([0.1, 0.1, 0.5, 0.5, 0.8, 0.8, 0.95]),
                               np.array([30.0, 90.0, -30.0, 270.0, 0.0, 180.0, 10.0]))
    assert seg.tolist() == [2, 1, 9, 10, 14, 16, 17]


# ---------------------------------------------------------------- fitting on the known LV
def _shift_error(fix, fit):
    """RMS in-plane error of SAX shifts after removing the common in-plane translation."""
    planes = fix.planes()
    est = {s: d for v, s, d in fit.shifts if v == "sax"}
    tru = fix.shifts[fix.shifts["view"] == "sax"].set_index("slice_index")
    errs = []
    for s, d in est.items():
        p = planes[("sax", s)]
        b = np.stack([p.row_cosine, p.col_cosine])
        errs.append(b @ (d - tru.loc[s, ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(dtype=float)))
    errs = np.array(errs)
    errs -= errs.mean(axis=0)
    return float(np.sqrt((errs**2).sum(axis=1).mean()))


def _surface_error(fix, fit):
    """Mean distance to the true surfaces after removing the common translation (the gauge:
    the SAX stack's mean position, not the fixture's reference anatomy)."""
    gauge = np.zeros(3)
    if fit.shifts:
        tru = fix.shifts[fix.shifts["view"] == "sax"][["dx_mm", "dy_mm", "dz_mm"]].to_numpy(float)
        gauge = tru.mean(axis=0)  # the fixture's common SAX displacement
        p = fix.planes()[("sax", 0)]
        gauge = gauge - (gauge @ p.normal) * p.normal  # only its in-plane part is absorbed
    out = {}
    for key, pts in fit.surfaces.items():
        local_truth = (fit.frame.to_patient(pts) - gauge - fix.origin) @ fix.rotation
        out[key] = float(fix.surface_distance(local_truth, key).mean())
    return out


@pytest.fixture(scope="module")
def shifted(make_fixture):
    # in-plane shifts (what the correction can see); through-plane ones are tested separately
    fix = make_fixture(3, shift_sd_mm=3.0, noise_mm=0.5, through_plane=False)
    return fix, {bh: fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **(FIT | {"breath_hold": bh}))
                 for bh in (True, False)}


def test_breath_hold_shifts_are_recovered(shifted):
    fix, fits = shifted
    assert fits[True].status == "ok"
    err_bh = _shift_error(fix, fits[True])
    err_none = _shift_error(fix, fits[False])
    assert err_bh < 1.0
    assert err_none > 2.0  # without correction the error is the shifts themselves
    # gauge: the SAX shifts sum to zero; the LAX views get their own estimates
    sax = np.array([d for v, s, d in fits[True].shifts if v == "sax"])
    assert np.abs(sax.sum(axis=0)).max() < 0.05
    assert {v for v, s, d in fits[True].shifts} == {"sax", "lax_2ch", "lax_4ch"}


def test_lax_reference_keeps_long_axis_views_fixed(make_fixture):
    fix = make_fixture(3, shift_sd_mm=3.0, noise_mm=0.5, through_plane=False)
    fit = fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **(FIT | {"shift_reference": "lax"}))
    assert all(np.all(d == 0) for v, s, d in fit.shifts if v != "sax")
    assert _shift_error(fix, fit) < 1.0


def test_fitted_surfaces_and_volumes_match_the_truth(shifted):
    fix, fits = shifted
    fit = fits[True]
    assert max(_surface_error(fix, fit).values()) < 1.0
    vol = fit.volumes["model"]
    assert vol["ED_cavity_ml"] == pytest.approx(fix.truth["edv_ml"], rel=0.02)
    assert vol["ES_cavity_ml"] == pytest.approx(fix.truth["esv_ml"], rel=0.02)
    assert 1.05 * vol["ED_myo_ml"] == pytest.approx(fix.truth["lv_mass_g"], rel=0.03)
    # correction improves the fit to the data
    assert fit.rms_residual_mm < fits[False].rms_residual_mm


def test_through_plane_shifts_leave_in_plane_recovery_intact(make_fixture):
    fix = make_fixture(5, shift_sd_mm=3.0, noise_mm=0.5, through_plane=True)
    fit = fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **FIT)
    assert _shift_error(fix, fit) < 1.0
    # a SAX slice displaced along its normal shows another level of the heart: volumes stay
    # within a few percent (the limit of an in-plane correction)
    assert fit.volumes["model"]["ED_cavity_ml"] == pytest.approx(fix.truth["edv_ml"], rel=0.06)


def test_wall_thickness_of_the_known_lv(shifted):
    fix, fits = shifted
    t = fits[True].thickness["ED"]
    assert t.shape == (17,) and np.isfinite(t).all()
    # ellipsoids with 9 mm wall at the base rim and 10 mm at the apex
    assert np.all((t > 7.0) & (t < 11.0))


def test_bad_basal_slice_does_not_wreck_the_fit(make_fixture):
    fix = make_fixture(4, shift_sd_mm=0.0)
    gp = fix.guide_points.copy()
    bad = (gp["view"] == "sax") & (gp["slice_index"] == 0) & (gp["kind"] == "contour") & \
        (gp["phase"] == "ED") & (gp["surface"] == "endo")
    # an outflow-tract style error: half of the basal endocardial contour pulled 12 mm outwards
    idx = gp.index[bad][: bad.sum() // 2]
    centre = gp.loc[bad, ["x_mm", "y_mm", "z_mm"]].mean().to_numpy()
    pts = gp.loc[idx, ["x_mm", "y_mm", "z_mm"]].to_numpy()
    out = (pts - centre) / np.linalg.norm(pts - centre, axis=1)[:, None]
    gp.loc[idx, ["x_mm", "y_mm", "z_mm"]] = pts + 12.0 * out
    fit = fit_exam(gp, fix.planes(), "exam0", "truth", **FIT)
    assert fit.status == "ok"
    assert _surface_error(fix, fit)[("ED", "endo")] < 1.0
    assert fit.volumes["model"]["ED_cavity_ml"] == pytest.approx(fix.truth["edv_ml"], rel=0.03)


def test_slice_summation_is_close_to_the_truth(shifted):
    fix, fits = shifted
    v = fits[True].volumes["slices"]
    assert v["ED_cavity_ml"] == pytest.approx(fix.truth["edv_ml"], rel=0.06)


# ---------------------------------------------------------------- failures are values; CLI
def test_failures_are_reported_not_raised(make_fixture):
    good = make_fixture(5, exam_id="good", shift_sd_mm=1.0)
    no_mv = make_fixture(6, exam_id="no_mv", shift_sd_mm=1.0)
    gp_no_mv = no_mv.guide_points
    gp_no_mv = gp_no_mv[~gp_no_mv["landmark"].astype(str).str.startswith("mv_")]
    few = make_fixture(7, exam_id="few", shift_sd_mm=1.0)
    gp_few = few.guide_points
    gp_few = gp_few[~((gp_few["view"] == "sax") & (gp_few["slice_index"] > 1))]
    gp = pd.concat([good.guide_points, gp_no_mv, gp_few], ignore_index=True)
    slices = pd.concat([good.slices, no_mv.slices, few.slices], ignore_index=True)
    tables = fit_all(gp, slices, breath_hold=True)
    for name, df in tables.items():
        conform(df, TABLES[name])
    m = tables["measures"].set_index(["exam_id", "method"])
    assert m.loc[("good", "model"), "status"] == "ok"
    assert m.loc[("no_mv", "model"), "status"] == "failed"
    assert m.loc[("no_mv", "model"), "qc_reason"] == "missing_landmarks: mv"
    assert m.loc[("few", "model"), "qc_reason"] == "too_few_sax_contours"
    assert m.loc[("no_mv", "slices"), "edv_ml"] > 0  # the slice method needs no landmarks
    shapes = tables["shapes"]
    assert set(shapes["exam_id"]) == {"good"}
    assert len(shapes) == 4 * 841
    wt = tables["wall_thickness"]
    assert sorted(wt["aha_segment"].unique()) == list(range(1, 18))


def test_cli_writes_the_tables(tmp_path, make_fixture):
    fix = make_fixture(8, shift_sd_mm=2.0)
    write_table(fix.guide_points, tmp_path / "gp.parquet", GUIDE_POINTS)
    fix.slices.to_parquet(tmp_path / "slices.parquet")
    args = argparse.Namespace(guide_points=tmp_path / "gp.parquet", slices=tmp_path / "slices.parquet",
                              out=tmp_path / "out", no_breath_hold=True, vtp=True,
                              shift_reference="sax_mean")
    assert run(args) == 0
    for name, schema in TABLES.items():
        read_table(tmp_path / "out" / f"{name}.parquet", schema)
    sh = read_table(tmp_path / "out" / "slice_shifts.parquet")
    assert (sh[["dx_mm", "dy_mm", "dz_mm"]] == 0).all().all()  # --no-breath-hold
    assert len(list((tmp_path / "out" / "vtp").glob("*.vtp"))) == 2


def test_missing_es_gives_a_partial_result(make_fixture):
    fix = make_fixture(9, shift_sd_mm=1.0)
    gp = fix.guide_points[fix.guide_points["phase"] == "ED"]
    fit = fit_exam(gp, fix.planes(), "exam0", "truth", **FIT)
    assert fit.status == "partial" and fit.qc_reason == "missing_phase: ES"
    assert ("ES", "endo") not in fit.surfaces and ("ED", "epi") in fit.surfaces
    from cmr_atlas.cine.lvmodel.outputs import tables_from_fits

    m = tables_from_fits([fit])["measures"].set_index("method")
    assert m.loc["model", "edv_ml"] > 0 and pd.isna(m.loc["model", "esv_ml"])


def test_sax_contours_with_lax_landmarks_only(make_fixture):
    # the automated path: SAX contours, landmarks on the LAX views, no LAX contours
    fix = make_fixture(10, shift_sd_mm=3.0, noise_mm=0.5, through_plane=False)
    gp = fix.guide_points
    gp = gp[~((gp["view"] != "sax") & (gp["kind"] == "contour"))]
    fit = fit_exam(gp, fix.planes(), "exam0", "auto", **FIT)
    assert fit.status == "ok"
    assert {v for v, s, d in fit.shifts} == {"sax"}
    assert _shift_error(fix, fit) < 1.0
    assert fit.volumes["model"]["ED_cavity_ml"] == pytest.approx(fix.truth["edv_ml"], rel=0.05)


def test_orientation_from_mitral_points_when_rv_inserts_are_missing(make_fixture):
    fix = make_fixture(11, shift_sd_mm=1.0)
    gp = fix.guide_points
    full = fit_exam(gp, fix.planes(), "exam0", "truth", **FIT)
    gp = gp[~gp["landmark"].astype(str).str.startswith("rv_insert")]
    fit = fit_exam(gp, fix.planes(), "exam0", "truth", **FIT)
    assert fit.status == "ok" and "septum_from_mv" in fit.qc_reason
    # the fixture's 4CH plane contains the septum direction: same frame, same thickness map
    np.testing.assert_allclose(fit.frame.rotation, full.frame.rotation, atol=0.05)
    np.testing.assert_allclose(fit.thickness["ED"], full.thickness["ED"], atol=0.3)


def test_projection_recovers_normal_offsets_including_near_the_apex():
    from cmr_atlas.cine.lvmodel.fit import _normals, project, surface_terms

    rng = np.random.default_rng(4)
    d = 60.0
    x = _constant(0.6) + 0.02 * rng.normal(size=MESH.n_params)
    mu = np.concatenate([rng.uniform(0.001, 0.08, 20), rng.uniform(0.1, 1.5, 80)])
    th = rng.uniform(0, 2 * np.pi, mu.size)
    s, s_mu, s_th, x_lam, _ = surface_terms(MESH, d, x, mu, th)
    n = _normals(s_mu, s_th, x_lam)
    off = rng.uniform(-3, 3, mu.size)
    p = s + off[:, None] * n
    _, mu0, th0 = prolate.to_prolate(p, d)  # start from the points' own coordinates
    mu1, th1 = project(MESH, d, x, p, mu0, th0, n_iter=8)
    s1 = surface_terms(MESH, d, x, mu1, th1)[0]
    np.testing.assert_allclose(np.linalg.norm(p - s1, axis=1), np.abs(off), atol=0.02)


def test_basal_chords_and_tiny_apical_contours_are_handled(make_fixture):
    from cmr_atlas.cine.lvmodel.exam import _below_base, _frame, _small_contour_slices

    fix = make_fixture(12, shift_sd_mm=0.0)
    gp = fix.guide_points
    frame = _frame(gp)[0]
    cont = gp[gp["kind"] == "contour"]
    # a SAX "contour" lying on the mitral plane (the valve opening) is not fitted
    mv = gp[gp["landmark"].astype(str).str.startswith("mv_") & (gp["phase"] == "ED")]
    chord = cont[(cont["view"] == "sax") & (cont["slice_index"] == 3)].copy()
    on_plane = frame.to_patient(frame.to_local(chord[["x_mm", "y_mm", "z_mm"]].to_numpy())
                                * np.array([1.0, 1.0, 0.0])
                                + frame.to_local(mv[["x_mm", "y_mm", "z_mm"]].to_numpy()).mean(0)
                                * np.array([0, 0, 1.0]))
    chord[["x_mm", "y_mm", "z_mm"]] = on_plane
    keep = _below_base(pd.concat([cont, chord], ignore_index=True), gp, frame)
    assert keep[: len(cont)][(cont["view"] == "sax").to_numpy()].all()
    assert not keep[len(cont):].any()
    # a 4 mm apical cap contour gets no shift of its own
    tiny = chord.copy()
    c = tiny[["x_mm", "y_mm", "z_mm"]].to_numpy()
    tiny[["x_mm", "y_mm", "z_mm"]] = c.mean(0) + 4.0 * (c - c.mean(0)) / np.linalg.norm(
        c - c.mean(0), axis=1).mean()
    tiny["slice_index"] = 42
    small = _small_contour_slices(pd.concat([cont, tiny]))
    assert ("sax", 42) in small and not small & {("sax", s) for s in range(6)}


def test_degenerate_inputs_never_raise(make_fixture):
    fix = make_fixture(13, shift_sd_mm=2.0)
    gp0 = fix.guide_points
    variants = {
        "no_4ch": gp0[gp0["view"] != "lax_4ch"],
        "no_epi": gp0[gp0["surface"] != "epi"],
        "nan_weight": gp0.assign(weight=np.nan),
        "stray_point": pd.concat([gp0, gp0.iloc[:1].assign(x_mm=1e4)]),
    }
    gp = pd.concat([g.assign(exam_id=k) for k, g in variants.items()], ignore_index=True)
    slices = pd.concat([fix.slices.assign(exam_id=k) for k in variants], ignore_index=True)
    m = fit_all(gp, slices)["measures"].set_index(["exam_id", "method"])
    assert (m.xs("model", level="method")["status"] == "ok").all()
    assert pd.isna(m.loc[("no_epi", "model"), "lv_mass_g"]) and pd.isna(m.loc[("no_epi", "slices"), "lv_mass_g"])
    # one stray point neither inflates the slice-summation volume nor the reported residual
    assert m.loc[("stray_point", "slices"), "edv_ml"] == pytest.approx(m.loc[("nan_weight", "slices"), "edv_ml"])
    assert m.loc[("stray_point", "model"), "rms_residual_mm"] < 1.0
