"""Global MBF and reserve by risk factor (cmr_atlas.stats.perfusion_risk)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.tables import read_table
from cmr_atlas.stats.perfusion_risk import PERFUSION_BY_RISK_FACTOR, perfusion_by_risk_factor, \
    write_perfusion_by_risk_factor


def cohort(n=60, effect=-0.6, seed=1):
    rng = np.random.default_rng(seed)
    dm = rng.integers(0, 2, n)
    stress = 2.8 + effect * dm + rng.normal(0, 0.3, n)
    rest = 1.0 + rng.normal(0, 0.1, n)
    ids = [f"e{i:03d}" for i in range(n)]
    glob = pd.DataFrame({"exam_id": ids, "source": "auto", "mbf_stress_ml_min_g": stress, "mbf_rest_ml_min_g": rest,
                         "reserve": stress / rest, "qc_reason": None})
    cov = pd.DataFrame({"exam_id": ids, "diabetes": dm, "hypertension": rng.integers(0, 2, n), "age": 60.0})
    return glob, cov


def test_a_real_difference_is_found_and_a_null_one_is_not():
    glob, cov = cohort()
    t = perfusion_by_risk_factor(glob, cov, ["diabetes", "hypertension", "age", "missing"]).set_index(
        ["risk_factor", "level"])
    assert set(t.index.get_level_values(0)) == {"diabetes", "hypertension"}  # age not 0/1, missing skipped
    assert t.loc[("diabetes", 1), "stress_mean"] < t.loc[("diabetes", 0), "stress_mean"] - 0.4
    assert t.loc[("diabetes", 1), "stress_p"] < 1e-4 and t.loc[("diabetes", 0), "stress_p"] == t.loc[("diabetes", 1), "stress_p"]
    assert t.loc[("diabetes", 1), "rest_p"] > 0.01
    assert t.loc[("diabetes", 0), "n"] + t.loc[("diabetes", 1), "n"] == len(glob)


def test_implausible_exams_are_left_out_and_the_table_is_written(tmp_path):
    glob, cov = cohort()
    glob.loc[0, "qc_reason"] = "implausible global rest MBF 6.80 ml/min/g (outside 0.3-2.5)"
    glob.loc[1, "qc_reason"] = "1 stress segments implausible (left out)"  # still a usable global value
    t = perfusion_by_risk_factor(glob, cov, ["diabetes"])
    assert t["n"].sum() == len(glob) - 1
    glob.to_parquet(tmp_path / "g.parquet")
    cov.to_parquet(tmp_path / "c.parquet")
    write_perfusion_by_risk_factor(tmp_path / "g.parquet", tmp_path / "c.parquet", None, ["diabetes"], tmp_path / "o.parquet")
    out = read_table(tmp_path / "o.parquet", PERFUSION_BY_RISK_FACTOR)
    assert len(out) == 2
    write_perfusion_by_risk_factor(tmp_path / "g.parquet", tmp_path / "none.parquet", None, ["diabetes"], tmp_path / "e.parquet")
    assert len(read_table(tmp_path / "e.parquet")) == 0


def test_a_measure_that_varies_within_neither_level_has_no_p_value():
    """Welch's test is undefined there (scipy warns of catastrophic cancellation and answers NaN)."""
    import warnings

    glob, cov = cohort()
    glob["reserve"] = 2.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        t = perfusion_by_risk_factor(glob, cov, ["diabetes"]).set_index("level")
    assert t["reserve_p"].isna().all() and (t["reserve_mean"] == 2.0).all()
    assert t["stress_p"].notna().all()  # the measures that vary keep theirs
