"""The SAX segmentation on a crop around the heart (cine.inference.seg_logits) computes the whole
grid's labels: exactly for a network without spatial context, to the border effects of the
padding for the shipped U-Net."""

from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
import torch
from torch import nn

from cmr_atlas.cine.inference import Models, load_models, seg_logits, segment_exam
from cmr_atlas.core.config import default
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.nets.preprocess import Grid

N = 64
GRID = Grid(1.5, N)
UNET_CARD = {"input": GRID.to_dict(), "architecture": {"class": "UNet", "hparams": {"levels": 4}}}
BATCH = default("inference.batch")


class PixelOracle(nn.Module):
    """A fully convolutional stand-in without spatial context (each output pixel from its input
    pixel: bright = cavity, dark = myocardium), recording the input sizes it was run on."""

    def __init__(self):
        super().__init__()
        self.sizes: list[tuple[int, int, int]] = []

    def forward(self, x):
        self.sizes.append((x.shape[0], *x.shape[-2:]))
        cav = (x > 1.0).float()
        myo = (x < -0.8).float()
        return torch.log(torch.cat([1 - cav - myo, myo, cav, torch.zeros_like(cav)], 1).clamp_min(1e-4))


def _discs(n_slices: int, n_frames: int, centres) -> np.ndarray:
    """Network-grid images ``(S*T, N, N)``: a bright disc in a dark ring at ``centres[t]`` (row,
    col), radii shrinking over the frames and from slice to slice."""
    rr, cc = np.mgrid[:N, :N]
    x = np.zeros((n_slices, n_frames, N, N), np.float32)
    for s in range(n_slices):
        for t in range(n_frames):
            d = np.hypot(rr - centres[t][0], cc - centres[t][1])
            r_in = 7.0 - 0.5 * t - s
            x[s, t][d < r_in + 3] = -2.0
            x[s, t][d < r_in] = 2.0
    return x.reshape(-1, N, N)


def _models(net):
    return Models(net, UNET_CARD, "heatmap", {}, torch.device("cpu"), None)


def _labels(parts):
    """Network-grid labels ``(S*T, N, N)`` of :func:`seg_logits`'s parts (background outside a crop)."""
    n = sum(len(p.images) for p in parts)
    out = np.full(n, -1)[:, None, None] * np.ones((1, N, N), int)
    for p in parts:
        box = p.box or (slice(0, N), slice(0, N))
        out[p.images] = 0
        out[p.images, box[0], box[1]] = p.logits.argmax(1).numpy()
    assert (out >= 0).all()  # every image in exactly one part
    return out


@pytest.mark.parametrize("n_frames", [2, 5])
def test_cropped_labels_equal_the_whole_grid_and_the_crop_is_smaller(n_frames):
    x = _discs(3, n_frames, [(30, 34)] * n_frames)
    full_net, crop_net = PixelOracle(), PixelOracle()
    full = seg_logits(full_net, UNET_CARD, x, n_frames, _models(full_net), batch=BATCH, crop_margin_mm=0)
    got = seg_logits(crop_net, UNET_CARD, x, n_frames, _models(crop_net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=0)
    assert full_net.sizes == [(len(x), N, N)]
    # frame 0 of the 3 slices on the whole grid, the other frames on a crop: the ring (radius up to
    # 10 px) + 4 px margin, aligned to 8 px
    assert crop_net.sizes[0] == (3, N, N) and crop_net.sizes[1][0] == len(x) - 3
    assert crop_net.sizes[1][1:] == (32, 32) and len(crop_net.sizes) == 2
    np.testing.assert_array_equal(_labels(got), _labels(full))
    assert [p.box for p in got] == [None, (slice(16, 48), slice(16, 48))]


def test_each_slice_runs_on_its_own_crop():
    """Slices whose hearts lie apart get crops of their own (smaller than one crop holding both),
    the labels still those of the whole grid."""
    n_frames = 3
    x = np.concatenate([_discs(1, n_frames, [(20, 20)] * n_frames), _discs(1, n_frames, [(44, 44)] * n_frames)])
    net = PixelOracle()
    got = seg_logits(net, UNET_CARD, x, n_frames, _models(net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=0)
    full = seg_logits(PixelOracle(), UNET_CARD, x, n_frames, _models(PixelOracle()), batch=BATCH, crop_margin_mm=0)
    np.testing.assert_array_equal(_labels(got), _labels(full))
    assert [p.box for p in got] == [None, (slice(0, 40), slice(0, 40)), (slice(24, 64), slice(24, 64))]
    assert net.sizes[1:] == [(n_frames - 1, 40, 40)] * 2  # one stack-wide crop would be the whole grid
    net = PixelOracle()  # crops widened to 48 px (72 mm) about their centres, still aligned
    got = seg_logits(net, UNET_CARD, x, n_frames, _models(net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=72)
    assert [p.box for p in got] == [None, (slice(0, 48), slice(0, 48)), (slice(16, 64), slice(16, 64))]
    np.testing.assert_array_equal(_labels(got), _labels(full))


def test_a_heart_leaving_the_crop_runs_again_on_the_whole_grid():
    """Frame 2 has its ring where frame 0's crop would cut it: that image (and only it) is rerun."""
    centres = [(30, 34), (30, 34), (30, 52), (30, 34)]
    x = _discs(2, 4, centres)
    net = PixelOracle()
    got = seg_logits(net, UNET_CARD, x, 4, _models(net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=0)
    full = _labels(seg_logits(PixelOracle(), UNET_CARD, x, 4, _models(PixelOracle()), batch=BATCH, crop_margin_mm=0))
    np.testing.assert_array_equal(_labels(got), full)
    assert net.sizes[-1] == (2, N, N)  # frame 2 of both slices, again on the whole grid
    assert (full[[2, 6]] > 0).sum() > (full[[2, 6], :, :48] > 0).sum()  # the crop (cols < 48) would have cut it


def test_no_crop_without_a_heart_or_a_u_net():
    x = np.zeros((6, N, N), np.float32)
    net = PixelOracle()
    assert (_labels(seg_logits(net, UNET_CARD, x, 3, _models(net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=0)) == 0).all()
    assert [s[1:] for s in net.sizes] == [(N, N), (N, N)]  # frame 0 found nothing: the rest on the whole grid
    net = PixelOracle()
    card = {"input": GRID.to_dict()}  # no architecture: not known to be fully convolutional
    seg_logits(net, card, _discs(2, 3, [(30, 34)] * 3), 3, _models(net), batch=BATCH, crop_margin_mm=6.0, min_crop_mm=0)
    assert net.sizes == [(6, N, N)]


@pytest.mark.slow
def test_shipped_u_net_on_the_crop_matches_the_whole_grid():
    """The shipped seg_sax on a held-out synthetic exam (base, mid, apex slices): the cropped run's
    masks differ from the whole grid's on well under 1 % of the labelled pixels (border effects of
    the padding at the crop's sides; measured 0.13 % on 6 exams), the same ED/ES volumes to 1 %."""
    from cmr_atlas.cine.inference import exam_volumes_ml
    from cmr_atlas.cine.segmentation import choose_phases
    from cmr_atlas.synth.mesa.cohort import generate_exam

    models_dir = Path(__file__).resolve().parents[2] / "resources/models"
    full = generate_exam(30001, 4).images
    keep = [1, full.n_slices // 2, full.n_slices - 3]
    images = ExamImages(full.exam_id, full.sax[keep], [full.sax_planes[i] for i in keep], full.trigger_times_ms,
                        full.lax, full.lax_planes)
    models = load_models(models_dir, method="heatmap", device="cpu", precision="auto")
    ref, _ = segment_exam(images, models, batch=BATCH, crop_margin_mm=0)
    got, _ = segment_exam(images, models, batch=BATCH, crop_margin_mm=default("inference.crop_margin_mm"))
    labelled = (ref > 0).sum()
    assert labelled > 1000 and (got != ref).sum() < 0.01 * labelled
    v_ref, v_got = exam_volumes_ml(images, ref), exam_volumes_ml(images, got)
    assert choose_phases(v_ref, "max_volume") == choose_phases(v_got, "max_volume")
    np.testing.assert_allclose(v_got, v_ref, rtol=0.01)


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.6, 2.5), st.integers(20, 90), st.integers(20, 90),
       st.integers(0, 3), st.integers(1, 4), st.integers(0, 3), st.integers(1, 4))
def test_labels_of_a_crop_equal_the_whole_grid_with_background_around(seed, spacing, rows, cols, r0, h, c0, w):
    """:func:`_labels_on_original` of logits on a box of the grid equals it on the whole grid whose
    logits are certain background outside the box (boxes touching the grid's sides included)."""
    from scipy import ndimage

    from cmr_atlas.cine.inference import _labels_on_original
    from cmr_atlas.core.geometry import SlicePlane

    rng = np.random.default_rng(seed)
    grid = Grid(1.5, 32)
    box = (slice(8 * r0, min(32, 8 * (r0 + h))), slice(8 * c0, min(32, 8 * (c0 + w))))
    plane = SlicePlane.centred(np.zeros(3), [1, 0, 0], [0, 1, 0], (spacing, spacing * rng.uniform(0.8, 1.2)),
                               (rows, cols))
    crop = ndimage.gaussian_filter(rng.normal(0, 8, (3, 4, 32, 32)), (0, 0, 2, 2)).astype(np.float32)[:, :, box[0], box[1]]
    whole = np.zeros((3, 4, 32, 32), np.float32)
    whole[:, 1:] = -np.inf
    whole[:, :, box[0], box[1]] = crop
    np.testing.assert_array_equal(_labels_on_original(torch.from_numpy(crop), plane, grid, box),
                                  _labels_on_original(torch.from_numpy(whole), plane, grid))


def test_labelled_is_argmax_not_background_with_ties_to_background():
    from cmr_atlas.cine.inference import _labelled

    rng = np.random.default_rng(3)
    logits = rng.integers(-2, 3, (5, 4, 6, 7)).astype(np.float32)  # many exact ties
    t = torch.from_numpy(logits)
    np.testing.assert_array_equal(_labelled(t), logits.argmax(1) > 0)
