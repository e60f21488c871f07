"""benchmarks/perfusion.py's angle floor: the automated-vs-observer-1 angle had the network been
nearer the truth, from unsigned per-slice angles."""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[2]


def _bench():
    sys.path.insert(0, str(ROOT / "benchmarks"))
    spec = importlib.util.spec_from_file_location("perfusion_bench", ROOT / "benchmarks" / "perfusion.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_angle_floor_recovers_sides_and_scales_the_network_error():
    rng = np.random.default_rng(3)
    net, obs = rng.normal(0, 3, 200), rng.normal(0, 3, 200)  # signed errors from the truth, deg
    seg = pd.DataFrame({"angle_deg": np.abs(net), "obs1_vs_truth_deg": np.abs(obs),
                        "angle_vs_obs1_deg": np.abs(net - obs)})
    floor = _bench().angle_floor(seg, (1.0, 0.5, 0.0))
    np.testing.assert_allclose(floor[1.0], np.mean(np.abs(net - obs)))
    np.testing.assert_allclose(floor[0.5], np.mean(np.abs(0.5 * net - obs)))
    np.testing.assert_allclose(floor[0.0], np.mean(np.abs(obs)))
    assert floor[0.0] < floor[0.5] < floor[1.0]


def test_angle_floor_without_observer_columns_is_none():
    assert _bench().angle_floor(pd.DataFrame({"angle_deg": [1.0]})) is None
