"""bSSFP cine renderer: headers as the clinical conventions say, determinism, truth on the image's
borders, the 3-chamber view, off-resonance banding at 3 T only."""

import dataclasses

import matplotlib.path as mpath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import LANDMARKS
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.clinical import cine
from cmr_atlas.synth.clinical.render import PlaneSampler


def _series(result, view):
    return [s for s in result.series if s.view == view]


def test_series_and_headers_follow_the_conventions(cine_exam):
    ctx, res = cine_exam
    loc = res.series[0]
    assert (loc.kind, loc.sequence, loc.view) == ("localizer", None, None)
    assert loc.series_headers["ImageType"] == ["ORIGINAL", "PRIMARY", "LOCALIZER"] and len(loc.planes) == 3
    cines = [s for s in res.series if s.kind == "cine"]
    assert {s.view for s in cines} == {"sax", "lax_2ch", "lax_3ch", "lax_4ch"}
    for s in cines:
        h = s.series_headers
        assert s.sequence == "cine_ssfp" and s.start_min < 0
        assert h["ScanningSequence"] == "GR" and h["SequenceVariant"] == ["SK", "SS"]
        assert h["SequenceName"] == cine.SEQUENCE_NAME[ctx.vendor]
        assert h["RepetitionTime"] < 5 and h["FlipAngle"] > 30 and 1.2 <= h["EchoTime"] <= 1.9
        assert h["ImageType"] == ["ORIGINAL", "PRIMARY", "M", "NORM"]
        n = s.images[0].shape[0]
        assert 25 <= n <= 30 and h["CardiacNumberOfImages"] == n
        assert len(s.frame_headers) == len(s.planes) and all(len(f) == n for f in s.frame_headers)
        for plane_headers, img in zip(s.frame_headers, s.images):
            trig = np.array([f["TriggerTime"] for f in plane_headers])
            assert np.all(np.diff(trig) > 0) and trig[-1] - trig[0] > 0.85 * h["NominalInterval"]
            assert len({f["AcquisitionTime"] for f in plane_headers}) == 1  # one breath-hold
            assert img.dtype == np.uint16 and img.max() < 4096
    # a Philips/GE exam writes one SAX series, Siemens one per slice
    n_sax = len(_series(res, "sax"))
    assert n_sax == (len(ctx.geometry.sax_planes) if ctx.vendor == "SIEMENS" else 1)


def test_siemens_writes_one_series_per_sax_slice(cine_exam):
    ctx, _ = cine_exam
    rng = np.random.default_rng(0)
    tm = cine.draw_timing(rng, ctx)
    plans = cine.plan_planes(rng, ctx)
    images = {(p.view, p.sl): np.zeros((len(tm.trigger_ms), 2, 2), np.uint16) for p in plans}
    for vendor, n in (("SIEMENS", len(ctx.geometry.sax_planes)), ("GE MEDICAL SYSTEMS", 1), ("Philips", 1)):
        out = cine._cine_series(dataclasses.replace(ctx, vendor=vendor), rng, tm, plans, images)
        sax = [s for s in out if s.view == "sax"]
        assert len(sax) == n and sum(len(s.planes) for s in sax) == len(ctx.geometry.sax_planes)
        assert all(s.series_headers["SpacingBetweenSlices"] == 10.0 for s in sax)


def test_same_seed_same_images(cine_exam):
    ctx, _ = cine_exam
    out = []
    for _ in range(2):
        rng = np.random.default_rng(9)
        tm = cine.draw_timing(rng, ctx)
        pp = cine.plan_planes(rng, ctx)[3]
        contrast = cine.ssfp_contrast(ctx.field_t, tm.tr_ms, tm.flip_deg)
        out.append(cine.render_plane_frames(ctx, pp, dataclasses.replace(tm, activation=tm.activation[:3]),
                                            contrast, cine.draw_trabeculae(rng), rng))
    np.testing.assert_array_equal(out[0], out[1])


def _ring_means(img, plane, pts, width_px=2.0):
    """Mean image values in a band just inside and just outside a closed contour."""
    rc = plane.patient_to_pixel(pts)[0]
    rows, cols = img.shape
    grid = np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2).astype(float)
    inside = mpath.Path(rc).contains_points(grid).reshape(rows, cols)
    d_in = ndimage.distance_transform_edt(inside)
    d_out = ndimage.distance_transform_edt(~inside)
    return img[(d_in > 0.5) & (d_in <= width_px + 0.5)].mean(), img[(d_out > 0.5) & (d_out <= width_px + 0.5)].mean()


@pytest.mark.parametrize("phase", ["ED", "ES"])
def test_truth_contours_lie_on_the_blood_myocardium_border(cine_exam, phase):
    ctx, res = cine_exam
    c = res.truth["contours"]
    c = c[(c.observer == "truth") & (c.phase == phase)]
    checked = 0
    for s in res.series:
        if s.kind != "cine":
            continue
        for plane, sl, img in zip(s.planes, s.slice_indices, s.images):
            f = int(c[(c.view == s.view) & (c.slice_index == sl)].frame.iloc[0])
            for surface, brighter_inside in (("endo", True), ("rv_endo", True)):
                g = c[(c.view == s.view) & (c.slice_index == sl) & (c.surface == surface)]
                if len(g) == 0 or (s.view != "sax" and surface == "endo"):
                    continue  # long-axis LV contours are open at the mitral plane
                inner, outer = _ring_means(img[f].astype(float), plane, g[["x_mm", "y_mm", "z_mm"]].to_numpy())
                assert (inner > 1.3 * outer) == brighter_inside, (s.view, sl, surface, inner, outer)
                checked += 1
    assert checked >= 4


def test_truth_has_every_frame_and_landmark_and_observers_at_ed_es(cine_exam):
    ctx, res = cine_exam
    c, m = res.truth["contours"], res.truth["landmarks"]
    n_frames = res.series[1].images[0].shape[0]
    truth = c[c.observer == "truth"]
    assert set(truth.sequence) == {"cine_ssfp"}
    assert set(truth.surface) == {"endo", "epi", "rv_endo"}
    assert truth[truth.view == "sax"].groupby("slice_index").frame.nunique().eq(n_frames).all()
    for view, names in LANDMARKS.items():
        got = m[(m.observer == "truth") & (m.view == view)]
        assert set(got.landmark) == set(names), view
    obs = c[c.observer != "truth"]
    assert set(obs.observer) == {"obs1", "obs2"} and set(obs.phase) == {"ED", "ES"}


def test_three_chamber_plane_holds_the_aortic_root_and_names_its_landmarks(cine_exam):
    ctx, res = cine_exam
    heart = ctx.heart
    plane = ctx.geometry.lax_planes["lax_3ch"]
    lab = PlaneSampler(heart, plane, np.zeros(3)).labels(0.0)
    local = heart.to_local(plane.pixel_grid_mm())
    above_base = local[..., 2] > heart.ed.length_mm
    # the outflow tract: blood above the mitral plane on the septal-anterior side of the LV axis
    aortic = (lab[..., 1] == an.OTHER_BLOOD) & above_base & (local[..., 1] > 0)  # +e2: anterior
    assert aortic.sum() * plane.pixel_spacing_mm[0] ** 2 > 150.0  # mm2 of aortic root in the plane
    m = res.truth["landmarks"]
    m = m[(m.observer == "truth") & (m.view == "lax_3ch") & (m.phase == "ED")].set_index("landmark")
    lvot = heart.to_local(m.loc["lvot_anteroseptal", ["x_mm", "y_mm", "z_mm"]].to_numpy(float))
    mv = heart.to_local(m.loc["mv_inferolateral", ["x_mm", "y_mm", "z_mm"]].to_numpy(float))
    assert lvot[0] > mv[0]  # septal side
    assert lvot[1] > mv[1]  # anterior (+e2)


def _banded_fraction(ctx, field_t):
    """Fraction of body pixels of the 4CH plane whose bSSFP signal falls below 30 % of its
    on-resonance value (a dark band)."""
    ctx = dataclasses.replace(ctx, field_t=field_t)
    tm = cine.draw_timing(np.random.default_rng(1), ctx)
    plane = ctx.geometry.lax_planes["lax_4ch"]
    df = cine.off_resonance_hz(np.random.default_rng(2), ctx)(plane.pixel_grid_mm()).ravel()
    on = cine.ssfp_contrast(field_t, tm.tr_ms, tm.flip_deg).table[:, 0]
    off = cine.ssfp_contrast(field_t, tm.tr_ms, tm.flip_deg, df).table
    lab = PlaneSampler(ctx.heart, plane, np.zeros(3)).labels(0.0)[..., 1].ravel()
    body = ~np.isin(lab, [an.AIR, an.LUNG])
    ratio = off[lab, np.arange(lab.size)] / np.maximum(on[lab], 1e-9)
    return float(np.mean(ratio[body] < 0.3))


def test_off_resonance_bands_at_3t_only(small_ctx):
    at3 = [_banded_fraction(small_ctx(7, i), 3.0) for i in range(4)]
    at15 = [_banded_fraction(small_ctx(7, i), 1.5) for i in range(4)]
    assert max(at15) == 0.0
    assert np.mean(at3) > 0.002 and sum(f > 0 for f in at3) >= 3


@settings(max_examples=12, deadline=None)
@given(level=st.floats(0.3, 0.8), w=st.floats(0.0, 1.0), tilt=st.floats(-0.15, 0.15))
def test_rv_endocardial_contour_encloses_the_rendered_rv_cavity(cine_exam, level, w, tilt):
    """The traced RV boundary sits on the cavity's edge and encloses the area the anatomy labels RV
    blood, for SAX planes at any level and phase, slightly tilted."""
    ctx, _ = cine_exam
    heart = ctx.heart
    e1, e2, e3 = heart.frame.T
    normal = e3 + tilt * e2
    normal /= np.linalg.norm(normal)
    centre = heart.origin_mm + level * heart.ed.length_mm * e3
    row = np.cross(normal, e1)
    plane = SlicePlane.centred(centre, row / np.linalg.norm(row), np.cross(normal, row / np.linalg.norm(row)),
                               (0.5, 0.5), (320, 320), 8.0)
    pts = tg.rv_endo_contour(heart, w, plane, np.zeros(3))
    rv = heart.heart_labels(plane.pixel_grid_mm(), w) == an.RV_BLOOD
    if pts is None:
        assert rv.sum() * 0.25 < 20.0  # nothing traced: no RV cavity worth a contour here
        return
    # on the edge to within the 1 mm tracing grid (linear interpolation at the septal corners)
    assert np.abs(tg.rv_cavity_level(heart, heart.to_local(pts), w)).max() < 0.6
    inside = _mask(plane, pts)
    assert (inside & rv).sum() > 0.93 * rv.sum() and (inside & ~rv).sum() < 0.07 * rv.sum()


def _mask(plane, pts):
    rows, cols = plane.shape
    grid = np.stack(np.mgrid[:rows, :cols], -1).reshape(-1, 2).astype(float)
    return mpath.Path(plane.patient_to_pixel(pts)[0]).contains_points(grid).reshape(rows, cols)


def test_breathing_through_a_breath_hold_ghosts_along_phase_encode(cine_exam):
    """Breathing during the acquisition moves signal into the air outside the body along the
    phase-encode direction (ghosts) and leaves the total signal nearly unchanged."""
    ctx, _ = cine_exam
    rng = np.random.default_rng(3)
    tm = dataclasses.replace(cine.draw_timing(rng, ctx), snr=1e4)
    tm = dataclasses.replace(tm, activation=tm.activation[:1])
    pp = cine.plan_planes(rng, ctx)[4]
    contrast = cine.ssfp_contrast(ctx.field_t, tm.tr_ms, tm.flip_deg)
    trab = cine.draw_trabeculae(rng)

    def image(motion):
        plan = dataclasses.replace(pp, motion_mm=motion)
        return cine.render_plane_frames(ctx, plan, tm, contrast, trab, np.random.default_rng(0))[0].astype(float)

    motion = None
    while motion is None:  # a breathing draw (one plane in eight)
        motion = cine.draw_breathing(rng, pp.plane, tm.rr_ms)
    motion = 6.0 * motion / np.abs(motion).max()
    still, breathing = image(None), image(motion)
    air = PlaneSampler(ctx.heart, pp.plane, pp.shift_mm).background[..., 1] == an.AIR
    air = ndimage.binary_erosion(air, iterations=5)
    assert breathing[air].mean() > 2.0 * still[air].mean() + 5.0, (breathing[air].mean(), still[air].mean())
    assert breathing.sum() == pytest.approx(still.sum(), rel=0.05)


@pytest.mark.parametrize("share", [0.0, 0.5, 1.0])
def test_breathing_share_of_the_planned_cines(small_ctx, share):
    """A training cohort may ask for more cines acquired while breathing than the protocol's one in
    eight: none, about half or all of the planes then breathe."""
    ctx, rr = small_ctx(41, 1), 1000.0
    plans = [p for seed in range(8) for p in cine.plan_planes(np.random.default_rng(seed), ctx, share)]
    breathing = np.mean([p.motion_mm is not None for p in plans])
    assert breathing == pytest.approx(share, abs=0.15)
    assert all(p.motion_mm.shape == (p.plane.shape[0], 3) for p in plans if p.motion_mm is not None)
    assert cine.draw_breathing(np.random.default_rng(0), plans[0].plane, rr, 0.0) is None
