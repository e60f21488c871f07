"""ED + ES inference (config ``inference.frames: ed_es``): the networks run on the images an
ED + ES analysis needs, and those images get the masks, phases and landmarks of a run on every
image."""

import dataclasses

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import cmr_atlas.cine.inference as I
from cmr_atlas.cine.inference import (CURVE_SLICE_SHARE, MIN_CURVE_SLICES, curve_slices, infer_exam,
                                      segment_exam_ed_es)
from cmr_atlas.core.imagecache import load_masks, load_segmented, save_masks
from cmr_atlas.cine.segmentation import lax_frame

from .test_inference import INFER, RingOracle, _models


class CountingRings(RingOracle):
    """:class:`RingOracle` counting the images it is run on."""

    def __init__(self):
        super().__init__()
        self.n_images = 0

    def forward(self, x):
        self.n_images += x.shape[0]
        return super().forward(x)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(0, 400), min_size=1, max_size=20))
def test_curve_slices_are_the_largest_cavities(area):
    area = np.array(area)
    got = curve_slices(area)
    k = min(len(area), max(MIN_CURVE_SLICES, int(np.ceil(CURVE_SLICE_SHARE * len(area)))))
    assert len(got) == k and (np.diff(got) > 0).all()
    rest = np.setdiff1d(np.arange(len(area)), got)
    assert not len(rest) or area[got].min() >= area[rest].max()


def _with_lax(images, n_lax_frames):
    """The ring exam with a long-axis cine (slice 0's images at ``n_lax_frames`` frames) standing in
    for a 2CH view."""
    idx = np.round(np.linspace(0, images.n_frames - 1, n_lax_frames)).astype(int)
    return dataclasses.replace(images, lax={"lax_2ch": images.sax[0, idx]},
                               lax_planes={"lax_2ch": images.sax_planes[0]})


def test_ed_es_inference_gives_the_ed_es_results_of_every_image(ring_exam):
    images, _ = ring_exam(n_slices=6, n_frames=7, noise=False)
    images = _with_lax(images, 5)
    every_net, ed_es_net = _models(), _models()
    every_net.seg, ed_es_net.seg = CountingRings(), CountingRings()
    every = infer_exam(images, every_net, **INFER, frames="all")
    got = infer_exam(images, ed_es_net, **INFER, frames="ed_es")
    ed, es = got.phases["ed_frame"], got.phases["es_frame"]
    assert (ed, es) == (every.phases["ed_frame"], every.phases["es_frame"]) == (0, 6)
    assert got.phases["edv_ml"] == every.phases["edv_ml"] and got.phases["esv_ml"] == every.phases["esv_ml"]
    np.testing.assert_array_equal(got.masks[:, [ed, es]], every.masks[:, [ed, es]])
    # frame 0 of the 6 slices; frames 2, 4, 6 of the 3 curve slices, then the neighbours of that
    # curve's largest (0) and two smallest (6, 4): 1, 3, 5; the 3 others at the frames next to
    # ED (6, 0, 1) and ES (5, 6, 0) that frame 0 leaves: 1, 5, 6
    assert ed_es_net.seg.n_images == 6 + 3 * 3 + 3 * 3 + 3 * 3 == len(got.qc) < every_net.seg.n_images == 42
    segmented = np.zeros((6, 7), bool)
    segmented[got.qc["slice_index"], got.qc["frame"]] = True
    assert segmented[:, [ed, es]].all() and not got.masks[~segmented].any()
    qc = every.qc.set_index(["slice_index", "frame"]).loc[list(zip(got.qc["slice_index"], got.qc["frame"]))]
    np.testing.assert_array_equal(got.qc["flag"], qc["flag"])
    # landmarks: SAX at ED and ES as before, LAX only at the frames matching them
    sax = lambda lm: lm[lm["view"] == "sax"].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(sax(got.landmarks), sax(every.landmarks))
    lax_frames = {lax_frame(f, 7, 5) for f in (ed, es)}
    assert set(got.landmarks.loc[got.landmarks["view"] == "lax_2ch", "frame"]) == lax_frames
    assert set(every.landmarks.loc[every.landmarks["view"] == "lax_2ch", "frame"]) == set(range(5))
    lax = lambda lm: lm[(lm["view"] == "lax_2ch") & lm["frame"].isin(lax_frames)].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(lax(got.landmarks), lax(every.landmarks))


def test_ed_es_segmentation_without_crops_and_on_short_stacks(ring_exam):
    images, _ = ring_exam(n_slices=2, n_frames=4, noise=False)
    masks, qc, (ed, es) = segment_exam_ed_es(images, _models(), batch=3, ed_method="first", crop_margin_mm=0)
    assert (ed, es) == (0, 3) and len(qc) == 8  # fewer slices than the curve's minimum: every image
    single, _ = ring_exam(n_slices=3, n_frames=1, noise=False)
    masks, qc, phases = segment_exam_ed_es(single, _models(), batch=3, ed_method="max_volume")
    assert phases == (0, 0) and len(qc) == 3


def test_infer_exam_names_a_bad_frames_setting(ring_exam):
    images, _ = ring_exam(n_slices=2, n_frames=2, noise=False)
    with pytest.raises(ValueError, match="inference.frames"):
        infer_exam(images, _models(), **INFER, frames="es")


def test_masks_file_says_which_images_were_segmented(tmp_path):
    masks = np.zeros((2, 3, 4, 4), np.uint8)
    seg = np.array([[True, False, True], [True, True, True]])
    p = save_masks("E1", masks, tmp_path / "m.npz", segmented=seg)
    np.testing.assert_array_equal(load_segmented(p), seg)
    assert load_masks(p).shape == masks.shape
    assert load_segmented(save_masks("E2", masks, tmp_path / "all.npz")).all()
    with pytest.raises(ValueError, match="segmented"):
        save_masks("E3", masks, tmp_path / "bad.npz", segmented=seg[:, :2])


def _rings(images, radii_mm):
    """``images`` with each SAX image redrawn as a bright disc of radius ``radii_mm[s][t]`` in an
    8 mm dark ring (the ring exam's intensities)."""
    sax = np.empty_like(images.sax)
    for s, plane in enumerate(images.sax_planes):
        r, c = np.meshgrid(*(np.arange(n) for n in plane.shape), indexing="ij")
        d = np.hypot((r - plane.shape[0] / 2) * plane.pixel_spacing_mm[0], (c - plane.shape[1] / 2) * plane.pixel_spacing_mm[1])
        for t, rad in enumerate(radii_mm[s]):
            sax[s, t] = np.where(d < rad, 200.0, np.where(d < rad + 8, 30.0, 100.0))
    return dataclasses.replace(images, sax=sax)


def test_ed_es_takes_the_whole_stacks_es_next_to_the_curve_slices(ring_exam):
    """The three largest slices shrink most at frame 3, the three small ones at frame 4, where the
    whole stack's volume is smallest: the ED + ES path finds frame 4, as a run on every image."""
    images, _ = ring_exam(n_slices=6, n_frames=6, noise=False)
    large, small = [18, 16, 14, 12, 13, 15], [12, 11, 10, 10, 5, 9]
    images = _rings(images, [large] * 3 + [small] * 3)
    every = infer_exam(images, _models(), **INFER, frames="all")
    curve_only = I.exam_volumes_ml(images, every.masks, include=np.arange(6) < 3)
    assert int(np.argmin(curve_only)) == 3 and every.phases["es_frame"] == 4
    masks, _, (ed, es) = segment_exam_ed_es(images, _models(), batch=8, ed_method="max_volume")
    assert (ed, es) == (0, 4)
    np.testing.assert_array_equal(masks[:, 4], every.masks[:, 4])


def test_ed_es_curve_finds_an_odd_es_frame_from_every_other_frame(ring_exam):
    """The curve slices run at every other frame first: their smallest cavity at frame 7 lies
    between the coarse curve's frames, and the neighbours of its two smallest (8, 6) find it;
    frames 3 and 11, far from ED (0) and ES, are never run on them."""
    images, _ = ring_exam(n_slices=6, n_frames=13, noise=False)
    large = [18, 17, 17, 16, 15, 14, 12, 10, 11, 13, 15, 16, 17]
    small = [12, 12, 12, 11, 10, 9, 8, 6, 7, 8, 10, 11, 12]
    images = _rings(images, [large] * 3 + [small] * 3)
    every = infer_exam(images, _models(), **INFER, frames="all")
    assert (every.phases["ed_frame"], every.phases["es_frame"]) == (0, 7)
    masks, qc, (ed, es) = segment_exam_ed_es(images, _models(), batch=8, ed_method="max_volume")
    assert (ed, es) == (0, 7)
    np.testing.assert_array_equal(masks[:, [0, 7]], every.masks[:, [0, 7]])
    run = set(zip(qc["slice_index"], qc["frame"]))
    assert {(s, f) for s in range(3) for f in (3, 11)}.isdisjoint(run) and {(s, 7) for s in range(6)} <= run
