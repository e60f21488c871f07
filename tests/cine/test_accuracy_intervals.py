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
