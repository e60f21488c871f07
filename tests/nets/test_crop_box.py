"""The crop of the network grid around labelled pixels (nets.preprocess.crop_box, near_crop_edge)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.nets.preprocess import crop_box, near_crop_edge


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([32, 64, 128]), margin=st.integers(0, 20), multiple=st.sampled_from([1, 4, 8]),
       seed=st.integers(0, 10_000), n_images=st.integers(1, 4))
def test_crop_box_holds_every_pixel_with_its_margin_aligned_and_tight(n, margin, multiple, seed, n_images):
    rng = np.random.default_rng(seed)
    fg = np.zeros((n_images, n, n), bool)
    for i in range(n_images):  # a few blobs anywhere on the grid, some images empty
        for _ in range(rng.integers(0, 3)):
            r, c = rng.integers(0, n, 2)
            fg[i, r:r + rng.integers(1, 10), c:c + rng.integers(1, 10)] = True
    box = crop_box(fg, margin, multiple)
    if not fg.any():
        assert box is None
        return
    rows, cols = np.nonzero(fg.any(0).any(1))[0], np.nonzero(fg.any(0).any(0))[0]
    for sl, idx in zip(box, (rows, cols)):
        assert sl.start % multiple == 0 and (sl.stop % multiple == 0 or sl.stop == n)
        assert 0 <= sl.start <= max(0, idx[0] - margin) and min(n, idx[-1] + 1 + margin) <= sl.stop <= n
        # no wider than the margin plus the alignment needs
        assert sl.start > idx[0] - margin - multiple and sl.stop < idx[-1] + 1 + margin + multiple


@settings(max_examples=60, deadline=None)
@given(n=st.sampled_from([32, 64, 128]), margin=st.integers(0, 12), multiple=st.sampled_from([1, 4, 8]),
       min_px=st.integers(0, 140), r=st.integers(0, 127), c=st.integers(0, 127), h=st.integers(1, 30))
def test_crop_box_min_size_widens_about_the_centre_within_the_grid(n, margin, multiple, min_px, r, c, h):
    fg = np.zeros((n, n), bool)
    fg[r % n:r % n + h, c % n:c % n + h] = True
    plain, box = crop_box(fg, margin, multiple), crop_box(fg, margin, multiple, min_px)
    for sl, pl in zip(box, plain):
        assert sl.start <= pl.start and pl.stop <= sl.stop  # holds everything the plain crop holds
        assert sl.start % multiple == 0 and (sl.stop % multiple == 0 or sl.stop == n) and 0 <= sl.start < sl.stop <= n
        assert sl.stop - sl.start >= min(n, min_px)
        if pl.stop - pl.start >= min_px:
            assert sl == pl
        else:  # no wider than the floor plus the alignment needs
            assert sl.stop - sl.start < min_px + 2 * multiple + 1


def test_near_crop_edge_only_at_sides_inside_the_grid():
    box = (slice(0, 24), slice(8, 32))  # its top side is the grid's top side
    fg = np.zeros((4, 24, 24), bool)
    fg[0, 0, 10] = True  # at the top: the grid's own side, nothing cut off
    fg[1, 23, 10] = True  # at the bottom, inside the grid
    fg[2, 10, 1] = True  # near the left side
    fg[3, 10:14, 10:14] = True  # well inside
    assert near_crop_edge(fg, box, (64, 64), 2).tolist() == [False, True, True, False]
    assert near_crop_edge(fg, (slice(0, 24), slice(0, 24)), (24, 24), 2).tolist() == [False] * 4


def test_takes_any_size_unet_graphs_yes_regressor_graphs_no(tmp_path, monkeypatch):
    import numpy as np
    import pytest
    import torch

    from cmr_atlas.nets.runtime import OnnxNet, takes_any_size
    from cmr_atlas.nets.unet import UNet
    from cmr_atlas.nets.vgg import VGGRegressor

    torch.manual_seed(0)
    net = UNet(1, 4, base=4, levels=2).eval()
    assert takes_any_size(net)
    pytest.importorskip("onnxruntime")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    onnx_net = OnnxNet(net, 16, 1)  # exported on the 16 x 16 grid, height and width symbolic
    assert takes_any_size(onnx_net)
    x = np.random.default_rng(0).normal(size=(3, 1, 12, 20)).astype(np.float32)  # a crop of another shape
    got = onnx_net.session.run(None, {onnx_net.session.get_inputs()[0].name: x})[0]
    with torch.no_grad():
        ref = net(torch.from_numpy(x)).numpy()
    assert got.shape == ref.shape and np.abs(got - ref).max() < 1e-4
    assert not takes_any_size(OnnxNet(VGGRegressor(3, input_size=32, widths=(4, 4, 8)).eval(), 32, 1))
