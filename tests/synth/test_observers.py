"""The simulated observers' landmark error, and the floor it puts under every Auto-vs-observer distance."""

import numpy as np
from hypothesis import given, settings, strategies as st

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth.observers import LANDMARK_SD_MM, expected_distance_to_truth_mm, perturb_landmark


def _plane(theta: float) -> SlicePlane:
    row = np.array([np.cos(theta), np.sin(theta), 0.0])
    col = np.array([0.0, 0.0, 1.0])
    return SlicePlane(position_mm=np.zeros(3), row_cosine=row, col_cosine=col, pixel_spacing_mm=(1.0, 1.0), shape=(8, 8))


@settings(max_examples=10, deadline=None)
@given(name=st.sampled_from(sorted(LANDMARK_SD_MM)), theta=st.floats(0, 2 * np.pi), seed=st.integers(0, 2**31))
def test_observer_points_lie_in_the_image_plane_at_the_expected_mean_distance(name, theta, seed):
    rng = np.random.default_rng(seed)
    plane, truth = _plane(theta), np.array([10.0, -4.0, 7.0])
    pts = np.array([perturb_landmark(rng, truth, plane, name) for _ in range(4000)])
    err = pts - truth
    assert np.allclose(err @ plane.normal, 0.0, atol=1e-9)  # in-plane only
    mean = np.linalg.norm(err, axis=1).mean()
    # Rayleigh mean SD*sqrt(pi/2); its SD over 4000 draws is about 0.008*SD
    assert abs(mean - expected_distance_to_truth_mm(name)) < 0.05 * LANDMARK_SD_MM[name]


def test_the_apex_floor_is_at_the_two_millimetre_goal():
    # why the issue's <= 2 mm per landmark cannot be met at the apex against these observers
    assert 2.0 <= expected_distance_to_truth_mm("apex") < 2.01
    assert expected_distance_to_truth_mm("lv_centre") < expected_distance_to_truth_mm("rv_insert_anterior") < 2.0


def _obs_vs_obs_mm(name: str) -> float:
    # the difference of two independent observers' in-plane errors has per-axis SD * sqrt(2)
    return expected_distance_to_truth_mm(name) * np.sqrt(2)


def test_reader_distances_match_the_papers_cited_in_the_docstring():
    # MESA Table 2, Obs1 vs Obs2 (mitral points on 2CH and 4CH, RV insertions on SAX)
    for names, mesa_mm in ((("mv_anterior", "mv_inferior"), 1.78), (("mv_septal", "mv_lateral"), 2.24),
                           (("rv_insert_anterior", "rv_insert_posterior"), 2.67)):
        for n in names:
            assert abs(_obs_vs_obs_mm(n) - mesa_mm) < 0.03, n
    # Xue 2021 Table 3, cine reader vs reader at the apex: 2.8 (4CH) to 4.1 mm (2CH); the lowest is taken
    assert 2.8 <= _obs_vs_obs_mm("apex") < 2.9
    # LV centre (2.4 mm) and 3CH points (2.8 / 4.0 mm): these readers are tighter than the paper's
    assert _obs_vs_obs_mm("lv_centre") < 2.4
    assert max(_obs_vs_obs_mm("mv_inferolateral"), _obs_vs_obs_mm("lvot_anteroseptal")) < 2.8
