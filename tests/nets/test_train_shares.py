"""Training on pooled data folders: each folder's share of the batches, and the best-weights
checkpoint a run leaves while it trains."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.train_models import train_segmentation
from cmr_atlas.cine.training_data import segmentation_samples
from cmr_atlas.nets.samples import Samples
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.train import TrainConfig, _epoch_order, sampling_probabilities, with_view_weights


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 50), min_size=2, max_size=4), st.data())
def test_each_group_gets_its_share_whatever_its_size(sizes, data):
    shares = data.draw(st.lists(st.floats(0.1, 5.0), min_size=len(sizes), max_size=len(sizes)))
    groups = np.repeat(np.arange(len(sizes)), sizes)
    p = sampling_probabilities(groups, shares)
    got = np.bincount(groups, weights=p, minlength=len(sizes))
    np.testing.assert_allclose(got, np.asarray(shares) / sum(shares), rtol=1e-9)
    assert sampling_probabilities(groups, None) is None


def test_shares_must_name_every_group():
    with pytest.raises(ValueError, match="one non-negative share per group"):
        sampling_probabilities(np.array([0, 1, 2]), [1.0, 1.0])


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=2, max_size=3), st.floats(0.2, 5.0), st.data())
def test_view_weights_reweigh_views_within_each_group_and_keep_its_share(sizes, weight, data):
    groups = np.repeat(np.arange(len(sizes)), sizes)
    views = np.array(data.draw(st.lists(st.integers(0, 2), min_size=len(groups), max_size=len(groups))))
    shares = data.draw(st.lists(st.floats(0.1, 5.0), min_size=len(sizes), max_size=len(sizes)))
    p = sampling_probabilities(groups, shares)
    q = with_view_weights(p, groups, views, {2: weight})
    np.testing.assert_allclose(np.bincount(groups, weights=q), np.bincount(groups, weights=p), rtol=1e-9)
    for g in range(len(sizes)):  # within a group, a view-2 image weighs `weight` times another's
        in_g = groups == g
        ratio = q[in_g] / p[in_g]
        if (views[in_g] == 2).any() and (views[in_g] != 2).any():
            np.testing.assert_allclose(ratio[views[in_g] == 2] / ratio[views[in_g] != 2].mean(), weight, rtol=1e-9)
    assert with_view_weights(p, groups, views, None) is p


def test_view_weights_with_uniform_draws_and_bad_weights():
    groups, views = np.zeros(4, int), np.array([0, 0, 0, 1])
    np.testing.assert_allclose(with_view_weights(None, groups, views, {1: 3.0}), [1 / 6, 1 / 6, 1 / 6, 1 / 2])
    with pytest.raises(ValueError, match="positive"):
        with_view_weights(None, groups, views, {1: 0.0})


def test_drawn_batches_follow_the_shares():
    groups = np.array([0] * 10 + [1] * 990)  # a small folder and a large one
    p = sampling_probabilities(groups, [1, 1])
    cfg = TrainConfig(batch_size=16, steps_per_epoch=250)
    order = _epoch_order(np.random.default_rng(0), len(groups), cfg, p)
    assert len(order) == 4000 and abs((groups[order] == 0).mean() - 0.5) < 0.03
    uniform = _epoch_order(np.random.default_rng(0), len(groups), cfg, None)
    assert (groups[uniform] == 0).mean() < 0.03


def test_training_leaves_a_checkpoint_of_its_best_weights(ring_exam, tmp_path):
    parts = []
    for e in range(4):
        images, contours = ring_exam(seed=e)
        images.exam_id = f"X{e}"
        parts.append(segmentation_samples(images, contours, Grid(3.0, 32), np.random.default_rng(e), 1))
    s = Samples.concat(parts)
    ckpt = tmp_path / "seg.checkpoint.pt"
    cfg = TrainConfig(max_epochs=2, batch_size=4, steps_per_epoch=2, val_fraction=0.25, seed=5,
                      checkpoint_path=str(ckpt))
    p = sampling_probabilities((s.exam >= 2).astype(int), [3, 1])
    model, rep = train_segmentation(s, cfg, base=4, levels=3, sample_p=p)
    saved = torch.load(ckpt, weights_only=True)
    assert rep["best_epoch"] >= 1
    assert all(torch.equal(saved[k], v) for k, v in model.state_dict().items())
