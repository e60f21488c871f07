"""The automated guide points trace each mask on its labels' bounding box: the same contours as
on the whole image (``mask_contours``), wherever the heart lies, the image border included."""

import numpy as np
from hypothesis import example, given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.autoguide import lv_contours
from cmr_atlas.cine.segmentation import mask_contours
from cmr_atlas.core.vocab import CAVITY, MYO


def _labels(shape, centre, r_cav, wall, stray) -> np.ndarray:
    """A ring of myocardium around an elliptic cavity, and a stray blob of cavity label elsewhere."""
    rr, cc = np.mgrid[:shape[0], :shape[1]]
    d = np.hypot((rr - centre[0]) / 1.2, cc - centre[1])
    m = np.zeros(shape, dtype=np.uint8)
    m[d < r_cav + wall] = MYO
    m[d < r_cav] = CAVITY
    if stray is not None:  # a second, smaller region: the largest must still win
        m[np.hypot(rr - stray[0], cc - stray[1]) < 2.5] = CAVITY
    return m


@settings(max_examples=40, deadline=None)
@given(st.floats(-3, 43), st.floats(-3, 63), st.floats(2.5, 9), st.floats(1.5, 4),
       st.one_of(st.none(), st.tuples(st.integers(0, 39), st.integers(0, 59))))
@example(1.0, 18.0, 2.5, 2.0, (1, 7))  # a stray blob exactly as large as the border-cut cavity: a tie
def test_cropped_contours_equal_whole_image_contours(row, col, r_cav, wall, stray):
    m = _labels((40, 60), (row, col), r_cav, wall, stray)
    got = dict(lv_contours(m, 48))
    want = {s: mask_contours(region, 48) for s, region in
            (("endo", m == CAVITY), ("epi", (m == CAVITY) | (m == MYO)))}
    # a slice without cavity (the LV cut off by the image border) gives no contours at all
    want = {s: v for s, v in want.items() if v is not None} if (m == CAVITY).any() else {}
    assert got.keys() == want.keys()
    for s in want:
        np.testing.assert_allclose(got[s], want[s], atol=1e-9)


def test_no_cavity_no_contours():
    m = np.zeros((30, 30), dtype=np.uint8)
    assert lv_contours(m, 48) == []
    m[10:20, 10:20] = MYO  # myocardium without a cavity: no LV section
    assert lv_contours(m, 48) == []
