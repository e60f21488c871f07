import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from cmr_atlas.cine.autoguide import auto_guide_points
from cmr_atlas.cine.guidepoints import GUIDE_POINTS
from cmr_atlas.core.config import default
from cmr_atlas.core.imagecache import ExamImages, save_exam_images
from cmr_atlas.cine.inference import LANDMARKS_AUTO, Models, infer_exam, load_models, run_shard
from cmr_atlas.nets.heatmaps import gaussian_targets
from cmr_atlas.cine.landmark_measures import LANDMARK_MEASURES
from cmr_atlas.nets.preprocess import Grid, to_net_px
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.unet import UNet
from cmr_atlas.cine.segmentation import lax_frame
from cmr_atlas.core.tables import conform
from tests.cine.conftest import MODELS_DIR
from tests.shared import shared_object

GRID = Grid(1.5, 64)
CARD = {"input": GRID.to_dict()}
# the config's default inference settings (read from the schema, not copied)
INFER = {"ed_method": default("segmentation.ed_frame"), "absent_threshold": default("landmarks.absent_threshold"),
         "batch": default("inference.batch")}


class RingOracle(nn.Module):
    """Stands in for the segmentation U-Net: bright = cavity, dark = myocardium (whitened input)."""

    def forward(self, x):
        cav = (x > 1.0).float()
        myo = (x < -0.8).float()
        bg = 1 - cav - myo
        return torch.log(torch.cat([bg, myo, cav, torch.zeros_like(bg)], 1).clamp_min(1e-4))


class FixedPeak(nn.Module):
    """Heatmap model whose landmark 1 sits at a fixed network pixel; the others are absent."""

    def __init__(self, rc, k=3):
        super().__init__()
        self.rc, self.k = rc, k

    def forward(self, x):
        pts = torch.full((x.shape[0], self.k, 2), float("nan"))
        pts[:, 0] = torch.tensor(self.rc)
        return torch.log(gaussian_targets(pts, x.shape[-1], 2.0).clamp_min(1e-4))


def _models():
    peak = FixedPeak([20.3, 40.6])
    return Models(RingOracle(), CARD, "heatmap", {"lax": (peak, CARD), "sax": (peak, CARD)}, torch.device("cpu"), None)


def test_infer_exam_masks_phases_and_landmark_geometry(ring_exam):
    images, _ = ring_exam(n_slices=3, n_frames=4, noise=False)
    res = infer_exam(images, _models(), **(INFER | {"batch": 5}))
    assert res.masks.shape == images.sax.shape
    assert res.phases["ed_frame"] == 0 and res.phases["es_frame"] == 3  # cavity shrinks over time
    assert res.phases["edv_ml"] > res.phases["esv_ml"] > 0
    qc = res.qc.set_index(["slice_index", "frame"])
    assert qc.loc[(0, 0), "flag"] == "" and qc.loc[(2, 0), "flag"] == "empty"
    assert qc.loc[(0, 0), "cavity_area_mm2"] == pytest.approx(np.pi * 18**2, rel=0.1)
    conform(res.landmarks, LANDMARKS_AUTO)
    lm = res.landmarks
    assert set(lm["frame"]) == {0, 3} and len(lm) == 3 * 2 * 3
    hit = lm[lm["present"] & (lm["landmark"] != "lv_centre")]
    assert set(hit["landmark"]) == {"rv_insert_anterior"} and (~lm[lm["landmark"] == "apex"]["present"]).all()
    # the heatmap has no LV centre; on the slices with a plausible mask it is the cavity's centroid
    centre = lm[(lm["landmark"] == "lv_centre") & lm["present"]]
    assert sorted(set(centre["slice_index"])) == [0, 1] and (centre["confidence"] < 0.1).all()
    ctr = np.array([(images.sax_planes[0].shape[0] - 1) / 2 + 2, (images.sax_planes[0].shape[1] - 1) / 2 - 3])
    assert np.allclose(centre[["y_px", "x_px"]].to_numpy(float), ctr, atol=0.5)
    off = infer_exam(images, _models(), **(INFER | {"batch": 5}), lv_centre_from_mask=False).landmarks
    assert not off[off["landmark"] == "lv_centre"]["present"].any()
    # pixel position maps back exactly: network (20.3, 40.6) -> original (y, x) -> patient mm
    plane = images.sax_planes[1]
    r = hit[hit["slice_index"] == 1].iloc[0]
    assert np.allclose(to_net_px(np.array([r.y_px, r.x_px]), plane, GRID), [20.3, 40.6], atol=0.05)
    assert np.allclose(plane.pixel_to_patient(np.array([r.y_px, r.x_px])), [r.x_mm, r.y_mm, r.z_mm])


def test_auto_guide_points_lie_on_the_ring(ring_exam):
    images, _ = ring_exam(n_slices=3, n_frames=4, noise=False)
    res = infer_exam(images, _models(), **INFER)
    gp = auto_guide_points(images, res.masks, res.phases, res.landmarks, res.qc, n_points=40)
    conform(gp, GUIDE_POINTS)
    endo = gp[(gp["surface"] == "endo") & (gp["phase"] == "ED") & (gp["slice_index"] == 0)]
    assert len(endo) == 40 and (gp["source"] == "auto").all()
    plane = images.sax_planes[0]
    rc, dist = plane.patient_to_pixel(endo[["x_mm", "y_mm", "z_mm"]].to_numpy())
    assert np.allclose(dist, 0, atol=1e-6)
    ctr = np.array([(plane.shape[0] - 1) / 2 + 2, (plane.shape[1] - 1) / 2 - 3])
    radius_mm = np.hypot(*((rc - ctr) * plane.pixel_spacing_mm).T)
    assert np.all(np.abs(radius_mm - 18) < 2.0)
    marks = gp[gp["kind"] == "landmark"]
    assert len(marks) and (marks[marks["landmark"] != "lv_centre"]["weight"] > 0.5).all()
    # weight = confidence: the LV centres taken from the masks (no heatmap peak) weigh next to nothing
    from_mask = marks[marks["landmark"] == "lv_centre"]
    assert len(from_mask) and (from_mask["weight"] < 0.1).all()
    assert 2 not in set(gp[gp["kind"] == "contour"]["slice_index"])  # empty slice excluded


def test_lax_frame_mapping():
    assert lax_frame(5, 20, 20) == 5 and lax_frame(19, 20, 10) == 0
    assert lax_frame(10, 20, 30) == 15


def test_run_shard_survives_a_bad_exam_and_loads_checked_models(tmp_path, ring_exam):
    images, _ = ring_exam(n_slices=2, n_frames=3)
    save_exam_images(images, tmp_path / "cache" / "X1.npz")
    mdir = tmp_path / "models"
    save_model(UNet(1, 4, 4, 2), {"name": "seg_sax", "input": GRID.to_dict()}, mdir)
    for m in ("lax", "sax"):
        save_model(UNet(1, 4, 4, 2), {"name": f"lm_heatmap_{m}", "input": GRID.to_dict()}, mdir)
    models = load_models(mdir, method="heatmap", device="cpu", precision="float32")
    out = tmp_path / "out"
    outcomes = run_shard(["X1", "MISSING"], tmp_path / "cache", models, landmarks_path=out / "landmarks.parquet",
                         qc_path=out / "segmentation_qc.parquet", phases_path=out / "phases.parquet",
                         masks_dir=out / "masks", status_path=out / "status" / "infer.parquet",
                         ed_method=default("segmentation.ed_frame"),
                         absent_threshold=default("landmarks.absent_threshold"), batch=default("inference.batch"))
    status = {o.exam_id: o.status for o in outcomes}
    assert status["X1"] == "ok" and status["MISSING"] != "ok"
    ph = pd.read_parquet(tmp_path / "out" / "phases.parquet")
    assert list(ph["exam_id"]) == ["X1"]
    assert (tmp_path / "out" / "masks" / "X1.npz").is_file()


def test_infer_cli_writes_tables_and_auto_guide_points(tmp_path, ring_exam):
    import argparse

    from cmr_atlas.cli import infer as inference_cli

    parser = argparse.ArgumentParser()
    inference_cli.add_arguments(parser)
    main = lambda argv: inference_cli.run(parser.parse_args(argv[1:]))  # noqa: E731

    images, _ = ring_exam(n_slices=2, n_frames=3)
    save_exam_images(images, tmp_path / "cache" / "X1.npz")
    pd.DataFrame({"exam_id": ["X1", "BAD"], "status": ["ok", "failed"]}).to_parquet(tmp_path / "exams.parquet")
    mdir = tmp_path / "models"
    for name in ("seg_sax", "lm_heatmap_lax", "lm_heatmap_sax"):
        save_model(UNet(1, 4, 4, 2), {"name": name, "input": GRID.to_dict()}, mdir)
    rc = main(["infer", "--cache", str(tmp_path / "cache"), "--exams", str(tmp_path / "exams.parquet"),
               "--out", str(tmp_path / "shard"), "--models-dir", str(mdir), "--device", "cpu",
               "--guide-points", str(tmp_path / "shard" / "guide_points.parquet")])
    assert rc == 0
    gp = pd.read_parquet(tmp_path / "shard" / "guide_points.parquet")
    conform(gp, GUIDE_POINTS)  # an untrained model may find nothing: the table still exists
    assert set(pd.read_parquet(tmp_path / "shard" / "phases.parquet")["exam_id"]) == {"X1"}
    conform(pd.read_parquet(tmp_path / "shard" / "landmark_measures.parquet"), LANDMARK_MEASURES)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU (none on the CI machine)")
def test_cuda_autocast_agrees_with_cpu_on_the_shipped_models():
    """The mixed-precision CUDA path gives the CPU path's masks, phases and landmarks."""
    from cmr_atlas.synth.mesa.cohort import generate_exam

    images = generate_exam(30001, 0).images
    cpu = infer_exam(images, load_models(MODELS_DIR, method="heatmap", device="cpu", precision="float32"), **INFER)
    gpu_models = load_models(MODELS_DIR, method="heatmap", device="cuda", precision="auto")
    assert gpu_models.device.type == "cuda"
    gpu = infer_exam(images, gpu_models, **INFER)
    assert (cpu.masks == gpu.masks).mean() > 0.995
    assert (cpu.phases["ed_frame"], cpu.phases["es_frame"]) == (gpu.phases["ed_frame"], gpu.phases["es_frame"])
    a, b = (r.landmarks.sort_values(["view", "slice_index", "frame", "landmark"]).reset_index(drop=True)
            for r in (cpu, gpu))
    both = a["present"] & b["present"]
    d = np.linalg.norm(a.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy() - b.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy(), axis=1)
    assert (a["present"] == b["present"]).mean() > 0.98 and np.median(d) < 0.5


def _three_slices_one_lax(full: ExamImages) -> ExamImages:
    """Base, mid and apical SAX slices and the 4CH cine of an exam: every network's path (SAX
    segmentation and landmarks, long-axis landmarks) at about a fifth of the whole exam's cost."""
    keep = [1, full.n_slices // 2, full.n_slices - 3]
    return ExamImages(full.exam_id, full.sax[keep], [full.sax_planes[i] for i in keep], full.trigger_times_ms,
                      {"lax_4ch": full.lax["lax_4ch"]}, {"lax_4ch": full.lax_planes["lax_4ch"]})



@pytest.fixture(scope="module")
def held_out_images(tmp_path_factory) -> ExamImages:
    """:func:`_three_slices_one_lax` of a held-out legacy exam (seed 30001, the accuracy benchmark's)."""
    from cmr_atlas.synth.mesa.cohort import generate_exam

    return shared_object(tmp_path_factory, "legacy_images_30001_1",
                         lambda: _three_slices_one_lax(generate_exam(30001, 1).images))


@pytest.fixture(scope="module")
def float32_result(held_out_images):
    """The shipped networks in PyTorch float32 on :func:`held_out_images`: the reference."""
    return infer_exam(held_out_images, load_models(MODELS_DIR, method="heatmap", device="cpu", precision="float32"),
                      **INFER)


@pytest.mark.slow
@pytest.mark.parametrize("precision", ["bfloat16", "int8"])
def test_reduced_precision_inference_agrees_with_float32_on_the_shipped_models(precision, held_out_images,
                                                                              float32_result):
    """The CPU's bf16 autocast path (precision auto on AVX-512 BF16 / AMX CPUs) and the shipped int8
    graphs (precision int8, ONNX Runtime) give the float32 path's masks, ED/ES frames and landmarks
    on a held-out synthetic exam."""
    if precision == "int8":
        pytest.importorskip("onnxruntime")
    ref = float32_result
    models = load_models(MODELS_DIR, method="heatmap", device="cpu", precision=precision)
    assert ("int8" in models.runtime) == (precision == "int8")
    got = infer_exam(held_out_images, models, **INFER)
    assert (ref.masks == got.masks).mean() > 0.995
    assert (ref.phases["ed_frame"], ref.phases["es_frame"]) == (got.phases["ed_frame"], got.phases["es_frame"])
    assert abs(ref.phases["edv_ml"] - got.phases["edv_ml"]) < 0.02 * ref.phases["edv_ml"]
    a, b = (r.landmarks.sort_values(["view", "slice_index", "frame", "landmark"]).reset_index(drop=True)
            for r in (ref, got))
    both = a["present"] & b["present"]
    d = np.linalg.norm(a.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy() - b.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy(), axis=1)
    assert (a["present"] == b["present"]).mean() > 0.98 and np.median(d) < 0.5


@pytest.mark.slow
def test_onnx_runtime_inference_equals_pytorch_float32_on_the_shipped_models(held_out_images):
    """``inference.runtime: onnxruntime`` (the CPU default where installed) computes PyTorch's
    float32 function: the same masks, ED/ES frames, volumes and landmarks on a held-out exam."""
    pytest.importorskip("onnxruntime")
    images = held_out_images
    load = dict(method="heatmap", device="cpu", precision="float32")
    ort_models = load_models(MODELS_DIR, runtime="onnxruntime", **load)
    assert ort_models.runtime == "onnxruntime" and ort_models.dtype is None
    # the whole grid in both (ONNX Runtime's fixed-size graphs run no crop: nets.runtime.takes_any_size)
    ref = infer_exam(images, load_models(MODELS_DIR, runtime="torch", **load), **INFER, crop_margin_mm=0)
    got = infer_exam(images, ort_models, **INFER, crop_margin_mm=0)
    assert (ref.masks == got.masks).mean() > 0.9999
    assert ref.phases["ed_frame"] == got.phases["ed_frame"] and ref.phases["es_frame"] == got.phases["es_frame"]
    assert abs(ref.phases["edv_ml"] - got.phases["edv_ml"]) < 0.05
    a, b = (r.landmarks.sort_values(["view", "slice_index", "frame", "landmark"]).reset_index(drop=True)
            for r in (ref, got))
    assert (a["present"] == b["present"]).all()
    both = a["present"]
    d = np.linalg.norm(a.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy() - b.loc[both, ["x_mm", "y_mm", "z_mm"]].to_numpy(), axis=1)
    assert d.max() < 0.01


class PeakAtBrightest(nn.Module):
    """Heatmap model whose landmark 1 sits at the input's brightest pixel; the others are absent."""

    def forward(self, x):
        flat = x.flatten(1).argmax(1)
        pts = torch.full((x.shape[0], 3, 2), float("nan"))
        pts[:, 0, 0], pts[:, 0, 1] = (flat // x.shape[-1]).float(), (flat % x.shape[-1]).float()
        return torch.log(gaussian_targets(pts, x.shape[-1], 2.0).clamp_min(1e-4))


def test_sax_maps_are_averaged_over_the_cards_neighbour_frames(ring_exam):
    from cmr_atlas.cine.inference import detect_landmarks

    images, _ = ring_exam(n_slices=1, n_frames=5, noise=False)
    a, b = (12, 20), (40, 30)  # frame 2 shows a bright spot at a, frames 1 and 3 (its neighbours) at b
    sax = np.zeros_like(images.sax)
    sax[0, :, b[0], b[1]] = 1000.0
    sax[0, 2] = 0.0
    sax[0, 2, a[0], a[1]] = 1000.0
    images.sax = sax

    def found(k):
        card = {**CARD, "decode": {"neighbour_frames": k}}
        net = PeakAtBrightest()
        models = Models(RingOracle(), CARD, "heatmap", {"sax": (net, card)}, torch.device("cpu"), None)
        lm = detect_landmarks(images, models, [2], absent_threshold=0.1, batch=4)
        return lm[lm["present"]].set_index("landmark")

    alone, three = found(0), found(1)
    assert list(alone.index) == list(three.index) == ["rv_insert_anterior"]
    assert np.allclose(alone[["y_px", "x_px"]].to_numpy(float), [a], atol=1.0)
    # two of the three looks see b: the averaged map peaks there, at about two thirds of one look's peak
    assert np.allclose(three[["y_px", "x_px"]].to_numpy(float), [b], atol=1.0)
    assert three["confidence"].iloc[0] == pytest.approx(2 / 3 * alone["confidence"].iloc[0], rel=0.05)
    # a single-frame series (LGE, T1 map) has no neighbours: read alone whatever the card says
    one = ExamImages(images.exam_id, sax[:, 2:3], images.sax_planes, images.trigger_times_ms[:1])
    models = Models(RingOracle(), CARD, "heatmap", {"sax": (PeakAtBrightest(), {**CARD, "decode": {"neighbour_frames": 1}})},
                    torch.device("cpu"), None)
    lm = detect_landmarks(one, models, [0], absent_threshold=0.1, batch=4)
    assert np.allclose(lm[lm["present"]][["y_px", "x_px"]].to_numpy(float), [a], atol=1.0)


def test_long_axis_maps_are_averaged_over_neighbour_frames_whole_cine_or_not(ring_exam):
    """A long-axis card's ``decode.neighbour_frames`` averages each frame's maps with its neighbours':
    on the whole cine (the infer stage) by averaging the cine's own maps, on chosen frames (ED/ES)
    by running the neighbours too; both give the same landmarks, cyclic at the cine's ends."""
    from cmr_atlas.cine.inference import detect_landmarks

    images, _ = ring_exam(n_slices=1, n_frames=5, noise=False)
    a, b = (12, 20), (40, 30)  # frame 2 shows a bright spot at a, every other frame at b
    cine = np.zeros_like(images.sax[0])
    cine[:, b[0], b[1]] = 1000.0
    cine[2] = 0.0
    cine[2, a[0], a[1]] = 1000.0
    images.lax = {"lax_4ch": cine}
    images.lax_planes = {"lax_4ch": images.sax_planes[0]}

    def found(k, every_lax_frame):
        card = {**CARD, "views": ["lax_4ch"], "decode": {"neighbour_frames": k}}
        nets = {"lax": (PeakAtBrightest(), card), "sax": (FixedPeak([20.3, 40.6]), CARD)}
        models = Models(RingOracle(), CARD, "heatmap", nets, torch.device("cpu"), None)
        lm = detect_landmarks(images, models, [0, 2], absent_threshold=0.1, batch=4, every_lax_frame=every_lax_frame)
        lm = lm[(lm["view"] == "lax_4ch") & lm["present"]]
        assert list(lm["landmark"].unique()) == ["mv_septal"]
        return lm.set_index("frame")[["y_px", "x_px", "confidence"]].astype(float)

    alone = found(0, True)
    assert np.allclose(alone.loc[2, ["y_px", "x_px"]], a, atol=1.0)
    for every in (True, False):
        three = found(1, every)
        assert sorted(three.index) == ([0, 1, 2, 3, 4] if every else [0, 2])
        # frame 2: two of its three looks see b; frame 0 (neighbours 4 and 1, cyclic): all three see b
        assert np.allclose(three.loc[2, ["y_px", "x_px"]], b, atol=1.0)
        assert three.loc[2, "confidence"] == pytest.approx(2 / 3 * alone.loc[2, "confidence"], rel=0.05)
        assert three.loc[0, "confidence"] == pytest.approx(alone.loc[0, "confidence"], rel=0.01)
    whole, chosen = found(1, True), found(1, False)
    assert np.allclose(whole.loc[[0, 2]].to_numpy(), chosen.loc[[0, 2]].to_numpy(), atol=1e-4)
