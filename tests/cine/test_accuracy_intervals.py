"""benchmarks/accuracy.py's per-view intervals: exams resampled whole, the pooled mean at the centre,
and the paired network-minus-observers difference."""

import numpy as np
import pandas as pd


def _rows(exam, view, auto, obs, n=4):
    return [{"method": "heatmap", "exam_id": exam, "view": view, "truth_present": True,
             "auto_obs1": auto, "obs1_obs2": obs} for _ in range(n)]


def test_intervals_resample_exams_and_centre_on_the_pooled_mean(benchmark_module):
    acc = benchmark_module("accuracy")
    rows = []
    for i in range(20):
        rows += _rows(f"e{i}", "lax_3ch", 1.5 + 0.1 * (i % 5), 2.5)  # exams differ: the interval has width
        rows += _rows(f"e{i}", "lax_2ch", 1.8, 2.0)  # every exam alike: no width
    rows += [{"method": "heatmap", "exam_id": "e0", "view": "lax_3ch", "truth_present": False,
              "auto_obs1": np.nan, "obs1_obs2": np.nan}]  # an absent landmark does not count
    t = acc.view_distance_cis(pd.DataFrame(rows)).set_index("view")
    three, two = t.loc["lax_3ch"], t.loc["lax_2ch"]
    assert three["exams"] == 20 and three["points"] == 80
    assert np.isclose(three["auto_obs1_mm"], 1.7)
    assert three["auto_obs1_lo"] < 1.7 < three["auto_obs1_hi"] and three["auto_obs1_hi"] - three["auto_obs1_lo"] < 0.2
    assert np.isclose(three["auto_minus_obs_mm"], -0.8) and three["auto_minus_obs_hi"] < 0
    assert np.isclose(two["auto_obs1_lo"], 1.8) and np.isclose(two["auto_obs1_hi"], 1.8)  # identical exams
    assert np.isclose(two["auto_minus_obs_mm"], -0.2)
