"""SAX landmark networks that see the neighbouring slices of the stack as input channels
(`train data --sax-neighbour-slices K`, card ``input.neighbour_slices``): the samples, the
widened starting weights, and inference giving such a network the same channels."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.nets.preprocess import Grid, prepare, prepare_on, slice_with_neighbours
from cmr_atlas.nets.train import widen_input
from cmr_atlas.nets.unet import UNet
from tests.cine.conftest import MODELS_DIR

GRID = Grid(2.0, 64)


def _stack_of_blob(offsets_mm: list[tuple[float, float]], blob_mm=(12.0, -20.0, 0.0)):
    """A parallel stack (normal +z, 10 mm apart) whose slices' centres are shifted in-plane by
    ``offsets_mm``; every slice shows one bright blob at the same patient (x, y)."""
    planes, images = [], []
    for s, (dx, dy) in enumerate(offsets_mm):
        plane = SlicePlane.centred(np.array([dx, dy, 10.0 * s]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                                   (1.5, 1.5), (80, 96), 8.0)
        xyz = plane.pixel_grid_mm()
        d2 = (xyz[..., 0] - blob_mm[0]) ** 2 + (xyz[..., 1] - blob_mm[1]) ** 2
        images.append(np.exp(-d2 / (2 * 4.0**2))[None].repeat(2, 0))  # two frames
        planes.append(plane)
    return np.stack(images), planes


def _centre(img: np.ndarray) -> np.ndarray:
    """The blob's centre in pixels, to a fraction of a pixel: the centroid of its upper half (an
    argmax can step a whole pixel on each axis when the centre falls between two pixels)."""
    w = np.clip(img - 0.5 * img.max(), 0.0, None)
    rows, cols = np.indices(img.shape)
    return np.array([(w * rows).sum(), (w * cols).sum()]) / w.sum()


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.floats(-15, 15), st.floats(-15, 15)), min_size=3, max_size=5), st.integers(0, 4))
def test_neighbours_line_up_with_the_slice_through_the_stack(offsets, s):
    """Each neighbour is sampled along the normal onto the slice's own grid: an anatomical point
    lies on the same network pixel in every channel, however the slice centres are shifted."""
    stack, planes = _stack_of_blob(offsets)
    s = min(s, len(planes) - 1)
    x = slice_with_neighbours(stack, planes, s, 1, GRID)
    assert x.shape == (2, 3, GRID.size, GRID.size)
    np.testing.assert_allclose(x[:, 1], prepare(stack[s], planes[s], GRID), atol=1e-5)
    for c, t in ((0, s - 1), (2, s + 1)):
        if 0 <= t < len(planes):
            assert np.linalg.norm(_centre(x[0, c]) - _centre(x[0, 1])) <= 0.25  # px of 2 mm
        else:  # past the end of the stack: zeros
            assert not x[:, c].any()


def test_prepare_on_its_own_plane_is_prepare():
    stack, planes = _stack_of_blob([(3.0, -2.0)])
    np.testing.assert_allclose(prepare_on(stack[0], planes[0], planes[0], GRID),
                               prepare(stack[0], planes[0], GRID), atol=1e-5)


def test_widened_network_starts_as_the_one_slice_network():
    torch.manual_seed(0)
    one = UNet(1, 4, 8, 3).eval()
    three = UNet(3, 4, 8, 3)
    three.load_state_dict(widen_input(one.state_dict(), three, 1))
    three.eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(three(x), one(x[:, 1:2]), atol=1e-5, rtol=1e-5)
        x2 = x.clone()
        x2[:, 0] += 1.0
        torch.testing.assert_close(three(x2), three(x))  # neighbours start with no say
    # a neighbour kernel that is not zero changes the output: the channels reach the network
    with torch.no_grad():
        three.down[0][0].weight[:, 0] += 0.1
        assert not torch.allclose(three(x2), three(x))


def test_landmark_samples_carry_the_neighbours_and_refuse_them_on_long_axis(ingested_clinical):
    from cmr_atlas.cine.training import LM_GRID
    from cmr_atlas.cine.training_data import landmark_samples

    images, truth = ingested_clinical
    rng = np.random.default_rng(0)
    one = landmark_samples(images, truth, "sax", LM_GRID, rng, 0)
    three = landmark_samples(images, truth, "sax", LM_GRID, np.random.default_rng(0), 0, neighbour_slices=1)
    assert three.images.shape == (len(one), 3, LM_GRID.size, LM_GRID.size)
    np.testing.assert_array_equal(three.images[:, 1], one.images)
    np.testing.assert_array_equal(three.points, one.points)
    with pytest.raises(ValueError, match="SAX stack"):
        landmark_samples(images, truth, "lax", LM_GRID, rng, 0, neighbour_slices=1)
    with pytest.raises(ValueError, match="must be >= 0"):
        landmark_samples(images, truth, "sax", LM_GRID, rng, 0, neighbour_slices=-1)


def _widened_models_dir(tmp: Path, kick: float = 0.0) -> Path:
    """A models folder whose ``lm_heatmap_sax`` is the shipped one widened to see one slice either
    side (``kick`` added to the neighbours' first kernels; 0: it computes what the shipped does)."""
    from cmr_atlas.nets.registry import load_model, save_model

    for name in ("seg_sax", "lm_heatmap_lax"):
        for ext in (".pt", ".json"):
            shutil.copy(MODELS_DIR / f"{name}{ext}", tmp / f"{name}{ext}")
    one, card = load_model("lm_heatmap_sax", MODELS_DIR)
    wide = UNet(3, one.hparams["out_channels"], one.hparams["base"], one.hparams["levels"])
    wide.load_state_dict(widen_input(one.state_dict(), wide, 1))
    with torch.no_grad():
        wide.down[0][0].weight[:, [0, 2]] += kick
    card = {**card, "input": {**card["input"], "neighbour_slices": 1}}
    card.pop("int8", None)
    save_model(wide, card, tmp)
    return tmp


@pytest.mark.slow
def test_inference_gives_a_neighbour_network_the_stack(ingested_clinical, tmp_path):
    from cmr_atlas.cine.inference import detect_landmarks, load_models

    images, _ = ingested_clinical

    def sax(models_dir):
        models = load_models(models_dir, method="heatmap", device="cpu", precision="float32", runtime="torch")
        lm = detect_landmarks(images, models, [0], absent_threshold=0.5, batch=8)
        return lm[lm["view"] == "sax"].reset_index(drop=True)

    shipped = (tmp_path / "shipped")
    shipped.mkdir()
    for name in ("seg_sax", "lm_heatmap_sax", "lm_heatmap_lax"):
        for ext in (".pt", ".json"):
            shutil.copy(MODELS_DIR / f"{name}{ext}", shipped / f"{name}{ext}")
    want = sax(shipped)
    wide_dir = tmp_path / "wide"
    wide_dir.mkdir()
    got = sax(_widened_models_dir(wide_dir))
    assert len(got) == len(want) == 3 * images.sax.shape[0]
    np.testing.assert_allclose(got["confidence"], want["confidence"], atol=1e-4)
    np.testing.assert_array_equal(got["present"], want["present"])
    kicked_dir = tmp_path / "kicked"
    kicked_dir.mkdir()
    kicked = sax(_widened_models_dir(kicked_dir, kick=0.05))
    assert np.abs(kicked["confidence"] - want["confidence"]).max() > 1e-3


def test_onnx_export_takes_the_cards_channels():
    from cmr_atlas.nets.onnx_export import onnx_bytes

    onnxruntime = pytest.importorskip("onnxruntime")
    torch.manual_seed(1)
    net = UNet(3, 4, 8, 3).eval()
    sess = onnxruntime.InferenceSession(onnx_bytes(net, 32), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        want = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(sess.run(None, {sess.get_inputs()[0].name: x})[0], want, atol=1e-4)


def _data_folder(path: Path, neighbours: int) -> Path:
    from cmr_atlas.nets.samples import VIEW_CODES, Samples

    path.mkdir()
    shape = (2, 2 * neighbours + 1, 16, 16) if neighbours else (2, 16, 16)
    Samples(np.zeros(shape, np.float16), np.zeros(2, np.int32), np.full(2, VIEW_CODES["sax"], np.int8), ["e0"],
            points=np.full((2, 3, 2), np.nan, np.float32)).save(path / "lm_sax.npz")
    Samples(np.zeros((2, 16, 16), np.float16), np.zeros(2, np.int32), np.full(2, VIEW_CODES["lax_2ch"], np.int8),
            ["e0"], points=np.full((2, 3, 2), np.nan, np.float32)).save(path / "lm_lax.npz")
    info = {"n_exams": 1, "images": {"lm_sax": 2, "lm_lax": 2},
            "segmentation_grid": {"spacing_mm": 1.5, "size": 128}, "landmark_grid": {"spacing_mm": 1.5, "size": 128},
            **({"sax_neighbour_slices": neighbours} if neighbours else {})}
    (path / "data.json").write_text(json.dumps(info))
    return path


def test_folders_with_other_neighbours_are_not_pooled(tmp_path):
    from cmr_atlas.cine.training import load_data

    a, b = _data_folder(tmp_path / "a", 1), _data_folder(tmp_path / "b", 0)
    samples, _ = load_data([a], "lm_sax")
    assert samples.images.shape[1] == 3
    with pytest.raises(SystemExit, match="neighbouring slices"):
        load_data([a, b], "lm_sax")
    lax, _ = load_data([a, b], "lm_lax")  # the long-axis images of both folders carry no neighbours
    assert len(lax) == 4


def test_rotation_averaging_turns_every_channel_alike():
    """Test-time rotations of a neighbour network's inputs turn the slice and its neighbours
    together: a network reading only the centre channel gets what a one-slice network gets."""
    from cmr_atlas.nets.heatmaps import rotation_averaged_probs

    torch.manual_seed(2)
    net = UNet(1, 4, 8, 3).eval()
    x = np.random.default_rng(1).standard_normal((2, 3, 32, 32)).astype(np.float32)
    with torch.no_grad():
        centre = rotation_averaged_probs(lambda xr: net(torch.from_numpy(xr[:, None])), x[:, 1], [-20, 0, 20], [1.1])
        wide = rotation_averaged_probs(lambda xr: net(torch.from_numpy(xr[:, 1:2].copy())), x, [-20, 0, 20], [1.1])
    torch.testing.assert_close(wide, centre)


def test_train_data_refuses_a_negative_number_of_neighbours(tmp_path):
    from cmr_atlas.cli import main

    with pytest.raises(SystemExit, match="not a number of slices"):
        main(["train", "data", "--n-exams", "1", "--sax-neighbour-slices", "-1", "--out", str(tmp_path / "d")])
