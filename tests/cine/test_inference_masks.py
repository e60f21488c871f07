"""Mask QC and cleaning over a whole stack in one scipy call give, image by image, what the plain
2-D definitions give (written out here independently, one image at a time)."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import ndimage

from cmr_atlas.cine.segmentation import clean_masks, mask_qc, masks_qc
from cmr_atlas.core.vocab import CAVITY, MYO, RV


def _sizes(binary):
    lab, n = ndimage.label(binary)
    return lab, np.bincount(lab.ravel(), minlength=n + 1)[1:]


def _qc_2d(mask):
    _, cs = _sizes(mask == CAVITY)
    _, ms = _sizes(mask == MYO)
    cav, myo = int(cs.sum()), int(ms.sum())
    flags = []
    if cav == 0 and myo == 0:
        flags.append("empty")
    else:
        if cav < 10:
            flags.append("small_cavity")
        if myo < 10:
            flags.append("no_myocardium")
        for name, s in (("cavity", cs), ("myocardium", ms)):
            if len(s) > 1 and np.sort(s)[-2] > 0.1 * s.max():
                flags.append(f"fragmented_{name}")
        if cav >= 10 and myo >= 10:
            cavity = mask == CAVITY
            border = ndimage.binary_dilation(cavity) & ~cavity
            if border.any() and (mask[border] == MYO).mean() < 0.5:
                flags.append("cavity_outside_myocardium")
    return cav, myo, len(cs), len(ms), ";".join(flags)


def _clean_2d(mask):
    out = np.zeros_like(mask)
    for label in (RV, MYO, CAVITY):
        lab, sizes = _sizes(mask == label)
        if len(sizes):
            keep = lab == (int(np.argmax(sizes)) + 1)
            if label == CAVITY:
                keep = ndimage.binary_fill_holes(keep)
            out[keep] = label
    return out


def _blobs(seed: int, n: int, shape=(40, 48)) -> np.ndarray:
    """Label stacks with rings, holes, fragments, equal-sized rivals and image-edge contact."""
    rng = np.random.default_rng(seed)
    r, c = np.meshgrid(np.arange(shape[0]), np.arange(shape[1]), indexing="ij")
    out = np.zeros((n, *shape), np.uint8)
    for i in range(n):
        for _ in range(rng.integers(0, 6)):
            cr, cc, rad = rng.uniform(-5, shape[0] + 5), rng.uniform(-5, shape[1] + 5), rng.uniform(1, 12)
            d = np.hypot(r - cr, c - cc)
            out[i][d < rad] = rng.choice([MYO, CAVITY, RV, 0])
            if rng.random() < 0.5:
                out[i][(d < rad) & (d > rad * 0.6)] = rng.choice([MYO, CAVITY])
        if rng.random() < 0.3:  # salt: many small components
            out[i][rng.random(shape) < 0.05] = rng.choice([MYO, CAVITY])
        if rng.random() < 0.2:  # two equal squares: the first in scan order wins
            out[i][2:6, 2:6] = out[i][2:6, 30:34] = CAVITY
    return out


@settings(max_examples=25, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(1, 12))
def test_stack_qc_and_cleaning_equal_the_2d_definitions(seed, n):
    masks = _blobs(seed, n)
    qcs = masks_qc(masks)
    cleaned = clean_masks(masks)
    for i in range(n):
        q = qcs[i]
        assert (q.cavity_px, q.myo_px, q.n_components_cavity, q.n_components_myo, q.flag) == _qc_2d(masks[i])
        np.testing.assert_array_equal(cleaned[i], _clean_2d(masks[i]))
        assert mask_qc(masks[i]) == q


def test_each_flag_is_reachable():
    flags = ";".join(q.flag for q in masks_qc(_blobs(7, 200)))
    for f in ("empty", "small_cavity", "no_myocardium", "fragmented_cavity", "fragmented_myocardium",
              "cavity_outside_myocardium"):
        assert f in flags


def _grid_sample_labels(logits, plane, grid):
    """The definition: softmax, bilinear resampling of the probabilities onto the original pixels
    (torch's grid_sample), background outside the network field of view, first most probable."""
    import torch
    import torch.nn.functional as F

    from cmr_atlas.nets.preprocess import to_net_px

    rows, cols = plane.shape
    r, c = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    net = to_net_px(np.stack([r, c], -1), plane, grid) * (2.0 / (grid.size - 1)) - 1.0
    # float64: near-ties at label borders (a few 1e-7 apart) are decided by the exact value, not rounding
    g = torch.from_numpy(net[..., ::-1].copy()).double()[None].expand(len(logits), -1, -1, -1)
    out = F.grid_sample(torch.softmax(logits.double(), 1), g, mode="bilinear", padding_mode="zeros", align_corners=True)
    out[:, 0][(g.abs() > 1).any(-1)] = 1.0
    return out.argmax(1).numpy().astype(np.uint8)


@settings(max_examples=20, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0.6, 2.5), st.integers(20, 90), st.integers(20, 90))
def test_labels_on_original_equal_the_bilinear_probability_definition(seed, spacing, rows, cols):
    """Smooth random logits (label regions with borders, as a network gives) on grids smaller and
    larger than the image: the shortcut (only mixed cells interpolate) changes no label."""
    import torch

    from cmr_atlas.cine.inference import _labels_on_original
    from cmr_atlas.core.geometry import SlicePlane
    from cmr_atlas.nets.preprocess import Grid

    rng = np.random.default_rng(seed)
    grid = Grid(1.5, 32)
    plane = SlicePlane.centred(np.zeros(3), [1, 0, 0], [0, 1, 0], (spacing, spacing * rng.uniform(0.8, 1.2)),
                               (rows, cols))
    logits = ndimage.gaussian_filter(rng.normal(0, 8, (3, 4, 32, 32)), (0, 0, 2, 2)).astype(np.float32)
    logits[:, :, rng.integers(0, 32, 5), rng.integers(0, 32, 5)] = 0.0  # exact ties between classes
    t = torch.from_numpy(logits)
    np.testing.assert_array_equal(_labels_on_original(t, plane, grid), _grid_sample_labels(t, plane, grid))
