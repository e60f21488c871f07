"""RV insertion and AHA sectors from a segmentation (cmr_atlas.perfusion.sectors)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cmr_atlas.perfusion import sectors as S


def phantom(rot_deg: float = 0.0, half_arc_deg: float = 60.0, shape=(96, 96), wall_px: float = S.RV_WALL_MM):
    """LV ring centred at (48, 48) and an RV crescent attached over +-half_arc around angle
    ``rot_deg`` (measured like arctan2(col, row)), 1 mm pixels; insertion points (where the RV's
    outer wall meets the LV epicardium) at rot +- half_arc; the RV cavity is the crescent less its
    wall of ``wall_px``."""
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    dr, dc = rr - 48, cc - 48
    rho = np.hypot(dr, dc)
    ang = np.degrees(np.arctan2(dc, dr))
    cavity = rho < 12
    myo = (rho >= 12) & (rho < 20)
    rel = np.mod(ang - rot_deg + 180.0, 360.0) - 180.0
    rv_outer = (rho >= 20) & (rho < 36) & (np.abs(rel) < half_arc_deg)
    rv = ndimage.distance_transform_edt(rv_outer | (rho < 20)) > wall_px
    rv &= rv_outer
    ends = [np.radians(rot_deg - half_arc_deg), np.radians(rot_deg + half_arc_deg)]
    pts = [np.array([48 + 20 * np.cos(e), 48 + 20 * np.sin(e)]) for e in ends]
    return myo, rv, cavity, pts


@settings(max_examples=25, deadline=None)
@given(rot=st.floats(-180, 180), half=st.floats(40, 75))
def test_insertions_are_where_the_rv_wall_meets_the_lv(rot, half):
    myo, rv, cavity, (p1, p2) = phantom(rot, half)
    # growing theta clockwise seen from the apex: p1 -> septum -> p2 runs anterior <- inferior
    # (the wall arc itself: this phantom's wall ends radially, no wedge beyond the cavity's tip)
    ins = S.find_insertions(myo, rv, cavity, -1.0, pixel_mm=1.0, beyond_mm=0.0)
    assert ins is not None
    assert S.direction_error_deg(ins.anterior - ins.centre, p2 - 48.0) < 3.0
    assert S.direction_error_deg(ins.inferior - ins.centre, p1 - 48.0) < 3.0
    assert abs(np.linalg.norm(ins.anterior - ins.centre) - 20.0) < 1.0  # on the epicardium


def test_rv_cavity_contact_ends_are_not_the_insertions():
    """The wall matters: the cavity's own contact arc ends a wall's thickness inside the
    insertions, which a finder without the wall would report (the old definition)."""
    myo, rv, cavity, (p1, p2) = phantom(0.0, 60.0, wall_px=4.0)
    ins = S.find_insertions(myo, rv, cavity, -1.0, pixel_mm=1.0, beyond_mm=0.0)
    thin = S.find_insertions(myo, rv, cavity, -1.0, pixel_mm=4.0, beyond_mm=0.0)  # the wall 1 px: cavity contact
    assert S.direction_error_deg(ins.anterior - ins.centre, p2 - 48.0) < 3.0
    assert S.direction_error_deg(thin.anterior - thin.centre, p2 - 48.0) > 6.0


def test_sectors_follow_the_insertion_points_and_the_level():
    myo, rv, cavity, (p1, p2) = phantom(90.0, 60.0)
    ins = S.find_insertions(myo, rv, cavity, -1.0)
    basal = S.sector_map(myo, ins, "basal")
    assert set(np.unique(basal[myo])) == {1, 2, 3, 4, 5, 6}
    assert set(np.unique(S.sector_map(myo, ins, "mid")[myo])) == {7, 8, 9, 10, 11, 12}
    assert set(np.unique(S.sector_map(myo, ins, "apical")[myo])) == {13, 14, 15, 16}
    assert np.all(basal[~myo] == 0)
    # the septum (between the insertions, where the RV is) is anteroseptal 2 and inferoseptal 3
    near_rv = myo & S.ndimage.binary_dilation(rv, iterations=2)
    assert {2, 3} <= set(np.unique(basal[near_rv])) <= {1, 2, 3, 4}


def test_no_rv_contact_gives_none():
    myo, rv, cavity, _ = phantom()
    assert S.find_insertions(myo, np.zeros_like(rv), cavity, 1.0) is None
    assert S.find_insertions(np.zeros_like(myo), rv, cavity, 1.0) is None


@settings(max_examples=15, deadline=None)
@given(rot=st.floats(-180, 180), half=st.floats(40, 75))
def test_anterior_is_named_by_handedness_not_height(rot, half):
    """Seen from the apex, anterior -> septum -> inferior runs counter-clockwise whatever the
    slice's rotation (both insertions may lie at one height); a mirrored image reverses it."""
    myo, rv, cavity, (p1, p2) = phantom(rot, half)
    ccw = S.find_insertions(myo, rv, cavity, 1.0, beyond_mm=0.0)
    cw = S.find_insertions(myo, rv, cavity, -1.0, beyond_mm=0.0)
    assert S.direction_error_deg(ccw.anterior - ccw.centre, p1 - 48.0) < 3.0
    assert S.direction_error_deg(cw.anterior - cw.centre, p2 - 48.0) < 3.0
    mirrored = S.find_insertions(myo[:, ::-1], rv[:, ::-1], cavity[:, ::-1], -1.0, beyond_mm=0.0)
    flip = np.array([1.0, -1.0])
    assert S.direction_error_deg((mirrored.anterior - mirrored.centre) * flip, ccw.anterior - ccw.centre) < 3.0


def test_image_apex_sense_follows_the_plane_orientation():
    apex = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)
    col, row = np.array([0.0, 0.0, -1.0]), np.array([0.0, -1.0, 0.0])  # col x row = (-1, 0, 0)
    assert S.image_apex_sense(col, row, apex) == -1.0
    assert S.image_apex_sense(row, col, apex) == 1.0


def test_sector_means_count_pixels_and_skip_nans():
    sectors = np.array([[1, 1, 2], [0, 2, 2]])
    values = np.array([[1.0, 3.0, np.nan], [9.0, 4.0, 6.0]])
    assert S.sector_means(values, sectors) == {1: (2.0, 2), 2: (5.0, 2)}


@pytest.mark.parametrize("a, b, deg", [([1, 0], [0, 1], 90.0), ([1, 1], [1, 1], 0.0), ([1, 0], [-1, 0], 180.0)])
def test_direction_error(a, b, deg):
    assert S.direction_error_deg(np.array(a, float), np.array(b, float)) == pytest.approx(deg, abs=1e-6)


def _label_map_errors(exam, beyond_mm: float | None = None) -> list[float]:
    from cmr_atlas.perfusion.quantify import stack_insertions

    lm = exam.truth["landmarks"]
    lm = lm[(lm.observer == "truth") & (lm.frame == 0)]
    errors = []
    for cond in ("stress", "rest"):
        plane = next(s for s in exam.series if s.kind == "perfusion" and s.stress_rest == cond).planes[0]
        keys = sorted(k for k in exam.labels if k[0] == cond)
        for (_, si), ins in zip(keys, stack_insertions([exam.labels[k] for k in keys], plane, beyond_mm=beyond_mm)):
            m = lm[(lm.condition == cond) & (lm.slice_index == si)].set_index("landmark")
            errors += _error(ins, m)
    return errors


def _error(ins, m) -> list[float]:
    if ins is None or "rv_insert_anterior" not in m.index:
        return []
    truth = m.loc["rv_insert_anterior", ["row_px", "col_px"]].to_numpy(float) - \
        m.loc["lv_centre", ["row_px", "col_px"]].to_numpy(float)
    return [S.direction_error_deg(ins.anterior_direction(), truth)]


def test_insertions_on_the_generators_label_maps_are_nearer_its_landmarks(perfusion_exam, monkeypatch):
    """The same anatomical point as the generator's truth (RV wall meets the LV epicardium), found
    on its own label maps: the wall arc's ends nearer than the RV-cavity contact arc's (the wall
    left out), and nearer still moved on by INSERTION_BEYOND_MM (the default)."""
    errors = _label_map_errors(perfusion_exam)
    wall = _label_map_errors(perfusion_exam, beyond_mm=0.0)
    monkeypatch.setattr(S, "RV_WALL_MM", 0.5)
    contact = _label_map_errors(perfusion_exam, beyond_mm=0.0)
    assert len(errors) >= 2 and np.mean(errors) < 10.0
    assert np.mean(errors) < np.mean(wall) - 2.0 and np.mean(wall) < np.mean(contact) - 3.0


@settings(max_examples=50, deadline=None)
@given(first=st.integers(0, 359), length=st.integers(0, 300), beyond=st.floats(0.0, 200.0),
       radius=st.floats(5.0, 40.0))
def test_beyond_ends_moves_each_end_outwards_by_its_arc_length(first, length, beyond, radius):
    n = 360
    run = (first, (first + length) % n)
    got = S.beyond_ends(run, np.full(n, radius), beyond)
    want = int(round(np.degrees(beyond / radius)))
    room = (n - length - 1) // 2
    assert got == ((first - min(want, room)) % n, (first + length + min(want, room)) % n)
    assert (got[1] - got[0]) % n >= length  # never round into the other end


def wedge_phantom(half_deg: float = 60.0, depth_px: float = 12.0, wall_px: float = 4.0, liver: bool = False):
    """LV ring (epicardium radius 20 px, centre (48, 48), 1 mm pixels) and an RV built as the
    generator builds it: a half-ellipse from the chord between the insertions at +-``half_deg``
    (about angle 0, arctan2(col, row)) bulging ``depth_px`` beyond the LV, its cavity the ellipse
    less ``wall_px``, cut by the LV.  Near an insertion the free wall runs almost tangent to the LV,
    a wedge thinning to the epicardium well beyond the cavity's tip.  Returns the class masks, the
    peak enhancement (blood 4, muscle 1, fat 0.1; ``liver``: an enhancing organ against the LV just
    past the insertion at -half_deg) and the insertion points."""
    rr, cc = np.mgrid[:96, :96].astype(float)
    x, y = rr - 48, cc - 48
    rho = np.hypot(x, y)
    epi = rho < 20
    cavity, myo = rho < 12, epi & (rho >= 12)
    c, b = 20 * np.cos(np.radians(half_deg)), 20 * np.sin(np.radians(half_deg))
    a = 20 - c + depth_px + wall_px

    def ellipse(a_: float, b_: float) -> np.ndarray:
        return (x > c) & (((x - c) / a_) ** 2 + (y / b_) ** 2 < 1) & ~epi

    outer, rv = ellipse(a, b), ellipse(a - wall_px, b - wall_px)
    enh = np.full(rr.shape, 0.1)
    enh[myo | outer] = 1.0
    enh[rv | cavity] = 4.0
    ang = np.degrees(np.arctan2(y, x))
    if liver:
        enh[(rho >= 20) & (rho < 40) & (ang < -half_deg - 2) & (ang > -half_deg - 40)] = 1.0
    ends = np.radians([-half_deg, half_deg])
    return myo, rv, cavity, enh, [np.array([48 + 20 * np.cos(e), 48 + 20 * np.sin(e)]) for e in ends]


@pytest.mark.parametrize("half, depth, liver", [(60.0, 12.0, False), (52.0, 8.0, False), (66.0, 16.0, False),
                                                (55.0, 4.0, False), (60.0, 12.0, True)])
def test_the_rv_wall_beyond_the_cavitys_tip_is_followed_in_the_enhancement(half, depth, liver):
    """The cavity's tip lies well inside the insertion (the wall-probe arc ends many degrees short);
    the enhancing free wall, followed along the ring to where fat begins, reaches it, and stops at
    an organ that is thick against the LV rather than a thin wall.  It ends where the ring 1 mm out
    is less than half muscle: the wedge's last mm or so, a few degrees short (2-5 here)."""
    myo, rv, cavity, enh, (p1, p2) = wedge_phantom(half, depth, liver=liver)
    labels_only = S.find_insertions(myo, rv, cavity, -1.0, pixel_mm=1.0, beyond_mm=0.0)
    ins = S.find_insertions(myo, rv, cavity, -1.0, pixel_mm=1.0, enhancement=enh)
    err = [S.direction_error_deg(ins.anterior - ins.centre, p2 - 48.0),
           S.direction_error_deg(ins.inferior - ins.centre, p1 - 48.0)]
    short = [S.direction_error_deg(labels_only.anterior - labels_only.centre, p2 - 48.0),
             S.direction_error_deg(labels_only.inferior - labels_only.centre, p1 - 48.0)]
    assert min(short) > 6.0
    assert max(err) < 6.0 and max(err) < min(short) - 1.0


def test_muscle_fraction_scales_from_the_ring_away_from_the_rv_to_the_myocardium():
    ring = np.array([0.3, 0.3, 0.3, 0.65, 1.0, 0.3])
    away = np.array([True, True, True, False, False, True])
    np.testing.assert_allclose(S.muscle_fraction(ring, away), [0, 0, 0, 0.5, 1.0, 0], atol=1e-12)


def test_extend_along_muscle_stops_at_the_first_non_muscle_ray_and_the_cap():
    muscle = np.array([False, True, True, True, True, False, True, True, True, False])
    assert S.extend_along_muscle((3, 4), muscle, 10) == (1, 4)
    assert S.extend_along_muscle((3, 4), muscle, 1) == (2, 4)
    assert S.extend_along_muscle((6, 7), muscle, 10) == (6, 8)


def test_a_slice_with_an_implausible_segmentation_borrows_its_neighbours_insertions():
    """A failed segmentation's RV contact is not trusted: that slice (myocardium not around the
    cavity) takes the insertion directions of the nearest plausible slice, and lends none."""
    from cmr_atlas.perfusion import segment
    from cmr_atlas.perfusion.quantify import borrow_insertions, trusted_insertions

    myo, rv, cavity, _ = phantom(30.0, 60.0)
    good = np.where(cavity, segment.CAVITY, np.where(myo, segment.MYOCARDIUM, np.where(rv, segment.RV, 0)))
    bad = good.copy()
    bad[:, :58][bad[:, :58] == segment.MYOCARDIUM] = 0  # most of the ring gone: it no longer encloses the cavity
    bad_turned = np.rot90(bad)  # its RV elsewhere too
    labels = [good, bad_turned, good]
    own = [S.find_insertions(lab == segment.MYOCARDIUM, lab == segment.RV, lab == segment.CAVITY, 1.0)
           for lab in labels]
    assert all(i is not None for i in own)
    trusted = trusted_insertions(own, labels, 1.0)
    assert trusted[0] is own[0] and trusted[2] is own[2] and trusted[1] is None
    got = borrow_insertions(trusted, labels)[1]
    assert S.direction_error_deg(got.anterior - got.centre, own[0].anterior - own[0].centre) < 1e-6
    assert S.direction_error_deg(own[1].anterior - own[1].centre, own[0].anterior - own[0].centre) > 45.0
