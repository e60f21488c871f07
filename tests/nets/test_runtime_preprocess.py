"""The inference fast paths compute what the plain definitions compute: the separable bilinear
resampling of :mod:`cmr_atlas.nets.preprocess` against scipy's ``map_coordinates`` image by image,
and :func:`cmr_atlas.nets.runtime.prepare_model` (batch norm fused, channels-last) against the
loaded network."""

from __future__ import annotations

import numpy as np
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.nets.preprocess import Grid, from_net_px, prepare, resample_from_net, resample_to_net, to_net_px
from cmr_atlas.nets.runtime import forward, fuse_conv_bn, prepare_model
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor


def _map_coordinates(image, rows, cols, cval=0.0):
    r, c = np.meshgrid(rows, cols, indexing="ij")
    return ndimage.map_coordinates(np.asarray(image, np.float32), [r, c], order=1, mode="constant", cval=cval,
                                   prefilter=False)


@settings(max_examples=25, deadline=None)
@given(st.integers(8, 70), st.integers(8, 70), st.floats(0.5, 3.0), st.floats(0.5, 3.0), st.integers(8, 48),
       st.floats(0.7, 2.5), st.integers(0, 2**32 - 1))
def test_resampling_equals_map_coordinates(rows, cols, sr, sc, size, spacing, seed):
    plane = SlicePlane.centred(np.zeros(3), [1, 0, 0], [0, 1, 0], (sr, sc), (rows, cols))
    grid = Grid(spacing, size)
    images = np.random.default_rng(seed).normal(100, 30, (3, rows, cols)).astype(np.float32)
    ax = np.arange(size, dtype=float)
    src = from_net_px(np.stack(np.meshgrid(ax, ax, indexing="ij"), -1), plane, grid)
    want = np.stack([_map_coordinates(im, src[:, 0, 0], src[0, :, 1]) for im in images])
    np.testing.assert_allclose(resample_to_net(images, plane, grid), want, rtol=1e-5, atol=1e-3)
    maps = np.random.default_rng(seed + 1).random((2, 2, size, size)).astype(np.float32)
    dst_r = to_net_px(np.stack([np.arange(rows), np.zeros(rows)], -1), plane, grid)[:, 0]
    dst_c = to_net_px(np.stack([np.zeros(cols), np.arange(cols)], -1), plane, grid)[:, 1]
    back = resample_from_net(maps, plane, grid, cval=-1.0)
    assert back.shape == (2, 2, rows, cols)
    np.testing.assert_allclose(back, [[_map_coordinates(m, dst_r, dst_c, -1.0) for m in mm] for mm in maps],
                               rtol=1e-5, atol=1e-5)


def test_prepare_whitens_each_image_on_its_own():
    plane = SlicePlane.centred(np.zeros(3), [1, 0, 0], [0, 1, 0], (1.4, 1.4), (40, 50))
    rng = np.random.default_rng(3)
    stack = rng.normal(0, 1, (2, 3, 40, 50)).astype(np.float32) * np.array([1, 50])[:, None, None, None]
    stack[1, 2] = 7.0  # flat image: zeros, not a division by zero
    out = prepare(stack, plane, Grid(1.5, 32))
    assert out.shape == (2, 3, 32, 32) and out.dtype == np.float32
    for s in range(2):
        for t in range(3):
            im = stack[s, t]
            sd = im.std()
            alone = prepare(im[None], plane, Grid(1.5, 32))[0]
            ref = resample_to_net(((im - im.mean()) / (sd if sd > 1e-6 else 1.0))[None], plane, Grid(1.5, 32))[0]
            np.testing.assert_allclose(out[s, t], alone, atol=1e-6)
            np.testing.assert_allclose(out[s, t], ref, atol=1e-4)
    assert not out[1, 2].any()


def _trained_like(model: torch.nn.Module) -> torch.nn.Module:
    """Batch norm statistics far from the identity, as after training."""
    g = torch.Generator().manual_seed(0)
    for m in model.modules():
        if isinstance(m, torch.nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.num_features, generator=g))
            m.running_var.copy_(torch.rand(m.num_features, generator=g) * 3 + 0.1)
            m.weight.data.copy_(torch.randn(m.num_features, generator=g))
            m.bias.data.copy_(torch.randn(m.num_features, generator=g))
    return model.eval()


def test_prepared_models_compute_the_same_function():
    x = np.random.default_rng(0).normal(size=(5, 64, 64)).astype(np.float32)
    for model in (_trained_like(UNet(1, 4, 8, 3)), _trained_like(VGGRegressor(3, input_size=64, widths=(8, 8, 16)))):
        fused = fuse_conv_bn(model)
        assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in fused.modules())
        assert any(isinstance(m, torch.nn.BatchNorm2d) for m in model.modules())  # the original is untouched
        fast = prepare_model(model)
        assert all(p.is_contiguous(memory_format=torch.channels_last) for p in fast.parameters() if p.dim() == 4)
        ref = forward(model, x, torch.device("cpu"), 2, None)
        out = forward(fast, x, torch.device("cpu"), 2, None)
        assert out.is_contiguous() and out.shape == ref.shape
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=1e-4 * float(ref.abs().max()))
