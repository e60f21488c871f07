"""Training a network routed by sequence (``train_model(..., save_as=...)``): it starts from the
task's default network the first time, continues from its own weights afterwards, and its card
names the task it serves."""

import numpy as np
import pytest
import torch

from cmr_atlas.cine.train_models import ROUTED, _card, _previous_run, train_model
from cmr_atlas.cine.training import LM_GRID, SEG_GRID
from cmr_atlas.nets.registry import save_model
from cmr_atlas.nets.unet import UNet


def _save(mdir, name, fill):
    model = UNet(1, 4, 4, 2)
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(fill)
    save_model(model, {"name": name, "input": SEG_GRID.to_dict(), "sequences": ["cine_gre"]}, mdir)


def _weights(state):
    """The distinct values of the parameters (not the batch-norm running statistics)."""
    return {float(x) for k, v in state.items() if k.endswith(("weight", "bias")) for x in v.unique()}


def test_first_fine_tune_starts_from_the_task_default_then_from_itself(tmp_path):
    _save(tmp_path, "seg_sax", 0.25)
    state, previous = _previous_run("seg_sax_ssfp", tmp_path, "seg_sax")
    assert _weights(state) == {0.25}
    assert len(previous) == 1 and previous[0]["input"] == SEG_GRID.to_dict()  # the grid it started on
    _save(tmp_path, "seg_sax_ssfp", 0.5)
    state, _ = _previous_run("seg_sax_ssfp", tmp_path, "seg_sax")
    assert _weights(state) == {0.5}


def test_card_names_the_task_it_serves():
    info = {"sequences": ["cine_ssfp"]}
    card = _card("seg_sax_ssfp", SEG_GRID, info, {}, {}, task=ROUTED["seg_sax_ssfp"])
    assert card["serves"] == "seg_sax" and card["sequences"] == ["cine_ssfp"]
    assert _card("seg_sax", SEG_GRID, {}, {}, {})["serves"] == "seg_sax"


def test_save_as_only_names_a_routed_network_of_that_task(tmp_path):
    for name, save_as in (("lm_heatmap_sax", "seg_sax_ssfp"), ("seg_sax", "lm_heatmap_sax"), ("seg_sax", "x")):
        with pytest.raises(SystemExit, match="save_as names a routed network"):
            train_model(name, [tmp_path], tmp_path / "out", 1, 1, 0, 1, 2, 1, save_as=save_as)


def test_a_sequence_network_is_published_under_its_own_name_and_not_routed(tmp_path):
    from cmr_atlas.cine.train_models import SEQUENCE_NETWORKS, publish_as
    from cmr_atlas.nets.registry import load_model, routes

    run, shipped = tmp_path / "run", tmp_path / "shipped"
    model = UNet(1, 4, 4, 2)
    save_model(model, {"name": "lm_heatmap_lax", "serves": "lm_heatmap_lax", "sequences": ["lge"],
                       "views": ["lax_2ch", "lax_3ch", "lax_4ch"], "training": {"epochs_run": 3}}, run)
    _save(shipped, "lm_heatmap_lax", 0.25)  # the cine network it was fine-tuned from
    publish_as(run, "lm_heatmap_lax_lge", shipped, note="train seed 940000")
    net, card = load_model("lm_heatmap_lax_lge", shipped)  # checksum of the copied weights checked
    assert card["name"] == "lm_heatmap_lax_lge" and card["weights_file"] == "lm_heatmap_lax_lge.pt"
    assert SEQUENCE_NETWORKS["lm_heatmap_lax_lge"] == ("lm_heatmap_lax", "lge")
    assert "long-axis landmarks" in card["description"] and "LGE" in card["description"] and "940000" in card["description"]
    assert card["sequences"] == ["lge"] and card["training"] == {"epochs_run": 3}
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), model.state_dict().values()))
    # the cine task keeps its default: the LGE network is the tissue stage's, loaded by name
    assert routes("lm_heatmap_lax", shipped).by_sequence == {"cine_gre": "lm_heatmap_lax"}
    with pytest.raises(SystemExit, match="unknown sequence network"):
        publish_as(run, "lm_heatmap_lax_t1map", shipped)


def test_train_publish_on_the_command_line(tmp_path):
    from cmr_atlas.cli import main
    from cmr_atlas.nets.registry import load_card

    save_model(UNet(1, 4, 4, 2), {"name": "lm_heatmap_sax", "sequences": ["t1map"], "views": ["sax"]}, tmp_path / "run")
    assert main(["train", "publish", "lm_heatmap_sax_t1map", "--from", str(tmp_path / "run"),
                 "--out", str(tmp_path / "models"), "--note", "seed 940002"]) == 0
    card = load_card("lm_heatmap_sax_t1map", tmp_path / "models")
    assert card["sequences"] == ["t1map"] and card["description"].endswith("seed 940002")


def test_landmark_rotation_range_reaches_the_augmentation(tmp_path, monkeypatch):
    from cmr_atlas.cine import train_models as TM
    from cmr_atlas.nets.augment import LANDMARK_AUG

    seen = []

    class Stop(Exception):
        pass

    def fake_train(samples, cfg, sigma_px, spacing_mm, **kwargs):
        seen.append(kwargs["aug"])
        raise Stop

    samples = type("S", (), {"meta": {"folder": np.zeros(2, int)}})()
    monkeypatch.setattr(TM, "load_data", lambda dirs, key: (samples, {"landmark_grid": LM_GRID.to_dict()}))
    monkeypatch.setattr(TM, "train_heatmap", fake_train)
    for rotation, expected in ((None, LANDMARK_AUG.rotation_deg), (180, 180.0)):
        with pytest.raises(Stop):
            train_model("lm_heatmap_lax", [tmp_path], tmp_path / "out", 1, 1, 0, 1, 2, 1, rotation_deg=rotation)
        assert seen[-1].rotation_deg == expected and seen[-1].flip_rows == 0 and seen[-1].flip_cols == 0


def test_a_landmark_network_routed_by_sequence_starts_from_its_task_and_serves_it(tmp_path, monkeypatch):
    """`train model lm_heatmap_sax --save-as lm_heatmap_sax_ssfp`: the first run starts from the
    shipped lm_heatmap_sax, the card serves that task and lists the data's sequences, so inference
    routes bSSFP SAX series to it."""
    from cmr_atlas.cine import train_models as TM
    from cmr_atlas.nets.samples import VIEW_CODES
    from cmr_atlas.nets.registry import load_card, routes

    shipped = tmp_path / "shipped"
    save_model(UNet(1, 4, 4, 2), {"name": "lm_heatmap_sax", "input": LM_GRID.to_dict(),
                                  "sequences": ["cine_gre", "cine_ssfp"], "views": ["sax"]}, shipped)
    started_from = []

    def fake_train(samples, cfg, sigma_px, spacing_mm, init_state=None, **kwargs):
        started_from.append(init_state is not None)
        return UNet(1, 4, 4, 2), {"epochs_run": 1}

    samples = type("S", (), {"meta": {"folder": np.zeros(2, int)}, "view": np.full(2, VIEW_CODES["sax"])})()
    info = {"landmark_grid": LM_GRID.to_dict(), "sequences": ["cine_ssfp"]}
    monkeypatch.setattr(TM, "load_data", lambda dirs, key: (samples, info))
    monkeypatch.setattr(TM, "train_heatmap", fake_train)
    TM.train_model("lm_heatmap_sax", [tmp_path], shipped, 1, 1, 0, 1, 2, 1, init_from=shipped,
                   save_as="lm_heatmap_sax_ssfp")
    card = load_card("lm_heatmap_sax_ssfp", shipped)
    assert started_from == [True]
    assert card["serves"] == "lm_heatmap_sax" and card["sequences"] == ["cine_ssfp"]
    assert len(card["previous_runs"]) == 1  # the shipped network it started from
    assert routes("lm_heatmap_sax", shipped).by_sequence == {"cine_gre": "lm_heatmap_sax",
                                                            "cine_ssfp": "lm_heatmap_sax_ssfp"}


def test_patience_reaches_the_training_loop(tmp_path, monkeypatch):
    """`train model --patience N`: the early-stopping patience of the loop; without it the loop's default."""
    from cmr_atlas.cine import train_models as TM
    from cmr_atlas.cli import main
    from cmr_atlas.nets.train import TrainConfig

    seen = []

    class Stop(Exception):
        pass

    def fake_train(samples, cfg, sigma_px, spacing_mm, **kwargs):
        seen.append(cfg.patience)
        raise Stop

    samples = type("S", (), {"meta": {"folder": np.zeros(2, int)}})()
    monkeypatch.setattr(TM, "load_data", lambda dirs, key: (samples, {"landmark_grid": LM_GRID.to_dict()}))
    monkeypatch.setattr(TM, "train_heatmap", fake_train)
    for argv, expected in (([], TrainConfig().patience), (["--patience", "15"], 15)):
        with pytest.raises(Stop):
            main(["train", "model", "lm_heatmap_lax", "--data", str(tmp_path), "--out", str(tmp_path / "o"),
                  "--minutes", "1", *argv])
        assert seen[-1] == expected


def test_levels_reach_the_loop_and_default_to_the_starting_networks(tmp_path, monkeypatch):
    """`train model --levels N`: the landmark U-Net's depth, passed to the loop; without it the loop
    gets None (nets.train.train_heatmap then keeps the starting network's depth, else 4: tests/nets);
    refused for the segmentation network."""
    from cmr_atlas.cine import train_models as TM
    from cmr_atlas.cli import main

    seen = []

    class Stop(Exception):
        pass

    def fake_train(samples, cfg, sigma_px, spacing_mm, levels="not passed", init_state=None, **kwargs):
        seen.append((levels, init_state is not None))
        raise Stop

    shipped = tmp_path / "shipped"
    save_model(UNet(1, 4, 4, 2), {"name": "lm_heatmap_lax", "input": LM_GRID.to_dict()}, shipped)
    samples = type("S", (), {"meta": {"folder": np.zeros(2, int)}})()
    monkeypatch.setattr(TM, "load_data", lambda dirs, key: (samples, {"landmark_grid": LM_GRID.to_dict()}))
    monkeypatch.setattr(TM, "train_heatmap", fake_train)
    base = ["train", "model", "lm_heatmap_lax", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--minutes", "1"]
    for argv, expected in (([], (None, False)), (["--init-from", str(shipped)], (None, True)),
                           (["--init-from", str(shipped), "--levels", "5"], (5, True))):
        with pytest.raises(Stop):
            main(base + argv)
        assert seen[-1] == expected
    with pytest.raises(SystemExit, match="--levels sets the depth"):
        main(["train", "model", "seg_sax", "--data", str(tmp_path), "--out", str(tmp_path / "o"), "--levels", "5"])
