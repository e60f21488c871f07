"""Fine-tuning a landmark heatmap network with the samples its starting weights get wrong drawn
more often: which samples count as wrong, and the share of the draws they get."""

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch import nn

from cmr_atlas.cine.train_models import decode_points
from cmr_atlas.nets.train import TrainConfig, landmark_failures, train_heatmap, with_hard_share


@settings(max_examples=40, deadline=None)
@given(st.lists(st.booleans(), min_size=2, max_size=60), st.floats(0.01, 0.9), st.data())
def test_hard_samples_get_their_share_and_keep_their_relative_weights(hard, share, data):
    hard = np.array(hard)
    p = np.array(data.draw(st.lists(st.floats(0.1, 10.0), min_size=len(hard), max_size=len(hard))))
    q = with_hard_share(p / p.sum(), hard, share)
    assert q.sum() == pytest.approx(1.0)
    if hard.any() and not hard.all():
        assert q[hard].sum() == pytest.approx(share)
        for part in (hard, ~hard):  # within each part the folder shares' proportions stand
            np.testing.assert_allclose(q[part] / q[part].sum(), p[part] / p[part].sum(), rtol=1e-9)
    else:
        np.testing.assert_allclose(q, p / p.sum(), rtol=1e-9)


def test_share_out_of_range_is_refused():
    with pytest.raises(ValueError, match=r"share is in \[0, 1\)"):
        with_hard_share(None, np.array([True, False]), 1.0)


class _Peaks(nn.Module):
    """A stand-in network: per sample, one landmark channel peaking at a given pixel, or none."""

    def __init__(self, peaks: list[tuple[int, int] | None], n: int = 32):
        super().__init__()
        self.peaks, self.n = peaks, n

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        idx = x[:, 0, 0, 0].long()  # the sample's index, written into its first pixel
        out = torch.zeros(len(x), 2, self.n, self.n)
        out[:, 0] = 10.0  # background everywhere
        for b, i in enumerate(idx.tolist()):
            if self.peaks[i] is not None:
                out[b, 1, self.peaks[i][0], self.peaks[i][1]] = 30.0
        return out


def test_failures_are_misses_false_positives_and_far_points():
    n = 32
    peaks = [(5, 5), (5, 5), (8, 8), None, None]
    truth = np.array([[[5.0, 5.0]],      # found where it is: fine
                      [[20.0, 20.0]],    # found 21 mm away (1.4 mm pixels): far
                      [[np.nan, np.nan]],  # reported on an image without it: false positive
                      [[9.0, 9.0]],      # present but not reported: missed
                      [[np.nan, np.nan]]])  # absent and not reported: fine
    images = torch.zeros(len(peaks), 1, n, n)
    images[:, 0, 0, 0] = torch.arange(len(peaks), dtype=torch.float32)
    decode = lambda probs: decode_points(probs, 0.1)
    got = landmark_failures(_Peaks(peaks, n), images, truth, decode, spacing_mm=1.5, far_mm=10.0, chunk=2)
    assert got.tolist() == [False, True, True, True, False]


def test_hard_share_needs_a_starting_network():
    class _S:
        images = np.zeros((4, 16, 16), np.float32)
        points = np.full((4, 1, 2), np.nan, np.float32)
        exam = np.arange(4)
        exam_ids = [f"X{i}" for i in range(4)]

    with pytest.raises(ValueError, match="needs a starting network"):
        train_heatmap(_S(), TrainConfig(max_epochs=1), lambda p, n: None, lambda pr: None, 1.5, hard_share=0.2)


@pytest.mark.parametrize("name, init_from", [("seg_sax", "resources/models"), ("lm_heatmap_sax", None)])
def test_the_command_refuses_hard_share_without_a_starting_heatmap_network(name, init_from, tmp_path):
    from cmr_atlas.cine.train_models import train_model

    with pytest.raises(SystemExit, match="--hard-share is for fine-tuning a landmark heatmap network"):
        train_model(name, tmp_path, tmp_path / "out", 1, 1, 0, 1, 4, 1, init_from=init_from, hard_share=0.2)


@pytest.mark.parametrize("option, kwargs", [("--band-p", {"band_p": 0.3}), ("--motion-p", {"motion_p": 0.3})])
def test_the_command_refuses_image_artefacts_for_a_network_that_is_not_a_landmark_heatmap(option, kwargs, tmp_path):
    from cmr_atlas.cine.train_models import train_model

    with pytest.raises(SystemExit, match=f"{option} is an augmentation of the landmark heatmap networks"):
        train_model("seg_sax", tmp_path, tmp_path / "out", 1, 1, 0, 1, 4, 1, **kwargs)


def test_breathing_displacement_is_in_mm_on_any_grid():
    from cmr_atlas.cine.train_models import landmark_augmentation
    from cmr_atlas.nets.augment import LANDMARK_AUG
    from cmr_atlas.nets.preprocess import Grid

    shipped = landmark_augmentation(Grid(1.5, 128), motion_p=0.3)
    fine = landmark_augmentation(Grid(1.0, 192), motion_p=0.3)
    assert shipped.motion_p == fine.motion_p == 0.3 and landmark_augmentation(Grid(1.5, 128)).motion_p == 0.0
    assert np.allclose(np.array(fine.motion_px), 1.5 * np.array(shipped.motion_px))
    assert shipped.motion_px == LANDMARK_AUG.motion_px
