import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.landmarks import landmark_names, view_model
from cmr_atlas.nets.heatmaps import decode_heatmap, gaussian_targets


def test_view_names():
    assert view_model("lax_4ch") == "lax" and view_model("sax") == "sax"
    assert landmark_names("lax_2ch") == ("mv_anterior", "mv_inferior", "apex")
    assert view_model("lax_3ch") == "lax"
    # 3CH channel mv_a is the anteroseptal side, as 2CH anterior and 4CH septal
    assert landmark_names("lax_3ch") == ("lvot_anteroseptal", "mv_inferolateral", "apex")
    # a network trained with another order is read in the order its card records
    card = {"landmarks_by_view": {"lax_3ch": ["mv_inferolateral", "lvot_anteroseptal", "apex"]}}
    assert landmark_names("lax_3ch", card) == ("mv_inferolateral", "lvot_anteroseptal", "apex")
    assert landmark_names("lax_2ch", card) == ("mv_anterior", "mv_inferior", "apex")
    with pytest.raises(ValueError):
        view_model("lax_5ch")
