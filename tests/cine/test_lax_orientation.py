"""Long-axis images turned far from the training orientations go into the landmark network upright
(issue 16: an LGE 3CH plane 130 deg from the rest had its apex and mitral point swapped)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.lax_orientation import LV_AXIS_LPS, axis_angle_deg, card_span, span_deg, turn_deg
from cmr_atlas.core.geometry import SlicePlane


def _plane(row, col, size=64, spacing=1.5) -> SlicePlane:
    return SlicePlane.centred(np.zeros(3), np.asarray(row, float), np.asarray(col, float), (spacing, spacing),
                              (size, size))


def _turned(plane: SlicePlane, deg: float) -> SlicePlane:
    """The same plane with its row/column axes turned by ``deg`` about the normal."""
    t = np.radians(deg)
    r, c = plane.row_cosine, plane.col_cosine
    return _plane(np.cos(t) * r + np.sin(t) * c, -np.sin(t) * r + np.cos(t) * c, plane.shape[0])


def test_axis_angle_of_a_coronal_image():
    # rows towards patient left, columns towards the feet: the axis (left, anterior, inferior)
    # projects to equal parts left and down, 45 deg from the column axis towards the row axis
    assert axis_angle_deg(_plane([1, 0, 0], [0, 0, -1])) == pytest.approx(45.0)
    # seen from the other side with rows towards the head (the image turned by 180 deg)
    assert axis_angle_deg(_plane([-1, 0, 0], [0, 0, 1])) == pytest.approx(-135.0)


@settings(max_examples=60, deadline=None)
@given(st.floats(-179, 179), st.floats(-1, 1), st.floats(-1, 1))
def test_turning_the_image_axes_turns_the_angle_the_other_way(deg, a, b):
    n = np.array([a, b, 0.7])
    n /= np.linalg.norm(n)
    row = np.cross(n, [0.0, 1.0, 0.0])
    row /= np.linalg.norm(row)
    plane = _plane(row, np.cross(n, row))
    if np.linalg.norm(LV_AXIS_LPS - (LV_AXIS_LPS @ n) * n) < 0.2:
        return  # the axis nearly along the normal: its in-plane direction is ill-defined
    diff = (axis_angle_deg(_turned(plane, deg)) - axis_angle_deg(plane) + deg + 180) % 360 - 180
    assert diff == pytest.approx(0.0, abs=1e-6)


def test_span_is_circular_and_widened_and_ignores_rare_odd_planes():
    # angles across +-180 stay one interval about their mean
    lo, hi = span_deg([170, 175, 180, -175, -170])
    assert 168 < lo < 172 and 188 < hi < 192
    assert span_deg([0, 10, 20], widen_deg=30) == pytest.approx((-29.0, 49.0))
    rng = np.random.default_rng(1)
    a = np.r_[rng.uniform(-40, 40, 98), -135, -140]  # 2 % of the training planes turned far
    lo, hi = span_deg(a)
    assert -45 < lo < -30 and 30 < hi < 45


def test_turn_only_outside_the_span_to_its_middle():
    span = (-60.0, 40.0)  # middle -10
    assert turn_deg(-55.0, span) == 0.0 and turn_deg(35.0, span) == 0.0 and turn_deg(0.0, None) == 0.0
    assert turn_deg(-130.0, span) == pytest.approx(-120.0)
    assert turn_deg(170.0, span) == pytest.approx(180.0) or turn_deg(170.0, span) == pytest.approx(-180.0)
    assert turn_deg(100.0, (-200.0, 200.0)) == 0.0  # a network trained on every orientation
    assert card_span({"orientation": {"span_deg": {"lax_3ch": [-60, 40]}}}, "lax_3ch") == (-60.0, 40.0)
    assert card_span({"orientation": {"span_deg": {}}}, "lax_3ch") is None and card_span(None, "lax_2ch") is None


class _ApexAtBrightest(torch.nn.Module):
    """A long-axis 'network' that reports the apex (channel 3) at the input's brightest pixel and
    records the inputs it saw."""

    def __init__(self):
        super().__init__()
        self.seen = []

    def forward(self, x):
        self.seen.append(x[:, 0].clone())
        n, _, h, w = x.shape
        logits = torch.full((n, 4, h, w), -20.0)
        logits[:, 0] = 0.0
        flat = x[:, 0].reshape(n, -1).argmax(1)
        logits[torch.arange(n), 3, flat // w, flat % w] = 20.0
        return logits


def _blob_angle(img: np.ndarray) -> float:
    r, c = np.unravel_index(np.argmax(img), img.shape)
    mid = (img.shape[0] - 1) / 2.0
    return float(np.degrees(np.arctan2(r - mid, c - mid)))


@pytest.mark.parametrize("span", [(-60.0, 40.0), None])
def test_detect_landmarks_feeds_a_turned_image_upright_and_maps_the_points_back(span):
    from cmr_atlas.cine.inference import Models, detect_landmarks
    from cmr_atlas.core.imagecache import ExamImages

    plane = _turned(_plane([1, 0, 0], [0, 0, -1]), 170.0)  # axis angle 45 - 170 = -125 deg: far outside
    angle = axis_angle_deg(plane)
    assert angle == pytest.approx(-125.0)
    img = np.zeros((1, 64, 64), np.float32)
    r, c = 31.5 + 14 * np.sin(np.radians(angle)), 31.5 + 14 * np.cos(np.radians(angle))  # 21 mm down the axis
    img[0, int(round(r)), int(round(c))] = 100.0
    img[0] = np.maximum(img[0], 0) + np.exp(-((np.arange(64)[:, None] - r) ** 2 + (np.arange(64)[None] - c) ** 2) / 4.0)
    net = _ApexAtBrightest()
    card = {"input": {"spacing_mm": 1.5, "size": 64}, "views": ["lax_3ch"]}
    if span is not None:
        card["orientation"] = {"span_deg": {"lax_3ch": list(span)}}
    models = Models(None, {}, "heatmap", {"lax": (net, card)}, torch.device("cpu"), None)
    images = ExamImages("e", np.zeros((0, 1, 64, 64), np.float32), [], np.zeros(1), {"lax_3ch": img}, {"lax_3ch": plane})
    lm = detect_landmarks(images, models, [], absent_threshold=0.1, batch=4)
    seen = _blob_angle(net.seen[0][0].numpy())
    if span is None:
        assert seen == pytest.approx(angle, abs=6)
    else:
        assert seen == pytest.approx(-10.0, abs=6)  # the span's middle
    apex = lm[(lm["landmark"] == "apex") & lm["present"].astype(bool)]
    assert len(apex) == 1
    assert np.hypot(apex["y_px"].iloc[0] - r, apex["x_px"].iloc[0] - c) < 1.5  # back on the original pixels


def test_models_orient_measures_the_training_planes_of_both_protocols(tmp_path):
    from cmr_atlas.cli import main
    from cmr_atlas.cine.training import training_lax_planes
    from cmr_atlas.nets.registry import load_card, save_model
    from cmr_atlas.nets.unet import UNet

    data = {"parts": [{"protocol": "mesa", "cohort_seed": 5, "exam_indices": [0, 2], "mi_fraction": 0.2},
                      {"protocol": "clinical", "cohort_seed": 6, "exam_indices": [0, 3], "mi_fraction": 0.2},
                      {"n_exams": 4, "source": "an ingested cohort"}]}  # no generator: not measured
    planes = training_lax_planes(data)
    assert {v: len(p) for v, p in planes.items()} == {"lax_2ch": 7, "lax_4ch": 7, "lax_3ch": 4}
    # the planes lie as those the exams' long-axis images are rendered on
    from cmr_atlas.cine.training import clinical_cine
    from cmr_atlas.synth.mesa.cohort import generate_exam
    rendered = {"lax_3ch": clinical_cine(6, 1, 0.2)[0].lax_planes["lax_3ch"],
                "lax_2ch": generate_exam(5, 1, 0.2).images.lax_planes["lax_2ch"]}
    for view, got in (("lax_3ch", planes["lax_3ch"][1]), ("lax_2ch", planes["lax_2ch"][1])):  # exam 1 of each
        assert np.allclose([got.row_cosine, got.col_cosine], [rendered[view].row_cosine, rendered[view].col_cosine])
    save_model(UNet(1, 4, 4, 2), {"name": "lm_heatmap_lax", "views": ["lax_2ch", "lax_3ch", "lax_4ch"],
                                  "training_data": data, "training": {"augmentation": {"rotation_deg": 30.0}}}, tmp_path)
    assert main(["models", "orient", "--models-dir", str(tmp_path)]) == 0
    entry = load_card("lm_heatmap_lax", tmp_path)["orientation"]  # the weights' checksum still holds
    assert entry["n_planes"] == {"lax_2ch": 7, "lax_4ch": 7, "lax_3ch": 4} and entry["widened_by_deg"] == 30.0
    for view, ps in planes.items():
        lo, hi = entry["span_deg"][view]
        angles = np.array([axis_angle_deg(p) for p in ps])
        # the middle 90 % of a view's angles, 30 deg more on each side: these few planes all lie inside
        assert (turn_deg(angles[0], (lo, hi)) == 0.0) and all(turn_deg(a, (lo, hi)) == 0.0 for a in angles)
        assert hi - lo >= 60.0 + np.ptp(np.sort(angles)[1:-1]) - 1e-6 or len(angles) < 5


def test_a_network_trained_on_an_ingested_cohort_has_no_span_and_orient_says_why(tmp_path):
    # training on `train data --cohort` (no generator seeds) must not fail after training: no entry
    from cmr_atlas.cine.lax_orientation import orient_model, training_orientation
    from cmr_atlas.nets.registry import save_model
    from cmr_atlas.nets.unet import UNet

    ingested = {"n_exams": 4, "source": "ingested synthetic cohort"}
    assert training_orientation(ingested, 30.0) is None
    save_model(UNet(1, 4, 4, 2), {"name": "lm_heatmap_lax", "training_data": ingested}, tmp_path)
    with pytest.raises(ValueError, match="no synthetic long-axis training planes"):
        orient_model("lm_heatmap_lax", tmp_path)
