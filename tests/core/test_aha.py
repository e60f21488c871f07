import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.aha import (LEVELS, SEGMENT_NAMES, aha16_segment, aha_segment, insertion_angle_deg,
                                sector_index)

angles = st.floats(-720.0, 720.0, allow_nan=False)


def test_aha17_segments_by_depth_and_angle_from_septum():
    seg = aha_segment(np.array([0.1, 0.1, 0.5, 0.5, 0.8, 0.8, 0.95]),
                      np.array([30.0, 90.0, 30.0, 270.0, 0.0, 90.0, 10.0]))
    assert list(seg) == [2, 1, 8, 10, 14, 13, 17]


def test_aha17_boundaries_are_half_open():
    depth = np.full(6, 0.1)
    assert list(aha_segment(depth, np.array([0.0, 60.0, 120.0, 180.0, 240.0, 300.0]))) == [2, 1, 6, 5, 4, 3]
    apical = np.full(4, 0.8)
    assert list(aha_segment(apical, np.array([-45.0, 45.0, 135.0, 225.0]))) == [14, 13, 16, 15]
    # a tiny negative angle that np.mod rounds to 360 stays in the last basal sector
    assert aha_segment(np.array([0.1]), np.array([-1e-30]))[0] == 3


def test_aha16_sectors_from_the_anterior_insertion():
    theta = np.array([30.0, 90.0, 150.0, 210.0, 270.0, 330.0])
    assert list(aha16_segment(theta, "basal")) == [2, 3, 4, 5, 6, 1]
    assert list(aha16_segment(theta, "mid")) == [8, 9, 10, 11, 12, 7]
    assert list(aha16_segment(np.array([60.0, 150.0, 240.0, 330.0, 0.0, 14.9, 15.0]), "apical")) == [
        14, 15, 16, 13, 13, 13, 14]
    with pytest.raises(ValueError, match="level"):
        aha16_segment(theta, "apex")


def test_segment_names():
    assert set(SEGMENT_NAMES) == set(range(1, 18))
    assert SEGMENT_NAMES[2] == "basal anteroseptal" and SEGMENT_NAMES[14] == "apical septal"
    assert SEGMENT_NAMES[17] == "apex"


@settings(max_examples=200, deadline=None)
@given(angles)
def test_both_conventions_name_the_same_wall(phi):
    """theta = 60 - phi: away from sector boundaries both maps give the same segment."""
    theta = 60.0 - phi
    for depth, level in ((0.1, "basal"), (0.5, "mid"), (0.8, "apical")):
        starts = np.arange(0, 360, 60) if level != "apical" else np.arange(-45, 315, 90)
        if np.min(np.abs((phi - starts + 180.0) % 360.0 - 180.0)) < 1e-6:
            continue  # on a boundary the two half-open conventions differ
        assert aha_segment(np.array([depth]), np.array([phi]))[0] == aha16_segment(np.array([theta]), level)[0]


@settings(max_examples=200, deadline=None)
@given(angles, st.integers(1, 12), st.floats(-180.0, 180.0))
def test_sector_index_is_periodic_and_in_range(a, n, start):
    i = sector_index(np.array([a, a + 360.0, a - 360.0]), n, start)
    assert ((0 <= i) & (i < n)).all()
    width = 360.0 / n
    off = (a - start) % width
    if 1e-6 < off < width - 1e-6:  # away from a boundary, a full turn lands in the same sector
        assert i[0] == i[1] == i[2]
        assert i[0] == int(((a - start) % 360.0) // width)


@settings(max_examples=100, deadline=None)
@given(st.floats(0.0, 359.0), st.floats(60.0, 170.0), st.booleans(), st.floats(0.0, 359.9),
       st.floats(5.0, 40.0), st.tuples(st.floats(-50, 50), st.floats(-50, 50)))
def test_insertion_angle_is_independent_of_orientation_and_mirroring(rot, septum_deg, mirror, theta, r, c):
    """Points built at a known theta come back with it, whichever way the image is turned."""
    c = np.array(c)

    def at(t_deg):  # in-plane position at angle t from the anterior insertion, sense set by mirror
        a = np.radians(rot + (-t_deg if mirror else t_deg))
        return c + r * np.array([np.cos(a), np.sin(a)])

    got = insertion_angle_deg(at(theta), c, at(0.0), at(septum_deg))
    assert abs((got - theta + 180.0) % 360.0 - 180.0) < 1e-6
    assert 0.0 <= got < 360.0
    assert aha16_segment(np.array([insertion_angle_deg(at(septum_deg / 2), c, at(0.0), at(septum_deg))]), "basal")[0] in (2, 3)


def test_levels():
    assert LEVELS == ("basal", "mid", "apical")
