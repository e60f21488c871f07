"""Calibration: the same hearts imaged with bSSFP and with the legacy spoiled gradient echo, read by
one fixed algorithm, give larger cavities and less myocardium on bSSFP, by the published margins.

Published: SSFP vs FLASH/GRE on the same subjects gives end-diastolic volume about 10 % larger and
LV mass about 10-15 % smaller (Moon et al., Radiology 2002; Malayeri et al. 2008, the MESA
substudy; Plein et al., Radiology 2001), because blood between trabeculae stays bright on SSFP.
Here the difference is measured on images (10 hearts, 3 mid-ventricular ED slices each), never
taken from the truth: the renderer draws the trabecular layer as cavity in both, only the physics
differs.  Accepted: cavity +5 % to +20 %, myocardium -4 % to -18 %; the published means carry
confidence intervals of several percent, and 30 slices of 10 hearts add a few percent of
subject-to-subject spread (band thickness 1.5-2.5 mm is drawn per heart).  Measured when written:
cavity +11.7 %, myocardium -8.4 % (``pytest -s`` prints them).
"""

import matplotlib.path as mpath
import numpy as np
import pytest
from scipy import ndimage

from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.clinical import cine, cohort
from cmr_atlas.synth.clinical.render import PlaneSampler, form_images

SNR = {"ssfp": 30.0, "gre": 15.0}  # blood SNR: bSSFP about twice that of 2000-era GRE cine


def _mask(plane, pts):
    rows, cols = plane.shape
    grid = np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2).astype(float)
    return mpath.Path(plane.patient_to_pixel(pts)[0]).contains_points(grid).reshape(rows, cols)


def read_areas(img, plane, endo_pts, epi_pts):
    """The fixed reader: threshold half-way between blood (pool core) and myocardium (mid-wall) and
    take the bright region connected to the pool inside the epicardium as cavity, the rest of the
    epicardial area as myocardium.  Returns (cavity, myocardium) in pixels."""
    sp = plane.pixel_spacing_mm[0]
    endo, epi = _mask(plane, endo_pts), _mask(plane, epi_pts)
    core = ndimage.distance_transform_edt(endo) * sp > 6.0
    wall = epi & (ndimage.distance_transform_edt(~endo) * sp > 1.5) & (ndimage.distance_transform_edt(epi) * sp > 1.5)
    thr = 0.5 * (np.median(img[core]) + np.median(img[wall]))
    lab, _ = ndimage.label((img > thr) & epi)
    cavity = lab == np.bincount(lab[core]).argmax()
    return int(cavity.sum()), int((epi & ~cavity).sum())


@pytest.fixture(scope="module")
def measured():
    rows = []
    ssfp = cine.ssfp_contrast(1.5, 3.0, 70.0)  # on resonance: banding is not the point here
    gre = cine.gre_contrast()
    for i in range(10):
        ctx = cohort.make_context(11, i)
        rng = np.random.default_rng(i)
        trab = cine.draw_trabeculae(rng)
        mid = ctx.geometry.sax_level("mid")
        for k in (mid - 2, mid, mid + 2):
            plane, shift = ctx.geometry.sax_planes[k], np.zeros(3)
            sampler = PlaneSampler(ctx.heart, plane, shift)
            centre = tg.axis_point_in_plane(ctx.heart, plane, shift, 0.0)
            endo = tg.plane_contour(ctx.heart, 0.0, plane, shift, "endo", centre)
            epi = tg.plane_contour(ctx.heart, 0.0, plane, shift, "epi", centre)
            row = {}
            for name, contrast in (("ssfp", ssfp), ("gre", gre)):
                sig = cine.plane_signal(sampler, 0.0, contrast, trab)
                img = form_images(sig[None], plane, ctx.coil, 1.0 / SNR[name], rng, 0.8)[0]
                row[name] = read_areas(img, plane, endo, epi)
            rows.append(row)
    return rows


def test_ssfp_cavity_larger_and_myocardium_smaller_than_gre_by_published_margins(measured):
    cav = {s: sum(r[s][0] for r in measured) for s in SNR}
    myo = {s: sum(r[s][1] for r in measured) for s in SNR}
    cavity_change = cav["ssfp"] / cav["gre"] - 1.0
    myo_change = myo["ssfp"] / myo["gre"] - 1.0
    print(f"SSFP vs GRE: cavity {100 * cavity_change:+.1f} %, myocardium {100 * myo_change:+.1f} %")  # pytest -s
    assert 0.05 <= cavity_change <= 0.20, cavity_change
    assert -0.18 <= myo_change <= -0.04, myo_change
    # and slice by slice, not only on average
    assert np.mean([r["ssfp"][0] > r["gre"][0] for r in measured]) > 0.9
    assert np.mean([r["ssfp"][1] < r["gre"][1] for r in measured]) > 0.9


def test_without_trabeculae_the_two_sequences_agree():
    """Control: the difference is the trabecular layer's physics, not the reader or the contrast."""
    ctx = cohort.make_context(11, 0)
    plane, shift = ctx.geometry.sax_planes[ctx.geometry.sax_level("mid")], np.zeros(3)
    sampler = PlaneSampler(ctx.heart, plane, shift)
    centre = tg.axis_point_in_plane(ctx.heart, plane, shift, 0.0)
    endo = tg.plane_contour(ctx.heart, 0.0, plane, shift, "endo", centre)
    epi = tg.plane_contour(ctx.heart, 0.0, plane, shift, "epi", centre)
    none = cine.Trabeculae(0.0, 0.0)
    areas = {}
    for name, contrast in (("ssfp", cine.ssfp_contrast(1.5, 3.0, 70.0)), ("gre", cine.gre_contrast())):
        sig = cine.plane_signal(sampler, 0.0, contrast, none)
        areas[name] = read_areas(form_images(sig[None], plane, ctx.coil, 1e-3, np.random.default_rng(0))[0],
                                 plane, endo, epi)
    assert areas["ssfp"][0] == pytest.approx(areas["gre"][0], rel=0.03)
    assert areas["ssfp"][1] == pytest.approx(areas["gre"][1], rel=0.03)
