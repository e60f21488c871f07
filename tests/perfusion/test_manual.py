"""Manual contours aligned to the motion-corrected series (cmr_atlas.perfusion.manual)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.perfusion import manual, segment


def _ring(centre, shape=(64, 64), scale=1.0):
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    rho = np.hypot(rr - centre[0], cc - centre[1])
    lab = np.zeros(shape, np.int8)
    lab[rho < 16 * scale] = segment.MYOCARDIUM
    lab[rho < 10 * scale] = segment.CAVITY
    return lab


@settings(max_examples=20, deadline=None)
@given(dr=st.integers(-3, 3), dc=st.integers(-3, 3))
def test_align_offset_moves_the_contours_onto_the_enhancing_blood_pool(dr, dc):
    """Peak enhancement: LV and RV blood high, muscle low, lung none; contours placed (dr, dc) off
    come back by (-dr, -dc)."""
    truth = _ring((32, 32))
    rng = np.random.default_rng(3)
    enh = np.where(truth == segment.CAVITY, 4.0, np.where(truth == segment.MYOCARDIUM, 0.8, 0.0))
    enh[32 - 20:32 + 20, 8:14] = 3.5  # an RV blood pool beside the septum
    enh += rng.normal(0, 0.2, enh.shape)
    off = manual.align_offset_px(_ring((32 + dr, 32 + dc)), enh, 4)
    assert np.allclose(off, [-dr, -dc], atol=0.25)


@settings(max_examples=10, deadline=None)
@given(dr=st.floats(-1.5, 1.5), dc=st.floats(-1.5, 1.5))
def test_align_offset_finds_a_sub_pixel_displacement(dr, dc):
    """The image's heart sits a fraction of a pixel off the contours (partial-volume pixels,
    rendered on a 4x finer grid): the move found is within a quarter pixel of it, where the
    whole-pixel search was up to half a pixel off."""
    fine = _ring((4 * (32 + dr) + 1.5, 4 * (32 + dc) + 1.5), (256, 256), 4.0)
    enh_fine = np.where(fine == segment.CAVITY, 4.0, np.where(fine == segment.MYOCARDIUM, 0.8, 0.0))
    enh = enh_fine.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    off = manual.align_offset_px(_ring((32, 32)), enh, 3)
    assert np.allclose(off, [dr, dc], atol=0.3)


def test_align_offset_without_cavity_or_myocardium_is_zero():
    assert not manual.align_offset_px(np.zeros((8, 8), np.int8), np.ones((8, 8)), 2).any()


def test_peak_enhancement_is_the_rise_over_the_first_frames():
    dyn = np.stack([np.full((2, 2), v) for v in (1.0, 1.0, 1.0, 4.0, 2.0)])
    assert np.allclose(manual.peak_enhancement(dyn), 3.0)


def test_annotations_on_the_corrected_pose_are_recognised():
    import pandas as pd

    from cmr_atlas.core.vocab import CORRECTED_POSE_FRAME

    assert manual.on_corrected_pose(pd.DataFrame({"frame": [CORRECTED_POSE_FRAME] * 3}))
    assert not manual.on_corrected_pose(pd.DataFrame({"frame": [CORRECTED_POSE_FRAME, 0]}))
    assert not manual.on_corrected_pose(pd.DataFrame({"frame": [0, 0]}))
    assert not manual.on_corrected_pose(pd.DataFrame({"frame": []}))
