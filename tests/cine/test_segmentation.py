import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.segmentation import choose_phases, clean_mask, label_mask, lax_frame, mask_contours, mask_qc
from cmr_atlas.core.geometry import rasterise_polygon
from cmr_atlas.core.vocab import CAVITY, MYO


def _circle(c, r, n=64):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([c[0] + r * np.sin(a), c[1] + r * np.cos(a)], 1)


@settings(max_examples=25, deadline=None)
@given(st.floats(5, 20), st.floats(25, 35), st.floats(25, 35))
def test_rasterise_and_trace_back_a_disk(r, cr, cc):
    m = rasterise_polygon(_circle((cr, cc), r), (64, 64))
    assert abs(m.sum() - np.pi * r**2) <= np.pi * r  # within a half-pixel band of the perimeter
    rc = mask_contours(m, n_points=48)
    assert rc.shape == (48, 2)
    radii = np.hypot(rc[:, 0] - cr, rc[:, 1] - cc)
    assert np.all(np.abs(radii - r) < 1.0)
    # equally spaced, counter-clockwise in (col, row)
    step = np.linalg.norm(np.diff(np.vstack([rc, rc[:1]]), axis=0), axis=1)
    assert step.std() < 0.1 * step.mean()
    x, y = rc[:, 1], rc[:, 0]
    assert np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)) > 0


def test_label_mask_and_qc():
    m = label_mask((64, 64), _circle((32, 32), 10), _circle((32, 32), 16))
    q = mask_qc(m)
    assert q.flag == "" and q.n_components_cavity == 1 and q.n_components_myo == 1
    assert mask_qc(np.zeros((8, 8), np.uint8)).flag == "empty"
    frag = m.copy()
    frag[2:10, 2:10] = CAVITY
    assert "fragmented_cavity" in mask_qc(frag).flag
    assert clean_mask(frag)[5, 5] == 0 and clean_mask(frag)[32, 32] == CAVITY
    naked = np.zeros((32, 32), np.uint8)
    naked[10:20, 10:20] = CAVITY
    naked[0:2, 0:8] = MYO
    assert "cavity_outside_myocardium" in mask_qc(naked).flag


def test_choose_phases():
    v = np.array([100, 120, 80, 60, 90, 110.0])
    assert choose_phases(v, "max_volume") == (1, 3)
    assert choose_phases(v, "first") == (0, 3)
    with pytest.raises(ValueError, match="ed_frame"):
        choose_phases(v, "last")


@settings(max_examples=50, deadline=None)
@given(st.integers(1, 60), st.integers(1, 60), st.data())
def test_lax_frame_is_the_same_cycle_fraction(n_sax, n_lax, data):
    f = data.draw(st.integers(0, n_sax - 1))
    g = lax_frame(f, n_sax, n_lax)
    assert 0 <= g < n_lax
    if n_sax == n_lax:
        assert g == f
    else:  # within half a LAX frame of the same fraction of the cycle (frame n_lax wraps to 0)
        assert min(abs(g - f * n_lax / n_sax), abs(g + n_lax - f * n_lax / n_sax)) <= 0.5 + 1e-9


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 2**31 - 1), st.integers(3, 40), st.integers(3, 40), st.floats(0.3, 0.7))
def test_direct_contour_generator_traces_what_contourpy_traces(seed, rows, cols, level):
    # mask_contours builds contourpy's serial generator itself: the lines must be contourpy's own
    import contourpy
    from scipy import ndimage

    from cmr_atlas.cine.segmentation import _contour_lines

    z = ndimage.gaussian_filter(np.random.default_rng(seed).random((rows, cols)), 1.2)
    want = contourpy.contour_generator(z=z).lines(level)
    got = _contour_lines(z, level)
    assert len(got) == len(want)
    for a, b in zip(got, want):
        assert np.array_equal(a, b)


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 6))
def test_clean_masks_and_qc_equal_the_two_functions(seed, n):
    """One pass over the components gives what clean_masks and masks_qc give apart (random label
    blobs: fragments, holes, cavities outside the myocardium, empty images)."""
    from scipy import ndimage

    from cmr_atlas.cine.segmentation import clean_masks, clean_masks_and_qc, masks_qc

    rng = np.random.default_rng(seed)
    smooth = ndimage.gaussian_filter(rng.normal(0, 1, (n, 4, 40, 40)), (0, 0, 2, 2))
    masks = smooth.argmax(1).astype(np.uint8)
    masks[rng.random(n) < 0.2] = 0
    cleaned, qc = clean_masks_and_qc(masks)
    np.testing.assert_array_equal(cleaned, clean_masks(masks))
    assert qc == masks_qc(masks)
