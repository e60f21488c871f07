"""Through-plane breath-hold shifts from the SAX/LAX contour crossings (lvmodel.through_plane)."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.lvmodel.exam import fit_exam
from cmr_atlas.cine.lvmodel.through_plane import (crossing_observations, fit_exam_through_plane,
                                                  through_plane_shifts)

FIT = dict(shift_reference="sax_mean")


@settings(max_examples=25, deadline=None)
@given(st.lists(st.floats(-3, 3), min_size=3, max_size=8), st.floats(-2, 2))
def test_exact_observations_give_the_shifts_less_their_mean(t, offset):
    """Observations that follow ``a - b = -s t + c_view`` exactly, on both walls (slopes of both
    signs) and two views: without a prior the estimate is t less its mean, whatever the views'
    offsets."""
    rows = []
    for k, tk in enumerate(t):
        for view, c in (("lax_2ch", offset), ("lax_4ch", -0.5 * offset)):
            for s in (-1.2, -0.4, 0.3, 0.9):
                rows.append((0, k, view, s, -s * tk + c))
    obs = pd.DataFrame(rows, columns=["frame", "slice_index", "view", "slope", "residual_mm"])
    est = through_plane_shifts(obs, list(range(len(t))), ridge_per_frame=0.0)
    want = np.array(t) - np.mean(t)
    assert np.allclose([est[k] for k in range(len(t))], want, atol=1e-6)
    # a prior shrinks towards the common level, never beyond it
    shrunk = np.array([through_plane_shifts(obs, list(range(len(t))), ridge_per_frame=1e6)[k] for k in range(len(t))])
    assert np.all(np.abs(shrunk) <= np.abs(want) + 1e-9)


def test_slices_without_observations_stay_at_the_common_level():
    obs = pd.DataFrame([(0, 0, "lax_2ch", s, -s * 2.0) for s in (-1.0, 1.0, 0.5)] +
                       [(0, 1, "lax_2ch", s, 0.0) for s in (-1.0, 1.0, 0.5)],
                       columns=["frame", "slice_index", "view", "slope", "residual_mm"])
    est = through_plane_shifts(obs, [0, 1, 2], ridge_per_frame=0.0)
    assert est[0] - est[1] == pytest.approx(2.0, abs=1e-6)
    assert sum(est.values()) == pytest.approx(0.0, abs=1e-9)
    assert min(est[0], est[1]) < est[2] < max(est[0], est[1])
    assert through_plane_shifts(obs.iloc[:0], [0, 1]) == {0: 0.0, 1: 0.0}


def test_crossings_recover_through_plane_shifts_of_the_known_lv(make_fixture):
    """Through-plane shifts of the known LV (1 mm SD as the generator's; ED/ES contours, LAX
    contours in two views) are recovered better than leaving them at zero, though the ellipsoid's
    base is a cylinder (no taper: the basal slices' levels stay unknown, their estimate at the
    common level)."""
    errs, trues = [], []
    for seed in (3, 4, 5):
        fix = make_fixture(seed, shift_sd_mm=1.0, noise_mm=0.3)
        f = fit_exam_through_plane(fix.guide_points, None, fix.planes(), "exam0", "truth", **FIT)
        assert f.status == "ok", f.qc_reason
        e, t = fix.through_plane_errors(f.shifts)
        errs.append(e - t)
        trues.append(t)
    rms_err = np.sqrt(np.mean(np.concatenate(errs) ** 2))
    rms_true = np.sqrt(np.mean(np.concatenate(trues) ** 2))
    assert rms_err < 0.8 * rms_true, (rms_err, rms_true)


def test_without_lax_contours_the_fit_is_the_in_plane_one(make_fixture):
    """The automated path's layout (SAX contours, LAX landmarks only): no crossings, so nothing
    is estimated along the normals and the fit equals the plain ED/ES fit."""
    fix = make_fixture(3, shift_sd_mm=3.0, noise_mm=0.3)
    gp = fix.guide_points
    gp = gp[~((gp["view"] != "sax") & (gp["kind"] == "contour"))]
    planes = fix.planes()
    shifts = {(v, int(k)): np.zeros(3) for v, k in planes}
    assert crossing_observations(gp, planes, shifts).empty
    a = fit_exam_through_plane(gp, None, planes, "exam0", "truth", **FIT)
    b = fit_exam(gp, planes, "exam0", "truth", breath_hold=True, **FIT)
    assert a.volumes["model"] == b.volumes["model"]
    assert all(np.array_equal(x[2], y[2]) for x, y in zip(a.shifts, b.shifts))


def test_fit_stage_switch(make_fixture):
    """``fit_exams(through_plane=True)`` (config fit.through_plane) reports SAX shifts with a
    component along the normal, summing to zero over the stack; off, none."""
    from cmr_atlas.cine.lvmodel.run import fit_exams

    fix = make_fixture(3, shift_sd_mm=1.0, noise_mm=0.3)
    planes = fix.planes()
    kw = dict(breath_hold=True, shift_reference="sax_mean")
    on, = fit_exams(fix.guide_points, fix.slices, through_plane=True, **kw)
    off, = fit_exams(fix.guide_points, fix.slices, through_plane=False, **kw)
    tp_on = np.array([planes[(v, s)].normal @ d for v, s, d in on.shifts if v == "sax"])
    tp_off = np.array([planes[(v, s)].normal @ d for v, s, d in off.shifts if v == "sax"])
    assert np.abs(tp_off).max() < 1e-9
    assert np.abs(tp_on).max() > 0.1 and abs(tp_on.sum()) < 1e-6
    assert on.status == "ok" and np.isfinite(on.volumes["model"]["ED_cavity_ml"])
