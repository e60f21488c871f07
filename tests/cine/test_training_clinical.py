"""Training data from the clinical exams' bSSFP cine (issue 16): 3CH landmarks, truth for the
clinical accuracy benchmark, the model card's sequences."""

from functools import partial

import numpy as np
import pytest

from cmr_atlas.cine.landmarks import MODEL_LANDMARKS
from cmr_atlas.nets.heatmaps import gaussian_targets
from cmr_atlas.cine.train_models import data_sequences, decode_points
from cmr_atlas.cine.training import clinical_cine, exam_samples
from cmr_atlas.nets.samples import VIEW_CODES
from cmr_atlas.core.vocab import CAVITY, MYO
from cmr_atlas.nets.train import TrainConfig, train_heatmap


@pytest.fixture(scope="module")
def clinical(clinical_seed):
    return clinical_cine(clinical_seed, 0, 0.0, observers=1)


def test_clinical_cine_truth_and_samples_cover_3ch(clinical):
    images, truth = clinical
    assert set(images.lax) == {"lax_2ch", "lax_3ch", "lax_4ch"} and images.sax.shape[0] >= 8
    ex = truth["exams"].iloc[0]
    assert ex["edv_ml"] > ex["esv_ml"] > 0 and 40 < ex["ef_pct"] < 85 and ex["ed_frame"] != ex["es_frame"]
    assert 60 < ex["lv_mass_g"] < 300
    assert set(truth["landmarks"]["sequence"]) == {"cine_ssfp"}
    s = exam_samples((images, truth["contours"], truth["landmarks"]), np.random.default_rng(0), 1)
    lax = s["lm_lax"]
    three = lax.points[lax.view == VIEW_CODES["lax_3ch"]]
    # every 3CH image has its three landmarks, inside the network field of view
    assert len(three) and np.isfinite(three).all() and ((three > 0) & (three < 127)).all()
    assert lax.points.shape[1] == len(MODEL_LANDMARKS["lax"])
    seg = s["seg"]
    assert (seg.labels == MYO).any() and (seg.labels == CAVITY).any() and not (seg.labels > 2).any()


def test_card_sequences_from_data_provenance():
    assert data_sequences({"n_exams": 3}) == ["cine_gre"]  # folders built before the clinical protocol
    pooled = {"parts": [{"sequences": ["cine_gre"]}, {"sequences": ["cine_ssfp"]}]}
    assert data_sequences(pooled) == ["cine_gre", "cine_ssfp"]


def test_bf16_autocast_training_step_runs_and_records_it(clinical):
    images, truth = clinical
    lm = exam_samples((images, truth["contours"], truth["landmarks"]), np.random.default_rng(1), 0)["lm_sax"]
    lm.exam_ids = ["a"]
    lm = type(lm).concat([lm, lm])  # two exams: one trains, one validates
    cfg = TrainConfig(max_epochs=1, batch_size=4, steps_per_epoch=1, seed=1, bf16_autocast=True)
    _, rep = train_heatmap(lm, cfg, partial(gaussian_targets, sigma_px=2.0),
                               partial(decode_points, absent_threshold=0.1), 1.5, base=4, levels=2)
    assert rep["train_config"]["bf16_autocast"] and np.isfinite(rep["history"][0]["train_loss"])


def test_data_folders_with_an_older_3ch_channel_order_are_refused(tmp_path):
    import json

    from cmr_atlas.cine.landmarks import landmark_names
    from cmr_atlas.cine.training import load_data
    from cmr_atlas.nets.samples import Samples

    grid = {"spacing_mm": 1.5, "size": 8}
    s = Samples(np.zeros((2, 8, 8), np.float16), np.zeros(2, np.int32),
                np.array([VIEW_CODES["lax_2ch"], VIEW_CODES["lax_3ch"]], np.int8), ["e"],
                points=np.ones((2, 3, 2), np.float32))
    for name, channels in (("old", None), ("new", {"lax_3ch": list(landmark_names("lax_3ch"))})):
        d = tmp_path / name
        s.save(d / "lm_lax.npz")
        info = {"n_exams": 1, "images": {"lm_lax": 2}, "segmentation_grid": grid, "landmark_grid": grid}
        (d / "data.json").write_text(json.dumps(info | ({"channels_by_view": channels} if channels else {})))
    with pytest.raises(SystemExit, match="older channel order"):
        load_data([tmp_path / "old"], "lm_lax")
    assert len(load_data([tmp_path / "new"], "lm_lax")[0]) == 2


def test_calibration_cohorts_of_a_network_trained_on_one_data_folder():
    # one folder's provenance has no "parts" (it is its own): the quantiser read only pooled cards
    from cmr_atlas.cine.quantize_models import training_cohorts
    one = {"name": "seg_sax_ssfp", "training_data": {"protocol": "clinical", "cohort_seed": 920000}}
    assert training_cohorts(one) == [("clinical", 920000, 0.2)]
    pooled = {"name": "lm_heatmap_sax", "training_data": {"parts": [
        {"protocol": "mesa", "cohort_seed": 910000, "mi_fraction": 0.2}, {"protocol": "clinical", "cohort_seed": 920000}]}}
    assert training_cohorts(pooled) == [("mesa", 910000, 0.2), ("clinical", 920000, 0.2)]


def test_landmark_samples_on_a_1mm_grid_are_the_same_points_in_mm(clinical):
    # the paper's 1 mm inputs: the same landmarks, placed on the finer grid about the same centre
    from cmr_atlas.cine.training import LM_GRID
    from cmr_atlas.nets.preprocess import Grid

    images, truth = clinical
    exam = (images, truth["contours"], truth["landmarks"])
    fine = Grid(1.0, 192)
    coarse_s = exam_samples(exam, np.random.default_rng(3), 0)["lm_lax"]
    fine_s = exam_samples(exam, np.random.default_rng(3), 0, landmark_grid=fine)["lm_lax"]
    assert coarse_s.images.shape[1:] == (128, 128) and fine_s.images.shape[1:] == (192, 192)
    assert np.array_equal(coarse_s.view, fine_s.view)  # same frames and views drawn
    c_mm = (coarse_s.points - (LM_GRID.size - 1) / 2) * LM_GRID.spacing_mm
    f_mm = (fine_s.points - (fine.size - 1) / 2) * fine.spacing_mm
    assert np.isfinite(f_mm).sum() > 0 and np.array_equal(np.isfinite(c_mm), np.isfinite(f_mm))
    np.testing.assert_allclose(f_mm[np.isfinite(f_mm)], c_mm[np.isfinite(c_mm)], atol=1e-3)


def test_landmark_grids_the_u_net_cannot_take_are_refused(tmp_path):
    from cmr_atlas.cli import main

    for grid, match in ((["1.0", "100"], "multiple of 8"), (["0.5", "192"], "at least 150 mm"),
                        (["1.0", "191.5"], "whole number")):
        with pytest.raises(SystemExit, match=match):
            main(["train", "data", "--n-exams", "1", "--landmark-grid", *grid, "--out", str(tmp_path)])


def test_landmark_training_takes_the_data_folders_grid(tmp_path, monkeypatch):
    # a folder built on 1 mm: targets of the same width in mm, shifts of the same size in mm
    from cmr_atlas.cine import train_models as TM

    seen = []

    class Stop(Exception):
        pass

    def fake_train(samples, cfg, sigma_px, spacing_mm, **kwargs):
        seen.append((sigma_px, spacing_mm, kwargs["aug"].shift_px))
        raise Stop

    samples = type("S", (), {"meta": {"folder": np.zeros(2, int)}})()
    for grid, expected in (({"spacing_mm": 1.0, "size": 192}, (6.0, 1.0, 15.0)),
                           ({"spacing_mm": 1.5, "size": 128}, (4.0, 1.5, 10.0))):
        monkeypatch.setattr(TM, "load_data", lambda dirs, key, g=grid: (samples, {"landmark_grid": g}))
        monkeypatch.setattr(TM, "train_heatmap", fake_train)
        with pytest.raises(Stop):
            TM.train_model("lm_heatmap_lax", [tmp_path], tmp_path / "out", 1, 1, 0, 1, 2, 1)
        assert seen[-1] == pytest.approx(expected)


def test_breathing_share_is_for_generated_clinical_exams_only(tmp_path):
    from cmr_atlas.cli import main

    for args in (["--breathing-p", "0.5"], ["--protocol", "clinical", "--breathing-p", "1.5"]):
        with pytest.raises(SystemExit, match="breathing share"):
            main(["train", "data", "--n-exams", "1", *args, "--out", str(tmp_path)])


def test_more_breathing_cines_on_request(clinical_seed):
    """The same subject, heart and planes; with a share of 1 every long-axis cine ghosts."""
    images, truth = clinical_cine(clinical_seed, 1, 0.0, breathing_p=1.0)
    held, held_truth = clinical_cine(clinical_seed, 1, 0.0, breathing_p=0.0)
    assert truth["exams"].equals(held_truth["exams"])
    for view, img in images.lax.items():
        assert images.lax_planes[view].shape == held.lax_planes[view].shape
        # ghosts carry signal along phase-encode: the image differs from the held breath's by more than noise
        assert np.abs(img - held.lax[view]).mean() > 0.05 * np.abs(held.lax[view]).mean()
