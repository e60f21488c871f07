"""Training a network routed by sequence (``train_model(..., save_as=...)``): it starts from the
task's default network the first time, continues from its own weights afterwards, and its card
names the task it serves."""

import pytest
import torch

from cmr_atlas.cine.train_models import ROUTED, _card, _previous_run, train_model
from cmr_atlas.cine.training import SEG_GRID
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
    assert len(previous) == 1
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
