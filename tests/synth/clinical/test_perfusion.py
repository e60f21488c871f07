"""Stress/rest first-pass perfusion of the clinical protocol (cmr_atlas.synth.clinical.perfusion):
calibration against the published figures, signal physics, motion, headers, truth."""

from dataclasses import replace

import numpy as np
import pytest
from pydicom.datadict import keyword_dict

from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.clinical import cohort, perfusion
from cmr_atlas.synth.clinical.dynamic import N_COMPARTMENTS, MovingSlice, contour_atlas
from cmr_atlas.synth.truthgeom import polygon_centroid
from cmr_atlas.synth.clinical import perfusion_curves as pc
from cmr_atlas.synth.clinical.physiology import CORONARY_TERRITORIES
from cmr_atlas.synth.clinical.respiration import respiratory_trace
from cmr_atlas.core.vocab import CORRECTED_POSE_FRAME

SEED, INDEX = 5, 2


@pytest.fixture(scope="module")
def exam():
    ctx = cohort.make_context(SEED, INDEX)
    return ctx, perfusion.render(ctx, np.random.default_rng(11), 1)


def _series(res, kind, state):
    """The series of ``kind`` and ``state`` (stress is acquired first; descriptions may be blank)."""
    found = sorted((s for s in res.series if s.kind == kind), key=lambda s: s.start_min)
    return found[0 if state == "stress" else 1]


@pytest.mark.parametrize("state,mean,sd", [("stress", 3.5, 1.2), ("rest", 4.4, 1.2)])
def test_aif_first_pass_peaks_match_kellman(state, mean, sd):
    rng = np.random.default_rng(3)
    t = np.arange(0, 70, pc.FINE_DT_S)
    peaks = []
    for _ in range(1500):
        peak, shape = pc.draw_aif_shape(rng, state, 3.0, float(rng.standard_normal()))
        peaks.append(pc.kin.aif_blood(t, peak, shape).max())
    assert np.mean(peaks) == pytest.approx(mean, abs=0.1)
    assert np.std(peaks) == pytest.approx(sd, rel=0.1)


def test_stress_and_rest_peaks_of_a_subject_are_correlated():
    rng = np.random.default_rng(5)
    pairs = []
    for _ in range(800):
        z = float(rng.standard_normal())
        pairs.append([pc.draw_aif_shape(rng, s, 3.0, z)[0] for s in ("stress", "rest")])
    r = np.corrcoef(np.array(pairs).T)[0, 1]
    assert 0.25 < r < 0.5  # rho^2 of the shared part


def test_rendered_aif_peak_and_residual_baseline(exam):
    ctx, res = exam
    curves = res.truth["perfusion_curves"]
    aif = {s: g[g.curve == "aif_blood"].concentration_mmol_l.to_numpy() for s, g in curves.groupby("condition")}
    assert aif["stress"][0] == 0.0  # nothing given before the stress bolus
    assert aif["rest"][0] > 0.05  # residual gadolinium of the stress bolus, 12-20 min earlier
    for s in ("stress", "rest"):
        assert 0.5 < aif[s].max() - aif[s][0] < 10.0
        assert aif[s].argmax() > 4  # arrives after the PD frames and a few baseline beats
        plasma = curves[(curves.condition == s) & (curves.curve == "aif_plasma")].concentration_mmol_l.to_numpy()
        np.testing.assert_allclose(plasma, aif[s] / (1 - ctx.physiology.hematocrit))


def test_signal_is_concave_in_concentration_and_less_so_for_the_aif_readout():
    ctx = cohort.make_context(SEED, INDEX)
    native = pc.native_properties(ctx)
    c = np.linspace(0, 5.0, 51)
    conc = np.zeros((len(c), pc.N_COMPARTMENTS))
    conc[:, pc.an.LV_BLOOD] = c
    main = pc.signal_tables(ctx, native, conc, pc.Readout(120.0, 12.0, 2.4, 1.1, 15), 12.0)[:, pc.an.LV_BLOOD]
    aif = pc.signal_tables(ctx, native, conc, pc.Readout(8.0, 12.0, 2.4, 0.8, 3), 12.0)[:, pc.an.LV_BLOOD]
    assert np.all(np.diff(main, 2)[10:] < 0)  # concave: saturation at the AIF peak

    def linearity(s):  # signal at 4 mmol/l over the extrapolated initial slope
        return (s[40] - s[0]) / ((s[2] - s[0]) / 2 * 40)

    assert linearity(main) < 0.45
    assert linearity(aif) > linearity(main) + 0.25


def test_ischaemic_territory_upslope_is_lower():
    ctx = cohort.make_context(SEED, INDEX)
    ph = ctx.physiology
    stress = ph.mbf_rest * 2.2
    lad = np.array(CORONARY_TERRITORIES["LAD"]) - 1
    stress[lad] = ph.mbf_rest[lad] * 1.05
    ctx = replace(ctx, physiology=replace(ph, mbf_stress=stress, perfusion_group="ischaemic", ischaemic_territory="LAD"))
    t = np.arange(60) * 0.7
    curves = pc.state_curves(ctx, np.random.default_rng(1), "stress", t, 3.0, -0.05)
    up = {s: np.max(np.diff(curves.segment(s))) for s in range(1, 17)}
    lad_up = np.mean([up[s + 1] for s in lad])
    remote_up = np.mean([up[s] for s in range(1, 17) if s - 1 not in lad])
    assert lad_up < 0.7 * remote_up
    # the 2CXM retains less than Fermi-like full extraction: the tissue curve never exceeds ECV x plasma
    assert curves.segment(3).max() < 0.4 * curves.plasma_lv.max()


def test_pixel_mbf_is_the_segment_value_on_the_right_levels(exam):
    ctx, res = exam
    px = res.truth["perfusion_pixels"]
    for state, mbf in (("stress", ctx.physiology.mbf_stress), ("rest", ctx.physiology.mbf_rest)):
        p = px[px.condition == state]
        by_seg = p.groupby("segment").mbf_ml_min_g
        # two wall layers per segment whose mean is the segment's MBF
        assert by_seg.nunique().max() <= 2
        lo, hi = by_seg.min(), by_seg.max()
        np.testing.assert_allclose((lo + hi) / 2, mbf[lo.index - 1], rtol=1e-9)
        counts = p.groupby("level").segment.agg(lambda s: np.bincount(s, minlength=17))
        assert counts["basal"][1:7].sum() > 0.8 * counts["basal"].sum()
        assert counts["mid"][7:13].sum() > 0.8 * counts["mid"].sum()
        assert counts["apical"][13:17].sum() > 0.8 * counts["apical"].sum()
        assert len(p) > 300


def test_ischaemia_starves_the_subendocardium_first():
    ctx = cohort.make_context(SEED, INDEX)
    ph = ctx.physiology
    ischaemic = replace(ctx, physiology=replace(ph, perfusion_group="ischaemic", ischaemic_territory="RCA"))
    rng = np.random.default_rng(0)
    for _ in range(20):
        stress = pc.layer_flows(ischaemic, rng, "stress")
        rest = pc.layer_flows(ischaemic, rng, "rest")
        rca = np.array(CORONARY_TERRITORIES["RCA"]) - 1
        assert np.all(stress[rca, 0] < 0.85 * stress[rca, 1])  # inner half under-perfused at stress
        assert np.all(rest[:16, 0] > rest[:16, 1])  # at rest the subendocardium gets a little more
        np.testing.assert_allclose(stress[:16].mean(axis=1), ph.mbf_stress)


def test_myocardial_pixels_lie_between_the_truth_contours(exam):
    _, res = exam
    px = res.truth["perfusion_pixels"]
    c = res.truth["contours"]
    p = px[(px.condition == "stress") & (px.level == "mid")]
    ref = c[(c.condition == "stress") & (c.frame == 0) & (c.slice_index == p.slice_index.iloc[0]) & (c.observer == "truth")]
    endo, epi = (ref[ref.surface == s][["row_px", "col_px"]].to_numpy() for s in ("endo", "epi"))
    centre = endo.mean(axis=0)
    rad = lambda pts: np.hypot(*(pts - centre).T)  # noqa: E731
    r = rad(p[["row_px", "col_px"]].to_numpy())
    assert np.mean((r > rad(endo).min() - 1.5) & (r < rad(epi).max() + 1.5)) > 0.97


def test_breathing_moves_the_heart_and_the_truth_follows_the_image(exam):
    _, res = exam
    s = _series(res, "perfusion", "stress")
    marks = res.truth["landmarks"]
    lv = marks[(marks.landmark == "lv_centre") & (marks.condition == "stress") & (marks.observer == "truth")
               & (marks.slice_index == s.slice_indices[1])].sort_values("frame")
    xyz = lv[["x_mm", "y_mm", "z_mm"]].to_numpy()
    extent = np.ptp(xyz, axis=0)
    assert 2.0 < np.linalg.norm(extent) < 40.0
    # late frames (contrast nearly steady): the image moves between two frames as the truth does
    img = s.images[1].astype(float)
    late = lv[lv.frame >= 40]
    rc = late[["row_px", "col_px"]].to_numpy()
    d = np.linalg.norm(rc[:, None] - rc[None], axis=-1)
    i, j = np.unravel_index(np.argmax(d), d.shape)
    fa, fb = int(late.frame.iloc[i]), int(late.frame.iloc[j])
    truth_shift = rc[j] - rc[i]
    assert np.linalg.norm(truth_shift) > 1.0
    c = res.truth["contours"]
    epi = c[(c.condition == "stress") & (c.frame == fb) & (c.slice_index == s.slice_indices[1]) & (c.surface == "epi")
            & (c.observer == "truth")][["row_px", "col_px"]].to_numpy()
    radius = np.hypot(*(epi - rc[j]).T).max() + 1.0
    found = _register(img[fa], img[fb], rc[j], radius)
    # noise, contrast change, deformation and through-plane motion blur the estimate; a sign or axis
    # error would miss by twice the shift
    assert np.linalg.norm(found - truth_shift) < 0.5 + 0.3 * np.linalg.norm(truth_shift), (found, truth_shift)


@pytest.mark.parametrize("k", range(4))
def test_moving_slice_truth_contour_matches_its_noise_free_image(k):
    ctx = cohort.make_context(SEED, INDEX)
    rng = np.random.default_rng(k)
    plane = perfusion.perfusion_plane(ctx.geometry.sax_planes[ctx.geometry.sax_level(perfusion.LEVELS[k % 3])],
                                      perfusion.perfusion_matrix(rng, False))
    moving = MovingSlice(ctx.heart, plane, 9.0)
    w = float(rng.uniform(0, 1))
    atlas = contour_atlas(ctx.heart, plane, w, -8.0, 8.0)
    table = np.zeros(N_COMPARTMENTS)
    table[an.LV_BLOOD] = 1.0
    layers = moving.layers(w)
    for _ in range(3):
        shift, scale = rng.normal(0, 4.0, 3), float(rng.uniform(0.97, 1.03))
        img = moving.frame(layers, table, shift, scale, background=np.zeros(plane.shape))
        rr, cc = np.mgrid[: img.shape[0], : img.shape[1]]
        seen = np.array([(rr * img).sum(), (cc * img).sum()]) / img.sum()
        endo = moving.move_points(atlas.at(float(shift @ plane.normal))[0]["endo"], shift, scale)
        c2 = polygon_centroid(plane.in_plane_mm(endo))
        truth, _ = plane.patient_to_pixel(plane.position_mm + c2[0] * plane.row_cosine + c2[1] * plane.col_cosine)
        assert np.linalg.norm(seen - truth) < 0.15
        area_img = img.sum() * np.prod(plane.pixel_spacing_mm)
        uv = plane.in_plane_mm(endo)
        area_truth = 0.5 * abs(np.dot(uv[:, 0], np.roll(uv[:, 1], 1)) - np.dot(uv[:, 1], np.roll(uv[:, 0], 1)))
        assert area_img == pytest.approx(area_truth, rel=0.06)  # partial volume across the slice profile


def _register(a: np.ndarray, b: np.ndarray, centre: np.ndarray, radius: float) -> np.ndarray:
    """In-plane shift (rows, cols) that best maps the heart of ``a`` onto the heart of ``b``
    (SSD over a disc around ``b``'s LV centre: the chest wall does not move with the heart)."""
    from scipy import ndimage

    rr, cc = np.mgrid[: b.shape[0], : b.shape[1]]
    disc = np.hypot(rr - centre[0], cc - centre[1]) < radius
    best, arg = np.inf, None
    for dr in np.arange(-8, 8.01, 0.25):
        for dc in np.arange(-8, 8.01, 0.25):
            moved = ndimage.shift(a, (dr, dc), order=1)
            e = np.sum((moved[disc] - b[disc]) ** 2)
            if e < best:
                best, arg = e, np.array([dr, dc])
    return arg


def test_respiratory_trace_has_realistic_excursion_and_period():
    spans, periods = [], []
    for k in range(60):
        rng = np.random.default_rng(k)
        t = np.arange(0, 45, 0.05)
        si = respiratory_trace(rng, t).shift_mm[:, 2]
        spans.append(np.ptp(si))
        late = si[t > 25] - si[t > 25].mean()  # after any initial breath-hold
        power = np.abs(np.fft.rfft(late)) ** 2
        freq = np.fft.rfftfreq(len(late), 0.05)
        band = (freq > 0.08) & (freq < 1.0)
        periods.append(1.0 / freq[band][np.argmax(power[band])])
    assert 4.0 < np.median(spans) < 15.0
    assert np.percentile(spans, 90) > 1.3 * np.median(spans)  # deep breaths in some series
    assert 2.5 < np.median(periods) < 6.5


def test_headers_follow_the_conventions(exam):
    ctx, res = exam
    for state in ("stress", "rest"):
        s = _series(res, "perfusion", state)
        aif = _series(res, "perfusion_aif", state)
        assert len(s.planes) == 3 and all(im.shape[0] == perfusion.N_FRAMES for im in s.images)
        assert s.slice_indices == [ctx.geometry.sax_level(lv) for lv in perfusion.LEVELS]
        fh = s.frame_headers
        rr = [h["NominalInterval"] for h in fh[0]]
        t = [_seconds(h["AcquisitionTime"]) for h in fh[0]]
        np.testing.assert_allclose(np.diff(t) * 1000.0, rr[:-1], atol=1.0)
        assert 30.0 < t[-1] - t[0] < 70.0
        trig = np.array([fh[k][0]["TriggerTime"] for k in range(3)])
        assert np.all(np.array([h["TriggerTime"] for h in fh[1]]) == trig[1])  # constant per plane
        assert np.sort(trig)[-1] < np.mean(rr) and np.all(np.diff(np.sort(trig)) > 80.0)
        assert trig[1] == np.median(trig)  # the mid slice in the middle of the R-R
        n_pd = sum("FlipAngle" in h for h in fh[0])
        assert n_pd in (2, 3) and all(h["FlipAngle"] < s.series_headers["FlipAngle"] for h in fh[0][:n_pd])
        assert 100 <= s.planes[0].shape[0] <= 144 and 160 <= s.planes[0].shape[1] <= 192
        assert aif.planes[0].shape[0] <= 96 and aif.planes[0].pixel_spacing_mm[0] >= 3.5
        assert aif.frame_headers[0][0]["TriggerTime"] < trig.min()
        for series in (s, aif):
            keys = set(series.series_headers) | {k for plane in series.frame_headers for h in plane for k in h}
            assert keys <= set(keyword_dict), keys - set(keyword_dict)  # real DICOM keywords only
            assert not any(w in series.description.lower() for w in ("isch", "mbf", "lad", "rca", "lcx"))
    stress, rest = _series(res, "perfusion", "stress"), _series(res, "perfusion", "rest")
    assert 10.0 < rest.start_min - stress.start_min < 22.0


def _seconds(t: str) -> float:
    return int(t[:2]) * 3600 + int(t[2:4]) * 60 + float(t[4:])


def test_proton_density_frames_and_snr_are_realistic(exam):
    ctx, res = exam
    s = _series(res, "perfusion", "rest")
    n_pd = sum("FlipAngle" in h for h in s.frame_headers[0])
    img = s.images[1].astype(float)
    px = res.truth["perfusion_pixels"]
    p = px[(px.condition == "rest") & (px.level == "mid")]
    myo = img[:, p.row_px.to_numpy(), p.col_px.to_numpy()].mean(axis=1)
    assert myo[0] > 2.0 * myo[n_pd]  # unsaturated PD frames are brighter than saturated baseline
    # noise from the air outside the body (Rician: mean = sigma sqrt(pi/2)) in the darkest corner
    corners = [img[n_pd, :8, :8], img[n_pd, :8, -8:], img[n_pd, -8:, :8], img[n_pd, -8:, -8:]]
    sigma = min(c.mean() for c in corners) / np.sqrt(np.pi / 2)
    snr_base = myo[n_pd] / sigma
    snr_peak = myo[n_pd:].max() / sigma
    assert 2.0 < snr_base < 20.0 and 8.0 < snr_peak < 60.0


def test_observers_trace_the_motion_corrected_pose(exam):
    _, res = exam
    c, m = res.truth["contours"], res.truth["landmarks"]
    obs = c[c.observer == "obs1"]
    assert set(obs.frame) == {CORRECTED_POSE_FRAME} and set(obs.condition) == {"stress", "rest"}
    assert obs.phase.isna().all() and set(obs.surface) == {"endo", "epi"} and len(set(obs.slice_index)) == 3
    assert set(m[m.observer == "obs1"].landmark) >= {"lv_centre", "rv_insert_anterior", "rv_insert_posterior"}
    truth = c[(c.observer == "truth") & (c.frame == 0)]
    assert set(truth.condition) == {"stress", "rest"} and c.frame.max() == perfusion.N_FRAMES - 1


def test_the_corrected_pose_is_the_median_breathing_position_of_the_dynamic_frames(exam):
    _, res = exam
    lm = res.truth["landmarks"]
    assert (lm[lm.observer == "truth"].frame >= 0).all()  # the truth follows the acquired frames
    centre = lm[(lm.landmark == "lv_centre") & (lm.condition == "rest")]
    for sl, g in centre.groupby("slice_index"):
        obs = g[g.observer == "obs1"][["row_px", "col_px"]].to_numpy(float)
        dyn = g[(g.observer == "truth") & (g.frame >= 3)][["row_px", "col_px"]].to_numpy(float)  # <= 3 PD frames
        # observer 1's LV centre (0.8 mm scatter) sits at the dynamic frames' median, not at frame 0's
        assert len(obs) == 1 and np.linalg.norm(obs[0] - np.median(dyn, axis=0)) < 1.0


def test_deterministic(exam):
    ctx, res = exam
    again = perfusion.render(cohort.make_context(SEED, INDEX), np.random.default_rng(11), 1)
    for a, b in zip(res.series, again.series):
        for x, y in zip(a.images, b.images):
            np.testing.assert_array_equal(x, y)
    assert res.truth["perfusion_pixels"].equals(again.truth["perfusion_pixels"])


def test_truth_tables_conform_to_their_schemas(exam):
    from cmr_atlas.core.tables import conform
    from cmr_atlas.synth import truth as T
    from cmr_atlas.synth.clinical import truth as CT

    _, res = exam
    conform(res.truth["perfusion_pixels"], CT.PERFUSION_PIXELS)
    conform(res.truth["perfusion_curves"], CT.PERFUSION_CURVES)
    # stress and rest share slice and frame numbers: the condition column tells them apart
    assert set(res.truth["contours"].condition) == {"stress", "rest"}
    conform(res.truth["contours"], T.CONTOURS)
    conform(res.truth["landmarks"], T.LANDMARKS)


def test_slice_timing_fits_the_rr_with_clinical_saturation_delays():
    for i in range(30):
        ctx = cohort.make_context(SEED, i)
        for state in ("stress", "rest"):
            plan = perfusion.plan_state(ctx, np.random.default_rng(i), state)
            ts = [r.saturation_delay_ms + r.n_before_centre * r.tr_ms for r in plan.readouts]
            aif_ts = plan.aif_readout.saturation_delay_ms + plan.aif_readout.n_before_centre * plan.aif_readout.tr_ms
            assert all(70.0 <= t <= 150.0 for t in ts) and 5.0 <= aif_ts <= 25.0
            if plan.heart_rate_bpm < 85:
                assert min(ts) >= 100.0
            assert plan.trigger_ms.max() + perfusion.READOUT_MS < 0.95 * plan.rr_ms.min()
            assert plan.aif_trigger_ms < plan.trigger_ms.min() - min(ts)  # AIF image first, then the slices


def test_aif_image_noise_follows_its_voxel_and_samples():
    """SNR per pixel ~ voxel volume x sqrt(samples): the generator's AIF matrix (4.6 mm, 10 mm,
    56 x 75) against a myocardial one (2.3 mm, 8 mm, 120 x 176) has about half the noise SD."""
    from cmr_atlas.core.geometry import SlicePlane

    def plane(px, shape, thick):
        return SlicePlane.centred(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (px, px), shape, thick)

    myo, aif = plane(2.3, (120, 176), 8.0), plane(4.6, (56, 75), 10.0)
    assert perfusion.relative_noise(myo, myo) == pytest.approx(1.0)
    assert perfusion.relative_noise(plane(2.3, (120, 176), 16.0), myo) == pytest.approx(0.5)  # twice the volume
    assert perfusion.relative_noise(plane(2.3, (60, 176), 8.0), myo) == pytest.approx(np.sqrt(2))  # half the samples
    assert 0.4 < perfusion.relative_noise(aif, myo) < 0.6


def test_each_image_gets_the_concentration_of_its_own_time():
    """The AIF image is read ~250 ms before the mid slice in each heartbeat; on the bolus upslope
    its blood concentration is lower than at the mid slice's time, and :meth:`StateCurves.at` on
    the frame times gives back the sampled curves."""
    ctx = cohort.make_context(SEED, INDEX)
    t = np.arange(60) * 0.8 + 0.3
    curves = pc.state_curves(ctx, np.random.default_rng(1), "stress", t, 3.0, -0.05)
    assert np.allclose(curves.at(t), curves.compartments)
    early = curves.at(t - 0.25)[:, an.LV_BLOOD]
    rising = np.diff(curves.compartments[:, an.LV_BLOOD]) > 0.5
    assert rising.any() and np.all(early[1:][rising] < curves.compartments[1:, an.LV_BLOOD][rising])


def test_myocardial_kinetics_are_selectable_with_the_same_draws():
    """The distributed-parameter model by default, the 2CXM on request: the same exam (flows, AIF,
    background tissues), only the myocardial curves differ."""
    ctx = cohort.make_context(SEED, INDEX)
    t = np.arange(60) * 0.8 + 0.3
    default = pc.state_curves(ctx, np.random.default_rng(1), "stress", t, 3.0, -0.05)
    dp, cx = (pc.state_curves(ctx, np.random.default_rng(1), "stress", t, 3.0, -0.05, tissue_model=m)
              for m in ("distributed", "2cxm"))
    np.testing.assert_array_equal(default.compartments, dp.compartments)
    np.testing.assert_array_equal(dp.layer_mbf, cx.layer_mbf)
    for c in (an.LV_BLOOD, an.MUSCLE, an.LIVER):
        np.testing.assert_array_equal(dp.compartments[:, c], cx.compartments[:, c])
    for s in range(1, 17):
        assert np.abs(dp.segment(s) - cx.segment(s)).max() > 0.05 * cx.segment(s).max()
