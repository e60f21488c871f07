"""Heatmap targets and decoding (:mod:`cmr_atlas.nets.heatmaps`): sub-pixel points, absent
landmarks, per-channel thresholds, test-time rotations mapped back."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.nets.heatmaps import decode_batch, decode_heatmap, gaussian_targets, rotate_maps, rotation_averaged_probs


def test_targets_peak_one_background_complement_absent_zero():
    pts = torch.tensor([[[10.0, 20.0], [float("nan"), float("nan")]]])
    t = gaussian_targets(pts, 32, 2.0)
    assert t.shape == (1, 3, 32, 32)
    assert float(t[0, 1, 10, 20]) == pytest.approx(1.0)
    assert float(t[0, 2].abs().max()) == 0.0
    assert torch.allclose(t[0, 0] + t[0, 1], torch.ones(32, 32))


def test_amplitude_scales_each_landmark_and_the_background_takes_the_rest():
    pts = torch.tensor([[[10.0, 20.0], [20.0, 8.0]]])
    full = gaussian_targets(pts, 32, 2.0)
    t = gaussian_targets(pts, 32, 2.0, amplitude=torch.tensor([[1.0 / 3.0, 1.0]]))
    assert torch.allclose(t[0, 1], full[0, 1] / 3.0) and torch.equal(t[0, 2], full[0, 2])
    assert float(t[0, 1, 10, 20]) == pytest.approx(1.0 / 3.0)
    assert torch.allclose(t[0].sum(0), torch.ones(32, 32))


@settings(max_examples=40, deadline=None)
@given(st.floats(6, 25), st.floats(6, 25), st.floats(1.5, 4.0))
def test_decode_is_sub_pixel(r, c, sigma):
    t = gaussian_targets(torch.tensor([[[r, c]]]), 32, sigma)[0, 1].numpy()
    d = decode_heatmap(0.9 * t, absent_threshold=0.1)
    assert d.present and 0.75 < d.confidence <= 0.9  # peak sampled off-centre
    assert abs(d.row - r) < 0.1 and abs(d.col - c) < 0.1


def test_absent_below_threshold_and_second_blob_ignored():
    t = gaussian_targets(torch.tensor([[[8.0, 8.0], [24.0, 24.0]]]), 32, 2.0)[0].numpy()
    assert not decode_heatmap(0.05 * t[1], absent_threshold=0.1).present
    two = 0.8 * t[1] + 0.5 * t[2]
    d = decode_heatmap(two, absent_threshold=0.1)
    assert abs(d.row - 8) < 0.2 and abs(d.col - 8) < 0.2


def test_decode_batch_takes_a_threshold_per_channel():
    p = np.zeros((1, 3, 16, 16))
    p[0, 1, 4, 4], p[0, 2, 10, 10] = 0.05, 0.05
    p[0, 0] = 1 - p[0, 1:].sum(0)
    dets = decode_batch(p, [0.01, 0.1])[0]
    assert dets[0].present and not dets[1].present
    assert [d.present for d in decode_batch(p, 0.01)[0]] == [True, True]


def test_rotations_map_back_onto_the_unrotated_grid():
    """A 'network' that marks the brightest spot: averaged over rotations its heatmap peak stays on
    the spot (the rotated outputs are rotated back), and without rotations it is the plain softmax."""
    x = np.zeros((2, 64, 64), np.float32)
    x[0, 20:23, 40:43] = 1.0
    x[1, 45:48, 15:18] = 1.0

    def run(images: np.ndarray) -> torch.Tensor:
        t = torch.from_numpy(np.ascontiguousarray(images))[:, None]
        return torch.cat([torch.zeros_like(t), 20.0 * t], 1)

    for rot, zooms in (((15.0,), ()), ((-20.0, 20.0), ()), ((-30.0, -15.0, 0.0, 15.0, 30.0), ()),
                       ((15.0,), (0.87, 1.15)), ((0.0,), (0.85,))):  # without 0: each must map back
        p = rotation_averaged_probs(run, x, rot, zooms)
        assert p.shape == (2, 2, 64, 64)
        for i, (r, c) in enumerate(((21, 41), (46, 16))):
            pr, pc = np.unravel_index(int(p[i, 1].argmax()), (64, 64))
            assert abs(pr - r) <= 1 and abs(pc - c) <= 1, (rot, zooms, i, pr, pc)
    assert torch.equal(rotation_averaged_probs(run, x, (0.0,)), torch.softmax(run(x), 1))
    # a rotation by +a then -a is near the identity away from the border
    t = torch.from_numpy(x)[:, None]
    back = rotate_maps(rotate_maps(t, 20.0), -20.0)
    assert float((back - t)[..., 10:54, 10:54].abs().max()) < 0.6 and float(back.sum()) > 0.5 * float(t.sum())


@given(deg=st.floats(-30, 30), zoom=st.floats(0.85, 1.15), r=st.floats(20, 44), c=st.floats(20, 44))
@settings(max_examples=25, deadline=None)
def test_a_look_maps_a_point_back_where_it_was(deg, zoom, r, c):
    """A blob turned by ``deg`` and magnified by ``zoom`` lies ``zoom`` times as far from the grid's
    centre, and the inverse look maps it back where it started (to a tenth of a pixel)."""
    yy, xx = np.mgrid[:64, :64]
    t = torch.tensor(np.exp(-((yy - r) ** 2 + (xx - c) ** 2) / 18.0), dtype=torch.float32)[None, None]

    def centroid(u: torch.Tensor) -> np.ndarray:
        w = u[0, 0].numpy()
        return np.array([(w * yy).sum(), (w * xx).sum()]) / w.sum()

    centre = np.array([31.5, 31.5])
    moved = rotate_maps(t, deg, zoom)
    assert abs(np.linalg.norm(centroid(moved) - centre) - zoom * np.linalg.norm(centroid(t) - centre)) < 0.15
    back = rotate_maps(moved, -deg, 1.0 / zoom)
    assert np.abs(centroid(back) - centroid(t)).max() < 0.1
