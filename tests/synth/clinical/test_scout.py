"""TI scout of the clinical protocol (cmr_atlas.synth.clinical.scout): null-point calibration,
amyloid-like physiology, observers and operator, headers, images, determinism."""

from dataclasses import replace

import numpy as np
import pytest

from cmr_atlas.synth import physics
from cmr_atlas.synth.clinical import cohort, lge, scout
from cmr_atlas.synth.clinical.physiology import make_amyloid_like


@pytest.fixture(scope="module")
def population():
    """~200 subjects: the scout physics without rendering images."""
    out = []
    for i in range(200):
        ctx = cohort.make_context(17, i)
        acq = scout.draw_acquisition(ctx, np.random.default_rng(i), "sax")
        out.append((ctx, acq, scout.scout_truth_row(ctx, np.random.default_rng(1000 + i), acq)))
    return out


@pytest.fixture(scope="module")
def exam():
    ctx = cohort.make_context(5, 2)
    return ctx, scout.render(ctx, np.random.default_rng(4), 0)


def test_null_point_distribution_is_clinical(population):
    nulls = np.array([row["null_ti_ms"] for _, _, row in population])
    print(f"scout myocardial null TI: median {np.median(nulls):.0f} ms, IQR "
          f"{np.percentile(nulls, 25):.0f}-{np.percentile(nulls, 75):.0f} ms")
    assert 250.0 <= np.median(nulls) <= 350.0
    assert np.percentile(nulls, 10) > 180.0 and np.percentile(nulls, 90) < 450.0
    assert np.ptp(nulls) > 80.0  # subjects differ (dose, washout, ECV, field, heart rate)


def test_readout_model_reduces_to_the_continuous_look_locker():
    ctx = cohort.make_context(17, 0)
    acq = replace(scout.draw_acquisition(ctx, np.random.default_rng(0), "sax"), duty=1.0, flip_eff_deg=10.0,
                  inversion_efficiency=0.95, inversion_rr=40)  # long recovery: m0 = 1
    for t1 in (350.0, 450.0, 600.0):
        assert scout.null_ti_ms(t1, acq) == pytest.approx(physics.look_locker_null_ms(t1, 10.0, 4.5), rel=1e-3)
    assert physics.look_locker_null_ms(450.0, 10.0, 4.5) == pytest.approx(220.0, abs=5.0)  # the figure


def test_blood_nulls_before_myocardium_except_in_amyloid(population):
    normal = [row for ctx, _, row in population if not ctx.physiology.amyloid_like]
    assert np.mean([r["blood_null_ti_ms"] < r["null_ti_ms"] for r in normal]) > 0.95
    for ctx, acq, _ in population[:25]:
        amy = replace(ctx, physiology=make_amyloid_like(ctx.physiology, np.random.default_rng(1)))
        t1s = scout.tissue_t1(amy, amy.timeline.scout_min)
        myo = scout.null_ti_ms(t1s.remote, acq)
        assert np.median(myo) < scout.null_ti_ms(t1s.blood, acq)
        seg = np.arange(1, 17)
        endo, epi = (scout.null_ti_ms(scout.amyloid_t1_ms(t1s, seg, d, amy.physiology.hematocrit), acq) for d in (0, 1))
        assert np.all(epi - endo > 25.0)  # the wall nulls over most of a frame interval (41 ms): no clean null


def test_operator_error_mix(population):
    errors = np.array([row["operator_error"] for _, _, row in population])
    share = {e: np.mean(errors == e) for e in ("right", "short", "long")}
    print("operator TI:", share)
    assert 0.55 <= share["right"] <= 0.85
    assert 0.05 <= share["short"] <= 0.30 and 0.05 <= share["long"] <= 0.30
    for _, acq, row in population:
        assert 150.0 <= row["operator_ti_ms"] <= 700.0


def test_lge_null_drifts_up_with_washout(population):
    for ctx, acq, row in population[:30]:
        at_scout = lge.remote_null_ti_ms(ctx, ctx.timeline.scout_min)
        assert row["lge_null_ti_ms"] > at_scout  # later: less gadolinium, longer T1
        assert row["lge_null_ti_ms"] > row["null_ti_ms"]  # the Look-Locker scout nulls earlier


def test_observers_pick_after_the_artefact_and_differ_by_about_a_frame(population):
    o1 = np.array([row["obs1_frame"] for _, _, row in population])
    o2 = np.array([row["obs2_frame"] for _, _, row in population])
    null = np.array([row["null_frame"] for _, _, row in population])
    ti = np.array([acq.ti_ms[row["obs1_frame"]] for _, acq, row in population])
    assert ti.min() >= 120.0
    diff = np.abs(o1 - o2)
    assert 0.3 < diff.mean() < 1.5 and np.mean(diff <= 1) > 0.85
    assert np.mean(np.abs(o1 - null) <= 1) > 0.85


def test_headers_and_geometry(exam):
    ctx, res = exam
    s = res.series[0]
    assert s.kind == "ti_scout" and s.view == "sax" and s.slice_indices == [ctx.geometry.sax_level("mid")]
    assert s.images[0].shape == (30, 128, 128) and s.planes[0].thickness_mm == 8.0
    ti = np.array([h["InversionTime"] for h in s.frame_headers[0]])
    assert 80 <= ti[0] <= 120 and 1200 <= ti[-1] <= 1350 and np.all(np.diff(ti) > 0)
    h = s.series_headers
    assert (h["RepetitionTime"], h["EchoTime"], h["FlipAngle"]) == (4.5, 2.0, 10.0)
    assert "IR" in h["ScanningSequence"] and h["ContrastBolusAgent"]
    assert "InversionTime" not in h
    trig = np.array([f["TriggerTime"] for f in s.frame_headers[0]])
    assert np.all((trig >= 0) & (trig < h["NominalInterval"]))
    assert np.any(np.diff(trig) < 0)  # frames span more than one cardiac cycle


def _myocardium_mask(res, frame, shape):
    from matplotlib.path import Path

    c = res.truth["contours"]
    c = c[(c.frame == frame) & (c.view == "sax")]
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    pts = np.stack([rr.ravel(), cc.ravel()], 1)
    inside = {s: Path(c[c.surface == s][["row_px", "col_px"]].to_numpy()).contains_points(pts).reshape(shape)
              for s in ("endo", "epi")}
    return inside["epi"] & ~inside["endo"], inside["endo"]


def _tissue_means(res):
    from scipy.ndimage import binary_erosion

    img = res.series[0].images[0].astype(float)
    myo_mean, blood_mean = [], []
    for f in range(30):
        myo, cav = _myocardium_mask(res, f, img.shape[1:])
        myo_mean.append(img[f][binary_erosion(myo)].mean())
        blood_mean.append(img[f][binary_erosion(cav, iterations=2)].mean())
    return np.array(myo_mean), np.array(blood_mean)


def test_amyloid_like_image_nulls_myocardium_before_blood():
    ctx = cohort.make_context(5, 2)
    ctx = replace(ctx, physiology=make_amyloid_like(ctx.physiology, np.random.default_rng(1)))
    res = scout.render(ctx, np.random.default_rng(4), 0)
    myo, blood = _tissue_means(res)
    assert np.argmin(myo) < np.argmin(blood)


def test_images_null_myocardium_where_the_truth_says(exam):
    ctx, res = exam
    row = res.truth["ti_scout"].iloc[0]
    img = res.series[0].images[0].astype(float)
    myo_mean, blood_mean = _tissue_means(res)
    darkest = int(np.argmin(myo_mean))
    assert abs(darkest - row.null_frame) <= 1
    assert int(np.argmin(blood_mean)) < darkest  # blood nulls first in this (non-amyloid) subject
    assert myo_mean[darkest] < 0.35 * myo_mean[-1]
    # contours move with the cardiac cycle
    areas = [_myocardium_mask(res, f, img.shape[1:])[1].sum() for f in range(0, 30, 3)]
    assert np.ptp(areas) > 0.15 * np.max(areas)


def test_deterministic_and_truth_free_headers(exam):
    ctx, res = exam
    again = scout.render(cohort.make_context(5, 2), np.random.default_rng(4), 0)
    np.testing.assert_array_equal(res.series[0].images[0], again.series[0].images[0])
    assert res.truth["ti_scout"].equals(again.truth["ti_scout"])
    keys = set(res.series[0].series_headers) | {k for h in res.series[0].frame_headers[0] for k in h}
    assert not keys & {"null_ti_ms", "NullTime"}
    from pydicom.datadict import keyword_dict

    assert keys <= set(keyword_dict)


def test_four_chamber_scout_has_long_axis_truth():
    ctx = cohort.make_context(5, 2)
    rng = np.random.default_rng(0)
    acq = scout.draw_acquisition(ctx, rng, "lax_4ch")
    images, shift, w = scout.render_scout_series(ctx, rng, acq)
    contours, marks = scout.plane_truth(ctx, acq, shift, w)
    assert images.shape == (30, 128, 128) and acq.slice_index == 0
    assert {m["landmark"] for m in marks} == {"mv_septal", "mv_lateral", "apex"}
    assert {c["frame"] for c in contours} == set(range(30))


def test_truth_tables_conform_to_their_schemas(exam):
    from cmr_atlas.core.tables import conform
    from cmr_atlas.synth import truth as T
    from cmr_atlas.synth.clinical import truth as CT

    _, res = exam
    conform(res.truth["ti_scout"], CT.TI_SCOUT)
    conform(res.truth["contours"], T.CONTOURS)
    conform(res.truth["landmarks"], T.LANDMARKS)


def test_inversion_artefact_fades_over_the_first_frames():
    from cmr_atlas.synth import anatomy as an
    from cmr_atlas.synth.clinical.render import PlaneSampler

    excess = []
    for i in range(3):
        ctx = cohort.make_context(5, i)
        rng = np.random.default_rng(i)
        acq = scout.draw_acquisition(ctx, rng, "sax")
        images, shift, _ = scout.render_scout_series(ctx, rng, acq)
        air = (PlaneSampler(ctx.heart, acq.plane, shift).background == an.AIR).all(axis=2)
        air_mean = images[:, air].astype(float).mean(axis=1)  # ghosts land in the air around the body
        floor = air_mean[-10:].mean()
        excess.append((air_mean[0] - floor) / floor)
        assert np.all(air_mean[8:] < 1.1 * floor)  # resolved after about 400 ms
    assert np.mean(excess) > 0.2


def test_breath_hold_is_clinical(population):
    hold = np.array([scout.breath_hold_s(acq) for _, acq, _ in population])
    assert hold.min() > 6.0 and hold.max() < 25.0 and 9.0 < np.median(hold) < 18.0
