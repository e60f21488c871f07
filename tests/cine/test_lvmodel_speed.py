"""The fit stage's shortcuts give the fits they stand for: reused projections (fit._Problem.current),
the surface grids sampled in one pass (measures.sample_surface_grids), the shard's string columns."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.cine.lvmodel import fit as fit_module, measures, prolate
from cmr_atlas.cine.lvmodel.exam import fit_exam
from cmr_atlas.cine.lvmodel.hermite import HermiteMesh
from cmr_atlas.cine.lvmodel.run import plain_strings
from cmr_atlas.core.aha import aha_segment

FIT = {"breath_hold": True, "shift_reference": "sax_mean"}


def _reprojecting(self, x, shifts):
    """The fit before the reuse: every step projects the points afresh."""
    return self.residuals(x, shifts)


def test_reused_projections_give_the_fit_of_fresh_ones(make_fixture, monkeypatch):
    fix = make_fixture(5, shift_sd_mm=3.0, noise_mm=0.5, through_plane=False)
    reused = fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **FIT)
    monkeypatch.setattr(fit_module._Problem, "current", _reprojecting)
    fresh = fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **FIT)
    assert reused.status == fresh.status == "ok"
    for key, pts in fresh.surfaces.items():  # far below the fit's accuracy (~0.5 mm)
        assert np.abs(reused.surfaces[key] - pts).max() < 0.05, key
    got = {(v, s): d for v, s, d in reused.shifts}
    for v, s, d in fresh.shifts:
        assert np.abs(got[(v, s)] - d).max() < 0.05
    for k, v in fresh.volumes["model"].items():
        assert abs(reused.volumes["model"][k] - v) < 0.05, k  # ml


class _Worse(fit_module._Problem):
    """A problem whose every trial surface fits worse than the start: all trials are rejected."""

    calls = 0

    def residuals(self, x, shifts, n_proj=3):
        self.calls += 1
        r, n, g = super().residuals(x, shifts, n_proj)
        return (r if np.array_equal(x, self.x0) else r + 10.0), n, g


def test_rejected_steps_restore_the_reused_projections(make_fixture):
    """After rejected Levenberg-Marquardt trials the reused residuals and projections are again
    those of the step's start (a stale cache would start the next step from a trial's surface)."""
    from cmr_atlas.cine.lvmodel.exam import build_fit_data

    fix = make_fixture(6, shift_sd_mm=2.0, noise_mm=0.5, through_plane=False)
    fit = fit_exam(fix.guide_points, fix.planes(), "exam0", "truth", **FIT)
    data, _ = build_fit_data(fix.guide_points, fix.planes(), fit.frame, "sax_mean")
    prob = _Worse(data, fit.frame.focal_mm, fit_module.FitSettings())
    prob.x0 = x = fit.result.params
    shifts = np.zeros((prob.k, 2))
    r0 = prob.current(x, shifts)[0].copy()
    mu0 = prob.mu.copy()
    x1, _, _, _, move = prob.step(x, shifts, 1e-4, "huber", False)
    assert move == 0.0 and x1 is x and prob.calls == 1 + 8  # the start, then 8 rejected trials
    np.testing.assert_array_equal(prob.current(x1, shifts)[0], r0)
    np.testing.assert_array_equal(prob.mu, mu0)
    assert prob.calls == 9  # reused, not projected again


def _endo_epi_params(seed: int, sd: float):
    """A mesh, endo and epi parameters (perturbed ellipsoids) and a tilted base plane."""
    mesh = HermiteMesh()
    xs = np.array([np.full(mesh.n_params, 0.6), np.full(mesh.n_params, 0.8)])
    xs[:, 0] = [0.6, 0.8]
    xs += np.random.default_rng(seed).normal(0, sd, xs.shape)
    point, normal = np.array([0.0, 0.0, 3.0]), np.array([0.05, 0.0, 1.0]) / np.hypot(0.05, 1.0)
    return mesh, xs, point, normal


def test_grids_sampled_together_equal_grids_sampled_alone():
    mesh, xs, point, normal = _endo_epi_params(3, 0.01)
    grids = ((61, 96), (29, 29), (7, 5))
    together = measures.sample_surface_grids(mesh, 40.0, xs, point, normal, grids, 20)
    for (n_mu, n_theta), got in zip(grids, together):
        alone = measures.sample_surfaces(mesh, 40.0, xs, point, normal, n_mu, n_theta, 20)
        assert len(got) == 2 and got[0].shape == (n_mu * n_theta, 3)
        for a, b in zip(got, alone):
            np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
    # the top ring lies on the base plane, the apex ring at one point
    for surf in together[1]:
        assert np.abs((surf[-29:] - point) @ normal).max() < 1e-3
        assert np.ptp(surf[:29], axis=0).max() < 1e-9


def test_wall_thickness_is_the_brute_force_nearest_distance():
    mesh, xs, point, normal = _endo_epi_params(5, 0.02)
    endo, epi = measures.sample_surfaces(mesh, 40.0, xs, point, normal, 61, 96, 20)
    got = measures.wall_thickness(endo, epi, point, normal, 1.0)
    # every endocardial sample's nearest epicardial one by brute force, averaged per AHA segment
    nearest = np.sqrt(((endo[:, None, :] - epi[None, :, :]) ** 2).sum(-1)).min(axis=1)
    depth = (endo - point) @ normal
    frac = depth / depth.max()
    seg = aha_segment(frac, np.degrees(np.arctan2(endo[:, 1], endo[:, 0])))
    want = [nearest[(seg == s) & (frac >= 0)].mean() if ((seg == s) & (frac >= 0)).any() else np.nan
            for s in range(1, 18)]
    assert np.isfinite(got).sum() >= 16
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=0)

def test_plain_strings_keeps_values_and_missing():
    df = pd.DataFrame({"view": pd.array(["sax", None, "lax_2ch"], dtype="string[pyarrow]"),
                       "x_mm": [1.0, 2.0, 3.0], "kind": ["contour", "landmark", "contour"]})
    out = plain_strings(df)
    assert out["view"].dtype == object and out["x_mm"].dtype == float
    assert out["view"].iloc[0] == "sax" and pd.isna(out["view"].iloc[1])
    assert (out["view"] == "sax").tolist() == [True, False, False]


def test_cartesian_and_jacobian_equal_the_separate_functions():
    rng = np.random.default_rng(4)
    lam, mu, theta = rng.uniform(0.1, 1.5, 500), rng.uniform(0, 2.0, 500), rng.uniform(0, 2 * np.pi, 500)
    got = prolate.cartesian_and_jacobian(lam, mu, theta, 38.0)
    want = (prolate.to_cartesian(lam, mu, theta, 38.0), *prolate.jacobian(lam, mu, theta, 38.0))
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_field_along_mu_equals_evaluate():
    mesh = HermiteMesh()
    rng = np.random.default_rng(5)
    xs = rng.normal(0.7, 0.05, (2, mesh.n_params))
    theta = rng.uniform(-1.0, 8.0, 300)  # outside [0, 2 pi) too: wrapped like evaluate's
    field = rng.integers(0, 2, 300)
    lam = mesh.along_mu(xs, theta, field)
    for mu in (rng.uniform(0, mesh.mu_max, 300), np.full(300, mesh.mu_max), np.zeros(300)):
        np.testing.assert_array_equal(lam(mu), mesh.evaluate(xs, mu, theta, field=field)[0])
    one = mesh.along_mu(xs[1], theta)
    mu = rng.uniform(0, mesh.mu_max, 300)
    np.testing.assert_array_equal(one(mu), mesh.evaluate(xs[1], mu, theta)[0])


def test_landmark_selection_equals_the_pandas_one():
    from cmr_atlas.cine.lvmodel.exam import _landmarks

    gp = pd.DataFrame({
        "kind": ["contour", "landmark", "landmark", "landmark", "landmark", "landmark", "landmark"],
        "landmark": [None, "mv_septal", "mv_lateral", "apex", None, np.nan, "mv_anterior"],
        "phase": ["ED", "ES", "ED", "ED", "ED", "ES", np.nan],
        "x_mm": np.arange(7.0)}, index=np.arange(7) * 3)

    def pandas(names, phase):
        lm = gp[gp["kind"] == "landmark"]
        sel = lm["landmark"].astype(str).str.startswith(names) if isinstance(names, str) else lm["landmark"].isin(names)
        sub = lm[sel]
        return sub[sub["phase"] == phase] if phase is not None and (sub["phase"] == phase).any() else sub

    for names in ("mv_", ("apex",), ("mv_septal", "apex"), ("none",), "No", "na"):
        for phase in ("ED", "ES", None, "XX"):
            pd.testing.assert_frame_equal(_landmarks(gp, names, phase), pandas(names, phase))
    assert list(_landmarks(gp, "mv_", "ED").index) == [6]
