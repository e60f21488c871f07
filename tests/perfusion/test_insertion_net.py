"""RV insertions from the landmark network (cmr_atlas.perfusion.insertion_net): the generator's
points at the median breathing position, decoding onto the slice's pixels, the rule where the
network finds none, and the training samples."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.nets.heatmaps import gaussian_targets
from cmr_atlas.nets.preprocess import Grid, to_net_px
from cmr_atlas.perfusion import insertion_net as I
from cmr_atlas.perfusion import segment
from cmr_atlas.perfusion.sectors import Insertions

GRID = Grid(1.5, 64)
CARD = {"input": {"spacing_mm": GRID.spacing_mm, "size": GRID.size}}


def _plane(shape=(40, 48), px=2.25) -> SlicePlane:
    return SlicePlane(position_mm=np.zeros(3), row_cosine=np.array([1.0, 0, 0]), col_cosine=np.array([0, 1.0, 0]),
                      pixel_spacing_mm=(px, px), shape=shape)


def _peaks_net(points_net: np.ndarray, peak: float):
    """A 'network' whose softmax puts landmark k's peak (about ``peak``) at ``points_net[k]``."""
    def run(x: np.ndarray) -> torch.Tensor:
        t = gaussian_targets(torch.tensor(points_net, dtype=torch.float32)[None], x.shape[-1], 2.0)
        t = t.repeat(len(x), 1, 1, 1)
        fg = peak * t[:, 1:]
        return torch.log(torch.cat([1.0 - fg.sum(1, keepdim=True).clamp(max=1.0) + 1e-6, fg + 1e-6], 1))
    return run


def test_truth_points_are_the_median_over_dynamic_frames_of_landmarks_mostly_present():
    rows = []
    for f in range(10):
        rows.append(("lv_centre", f, 20.0 + (f % 3), 30.0))
        if f >= 2 and f < 8:  # present on 4 of the 8 dynamic frames (2..9): half, kept
            rows.append(("rv_insert_anterior", f, 10.0, 12.0 + f))
        if f == 9:  # one frame of eight: left out
            rows.append(("rv_insert_posterior", f, 5.0, 5.0))
    df = pd.DataFrame(rows, columns=["landmark", "frame", "row_px", "col_px"]).assign(
        observer="truth", condition="rest", slice_index=3)
    other = df.assign(observer="obs1", row_px=0.0)
    t = I.truth_points(pd.concat([df, other]), "rest", 3, n_pd=2)
    assert set(t) == {"lv_centre", "rv_insert_anterior"}
    assert t["lv_centre"][0] == pytest.approx(np.median([20 + f % 3 for f in range(2, 10)]))
    assert t["rv_insert_anterior"][1] == pytest.approx(np.median([12.0 + f for f in range(2, 8)]))
    assert I.truth_points(df, "stress", 3, 2) == {}


def test_detect_maps_the_peaks_onto_the_slice_and_takes_the_segmentation_centre():
    plane = _plane()
    ant, inf, cen = np.array([12.0, 30.0]), np.array([28.0, 31.0]), np.array([20.0, 20.0])
    net = to_net_px(np.stack([ant, inf, cen]), plane, GRID)
    labels = np.zeros(plane.shape, np.int8)
    labels[17:24, 16:25] = segment.CAVITY  # centroid (20, 20)
    image = np.random.default_rng(0).normal(size=plane.shape)
    (ins,) = I.detect(_peaks_net(net, 0.9), CARD, [image], [plane], [labels], 0.1)
    assert np.allclose(ins.anterior, ant, atol=0.15) and np.allclose(ins.inferior, inf, atol=0.15)
    assert np.allclose(ins.centre, [20.0, 20.0])
    # no LV in the segmentation: the network's own centre
    (ins,) = I.detect(_peaks_net(net, 0.9), CARD, [image], [plane], [np.zeros_like(labels)], 0.1)
    assert np.allclose(ins.centre, cen, atol=0.15)


def test_a_weak_insertion_is_absent_and_the_rule_takes_over():
    plane = _plane()
    net = to_net_px(np.array([[12.0, 30.0], [28.0, 31.0], [20.0, 20.0]]), plane, GRID)
    labels = np.zeros(plane.shape, np.int8)
    found = I.detect(_peaks_net(net, 0.05), CARD, [np.ones(plane.shape)], [plane], [labels], 0.1)
    assert found == [None]
    # a card's calibrated threshold for perfusion beats the fallback
    card = {**CARD, "decode": {"absent_threshold": {"perfusion": {"sax": dict.fromkeys(I.NAMES, 0.01)}}}}
    assert I.detect(_peaks_net(net, 0.05), card, [np.ones(plane.shape)], [plane], [labels], 0.1)[0] is not None
    rule = Insertions(np.zeros(2), np.ones(2), -np.ones(2))
    assert I.combine([None, rule], [rule, None]) == [rule, rule]
    assert I.detect(_peaks_net(net, 0.9), CARD, [], [], [], 0.1) == []


def _at(centre, deg: float, r: float) -> np.ndarray:
    a = np.radians(deg)
    return np.asarray(centre, float) + r * np.array([np.cos(a), np.sin(a)])


def _angle(centre, p) -> float:
    d = np.asarray(p, float) - centre
    return float(np.degrees(np.arctan2(d[1], d[0])))


@given(st.floats(-170, 170), st.floats(0.5, 20), st.floats(8, 15), st.floats(10, 20))
@settings(max_examples=40, deadline=None)
def test_fused_directions_are_the_mean_of_both_conditions_from_each_own_centre_and_radius(base, half, r_s, r_r):
    plane = _plane()
    cs, cr = np.array([20.0, 24.0]), np.array([21.5, 22.0])  # breathing: the rest heart sits elsewhere
    s = Insertions(cs, _at(cs, base + half, r_s), _at(cs, base + 120 + half, r_s))
    r = Insertions(cr, _at(cr, base - half, r_r), _at(cr, base + 120 - half, r_r))
    (fs,), (fr,) = I.fuse_conditions([s], [plane], [r], [plane])
    for f, c, radius in ((fs, cs, r_s), (fr, cr, r_r)):
        assert np.allclose(f.centre, c)
        assert _angle(c, f.anterior) == pytest.approx(base, abs=1e-6)
        assert _angle(c, f.inferior) == pytest.approx(base + 120 if base + 120 <= 180 else base - 240, abs=1e-6)
        assert np.linalg.norm(f.anterior - c) == pytest.approx(radius)


def test_fusion_reads_directions_in_patient_space_and_leaves_unpaired_slices():
    """The rest series stored transposed (its rows along the stress series' columns): the same
    physical directions, other pixel axes."""
    s_plane = _plane()
    r_plane = SlicePlane(position_mm=np.zeros(3), row_cosine=np.array([0, 1.0, 0]), col_cosine=np.array([1.0, 0, 0]),
                         pixel_spacing_mm=(2.25, 2.25), shape=(48, 40))
    c = np.array([20.0, 24.0])
    s = Insertions(c, _at(c, 10, 12), _at(c, 130, 12))
    r = Insertions(c[::-1], _at(c, 30, 12)[::-1], _at(c, 150, 12)[::-1])  # the same points transposed, 20 deg on
    (fs, none_s), (fr, none_r) = I.fuse_conditions([s, s], [s_plane] * 2, [r, None], [r_plane] * 2)
    assert _angle(c, fs.anterior) == pytest.approx(20, abs=1e-6)
    assert np.allclose(fr.anterior[::-1], fs.anterior)
    assert none_s is s and none_r is None  # the network found none at rest: stress keeps its own
    assert I.fuse_conditions([s], [s_plane], [r, r], [r_plane] * 2) == ([s], [r, r])  # not the same stack


def test_slice_image_is_the_dynamic_maximum():
    frames = np.zeros((5, 2, 2))
    frames[0] = 100.0  # a proton-density frame: left out
    frames[3, 1, 1] = 7.0
    assert I.slice_image(frames, 1).tolist() == [[0.0, 0.0], [0.0, 7.0]]


def test_exam_samples_hold_every_slice_with_the_truth_on_the_network_grid(perfusion_exam):
    s = I.exam_samples(perfusion_exam, GRID)
    n_slices = len({k for k in perfusion_exam.labels})
    assert len(s) == n_slices and s.images.shape == (n_slices, GRID.size, GRID.size)
    assert s.images.dtype == np.float16 and s.exam_ids == [perfusion_exam.exam_id]
    centre = s.points[:, I.NAMES.index("lv_centre")]
    assert np.isfinite(centre).all() and ((centre > 0) & (centre < GRID.size - 1)).all()
    # the insertions straddle the LV centre (anterior and inferior on either side of the septum)
    both = np.isfinite(s.points[:, :2]).all(axis=(1, 2))
    assert both.sum() >= n_slices - 2
    d = np.linalg.norm(s.points[both, :2] - centre[both, None], axis=-1) * GRID.spacing_mm
    assert ((d > 10) & (d < 60)).all()


def test_build_data_writes_a_train_data_folder_the_landmark_training_reads(tmp_path, clinical_seed):
    from cmr_atlas.cine.train_models import SEQUENCE_NETWORKS
    from cmr_atlas.cine.training import load_data

    info = I.build_data(tmp_path, clinical_seed, 0, 1, GRID)
    assert info["sequences"] == ["perfusion"] and info["images"]["lm_sax"] >= 4
    samples, read = load_data([tmp_path], "lm_sax")
    assert len(samples) == info["images"]["lm_sax"] and read["cohort_seed"] == clinical_seed
    assert samples.points.shape[1:] == (len(I.NAMES), 2)
    # published under the pipeline's name, from the cine SAX task
    assert SEQUENCE_NETWORKS[I.NETWORK] == ("lm_heatmap_sax", "perfusion")


def test_a_network_that_wants_neighbouring_slices_is_refused(tmp_path):
    """A perfusion series has a few slices far apart: a SAX network trained to see the stack's
    neighbouring slices is refused with the reason, not fed one channel."""
    from cmr_atlas.nets.registry import ModelFileError, save_model
    from cmr_atlas.nets.unet import UNet

    save_model(UNet(3, 4, 4, 2), {"name": I.NETWORK, "input": {**CARD["input"], "neighbour_slices": 1}}, tmp_path)
    with pytest.raises(ModelFileError, match="neighbouring slice"):
        I.load(tmp_path)
