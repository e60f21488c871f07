"""benchmarks/perfusion.py's angle floor (the automated-vs-observer-1 angle had the network been
nearer the truth, from unsigned per-slice angles) and perfusion_readers.py's oracle insertions."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from cmr_atlas.perfusion import segment


def test_angle_floor_recovers_sides_and_scales_the_network_error(benchmark_module):
    rng = np.random.default_rng(3)
    net, obs = rng.normal(0, 3, 200), rng.normal(0, 3, 200)  # signed errors from the truth, deg
    seg = pd.DataFrame({"angle_deg": np.abs(net), "obs1_vs_truth_deg": np.abs(obs),
                        "angle_vs_obs1_deg": np.abs(net - obs)})
    floor = benchmark_module("perfusion").angle_floor(seg, (1.0, 0.5, 0.0))
    np.testing.assert_allclose(floor[1.0], np.mean(np.abs(net - obs)))
    np.testing.assert_allclose(floor[0.5], np.mean(np.abs(0.5 * net - obs)))
    np.testing.assert_allclose(floor[0.0], np.mean(np.abs(obs)))
    assert floor[0.0] < floor[0.5] < floor[1.0]


def test_angle_floor_without_observer_columns_is_none(benchmark_module):
    assert benchmark_module("perfusion").angle_floor(pd.DataFrame({"angle_deg": [1.0]})) is None


def test_oracle_insertions_take_the_truth_at_the_corrected_pose_and_the_exact_masks_centre(benchmark_module):
    lab = np.zeros((20, 20), np.uint8)
    lab[5:15, 5:15] = segment.MYOCARDIUM
    lab[8:12, 8:12] = segment.CAVITY
    rows = [dict(observer="truth", condition="stress", slice_index=s, frame=f, landmark=n, row_px=r + 0.1 * f, col_px=c)
            for s in (0, 1) for f in range(2, 8) for n, (r, c) in
            {"rv_insert_anterior": (3.0, 4.0), "rv_insert_posterior": (16.0, 4.0)}.items() if (s, n) != (1, "rv_insert_posterior")]
    rows.append(dict(observer="obs1", condition="stress", slice_index=0, frame=3, landmark="rv_insert_anterior", row_px=0.0, col_px=0.0))
    f = SimpleNamespace(p=SimpleNamespace(condition="stress", n_pd=2))
    ins = benchmark_module("perfusion_readers").true_insertions(pd.DataFrame(rows), f, [0, 1], [lab, lab])
    np.testing.assert_allclose(ins[0].centre, [9.5, 9.5])
    np.testing.assert_allclose(ins[0].anterior, [3.0 + 0.1 * 4.5, 4.0])  # the median over the dynamic frames
    np.testing.assert_allclose(ins[0].inferior, [16.0 + 0.1 * 4.5, 4.0])
    assert ins[1] is None  # the truth has no inferior insertion there
