"""Routing by sequence: the registry picks, for a task and a series' sequence, the network whose
model card lists that sequence (issue 16: bSSFP cine gets a segmentation network of its own, GRE
keeps the legacy one)."""

import logging

import numpy as np
import pytest
import torch

from cmr_atlas.cine.inference import SEG_TASK, Models, infer_exam, load_models
from cmr_atlas.core.config import default
from cmr_atlas.core.vocab import CAVITY, MYO
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.registry import ModelFileError, Routes, card_sequences, routes, save_model
from cmr_atlas.nets.unet import UNet

GRID = Grid(spacing_mm=2.0, size=64)
INFER = {"ed_method": default("segmentation.ed_frame"), "absent_threshold": default("landmarks.absent_threshold"),
         "batch": default("inference.batch")}


def _save(mdir, name, sequences=None, **extra):
    card = {"name": name, "input": GRID.to_dict(), **extra}
    if sequences is not None:
        card["sequences"] = sequences
    save_model(UNet(1, 4, 4, 2), card, mdir)


@pytest.fixture()
def models_dir(tmp_path):
    torch.manual_seed(0)
    _save(tmp_path, "seg_sax", ["cine_gre"])
    _save(tmp_path, "seg_sax_ssfp", ["cine_ssfp"], serves="seg_sax")
    # another task listing both sequences: not a segmentation route
    _save(tmp_path, "lm_heatmap_lax", ["cine_gre", "cine_ssfp"])
    _save(tmp_path, "lm_heatmap_sax", ["cine_gre", "cine_ssfp"])
    return tmp_path


def test_routes_pick_the_network_trained_on_the_sequence(models_dir, caplog):
    r = routes("seg_sax", models_dir)
    assert r.by_sequence == {"cine_gre": "seg_sax", "cine_ssfp": "seg_sax_ssfp"}
    assert r.names == ["seg_sax", "seg_sax_ssfp"]
    assert r.pick("cine_ssfp") == "seg_sax_ssfp" and r.pick("cine_gre") == "seg_sax"
    with caplog.at_level(logging.WARNING, logger="cmr_atlas.nets.registry"):
        assert r.pick(None) == "seg_sax"  # not known: the default, silently
        assert not caplog.records
        assert r.pick("lge") == r.pick("lge") == "seg_sax"  # no network trained on it: default + warning
    assert [m.getMessage() for m in caplog.records] == [
        "no seg_sax network trained on lge series (networks: {'cine_gre': 'seg_sax', 'cine_ssfp': "
        "'seg_sax_ssfp'}): using seg_sax"]
    assert routes("lm_heatmap_lax", models_dir).by_sequence == {"cine_gre": "lm_heatmap_lax",
                                                                "cine_ssfp": "lm_heatmap_lax"}


def test_routes_refuse_ambiguous_or_missing_networks(models_dir, tmp_path_factory):
    _save(models_dir, "seg_sax_mixed", ["cine_gre", "cine_ssfp"], serves="seg_sax")
    with pytest.raises(ModelFileError, match="seg_sax_mixed and seg_sax_ssfp of task seg_sax both list sequence cine_ssfp"):
        routes("seg_sax", models_dir)
    empty = tmp_path_factory.mktemp("no_default")
    _save(empty, "seg_sax_ssfp", ["cine_ssfp"], serves="seg_sax")
    with pytest.raises(ModelFileError, match="model card not found: .*seg_sax.json"):
        routes("seg_sax", empty)


def test_a_routed_network_wins_a_sequence_the_default_was_trained_on_too(models_dir):
    """The shipped landmark networks were trained on GRE and bSSFP; a bSSFP one routed beside
    them takes bSSFP, the default keeps GRE and every sequence no card lists."""
    assert routes("lm_heatmap_sax", models_dir).by_sequence == {"cine_gre": "lm_heatmap_sax",
                                                                "cine_ssfp": "lm_heatmap_sax"}
    _save(models_dir, "lm_heatmap_sax_ssfp", ["cine_ssfp"], serves="lm_heatmap_sax")
    r = routes("lm_heatmap_sax", models_dir)
    assert r.by_sequence == {"cine_gre": "lm_heatmap_sax", "cine_ssfp": "lm_heatmap_sax_ssfp"}
    assert r.pick(None) == r.pick("lge") == "lm_heatmap_sax"
    assert routes("lm_heatmap_lax", models_dir).names == ["lm_heatmap_lax"]  # the other task: untouched


def test_cards_without_sequences_are_legacy_gre(tmp_path):
    _save(tmp_path, "seg_sax")  # a card written before the clinical protocol
    assert card_sequences({"name": "x"}) == ["cine_gre"]
    assert routes("seg_sax", tmp_path).by_sequence == {"cine_gre": "seg_sax"}


def test_load_models_routes_segmentation_by_sequence(models_dir):
    models = load_models(models_dir, method="heatmap", device="cpu", precision="float32", runtime="torch")
    assert models.seg_card["name"] == "seg_sax"
    assert models.seg_for("cine_ssfp")[1]["name"] == "seg_sax_ssfp"
    assert models.seg_for("cine_gre")[1]["name"] == "seg_sax"
    assert models.seg_for(None)[0] is models.seg
    assert models.seg_for("t1map")[1]["name"] == "seg_sax"


class Constant(torch.nn.Module):
    """Segmentation stand-in: every pixel of the network grid gets label ``label``."""

    def __init__(self, label):
        super().__init__()
        self.label = label

    def forward(self, x):
        out = torch.full((x.shape[0], 4, *x.shape[-2:]), -9.0)
        out[:, self.label] = 0.0
        return out


def test_infer_exam_segments_each_sax_series_with_its_sequences_network(ring_exam):
    images, _ = ring_exam(n_slices=2, n_frames=3, noise=False)
    card = {"input": GRID.to_dict()}
    gre, ssfp = (Constant(MYO), card), (Constant(CAVITY), card)
    lm = torch.nn.Conv2d(1, 4, 1)  # landmarks: any heatmap
    r = Routes(SEG_TASK, "seg_sax", {"cine_gre": "seg_sax", "cine_ssfp": "seg_sax_ssfp"})
    models = Models(*gre, "heatmap", {"lax": (lm, card), "sax": (lm, card)}, torch.device("cpu"), None,
                    seg_routes=r, seg_nets={"seg_sax": gre, "seg_sax_ssfp": ssfp})

    def labels(sequence):
        masks = infer_exam(images, models, sequences={"sax": sequence} if sequence else None, **INFER).masks
        return set(masks[masks > 0].ravel())

    assert labels("cine_ssfp") == {CAVITY}
    assert labels("cine_gre") == {MYO}
    assert labels(None) == {MYO} and labels("lge") == {MYO}  # unknown: the default network


def test_load_models_routes_landmark_networks_by_sequence(models_dir):
    _save(models_dir, "lm_heatmap_sax_ssfp", ["cine_ssfp"], serves="lm_heatmap_sax")
    models = load_models(models_dir, method="heatmap", device="cpu", precision="float32", runtime="torch")
    assert models.landmark["sax"][1]["name"] == "lm_heatmap_sax"  # the default, as before
    assert models.landmark_for("sax", "cine_ssfp")[1]["name"] == "lm_heatmap_sax_ssfp"
    assert models.landmark_for("sax", "cine_gre")[1]["name"] == "lm_heatmap_sax"
    assert models.landmark_for("sax", None)[0] is models.landmark["sax"][0]
    assert models.landmark_for("lax", "cine_ssfp")[1]["name"] == "lm_heatmap_lax"
    assert models.landmark_for("sax", "cine_ssfp")[0] is models.lm_nets["lm_heatmap_sax_ssfp"][0]


class Peak(torch.nn.Module):
    """Landmark stand-in: every channel peaks at one network pixel (``rc``), background elsewhere."""

    def __init__(self, rc, n=4):
        super().__init__()
        self.rc, self.n = rc, n

    def forward(self, x):
        out = torch.full((x.shape[0], self.n, *x.shape[-2:]), -20.0)
        out[:, 0] = 0.0
        out[:, 1:, self.rc[0], self.rc[1]] = 20.0
        return out


def test_detect_landmarks_runs_each_series_through_its_sequences_network(ring_exam):
    from cmr_atlas.cine.inference import detect_landmarks

    images, _ = ring_exam(n_slices=2, n_frames=3, noise=False)
    card = {"input": GRID.to_dict(), "views": ["lax_2ch", "lax_4ch"]}
    seg = (Constant(MYO), card)
    lax, gre, ssfp = (Peak((32, 32)), card), (Peak((20, 30)), card), (Peak((40, 36)), card)
    r = Routes("lm_heatmap_sax", "lm_heatmap_sax", {"cine_gre": "lm_heatmap_sax", "cine_ssfp": "lm_heatmap_sax_ssfp"})
    models = Models(*seg, "heatmap", {"lax": lax, "sax": gre}, torch.device("cpu"), None,
                    lm_routes={"sax": r}, lm_nets={"lm_heatmap_sax_ssfp": ssfp})

    def sax_rows(sequence):
        lm = detect_landmarks(images, models, [0], absent_threshold=0.1, batch=4,
                              sequences={"sax": sequence} if sequence else None)
        sax = lm[(lm.view == "sax") & lm.present]
        assert len(sax) == 2 * 3  # two slices, three landmarks, each found
        return sax[["x_px", "y_px"]].round(3).drop_duplicates().to_numpy()

    from_ssfp, from_gre, unknown = sax_rows("cine_ssfp"), sax_rows("cine_gre"), sax_rows(None)
    assert len(from_ssfp) == len(from_gre) == 1  # every slice's landmarks at its network's one peak
    assert not np.allclose(from_ssfp, from_gre)
    assert np.allclose(unknown, from_gre)  # a series of unknown sequence: the default network


def test_every_shipped_card_says_its_sequences_and_views():
    """`cmr-atlas models list` and the routes read them: a card without them would count as GRE cine."""
    import json
    from pathlib import Path

    from cmr_atlas.core.vocab import SEQUENCES, VIEWS

    cards = sorted(Path("resources/models").glob("*.json"))
    assert cards
    for p in cards:
        card = json.loads(p.read_text())
        assert card.get("sequences") and set(card["sequences"]) <= set(SEQUENCES), p.name
        assert card.get("views") and set(card["views"]) <= set(VIEWS), p.name


def test_a_routed_long_axis_network_runs_only_the_views_it_was_trained_on(ring_exam):
    """A routed network trained on fewer views leaves the others to the default; a view only the
    routed one knows gets no landmarks on images of other sequences (no network's guess)."""
    from cmr_atlas.cine.inference import detect_landmarks, landmark_views

    images, _ = ring_exam(n_slices=1, n_frames=2, noise=False)
    for v in ("lax_2ch", "lax_3ch", "lax_4ch"):
        images.lax[v] = images.sax[0].copy()
        images.lax_planes[v] = images.sax_planes[0]
    card = {"input": GRID.to_dict()}
    default = (Peak((32, 32)), {**card, "views": ["lax_2ch", "lax_4ch"]})
    routed = (Peak((20, 30)), {**card, "views": ["lax_2ch", "lax_3ch"]})  # bSSFP: 2CH and 3CH only
    r = Routes("lm_heatmap_lax", "lm_heatmap_lax", {"cine_gre": "lm_heatmap_lax", "cine_ssfp": "lm_heatmap_lax_ssfp"})
    models = Models(Constant(MYO), card, "heatmap", {"lax": default, "sax": (Peak((32, 32)), card)},
                    torch.device("cpu"), None, lm_routes={"lax": r},
                    lm_nets={"lm_heatmap_lax": default, "lm_heatmap_lax_ssfp": routed})
    assert set(landmark_views(models)) == {"lax_2ch", "lax_3ch", "lax_4ch"}
    assert models.landmark_for("lax", "cine_ssfp", "lax_4ch") is default
    assert models.landmark_for("lax", "cine_ssfp", "lax_3ch") is routed
    assert models.landmark_for("lax", "cine_gre", "lax_3ch") is None

    def peaks(sequence):
        lm = detect_landmarks(images, models, [0], absent_threshold=0.1, batch=4,
                              sequences={v: sequence for v in ("lax_2ch", "lax_3ch", "lax_4ch")})
        lax = lm[lm.view != "sax"]
        assert lax["present"].all()
        return {v: g[["x_px", "y_px"]].round(3).drop_duplicates().to_numpy() for v, g in lax.groupby("view")}

    ssfp, gre = peaks("cine_ssfp"), peaks("cine_gre")
    assert set(ssfp) == {"lax_2ch", "lax_3ch", "lax_4ch"} and set(gre) == {"lax_2ch", "lax_4ch"}
    assert np.allclose(ssfp["lax_2ch"], ssfp["lax_3ch"])  # both from the routed network
    assert not np.allclose(ssfp["lax_2ch"], ssfp["lax_4ch"])  # 4CH: the default's peak
    assert np.allclose(ssfp["lax_4ch"], gre["lax_4ch"]) and np.allclose(gre["lax_2ch"], gre["lax_4ch"])
