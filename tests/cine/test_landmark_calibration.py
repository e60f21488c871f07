"""Calibrated landmark decoding (issue 16): per-landmark absent thresholds chosen on validation
exams and stored in the card, and test-time rotations averaged on the network grid."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from cmr_atlas.cine.landmark_calibration import GRID, calibrate, card_decode, choose_threshold, errors, exam_seed
from cmr_atlas.nets.heatmaps import card_rotations, card_thresholds, decode_batch, rotate_maps, rotation_averaged_probs


def test_errors_count_misses_false_positives_and_far_points():
    conf = np.array([0.5, 0.05, 0.3, 0.2])
    present = np.array([True, True, False, True])
    correct = np.array([True, True, True, False])  # the last one is reported far from the truth
    # at 0.1: the 0.05 landmark missed, the absent one reported, the far one wrong -> 3
    # at 0.4: missed 0.05 and 0.2 (the far one, now not reported: a miss, still one error) -> 2
    # at 0.01: all reported: the absent one and the far one -> 2
    assert errors(conf, present, correct, np.array([0.1, 0.4, 0.01])).tolist() == [3, 2, 2]


def test_threshold_is_centred_between_the_classes_in_log_probability():
    rng = np.random.default_rng(0)
    present = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    conf = np.r_[rng.uniform(0.2, 0.9, 50), rng.uniform(0.0, 0.002, 50)]
    t = choose_threshold(conf, present, np.ones(100, bool))
    assert conf[~present].max() < t < conf[present].min()
    lo, hi = conf[~present].max(), conf[present].min()
    assert abs(np.log(t) - 0.5 * (np.log(lo) + np.log(hi))) < np.log(GRID[1] / GRID[0]) * 1.01  # one grid step


def test_threshold_follows_the_classes_not_the_default():
    """Peaks of absent landmarks up to 0.3 (a network that is sure of wrong things) push the
    threshold above them; a network whose present peaks sit at 0.01-0.05 gets one below 0.1."""
    present = np.r_[np.ones(40, bool), np.zeros(40, bool)]
    high = choose_threshold(np.r_[np.linspace(0.5, 0.9, 40), np.linspace(0.01, 0.3, 40)], present, np.ones(80, bool))
    low = choose_threshold(np.r_[np.linspace(0.01, 0.05, 40), np.linspace(1e-4, 5e-3, 40)], present, np.ones(80, bool))
    assert 0.3 < high < 0.5 and 0.005 < low < 0.01


def _records(seed: int) -> pd.DataFrame:
    rows = []
    for i in range(20):
        for name, conf_p, conf_a in (("lv_centre", 0.6, 0.001), ("rv_insert_anterior", 0.04, 0.0005)):
            rows.append({"exam_id": f"CLN{seed}-{i:04d}", "sequence": "cine_ssfp", "view": "sax", "landmark": name,
                         "slice": 0, "frame": 0, "confidence": conf_p, "truth_present": True, "auto_truth": 1.0,
                         "auto_obs1": 2.0})
            rows.append({"exam_id": f"CLN{seed}-{i:04d}", "sequence": "cine_ssfp", "view": "sax", "landmark": name,
                         "slice": 1, "frame": 0, "confidence": conf_a, "truth_present": False, "auto_truth": np.nan,
                         "auto_obs1": np.nan})
    return pd.DataFrame(rows)


def test_calibrate_per_landmark_and_refuse_test_seeds():
    table = calibrate(_records(940123)).set_index("landmark")
    assert 0.001 < table.loc["lv_centre", "threshold"] < 0.6
    assert 0.0005 < table.loc["rv_insert_anterior", "threshold"] < 0.04  # the default 0.1 would miss every one
    assert table.loc["rv_insert_anterior", "errors_at_0.1"] == 20 and table.loc["rv_insert_anterior", "errors"] == 0
    with pytest.raises(ValueError, match="930001"):
        calibrate(_records(930001))
    assert exam_seed("SYN30001-0003") == 30001 and exam_seed("CLN940123-0001") == 940123


def test_card_thresholds_by_sequence_view_and_landmark_with_the_config_fallback():
    card = {"decode": card_decode(calibrate(_records(940123)), [-20.0, 0.0, 20.0], [940123], "")}
    names = ("rv_insert_anterior", "rv_insert_posterior", "lv_centre")
    t = card_thresholds(card, "cine_ssfp", "sax", names, 0.1)
    assert t[0] < 0.04 and t[1] == 0.1 and t[2] < 0.6  # posterior not calibrated: the fallback
    assert card_thresholds(card, "cine_gre", "sax", names, 0.1).tolist() == [0.1] * 3  # not calibrated on GRE
    assert card_thresholds(card, None, "sax", names, 0.2).tolist() == [0.2] * 3  # sequence not known
    assert card_thresholds({}, "cine_ssfp", "sax", names, 0.1).tolist() == [0.1] * 3
    assert card_rotations(card) == (-20.0, 0.0, 20.0) and card_rotations({}) == (0.0,)


class _FixedPeaks(torch.nn.Module):
    """A SAX 'network' whose softmax has a peak of about ``peaks[k]`` for landmark k on every image."""

    def __init__(self, peaks):
        super().__init__()
        self.peaks = peaks

    def forward(self, x):
        n, _, h, w = x.shape
        logits = torch.zeros(n, 1 + len(self.peaks), h, w)
        logits[:, 0] = 8.0  # background dominates everywhere ...
        for k, p in enumerate(self.peaks):  # ... but at one pixel per landmark, where the peak is p
            logits[:, 1 + k, 20 + 10 * k, 30] = 8.0 + float(np.log(p / (1 - p)))
        return logits


def test_detect_landmarks_uses_the_cards_thresholds_for_the_images_sequence():
    from cmr_atlas.cine.inference import Models, detect_landmarks
    from cmr_atlas.core.geometry import SlicePlane
    from cmr_atlas.core.imagecache import ExamImages

    names = ["rv_insert_anterior", "rv_insert_posterior", "lv_centre"]
    card = {"input": {"spacing_mm": 1.5, "size": 64}, "landmarks_by_view": {"sax": names},
            "decode": {"absent_threshold": {"cine_ssfp": {"sax": {"rv_insert_anterior": 0.02, "lv_centre": 0.5}}}}}
    net = _FixedPeaks([0.05, 0.05, 0.3])
    models = Models(None, {}, "heatmap", {"sax": (net, card), "lax": (net, {**card, "views": []})},
                    torch.device("cpu"), None)
    plane = SlicePlane.centred(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (1.5, 1.5), (64, 64))
    images = ExamImages("e", np.random.default_rng(0).normal(size=(1, 1, 64, 64)).astype(np.float32), [plane],
                        np.zeros(1))

    def present(sequence):
        lm = detect_landmarks(images, models, [0], absent_threshold=0.1, batch=4,
                              sequences=None if sequence is None else {"sax": sequence})
        return dict(zip(lm["landmark"], lm["present"]))

    # bSSFP: anterior 0.05 >= its 0.02; posterior not calibrated: 0.05 < the config's 0.1; centre 0.3 < 0.5
    assert present("cine_ssfp") == {"rv_insert_anterior": True, "rv_insert_posterior": False, "lv_centre": False}
    # GRE (not calibrated) and an unknown sequence: the config's 0.1 for every landmark
    assert present("cine_gre") == present(None) == {"rv_insert_anterior": False, "rv_insert_posterior": False,
                                                    "lv_centre": True}


def test_lv_centre_from_the_segmented_cavity_where_the_heatmap_finds_none():
    """A SAX slice whose heatmap has no LV centre but whose segmentation has a plausible cavity gets
    the cavity's centroid (the truth's definition); other landmarks and implausible masks do not."""
    from cmr_atlas.cine.inference import Models, cavity_centres, detect_landmarks
    from cmr_atlas.core.geometry import SlicePlane
    from cmr_atlas.core.imagecache import ExamImages
    from cmr_atlas.core.vocab import CAVITY, MYO

    masks = np.zeros((2, 1, 64, 64), np.uint8)
    masks[:, 0, 26:44, 16:34] = MYO
    masks[:, 0, 30:40, 20:30] = CAVITY  # centroid (34.5, 24.5)
    centres = cavity_centres(masks, np.array([[True], [False]]))  # slice 1: QC not plausible
    assert np.allclose(centres[0, 0], (34.5, 24.5)) and np.isnan(centres[1, 0]).all()

    names = ["rv_insert_anterior", "rv_insert_posterior", "lv_centre"]
    card = {"input": {"spacing_mm": 1.5, "size": 64}, "landmarks_by_view": {"sax": names}}
    net = _FixedPeaks([0.05, 0.05, 0.01])  # nothing reaches 0.1
    models = Models(None, {}, "heatmap", {"sax": (net, card), "lax": (net, {**card, "views": []})},
                    torch.device("cpu"), None)
    plane = SlicePlane.centred(np.zeros(3), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]), (1.5, 1.5), (64, 64))
    images = ExamImages("e", np.zeros((2, 1, 64, 64), np.float32), [plane, plane], np.zeros(1))
    lm = detect_landmarks(images, models, [0], absent_threshold=0.1, batch=4, sax_lv_centres=centres)
    got = lm.set_index(["slice_index", "landmark"])
    assert got.loc[(0, "lv_centre"), "present"] and not got.loc[(1, "lv_centre"), "present"]
    assert np.isclose(got.loc[(0, "lv_centre"), "y_px"], 34.5) and np.isclose(got.loc[(0, "lv_centre"), "x_px"], 24.5)
    assert got.loc[(0, "lv_centre"), "confidence"] < 0.1  # the heatmap's own peak, kept
    assert not got.loc[(0, "rv_insert_anterior"), "present"]
    without = detect_landmarks(images, models, [0], absent_threshold=0.1, batch=4)
    assert not without["present"].any()
    # where the heatmap finds the LV centre, its point stays (the mask is only the fallback)
    found = Models(None, {}, "heatmap", {"sax": (_FixedPeaks([0.05, 0.05, 0.3]), card), "lax": (net, {**card, "views": []})},
                   torch.device("cpu"), None)
    lm = detect_landmarks(images, found, [0], absent_threshold=0.1, batch=4, sax_lv_centres=centres)
    row = lm[(lm["slice_index"] == 0) & (lm["landmark"] == "lv_centre")].iloc[0]
    assert row["present"] and abs(row["y_px"] - 40) < 0.5 and abs(row["x_px"] - 30) < 0.5


def _card(mdir, name, sequences, **extra):
    import json

    (mdir / f"{name}.json").write_text(json.dumps({"name": name, "sequences": sequences, **extra}))


def _table(sequence, view, landmark, threshold):
    return pd.DataFrame([{"sequence": sequence, "view": view, "landmark": landmark, "threshold": threshold,
                          "n_present": 10, "n_absent": 5, "errors": 1, "errors_at_0.1": 2}])


def test_write_decode_stores_thresholds_in_the_network_routed_to_each_sequence(tmp_path):
    import json

    from cmr_atlas.cine.landmark_calibration import write_decode

    _card(tmp_path, "lm_heatmap_sax", ["cine_gre", "cine_ssfp"])
    _card(tmp_path, "lm_heatmap_sax_ssfp", ["cine_ssfp"], serves="lm_heatmap_sax")
    _card(tmp_path, "lm_heatmap_lax", ["cine_gre", "cine_ssfp"])
    table = pd.concat([_table("cine_ssfp", "sax", "lv_centre", 0.05), _table("cine_gre", "sax", "lv_centre", 0.2),
                       _table("cine_ssfp", "lax_2ch", "apex", 0.03)], ignore_index=True)
    written = write_decode(table, tmp_path, [0.0], [940123], "test")
    assert sorted(p.stem for p in written) == ["lm_heatmap_lax", "lm_heatmap_sax", "lm_heatmap_sax_ssfp"]
    read = lambda n: json.loads((tmp_path / f"{n}.json").read_text()).get("decode")  # noqa: E731
    assert read("lm_heatmap_sax_ssfp")["absent_threshold"] == {"cine_ssfp": {"sax": {"lv_centre": 0.05}}}
    assert read("lm_heatmap_sax")["absent_threshold"] == {"cine_gre": {"sax": {"lv_centre": 0.2}}}
    assert read("lm_heatmap_lax")["absent_threshold"] == {"cine_ssfp": {"lax_2ch": {"apex": 0.03}}}

    # calibrating bSSFP again keeps the GRE thresholds of the same rotations ...
    write_decode(_table("cine_ssfp", "sax", "lv_centre", 0.07).replace("cine_ssfp", "cine_gre"), tmp_path, [0.0],
                 [940124], "again")
    assert read("lm_heatmap_sax")["absent_threshold"] == {"cine_gre": {"sax": {"lv_centre": 0.07}}}
    write_decode(_table("lge", "sax", "lv_centre", 0.01), tmp_path, [0.0], [941000], "lge")  # default: warns
    dec = read("lm_heatmap_sax")
    assert dec["absent_threshold"] == {"cine_gre": {"sax": {"lv_centre": 0.07}}, "lge": {"sax": {"lv_centre": 0.01}}}
    assert [r["sequence"] for r in dec["calibration"]["per_landmark"]] == ["cine_gre", "lge"]
    # ... and refuses to mix rotations in one card
    with pytest.raises(ValueError, match="rotations"):
        write_decode(_table("lge", "sax", "lv_centre", 0.01), tmp_path, [-20.0, 0.0, 20.0], [941000], "rot")


def test_set_rotations_writes_the_card_and_refuses_thresholds_of_other_rotations(tmp_path):
    import json

    from cmr_atlas.cine.landmark_calibration import set_rotations, write_decode
    from cmr_atlas.cli import main

    _card(tmp_path, "lm_heatmap_lax", ["cine_gre", "cine_ssfp"])
    assert main(["models", "rotations", "lm_heatmap_lax", "--deg=-15,0,15", "--note", "validation 940123",
                 "--models-dir", str(tmp_path)]) == 0
    dec = json.loads((tmp_path / "lm_heatmap_lax.json").read_text())["decode"]
    assert dec["rotations_deg"] == [-15.0, 0.0, 15.0] and dec["rotations_choice"]["note"] == "validation 940123"
    assert card_rotations({"decode": dec}) == (-15.0, 0.0, 15.0)  # what inference reads
    write_decode(_table("cine_ssfp", "lax_2ch", "apex", 0.03), tmp_path, [-15.0, 0.0, 15.0], [940123], "cal")
    set_rotations("lm_heatmap_lax", tmp_path, [-15, 0, 15], "same rotations: thresholds kept")
    assert json.loads((tmp_path / "lm_heatmap_lax.json").read_text())["decode"]["absent_threshold"]
    with pytest.raises(ValueError, match="calibrated with rotations"):
        set_rotations("lm_heatmap_lax", tmp_path, [0.0], "thresholds of other rotations")


def test_rotations_only_for_landmark_networks_and_kept_by_a_calibration_with_them(tmp_path):
    import json

    from cmr_atlas.cine.landmark_calibration import set_rotations, write_decode

    _card(tmp_path, "seg_sax", ["cine_gre"])
    with pytest.raises(ValueError, match="not a landmark heatmap network"):
        set_rotations("seg_sax", tmp_path, [-15.0, 0.0, 15.0], "no")
    _card(tmp_path, "lm_heatmap_sax", ["cine_gre"])
    set_rotations("lm_heatmap_sax", tmp_path, [-15.0, 0.0, 15.0], "chosen on validation")
    write_decode(_table("cine_gre", "sax", "lv_centre", 0.05), tmp_path, [-15.0, 0.0, 15.0], [940124], "cal")
    dec = json.loads((tmp_path / "lm_heatmap_sax.json").read_text())["decode"]
    assert dec["rotations_choice"]["note"] == "chosen on validation" and dec["absent_threshold"]


def test_neighbour_frames_into_sax_cards_kept_by_a_calibration(tmp_path):
    import json

    from cmr_atlas.cine.landmark_calibration import set_neighbour_frames, write_decode
    from cmr_atlas.cli import main
    from cmr_atlas.nets.heatmaps import card_neighbour_frames

    _card(tmp_path, "lm_heatmap_sax", ["cine_gre"], views=["sax"])
    _card(tmp_path, "lm_heatmap_lax", ["cine_gre"], views=["lax_2ch", "lax_4ch"])
    assert card_neighbour_frames(json.loads((tmp_path / "lm_heatmap_sax.json").read_text())) == 0
    assert main(["models", "neighbours", "lm_heatmap_sax", "--frames", "1", "--note", "validation 940124",
                 "--models-dir", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "lm_heatmap_sax.json").read_text())
    assert card_neighbour_frames(card) == 1 and card["decode"]["neighbour_frames_choice"]["note"] == "validation 940124"
    with pytest.raises(ValueError, match="SAX landmark networks"):
        set_neighbour_frames("lm_heatmap_lax", tmp_path, 1, "no SAX")
    # the command line: one line naming what is wrong, not a traceback
    for name, why in (("lm_heatmap_lax", "SAX landmark networks"), ("lm_heatmap_nosuch", "no model card")):
        with pytest.raises(SystemExit, match=why):
            main(["models", "neighbours", name, "--frames", "1", "--note", "x", "--models-dir", str(tmp_path)])
    # a calibration (made by decoding with the card's neighbours) keeps them; another count is then refused
    write_decode(_table("cine_gre", "sax", "lv_centre", 0.05), tmp_path, [0.0], [940124], "cal")
    assert card_neighbour_frames(json.loads((tmp_path / "lm_heatmap_sax.json").read_text())) == 1
    set_neighbour_frames("lm_heatmap_sax", tmp_path, 1, "same count: thresholds kept")
    with pytest.raises(ValueError, match="calibrated with neighbour_frames"):
        set_neighbour_frames("lm_heatmap_sax", tmp_path, 0, "thresholds of another count")


def test_zooms_into_cards_within_the_augmentation_and_kept_by_a_calibration(tmp_path):
    import json

    from cmr_atlas.cine.landmark_calibration import set_zooms, write_decode
    from cmr_atlas.cli import main
    from cmr_atlas.nets.heatmaps import card_zooms

    _card(tmp_path, "lm_heatmap_lax", ["cine_ssfp"], views=["lax_2ch", "lax_3ch", "lax_4ch"])
    assert card_zooms(json.loads((tmp_path / "lm_heatmap_lax.json").read_text())) == ()
    assert main(["models", "rotations", "lm_heatmap_lax", "--deg=-15,0,15", "--zooms", "0.87,1.15",
                 "--note", "validation 940123", "--models-dir", str(tmp_path)]) == 0
    card = json.loads((tmp_path / "lm_heatmap_lax.json").read_text())
    assert card_zooms(card) == (0.87, 1.15) and card["decode"]["zooms_choice"]["note"] == "validation 940123"
    with pytest.raises(ValueError, match="augmentation"):
        set_zooms("lm_heatmap_lax", tmp_path, [0.5], "beyond what the network saw in training")
    # a calibration (decoded with the card's zooms) keeps them; other zooms are then refused
    write_decode(_table("cine_ssfp", "lax_3ch", "apex", 0.05), tmp_path, [-15.0, 0.0, 15.0], [940123], "cal")
    assert card_zooms(json.loads((tmp_path / "lm_heatmap_lax.json").read_text())) == (0.87, 1.15)
    with pytest.raises(ValueError, match="calibrated with zooms"):
        set_zooms("lm_heatmap_lax", tmp_path, [], "thresholds of other zooms")
    with pytest.raises(SystemExit, match="calibrated with zooms"):
        main(["models", "rotations", "lm_heatmap_lax", "--deg=-15,0,15", "--zooms=", "--note", "x",
              "--models-dir", str(tmp_path)])
