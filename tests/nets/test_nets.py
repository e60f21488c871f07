import json

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.nets.augment import AugmentConfig, augment_batch
from cmr_atlas.cine.train_models import train_heatmap, train_segmentation
from cmr_atlas.cine.training_data import segmentation_samples
from cmr_atlas.nets.samples import Samples
from cmr_atlas.nets.losses import heatmap_loss, segmentation_loss, soft_dice
from cmr_atlas.nets.preprocess import Grid, from_net_px, net_plane, prepare, resample_to_net, to_net_px
from cmr_atlas.nets.registry import ModelFileError, load_model, save_model
from cmr_atlas.nets.runtime import forward, pick_device
from cmr_atlas.nets.train import TrainConfig, exam_split, train_vgg_cyclic
from cmr_atlas.nets.unet import UNet
from cmr_atlas.nets.vgg import VGGRegressor
from cmr_atlas.core.vocab import CAVITY, MYO


@settings(max_examples=30, deadline=None)
@given(st.floats(0, 95), st.floats(0, 79), st.floats(0.8, 3.0), st.integers(16, 160))
def test_net_mapping_is_exact_and_geometric(oblique_plane, r, c, spacing, size):
    plane = oblique_plane()
    grid = Grid(spacing, size)
    rc = np.array([r, c])
    net = to_net_px(rc, plane, grid)
    assert np.allclose(from_net_px(net, plane, grid), rc)
    # the network grid is a plane: same patient point either way
    assert np.allclose(net_plane(plane, grid).pixel_to_patient(net), plane.pixel_to_patient(rc), atol=1e-9)


def test_resample_puts_a_feature_where_the_mapping_says(oblique_plane):
    plane = oblique_plane()
    grid = Grid(1.0, 128)
    img = np.zeros(plane.shape, np.float32)
    img[30, 50] = 1.0
    out = resample_to_net(img, plane, grid)
    peak = np.unravel_index(np.argmax(out), out.shape)
    assert np.allclose(peak, to_net_px(np.array([30, 50]), plane, grid), atol=1.0)
    x = prepare(np.stack([img, img * 3 + 7]), plane, Grid(1.5, 64))
    assert x.shape == (2, 64, 64) and np.allclose(x[0], x[1], atol=1e-5)  # whitening
    with pytest.raises(ValueError, match="does not match"):
        resample_to_net(np.zeros((5, 5)), plane, grid)


def test_architectures_shapes():
    assert UNet(1, 4, 8, 3)(torch.zeros(2, 1, 32, 32)).shape == (2, 4, 32, 32)
    with pytest.raises(ValueError, match="divisible"):
        UNet(1, 4, 8, 3)(torch.zeros(1, 1, 30, 30))
    assert VGGRegressor(3, input_size=64, widths=(8, 8, 16)).eval()(torch.zeros(2, 1, 64, 64)).shape == (2, 3, 2)


def test_runtime_forward_batches_in_float32_on_the_cpu():
    model = UNet(1, 4, 4, 2).eval()
    x = np.random.default_rng(0).normal(size=(5, 32, 32))  # float64 in: float32 through the net
    out = forward(model, x, torch.device("cpu"), batch=2, dtype=None)
    assert out.dtype == torch.float32 and out.device.type == "cpu" and out.shape == (5, 4, 32, 32)
    with torch.no_grad():
        whole = model(torch.from_numpy(x.astype(np.float32))[:, None])
    assert torch.allclose(out, whole, atol=1e-5)  # batching changes nothing (eval-mode batch norm)
    assert forward(model, x[:0], torch.device("cpu"), 2, None).numel() == 0
    assert pick_device("cpu").type == "cpu"
    if not torch.cuda.is_available():
        assert pick_device("auto").type == "cpu"
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            pick_device("cuda")


def test_losses_prefer_the_truth():
    labels = torch.zeros(2, 16, 16, dtype=torch.long)
    labels[:, 4:12, 4:12] = 2
    good = torch.nn.functional.one_hot(labels, 4).permute(0, 3, 1, 2).float() * 10
    bad = torch.zeros_like(good)
    assert segmentation_loss(good, labels) < 0.05 < segmentation_loss(bad, labels)
    target = torch.zeros(1, 2, 8, 8)
    target[0, 0] = 1.0
    target[0, 0, 3, 3], target[0, 1, 3, 3] = 0.0, 1.0
    assert heatmap_loss(torch.log(target.clamp_min(1e-6)), target) < heatmap_loss(torch.zeros(1, 2, 8, 8), target)
    assert float(soft_dice(target, target)) == pytest.approx(0.0, abs=1e-6)


def test_per_image_dice_weighs_a_small_structure_like_a_large_one():
    # image 0: a large square found exactly; image 1: a 2-pixel structure missed entirely
    target = torch.zeros(2, 2, 32, 32)
    target[0, 1, 4:28, 4:28] = 1.0
    target[1, 1, 10, 10:12] = 1.0
    target[:, 0] = 1.0 - target[:, 1]
    probs = target.clone()
    probs[1] = 0.0
    probs[1, 0] = 1.0
    batch = float(soft_dice(probs, target))
    image = float(soft_dice(probs, target, per_image=True))
    assert batch < 0.01  # the miss is 2 of 578 pixels over the batch
    assert image == pytest.approx(0.5 * (1 - 1 / 3), abs=1e-3)  # image 1's Dice (0 + 1) / (2 + 1)
    assert float(soft_dice(target, target, per_image=True)) == pytest.approx(0.0, abs=1e-6)
    # a class absent from every image neither rewards nor penalises
    empty = torch.zeros(2, 3, 8, 8)
    empty[:, 0] = 1.0
    assert float(soft_dice(empty, empty, per_image=True)) == pytest.approx(0.0, abs=1e-6)
    labels = target.argmax(1)
    logits = torch.log(probs.clamp_min(1e-4))
    by = {m: float(segmentation_loss(logits, labels, dice=m)) for m in ("batch", "image", "both")}
    assert by["image"] > by["batch"]
    assert by["both"] == pytest.approx((by["batch"] + by["image"]) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="dice"):
        segmentation_loss(logits, labels, dice="pixel")


def test_augmentation_moves_points_with_the_image():
    rng = np.random.default_rng(3)
    img = torch.zeros(4, 1, 48, 48)
    pts = torch.tensor([[[20.0, 30.0]], [[10.0, 12.0]], [[24.0, 24.0]], [[35.0, 8.0]]])
    for b in range(4):
        img[b, 0, int(pts[b, 0, 0]) - 1:int(pts[b, 0, 0]) + 2, int(pts[b, 0, 1]) - 1:int(pts[b, 0, 1]) + 2] = 1
    cfg = AugmentConfig(zoom=(0.9, 1.1), shift_px=4, brightness=0, contrast=0, noise_sd=0)
    out, lab, moved = augment_batch(rng, img, cfg, labels=(img[:, 0] > 0).long(), points=pts)
    for b in range(4):
        w = out[b, 0].clamp_min(0).numpy()
        com = np.array(np.nonzero(w > 0.2)).mean(1)
        assert np.allclose(com, moved[b, 0].numpy(), atol=1.0)
        assert lab[b].sum() > 0


def test_soft_labels_move_with_the_image_and_stay_fractions():
    rng = np.random.default_rng(4)
    img = torch.zeros(3, 2, 48, 48)
    img[:, :, 14:30, 18:34] = 1.0
    soft = torch.stack([img[:, 0] * 0.7, img[:, 0] * 0.3], 1)  # two foreground classes' fractions
    cfg = AugmentConfig(zoom=(0.9, 1.1), shift_px=4, brightness=0, contrast=0, noise_sd=0)
    out, lab, _ = augment_batch(rng, img, cfg, labels=soft)
    assert lab.shape == soft.shape and lab.dtype == torch.float32
    assert float(lab.min()) >= 0 and float(lab.sum(1).max()) <= 1.0 + 1e-6
    # the fractions cover what the warped image covers, in the same ratio
    assert torch.allclose(lab.sum(1), out[:, 0], atol=1e-5)
    assert torch.allclose(lab[:, 0], 0.7 * out[:, 0], atol=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on the CI machine)")
def test_cuda_augmentation_warps_like_the_cpu():
    """On a GPU the batch stays there; the geometry (one affine per image from the numpy draws) is
    the CPU's, only the pixel noise is drawn on the device."""
    img = torch.zeros(3, 2, 48, 48)
    img[:, :, 14:30, 18:34] = 1.0
    pts = torch.tensor([[[20.0, 30.0]], [[18.0, 22.0]], [[24.0, 24.0]]])
    cfg = AugmentConfig(zoom=(0.9, 1.1), shift_px=4, noise_sd=0.0)
    cpu = augment_batch(np.random.default_rng(5), img, cfg, labels=img[:, 0].long(), points=pts)
    gpu = augment_batch(np.random.default_rng(5), img.cuda(), cfg, labels=img[:, 0].long().cuda(), points=pts.cuda())
    assert all(t.is_cuda for t in gpu)
    assert torch.allclose(cpu[0], gpu[0].cpu(), atol=1e-4) and (cpu[1] == gpu[1].cpu()).float().mean() > 0.99
    assert torch.allclose(cpu[2], gpu[2].cpu(), atol=1e-3)


def test_segmentation_samples_from_truth_contours(ring_exam):
    images, contours = ring_exam()
    grid = Grid(1.5, 64)
    s = segmentation_samples(images, contours, grid, np.random.default_rng(0), extra_frames=1)
    assert s.images.shape[1:] == (64, 64) and len(s) == len(s.labels)
    # the last slice has no LV: background samples
    assert (s.labels == CAVITY).any() and (s.labels.reshape(len(s), -1).max(1) == 0).any()
    # cavity area in mm2 matches the disk (radius 18 mm at ED)
    ed = s.labels[0]
    assert (ed == CAVITY).sum() * 1.5**2 == pytest.approx(np.pi * 18**2, rel=0.08)
    assert (ed == MYO).sum() * 1.5**2 == pytest.approx(np.pi * (26**2 - 18**2), rel=0.08)


def test_exam_split_is_exam_wise_and_seeded():
    a = exam_split(20, 0.2, np.random.default_rng(1))
    b = exam_split(20, 0.2, np.random.default_rng(1))
    assert np.array_equal(a[1], b[1]) and len(a[1]) == 4 and not set(a[0]) & set(a[1])


def _ring_samples(ring_exam, n_exams=4):
    parts = []
    for e in range(n_exams):
        images, contours = ring_exam(seed=e)
        images.exam_id = f"X{e}"
        parts.append(segmentation_samples(images, contours, Grid(3.0, 32), np.random.default_rng(e), 1))
    return Samples.concat(parts)


def test_training_loops_run_and_are_deterministic(ring_exam):
    s = _ring_samples(ring_exam)
    cfg = TrainConfig(max_epochs=1, batch_size=4, steps_per_epoch=2, val_fraction=0.25, seed=5)
    m1, rep = train_segmentation(s, cfg, base=4, levels=3)
    m2, _ = train_segmentation(s, cfg, base=4, levels=3)
    assert rep["epochs_run"] == 1 and "dice_cavity" in rep["val_metrics"]
    assert all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))
    # landmark data: the cavity centre as a single landmark, absent on empty slices
    pts = np.full((len(s), 1, 2), np.nan, np.float32)
    for i, lab in enumerate(s.labels):
        if (lab == CAVITY).any():
            pts[i, 0] = np.argwhere(lab == CAVITY).mean(0)
    lm = Samples(s.images, s.exam, s.view, s.exam_ids, points=pts)
    net3, rep = train_heatmap(lm, cfg, sigma_px=1.5, spacing_mm=3.0, base=4, levels=3)
    assert 0.0 <= rep["val_metrics"]["detection_rate"] <= 1.0
    # without levels a fine-tune keeps its starting network's depth; with more, the network is deepened
    kept, _ = train_heatmap(lm, cfg, sigma_px=1.5, spacing_mm=3.0, base=4, init_state=net3.state_dict())
    deeper, _ = train_heatmap(lm, cfg, sigma_px=1.5, spacing_mm=3.0, base=4, levels=4, init_state=net3.state_dict())
    assert (kept.hparams["levels"], deeper.hparams["levels"]) == (3, 4)
    models, rep = train_vgg_cyclic({"a": lm, "b": lm}, cfg, 3.0, {"widths": (4, 8), "hidden": 8}, max_cycles=1)
    assert set(models) == {"a", "b"} and len(rep["stages"]) == 2 and rep["transfer"]
    # the independent baseline differs only in the weight passing: same first stage, different second
    ind, rep_i = train_vgg_cyclic({"a": lm, "b": lm}, cfg, 3.0, {"widths": (4, 8), "hidden": 8}, max_cycles=1,
                                  transfer=False)
    first, second = (st["view"] for st in rep["stages"])
    assert [st["view"] for st in rep_i["stages"]] == [first, second] and not rep_i["transfer"]
    same = lambda m1, m2: all(torch.equal(a, b) for a, b in zip(m1.state_dict().values(), m2.state_dict().values()))  # noqa: E731
    assert same(models[first], ind[first]) and not same(models[second], ind[second])


def test_registry_roundtrip_and_checksum(tmp_path):
    m = UNet(1, 4, 4, 2)
    card = {"name": "seg_sax", "input": {"spacing_mm": 1.5, "size": 32}}
    save_model(m, card, tmp_path)
    loaded, c = load_model("seg_sax", tmp_path)
    assert c["architecture"]["hparams"]["base"] == 4
    assert all(torch.equal(a, b) for a, b in zip(m.state_dict().values(), loaded.state_dict().values()))
    with pytest.raises(ModelFileError, match="lm_heatmap_sax.json"):
        load_model("lm_heatmap_sax", tmp_path)
    (tmp_path / "seg_sax.pt").write_bytes((tmp_path / "seg_sax.pt").read_bytes() + b"x")
    with pytest.raises(ModelFileError, match="checksum mismatch.*seg_sax.pt"):
        load_model("seg_sax", tmp_path)
    (tmp_path / "seg_sax.pt").unlink()
    with pytest.raises(ModelFileError, match="seg_sax.pt"):
        load_model("seg_sax", tmp_path)
    assert json.loads((tmp_path / "seg_sax.json").read_text())["weights_file"] == "seg_sax.pt"


def _data_folder(path, samples, grid):
    samples.save(path / "seg.npz")
    info = {"n_exams": len(samples.exam_ids), "images": {"seg": len(samples)},
            "segmentation_grid": grid, "landmark_grid": grid}
    (path / "data.json").write_text(json.dumps(info))
    return path


def test_training_data_folders_pool_with_distinct_exams(tmp_path, ring_exam):
    from cmr_atlas.cine.training import load_data

    s = _ring_samples(ring_exam, 2)
    g = {"spacing_mm": 3.0, "size": 32}
    a = _data_folder(tmp_path / "a", s, g)
    b = _data_folder(tmp_path / "b", s, g)
    pooled, info = load_data([a, b], "seg")
    assert len(pooled) == 2 * len(s) and len(pooled.exam_ids) == 4
    # the second folder's exams are new exam indices, so an exam-wise split keeps them apart
    assert set(np.unique(pooled.exam[len(s):])) == {2, 3}
    assert info["n_exams"] == 4 and info["images"]["seg"] == 2 * len(s) and len(info["parts"]) == 2
    c = _data_folder(tmp_path / "c", s, {"spacing_mm": 1.5, "size": 32})
    with pytest.raises(SystemExit, match="grids differ"):
        load_data([a, c], "seg")
    with pytest.raises(SystemExit, match="no data.json"):
        load_data([tmp_path], "seg")


def test_train_cli_keeps_the_workflow_command_lines_and_config_defaults():
    import argparse

    from cmr_atlas.cli import train as train_cli
    from cmr_atlas.core.config import default

    p = argparse.ArgumentParser()
    train_cli.add_arguments(p)
    a = p.parse_args(["data", "--out", "d"])
    assert (a.n_exams, a.seed) == (default("train.n_exams"), default("train.seed"))
    m = p.parse_args(["model", "seg_sax", "--data", "d1", "d2", "--out", "m"])
    assert (m.minutes, m.threads, m.data) == (default("train.minutes"), default("train.threads"), ["d1", "d2"])
    # the command lines of workflow/rules/train.smk
    a = p.parse_args(["data", "--n-exams", "240", "--seed", "910000", "--out", "d"])
    assert (a.train_command, a.n_exams, a.seed, a.out) == ("data", 240, 910000, "d")
    m = p.parse_args(["model", "lm_vgg", "--data", "d", "--out", "m", "--minutes", "20", "--threads", "1"])
    assert (m.train_command, m.name, m.minutes, m.threads, m.vgg_schedule) == ("model", "lm_vgg", 20.0, 1, "cyclic")


def test_precision_choice(tmp_path):
    from cmr_atlas.nets.runtime import cpu_has_native_bf16, resolve_precision

    cpu = torch.device("cpu")
    assert resolve_precision("float32", cpu) is None
    assert resolve_precision("bfloat16", cpu) is torch.bfloat16
    assert resolve_precision("auto", cpu) is (torch.bfloat16 if cpu_has_native_bf16() else None)
    with pytest.raises(ValueError, match="inference.precision"):
        resolve_precision("float16", cpu)
    plain = tmp_path / "cpuinfo"
    plain.write_text("flags\t\t: fpu sse2 avx2 avx512f\n")
    assert not cpu_has_native_bf16(str(plain))  # no native bf16 units: oneDNN would emulate it
    assert not cpu_has_native_bf16(str(tmp_path / "missing"))


def test_bfloat16_forward_close_to_float32():
    from cmr_atlas.nets.runtime import forward

    torch.manual_seed(0)
    model = UNet(1, 4, 8, 2).eval()
    x = np.random.default_rng(0).normal(size=(4, 64, 64)).astype(np.float32)
    a = forward(model, x, torch.device("cpu"), 2, None)
    b = forward(model, x, torch.device("cpu"), 2, torch.bfloat16)
    assert b.dtype == torch.float32 and b.shape == a.shape
    assert (a.argmax(1) == b.argmax(1)).float().mean() > 0.97


def test_coil_shading_darkens_one_side_and_keeps_the_whitening():
    from dataclasses import replace

    from cmr_atlas.nets.augment import LANDMARK_AUG, coil_shading

    x = torch.ones(3, 1, 32, 32) + 0.1 * torch.randn(3, 1, 32, 32)
    x = (x - x.mean()) / x.std()
    never = coil_shading(x, np.random.default_rng(0), replace(LANDMARK_AUG, coil_p=0.0))
    assert torch.equal(never, x)
    y = coil_shading(x, np.random.default_rng(0), replace(LANDMARK_AUG, coil_p=1.0, coil_falloff=(1.0, 1.0)))
    for img in y[:, 0]:
        assert abs(float(img.mean())) < 1e-4 and abs(float(img.std()) - 1) < 1e-3
        # a smooth falloff: the brightest and darkest border columns or rows differ clearly
        edges = torch.stack([img[:, 0].mean(), img[:, -1].mean(), img[0].mean(), img[-1].mean()])
        assert float(edges.max() - edges.min()) > 1.0


def test_offresonance_bands_draw_a_thin_dark_band_through_the_centre():
    from dataclasses import replace

    from cmr_atlas.nets.augment import LANDMARK_AUG, intensity, offresonance_bands

    ramp = torch.linspace(1.0, 2.0, 64)[:, None].expand(64, 64)  # noise-free: the band is all that changes
    x = ((ramp - ramp.mean()) / ramp.std()).expand(6, 1, 64, 64).clone()
    assert torch.equal(offresonance_bands(x, np.random.default_rng(0), replace(LANDMARK_AUG, band_p=0.0)), x)
    # off by default: the intensity augmentation's stream is that of the runs before the option
    a = intensity(x, np.random.default_rng(1), LANDMARK_AUG)
    b = intensity(x, np.random.default_rng(1), replace(LANDMARK_AUG, band_p=0.0))
    assert torch.equal(a, b)
    y = offresonance_bands(x, np.random.default_rng(0), replace(LANDMARK_AUG, band_p=1.0))
    r = torch.linspace(-1, 1, 64)
    central = (r[:, None].abs() < 0.5) & (r[None, :].abs() < 0.5)
    for img, ref in zip(y[:, 0], x[:, 0]):
        assert abs(float(img.mean())) < 1e-4 and abs(float(img.std()) - 1) < 1e-3
        # what the band took: the residual of the best affine fit to the unbanded image
        design = torch.stack([ref.flatten(), torch.ones(ref.numel())], 1)
        coef = torch.linalg.lstsq(design, img.flatten()[:, None]).solution
        dark = (img.flatten() - (design @ coef)[:, 0] < -0.5).reshape(img.shape)
        assert 0.005 < float(dark.float().mean()) < 0.3  # a band, not a shading of the whole image
        assert bool((dark & central).any())  # through the middle of the grid, where the heart is


def test_breathing_ghosts_smear_along_phase_encode_and_keep_the_image_in_place():
    from dataclasses import replace

    from cmr_atlas.nets.augment import LANDMARK_AUG, breathing_ghosts, intensity

    n = 64
    rr, cc = np.mgrid[0:n, 0:n]
    disk = ((rr - 30) ** 2 + (cc - 36) ** 2 < 8**2).astype(np.float32)  # a bright disk, no noise
    x = torch.from_numpy((disk - disk.mean()) / disk.std()).expand(8, 1, n, n).clone()
    a = intensity(x, np.random.default_rng(1), LANDMARK_AUG)  # off by default: the stream of the runs before
    assert torch.equal(a, intensity(x, np.random.default_rng(1), replace(LANDMARK_AUG, motion_p=0.0)))
    cfg = replace(LANDMARK_AUG, motion_p=1.0, motion_px=(3.0, 6.0))
    y = breathing_ghosts(x, np.random.default_rng(0), cfg)
    still = breathing_ghosts(x, np.random.default_rng(0), replace(cfg, motion_px=(0.0, 0.0)))
    assert torch.allclose(still, x, atol=1e-3)  # no displacement: the image as it was (whitened again)
    far = torch.from_numpy(((rr - 30) ** 2 + (cc - 36) ** 2 > 14**2))
    for img in y[:, 0]:
        assert abs(float(img.mean())) < 1e-4 and abs(float(img.std()) - 1) < 1e-3
        # ghosts: signal where the disk is not, beyond what the blur of its edge gives
        assert float((img - img.min())[far].sum()) > 0.02 * float((img - img.min()).sum())
        # the disk stays about where its centre line puts it (its brightest pixel within 3 px)
        r, c = np.unravel_index(int(torch.argmax(img)), img.shape)
        assert np.hypot(r - 30, c - 36) < 8 + 3


def test_partial_volume_targets_feed_the_loss_and_validation_scores_the_centre_points(ring_exam):
    """``partial_volume``: the targets come from its points and amplitudes (training and
    validation loss); the detection metrics still score ``samples.points``."""
    from functools import partial

    from cmr_atlas.cine.train_models import decode_points
    from cmr_atlas.nets.heatmaps import gaussian_targets
    from cmr_atlas.nets.train import train_heatmap as loop

    s = _ring_samples(ring_exam)
    pts = np.full((len(s), 1, 2), np.nan, np.float32)
    pts[::2, 0] = 16.0
    lm = Samples(s.images, s.exam, s.view, s.exam_ids, points=pts)
    pv_points = np.full_like(pts, 12.0)
    amplitude = np.full((len(s), 1), 0.5, np.float32)
    seen = []

    def targets(p, size, amplitude=None):
        seen.append((p.clone(), None if amplitude is None else amplitude.clone()))
        return gaussian_targets(p, size, 1.5, amplitude)

    cfg = TrainConfig(max_epochs=1, batch_size=4, steps_per_epoch=1, val_fraction=0.25, seed=5)
    _, rep = loop(lm, cfg, targets, partial(decode_points, absent_threshold=0.1), 3.0, base=4, levels=2,
                           partial_volume=(pv_points, amplitude))
    assert seen and all(a is not None and torch.all(a == 0.5) for _, a in seen)
    val_points = seen[-1][0]  # validation: the partial-volume points, none absent
    assert torch.all(val_points == 12.0)
    assert 0.0 <= rep["val_metrics"]["detection_rate"] <= 1.0  # scored against samples.points
    seen.clear()
    loop(lm, cfg, targets, partial(decode_points, absent_threshold=0.1), 3.0, base=4, levels=2)
    assert all(a is None for _, a in seen) and torch.isnan(seen[-1][0]).any()
