import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.landmarks import decode_heatmap, gaussian_targets, landmark_names, view_model


def test_targets_peak_one_background_complement_absent_zero():
    pts = torch.tensor([[[10.0, 20.0], [float("nan"), float("nan")]]])
    t = gaussian_targets(pts, 32, 2.0)
    assert t.shape == (1, 3, 32, 32)
    assert float(t[0, 1, 10, 20]) == pytest.approx(1.0)
    assert float(t[0, 2].abs().max()) == 0.0
    assert torch.allclose(t[0, 0] + t[0, 1], torch.ones(32, 32))


@settings(max_examples=40, deadline=None)
@given(st.floats(6, 25), st.floats(6, 25), st.floats(1.5, 4.0))
def test_decode_is_sub_pixel(r, c, sigma):
    t = gaussian_targets(torch.tensor([[[r, c]]]), 32, sigma)[0, 1].numpy()
    d = decode_heatmap(0.9 * t, absent_threshold=0.1)
    assert d.present and 0.75 < d.confidence <= 0.9  # peak sampled off-centre
    assert abs(d.row - r) < 0.1 and abs(d.col - c) < 0.1


def test_absent_below_threshold_and_second_blob_ignored():
    t = gaussian_targets(torch.tensor([[[8.0, 8.0], [24.0, 24.0]]]), 32, 2.0)[0].numpy()
    assert not decode_heatmap(0.05 * t[1], absent_threshold=0.1).present
    two = 0.8 * t[1] + 0.5 * t[2]
    d = decode_heatmap(two, absent_threshold=0.1)
    assert abs(d.row - 8) < 0.2 and abs(d.col - 8) < 0.2


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
