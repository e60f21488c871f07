"""benchmarks/accuracy.py's per-view intervals: exams resampled whole, the pooled figure at the
centre, detection per image, and the paired network-minus-observers difference."""

import numpy as np
import pandas as pd


def _rows(exam, view, auto, obs, n=4, found=True):
    return [{"method": "heatmap", "exam_id": exam, "view": view, "slice": k, "frame": 0, "truth_present": True,
             "auto_present": found, "auto_obs1": auto if found else np.nan, "obs1_obs2": obs} for k in range(n)]


def test_intervals_resample_exams_and_centre_on_the_pooled_figure(benchmark_module):
    acc = benchmark_module("accuracy")
    rows = []
    for i in range(20):
        rows += _rows(f"e{i}", "lax_3ch", 1.5 + 0.1 * (i % 5), 2.5)  # exams differ: the interval has width
        rows += _rows(f"e{i}", "lax_2ch", 1.8, 2.0)  # every exam alike: no width
    rows += _rows("e0", "lax_3ch", 9.9, 2.5, n=1, found=False)  # one image missed (slice 0 of e0 again)
    rows += [{"method": "heatmap", "exam_id": "e0", "view": "lax_3ch", "slice": 7, "frame": 0, "truth_present": False,
              "auto_present": True, "auto_obs1": np.nan, "obs1_obs2": np.nan}]  # no landmark in the truth: not counted
    t = acc.view_distance_cis(pd.DataFrame(rows)).set_index("view")
    three, two = t.loc["lax_3ch"], t.loc["lax_2ch"]
    assert three["exams"] == 20 and three["images"] == 80 and three["points"] == 80
    assert np.isclose(three["detected_pct"], 100 * 79 / 80) and three["detected_lo"] < three["detected_pct"] <= three["detected_hi"]
    assert np.isclose(three["auto_obs1_mm"], 1.7)
    assert three["auto_obs1_lo"] < 1.7 < three["auto_obs1_hi"] and three["auto_obs1_hi"] - three["auto_obs1_lo"] < 0.2
    assert np.isclose(three["auto_minus_obs_mm"], -0.8) and three["auto_minus_obs_hi"] < 0
    assert np.isclose(two["auto_obs1_lo"], 1.8) and np.isclose(two["auto_obs1_hi"], 1.8)  # identical exams
    assert two["detected_lo"] == two["detected_hi"] == 100.0 and np.isclose(two["auto_minus_obs_mm"], -0.2)


def test_records_at_a_threshold_report_no_distance_for_a_landmark_under_it(benchmark_module):
    lc = benchmark_module("landmark_confidence")
    df = pd.DataFrame({"confidence": [0.5, 0.05], "auto_present": [True, True], "auto_obs1": [1.0, 9.0],
                       "auto_obs2": [1.0, 9.0], "auto_truth": [0.5, 8.0]})
    at = lc.at_threshold(df, 0.1)
    assert at["auto_present"].tolist() == [True, False] and np.isnan(at.loc[1, "auto_obs1"])
    assert at.loc[0, "auto_obs1"] == 1.0 and df.loc[1, "auto_obs1"] == 9.0  # the records themselves untouched


def _landmark_rows(exam, name, auto1, auto2, obs, floor1, floor2):
    return [{"method": "heatmap", "exam_id": exam, "view": "lax_4ch", "slice": 0, "frame": f, "landmark": name,
             "truth_present": True, "auto_present": True, "auto_obs1": auto1, "auto_obs2": auto2,
             "obs1_obs2": obs, "obs1_truth": floor1, "obs2_truth": floor2} for f in (0, 8)]


def test_goal_per_landmark_tells_met_not_met_and_out_of_reach(benchmark_module):
    acc = benchmark_module("accuracy")
    rows = []
    for i in range(12):
        wobble = 0.05 * (i % 3)
        rows += _landmark_rows(f"e{i}", "mv_septal", 1.5 + wobble, 1.7, 2.2, 1.4, 1.5)  # met for both observers
        rows += _landmark_rows(f"e{i}", "mv_lateral", 2.3, 1.9 + wobble, 2.0, 1.6, 1.5)  # observer 1 only: not met
        rows += _landmark_rows(f"e{i}", "apex", 2.4, 2.2, 2.9, 2.05, 1.9)  # observer 1's own error is over the goal
    rows += [{**_landmark_rows("e0", "apex", 9.0, 9.0, 2.9, 2.0, 2.0)[0], "auto_present": False,
              "auto_obs1": np.nan, "auto_obs2": np.nan}]  # a missed point: no distance, not counted
    t = acc.landmark_goal_table(pd.DataFrame(rows), goal_mm=2.0).set_index("landmark")
    septal, lateral, apex = t.loc["mv_septal"], t.loc["mv_lateral"], t.loc["apex"]
    assert septal["meets_obs1"] and septal["meets_obs2"] and septal["reachable_obs1"]
    assert np.isclose(septal["auto_obs1_mm"], 1.55) and septal["auto_obs1_lo"] < 1.55 < septal["auto_obs1_hi"]
    assert np.isclose(septal["auto_minus_obs_obs1_mm"], -0.65) and septal["auto_minus_obs_obs1_hi"] < 0
    assert not lateral["meets_obs1"] and lateral["reachable_obs1"] and lateral["meets_obs2"]
    assert lateral["auto_minus_obs_obs1_lo"] > 0  # further from observer 1 than observer 2 is
    assert not apex["meets_obs1"] and not apex["reachable_obs1"] and apex["reachable_obs2"]
    assert np.isclose(apex["error_free_obs1_mm"], 2.05) and apex["points_obs1"] == 24 and apex["obs1_obs2_mm"] == 2.9


def test_goal_per_landmark_is_printed_with_the_observer_models_floor(benchmark_module, capsys):
    acc = benchmark_module("accuracy")
    rows = []
    for i in range(6):
        rows += _landmark_rows(f"e{i}", "apex", 2.4, 2.2, 2.9, 2.05, 2.1)
    acc.print_landmark_goals(pd.DataFrame(rows), 2.0)
    out = capsys.readouterr().out
    assert "heatmap: 0 of 1 landmarks within 2 mm of both observers; 1 out of reach" in out
    assert "apex 2.01 mm" in out and "out of reach / out of reach" in out


def test_goal_per_landmark_names_a_landmark_never_found_instead_of_judging_it(benchmark_module, capsys):
    acc = benchmark_module("accuracy")
    rows = []
    for i in range(4):
        rows += _landmark_rows(f"e{i}", "mv_septal", 1.5, 1.7, 2.2, 1.4, 1.5)
        rows += [{**r, "auto_present": False, "auto_obs1": np.nan, "auto_obs2": np.nan}
                 for r in _landmark_rows(f"e{i}", "apex", 0, 0, 2.9, 2.05, 1.9)]
    t = acc.landmark_goal_table(pd.DataFrame(rows), 2.0)
    assert t["landmark"].tolist() == ["mv_septal"]
    acc.print_landmark_goals(pd.DataFrame(rows), 2.0)
    out = capsys.readouterr().out
    assert "no distance for heatmap lax_4ch apex (never found)" in out and "heatmap: 1 of 1 landmarks within 2 mm" in out
