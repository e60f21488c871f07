"""LV model on one exam of the project's synthetic cohort (truth contours and landmarks)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.config import default
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.cine.lvmodel.exam import fit_exam

pytestmark = pytest.mark.slow
# the config's default fit settings (read from the schema, not copied)
FIT = {"breath_hold": default("fit.breath_hold"), "shift_reference": default("fit.shift_reference")}


@pytest.fixture(scope="module")
def synth_exam():
    from cmr_atlas.synth.mesa.cohort import generate_exam

    truth = generate_exam(7, 0, observers=0).truth
    c = truth["contours"]
    c = c[(c["observer"] == "truth") & c["phase"].isin(["ED", "ES"])]
    lm = truth["landmarks"]
    lm = lm[(lm["observer"] == "truth") & lm["phase"].isin(["ED", "ES"])]
    cols = ["exam_id", "phase", "frame", "view", "slice_index", "x_mm", "y_mm", "z_mm"]
    gp = pd.concat([
        c[cols + ["surface", "point_index"]].assign(kind="contour", landmark=None),
        lm[cols + ["landmark"]].assign(kind="landmark", surface=None, point_index=0),
    ], ignore_index=True).assign(source="truth", weight=1.0)
    exam_id = str(truth["exams"]["exam_id"].iloc[0])
    planes = planes_by_slice(truth["slices"], exam_id)
    fits = {bh: fit_exam(gp, planes, exam_id, "truth", **(FIT | {"breath_hold": bh})) for bh in (True, False)}
    return truth, planes, fits


def _inplane_errors(truth, planes, fit):
    tru = truth["slice_shifts"].set_index(["view", "slice_index"])
    errs = []
    for v, s, d in fit.shifts:
        if v != "sax":
            continue
        p = planes[(v, s)]
        b = np.stack([p.row_cosine, p.col_cosine])
        errs.append(b @ (d - tru.loc[(v, s), ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(dtype=float)))
    errs = np.array(errs)
    return errs - errs.mean(axis=0)


def test_synthetic_exam_shifts_volumes_and_surfaces(synth_exam):
    truth, planes, fits = synth_exam
    fit = fits[True]
    assert fit.status == "ok"
    err = np.sqrt((_inplane_errors(truth, planes, fit) ** 2).sum(axis=1).mean())
    err_off = np.sqrt((_inplane_errors(truth, planes, fits[False]) ** 2).sum(axis=1).mean())
    assert err < 1.0 < err_off
    ex = truth["exams"].iloc[0]
    v = fit.volumes["model"]
    assert v["ED_cavity_ml"] == pytest.approx(ex["edv_ml"], rel=0.03)
    assert v["ES_cavity_ml"] == pytest.approx(ex["esv_ml"], rel=0.04)
    assert 1.05 * v["ED_myo_ml"] == pytest.approx(ex["lv_mass_g"], rel=0.04)
    # surfaces: the fitted ED endocardium lies within a pixel of the true one (after removing the
    # common translation, the gauge of the breath-hold shifts)
    from scipy.spatial import cKDTree

    shapes = truth["shapes"]
    true_ed = shapes[(shapes["phase"] == "ED") & (shapes["surface"] == "endo")]
    true_pts = true_ed.sort_values("point_index")[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float)
    ours = fit.frame.to_patient(fit.surfaces[("ED", "endo")])
    tree = cKDTree(true_pts)
    shift = np.zeros(3)
    for _ in range(5):  # translation-only ICP against the true vertices
        _, idx = tree.query(ours + shift)
        shift += (true_pts[idx] - (ours + shift)).mean(axis=0)
    dist, _ = tree.query(ours + shift)
    assert np.mean(dist) < float(ex["pixel_spacing_mm"])
