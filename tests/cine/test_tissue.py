"""T1/ECV per AHA segment (cmr_atlas.cine.tissue): the mid-wall ROI from landmarks, sectors by the
one AHA code, the ECV formula, the qc reasons, and the cohort's hematocrit.  Phantoms: a round LV
(blood disc, myocardial ring, fat outside) with known T1 before and after contrast."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.tissue.roi import MID_WALL, RoiError, slice_levels, slice_roi
from cmr_atlas.cine.tissue.segments import apply_hematocrit, ecv, exam_rows, hematocrit_by_exam
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.seriescache import SeriesImages

SP = 1.25  # mm per pixel
N = 160


def phantom(blood, myo, fat, endo_mm=20.0, epi_mm=30.0, centre=(78.0, 83.0), sector=None):
    """(R, C) map, pixels of the centre, anterior and inferior insertions (anterior straight 'up',
    inferior 120 degrees round through the septum); ``sector`` (theta0, theta1, value): a wedge of
    the wall (theta from the anterior insertion towards the inferior one) with another T1."""
    r, c = np.indices((N, N), dtype=float)
    dr, dc = (r - centre[0]) * SP, (c - centre[1]) * SP
    rad = np.hypot(dr, dc)
    img = np.where(rad < endo_mm, blood, np.where(rad <= epi_mm, myo, fat)).astype(np.float32)
    ang = np.degrees(np.arctan2(dc, dr))  # 0 = down the rows
    ant_deg, inf_deg = 180.0, 180.0 + 120.0  # theta grows with this angle
    if sector is not None:
        theta = np.mod(ang - ant_deg, 360.0)
        wedge = (theta >= sector[0]) & (theta < sector[1]) & (rad >= endo_mm) & (rad <= epi_mm)
        img[wedge] = sector[2]

    def at(deg):
        return np.array(centre) + epi_mm / SP * np.array([np.cos(np.radians(deg)), np.sin(np.radians(deg))])
    return img, np.array(centre), at(ant_deg), at(inf_deg), rad


def t1_of(ecv_, native_myo=1000.0, native_blood=1600.0, post_blood=350.0, hct=0.42):
    """Post-contrast myocardial T1 of a given ECV (the inverse of the ECV formula)."""
    d_blood = 1 / post_blood - 1 / native_blood
    return 1.0 / (1 / native_myo + ecv_ / (1 - hct) * d_blood)


@settings(max_examples=15, deadline=None)
@given(endo=st.floats(12.0, 26.0), wall=st.floats(6.0, 13.0), dr=st.floats(-4, 4), dc=st.floats(-4, 4),
       post=st.booleans())
def test_roi_is_the_mid_wall_whatever_the_size_and_contrast(endo, wall, dr, dc, post):
    blood, myo = (350.0, 600.0) if post else (1600.0, 1000.0)  # contrast reverses after gadolinium
    img, c, a, b, rad = phantom(blood, myo, 300.0, endo, endo + wall, centre=(78 + dr, 83 + dc))
    roi = slice_roi(img, (SP, SP), c, a, b)
    assert roi.myo.sum() > 50
    r = rad[roi.myo]
    assert r.min() >= endo + 0.15 * wall and r.max() <= endo + 0.85 * wall  # mid-wall, clear of both borders
    assert (img[roi.myo] == myo).all() and (img[roi.blood] == blood).all()
    lo, hi = MID_WALL
    assert np.median(r) == pytest.approx(endo + 0.5 * (lo + hi) * wall, abs=1.5)


def test_segments_follow_the_anterior_insertion():
    # a wedge 60-120 degrees from the anterior insertion through the septum is the inferoseptum (9 mid)
    img, c, a, b, _ = phantom(1600.0, 1000.0, 300.0, sector=(60.0, 120.0, 1300.0))
    seg = slice_roi(img, (SP, SP), c, a, b).segments("mid")
    assert set(np.unique(seg)) == {0, *range(7, 13)}
    assert (img[seg == 9] == 1300.0).mean() > 0.9 and (img[(seg > 0) & (seg != 9)] == 1000.0).mean() > 0.95
    assert set(np.unique(slice_roi(img, (SP, SP), c, a, b).segments("apical"))) == {0, 13, 14, 15, 16}


def test_roi_refuses_implausible_input():
    img, c, a, b, _ = phantom(1000.0, 1000.0, 300.0)
    with pytest.raises(RoiError, match="no_blood_myocardium_contrast"):
        slice_roi(img, (SP, SP), c, a, b)
    with pytest.raises(RoiError, match="implausible_landmarks"):
        slice_roi(img, (SP, SP), c, c + [2.0, 0.0], c + [0.0, 2.0])


def test_ecv_formula_inverts():
    assert float(ecv(1000.0, t1_of(0.27), 1600.0, 350.0, 0.42)) == pytest.approx(0.27)
    assert float(ecv(1000.0, t1_of(0.27, hct=0.35), 1600.0, 350.0, 0.35)) == pytest.approx(0.27)


def _plane(z=0.0, dx=0.0):
    return SlicePlane([-(N - 1) / 2 * SP + dx, -(N - 1) / 2 * SP, z], [1, 0, 0], [0, 1, 0], (SP, SP), (N, N))


def _series(index, images, post, planes):
    p = len(images)
    nan = np.full((p, 1), np.nan)
    return SeriesImages("e1", index, index + 1, "t1map", "t1map", None, post,
                        np.stack(images)[:, None].astype(np.float32), np.ones(p, int), planes, nan, nan, nan, nan)


def _landmarks(index, pts_by_slice):
    rows = [{"series_index": index, "slice_index": s, "landmark": name, "present": True, "y_px": p[0], "x_px": p[1]}
            for s, pts in pts_by_slice.items() for name, p in pts.items()]
    return pd.DataFrame(rows)


def test_exam_rows_ecv_per_segment_and_qc_reasons():
    scar = t1_of(0.45)
    nat, c, a, b, _ = phantom(1600.0, 1000.0, 300.0)
    post, *_ = phantom(350.0, t1_of(0.27), 300.0, sector=(0.0, 60.0, scar))  # anteroseptal scar
    pts = {"lv_centre": c, "rv_insert_anterior": a, "rv_insert_posterior": b}
    native_s = _series(3, [nat, nat], False, [_plane(0.0), _plane(10.0)])
    post_s = _series(4, [post, post], True, [_plane(0.0), _plane(10.0, dx=5.0)])  # slice 1 moved in plane
    lm = _landmarks(3, {0: pts})  # slice 1: no landmarks
    rows = pd.DataFrame(exam_rows("e1", native_s, post_s, lm, 0.42))
    s0 = rows[rows.slice_index == 0].set_index("segment")
    # two slices: basal and mid, in stack order when only one slice has a radius
    assert sorted(s0.index) == list(range(1, 7)) and s0["qc_reason"].isna().all() and set(s0["level"]) == {"basal"}
    assert s0.loc[2, "ecv"] == pytest.approx(0.45, abs=0.01)  # basal anteroseptal
    assert s0.drop(2)["ecv"].to_numpy() == pytest.approx(0.27, abs=0.01)
    assert s0["native_t1_ms"].to_numpy() == pytest.approx(1000.0)
    assert rows[rows.slice_index == 1]["qc_reason"].tolist() == ["geometry_mismatch"]
    only_native = pd.DataFrame(exam_rows("e1", native_s, None, lm, 0.42))
    assert set(only_native.loc[only_native.slice_index == 0, "qc_reason"]) == {"no_post_map"}
    assert only_native.loc[only_native.slice_index == 1, "qc_reason"].tolist() == ["no_landmarks"]
    assert exam_rows("e1", None, None, lm, 0.42)[0]["qc_reason"] == "no_t1_map"
    assert exam_rows("e1", None, post_s, lm, 0.42)[0]["qc_reason"] == "no_native_map"


def test_slice_levels_by_count_and_radius():
    assert slice_levels(np.array([0.0]), [25.0]) == ["mid"]
    assert slice_levels(np.array([0.0, 10.0]), [20.0, 26.0]) == ["mid", "basal"]  # larger = basal
    assert slice_levels(np.array([10.0, 0.0, -10.0]), [27.0, 24.0, np.nan]) == ["basal", "mid", "apical"]
    assert slice_levels(np.array([10.0, 0.0, -10.0]), [np.nan, 24.0, 27.0]) == ["apical", "mid", "basal"]


def test_hematocrit_from_covariates_replaces_the_default():
    seg = pd.DataFrame({"exam_id": ["a", "a", "b"], "native_t1_ms": 1000.0, "post_t1_ms": t1_of(0.3, hct=0.36),
                        "blood_native_t1_ms": 1600.0, "blood_post_t1_ms": 350.0, "hematocrit": 0.42,
                        "hematocrit_source": "default", "ecv": np.nan})
    extra = pd.DataFrame({"exam_id": ["a"], "name": ["Hematocrit"], "value_num": [36.0], "value_str": [None]})
    out = apply_hematocrit(seg, hematocrit_by_exam(None, extra))
    assert out["hematocrit_source"].tolist() == ["covariates", "covariates", "default"]
    assert out.loc[0, "ecv"] == pytest.approx(0.30) and out.loc[2, "hematocrit"] == 0.42
    assert out.loc[2, "ecv"] == pytest.approx(0.30 * 0.58 / 0.64)


@pytest.mark.parametrize("endo, epi", [(8.0, 16.0), (12.0, 22.0)])
def test_apical_slice_finds_its_epicardium_from_the_map(endo, epi):
    from cmr_atlas.cine.tissue.roi import slice_roi_without_insertions

    img, c, a, b, rad = phantom(1600.0, 1000.0, 300.0, endo, epi, sector=(60.0, 120.0, 1200.0))
    # the insertion points only give directions here: put them far off the epicardium
    roi = slice_roi_without_insertions(img, (SP, SP), c, c + 3 * (a - c), c + 0.5 * (b - c), 1000.0)
    assert roi.epi_radius_mm == pytest.approx(epi, abs=1.5)
    r = rad[roi.myo]
    assert r.min() >= endo + 0.1 * (epi - endo) and r.max() <= epi - 0.1 * (epi - endo)
    seg = roi.segments("apical")
    assert set(np.unique(seg)) == {0, 13, 14, 15, 16} and (img[seg == 14] == 1200.0).mean() > 0.4


def test_two_apical_slices_borrow_from_the_slice_with_insertions():
    # slices 1 and 2 have the LV centre only; slice 2 is nearer slice 1 (which borrowed its
    # insertions) than slice 0, yet lends from slice 0: a clinical exam's tissue stage once failed
    # here with a KeyError
    nat, c, a, b, _ = phantom(1600.0, 1000.0, 300.0, 14.0, 24.0)
    native_s = _series(3, [nat, nat, nat], False, [_plane(0.0), _plane(10.0), _plane(20.0)])
    lm = _landmarks(3, {0: {"lv_centre": c, "rv_insert_anterior": a, "rv_insert_posterior": b},
                        1: {"lv_centre": c}, 2: {"lv_centre": c}})
    rows = pd.DataFrame(exam_rows("e1", native_s, None, lm, 0.42))
    assert set(rows["slice_index"]) == {0, 1, 2} and set(rows["qc_reason"]) == {"no_post_map"}
    assert rows.groupby("slice_index")["native_t1_ms"].mean().to_numpy() == pytest.approx(1000.0)
