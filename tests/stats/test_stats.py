import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.stats.risk_factors import (
    DELONG,
    MEASURES_AGREEMENT,
    ODDS_RATIOS,
    OOF_PREDICTIONS,
    RISK_FACTOR_AUC,
    auc_score,
    bland_altman,
    cv_auc,
    delong_placements,
    delong_placements_slow,
    delong_test,
    measures_agreement,
    odds_ratios,
    run_stats,
)
from cmr_atlas.core.tables import conform

PROC = json.loads((Path(__file__).parents[1] / "fixtures" / "proc_asah_placements.json").read_text())


def _scores_from_placements(marker: str) -> np.ndarray:
    """Scores with exactly pROC's published placements for an aSAH marker (cases first).

    Cases get 72 * X (negatives below, ties 1/2); controls their mid-position among controls
    ordered by Y (share of cases above).  Only the case/control order matters to the AUC and to
    DeLong, and the test checks that the placements come back exactly.
    """
    X, Y = np.array(PROC["X"][marker]), np.array(PROC["Y"][marker])
    m, n = len(X), len(Y)
    yr = np.round(Y * m * 2) / 2
    ctrl = np.array([(yr > v).sum() + 0.5 * (yr == v).sum() for v in yr])
    return np.concatenate([np.round(X * n * 2) / 2, ctrl])


Y_ASAH = np.r_[np.ones(41), np.zeros(72)]


@pytest.mark.parametrize("marker", ["ndka", "wfns", "s100b"])
def test_placements_match_proc(marker):
    auc, v10, v01 = delong_placements(Y_ASAH, _scores_from_placements(marker))
    assert auc[0] == pytest.approx(PROC["theta"][marker], abs=1e-12)
    np.testing.assert_allclose(v10[0], PROC["X"][marker], atol=1e-12)
    np.testing.assert_allclose(v01[0], PROC["Y"][marker], atol=1e-12)


@pytest.mark.parametrize("case", PROC["roc_test"], ids=lambda c: f"{c['a']}-{c['b']}")
def test_delong_matches_proc_roc_test(case):
    # pROC tests/testthat/test-roc.test.R: roc.test(r.a, r.b) on aSAH, method delong, paired.
    r = delong_test(Y_ASAH, _scores_from_placements(case["a"]), _scores_from_placements(case["b"]))
    assert r.z == pytest.approx(case["Z"], abs=1e-6)
    assert r.p == pytest.approx(case["p"], abs=1e-6)
    assert r.auc_a == pytest.approx(PROC["theta"][case["a"]], abs=1e-12)


def test_delong_swapping_scores_flips_z():
    a, b = _scores_from_placements("wfns"), _scores_from_placements("s100b")
    r1, r2 = delong_test(Y_ASAH, a, b), delong_test(Y_ASAH, b, a)
    assert r1.z == pytest.approx(-r2.z) and r1.p == pytest.approx(r2.p)


@settings(max_examples=40, deadline=None)
@given(
    st.integers(2, 12), st.integers(2, 12), st.integers(0, 10_000),
    st.sampled_from([3, 1000]),  # few distinct values = many ties
)
def test_fast_placements_equal_structural_components(m, n, seed, levels):
    rng = np.random.default_rng(seed)
    y = np.r_[np.ones(m), np.zeros(n)]
    rng.shuffle(y)
    s = rng.integers(0, levels, size=(2, m + n)).astype(float)
    fast = delong_placements(y, s)
    slow = delong_placements_slow(y, s)
    for f, sl in zip(fast, slow):
        np.testing.assert_allclose(f, sl, atol=1e-12)


def test_delong_small_sample_by_hand():
    # n = 2 + 2: a separates perfectly (AUC 1), b has one inversion (AUC 0.75).
    y = [1, 1, 0, 0]
    a = [0.9, 0.8, 0.1, 0.2]
    b = [0.9, 0.15, 0.1, 0.2]
    r = delong_test(y, a, b)
    assert r.auc_a == 1.0 and r.auc_b == 0.75
    # placements b: V10 = [1, 0.5] (cases), V01 = [1, 0.5] (controls: share of cases above);
    # a: all 1, zero variance.  var = 0.125/2 + 0.125/2 = 0.125 -> z = 0.25 / sqrt(0.125).
    assert r.z == pytest.approx(1 / math.sqrt(2))
    assert r.p == pytest.approx(0.47950012218695, abs=1e-9)


def test_delong_ties_and_constant_scores():
    y = np.array([1, 1, 1, 0, 0, 0])
    const = np.zeros(6)
    r = delong_test(y, const, const)
    assert (r.auc_a, r.auc_b, r.z, r.p) == (0.5, 0.5, 0.0, 1.0)
    # perfect separation vs constant: both variances 0, AUCs differ -> z = inf, p = 0 (as pROC).
    r = delong_test(y, [3, 2, 2, 1, 0, 0], const)
    assert r.auc_a == 1.0 and math.isinf(r.z) and r.z > 0 and r.p == 0.0
    # identical, tied scores: no difference.
    s = [1, 1, 0, 1, 0, 0]
    r = delong_test(y, s, s)
    assert r.z == 0.0 and r.p == 1.0 and r.auc_a == pytest.approx(6 / 9)  # 2 x (0.5 + 1 + 1) + (0 + 0.5 + 0.5)


def test_delong_bad_input_is_clear():
    with pytest.raises(ValueError, match="0 and 1"):
        delong_test([0, 1, 2, 1], [1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match=">= 2 positives"):
        delong_test([1, 0, 0, 0], [1, 2, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="non-finite"):
        delong_test([1, 1, 0, 0], [1, np.nan, 3, 4], [1, 2, 3, 4])
    with pytest.raises(ValueError, match="4 values"):
        delong_test([1, 1, 0, 0], [1, 2, 3], [1, 2, 3, 4])


def test_auc_score_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 200)
    s = np.round(rng.normal(size=200), 1)
    assert auc_score(y, s) == pytest.approx(roc_auc_score(y, s), abs=1e-12)


def _simulated(n=300, effect=1.0, seed=0, k=6):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, k)) * np.linspace(3, 1, k)
    logit = effect * X[:, 1] / 2.0 - 0.3
    y = (rng.random(n) < 1 / (1 + np.exp(-logit))).astype(int)
    return X, y


def test_cv_auc_finds_an_effect_and_none_without():
    X, y = _simulated(effect=1.5)
    r = cv_auc(X, y, folds=5, seed=0, n_bootstrap=50)
    assert r.auc > 0.7 and r.ci_low < r.auc < r.ci_high
    assert np.isfinite(r.oof).all() and r.n == 300 and r.n_positive == y.sum()
    X0, y0 = _simulated(effect=0.0, seed=3)
    r0 = cv_auc(X0, y0, folds=5, seed=0, n_bootstrap=50)
    assert 0.35 < r0.auc < 0.65
    # seeded: the same result twice
    assert cv_auc(X, y, folds=5, seed=0, n_bootstrap=50).ci_low == r.ci_low


def test_cv_auc_too_few_positives_is_a_note_not_a_crash():
    X, _ = _simulated(n=100)
    y = np.zeros(100)
    y[:4] = 1
    r = cv_auc(X, y, folds=10, n_bootstrap=10)
    assert math.isnan(r.auc) and "too few positives" in r.note and r.n_positive == 4


def test_cv_auc_skips_missing_rows_and_adjusts():
    X, y = _simulated(n=200, effect=1.5)
    y = y.astype(float)
    y[:10] = np.nan
    age = np.random.default_rng(0).normal(60, 10, 200)
    r = cv_auc(X, y, folds=5, n_bootstrap=20, adjust=age)
    assert r.n == 190 and np.isnan(r.oof[:10]).all() and np.isfinite(r.oof[10:]).all()


def test_odds_ratios_recover_the_effect_direction():
    X, y = _simulated(n=400, effect=2.0)
    df = odds_ratios(X, y, [f"pc{i + 1}" for i in range(X.shape[1])])
    assert list(df["term"][:3]) == ["const", "pc1", "pc2"]
    pc2 = df.set_index("term").loc["pc2"]
    assert pc2["odds_ratio"] > 1.5 and pc2["p"] < 1e-4 and pc2["ci_low"] < pc2["odds_ratio"] < pc2["ci_high"]
    # a failing fit (one class only) gives NaN rows, not an exception
    assert odds_ratios(X, np.zeros(len(y)))["coef"].isna().all()


def test_bland_altman_by_hand():
    r = bland_altman([10, 12, 14, np.nan], [9, 12, 12, 5])
    assert r["n"] == 3 and r["bias"] == pytest.approx(1.0)
    assert r["sd"] == pytest.approx(1.0) and r["loa_high"] == pytest.approx(2.96)


def test_run_stats_tables_conform():
    rng = np.random.default_rng(0)
    n = 120
    X, y = _simulated(n=n, effect=1.5, k=4)
    ids = [f"E{i:04d}" for i in range(n)]
    rows = []
    for src, noise in (("auto", 0.3), ("manual", 0.0)):
        d = {"exam_id": ids, "source": src, "rms_to_mean_mm": 1.0}
        for i in range(4):
            d[f"pc{i + 1}"] = X[:, i] + noise * rng.normal(size=n)
        rows.append(pd.DataFrame(d))
    scores = pd.concat(rows, ignore_index=True)
    cov = pd.DataFrame({"exam_id": ids, "hypertension": y, "diabetes": (np.arange(n) < 3).astype(int),
                        "age": rng.normal(60, 10, n), "sex": rng.choice(["F", "M"], n)})
    meas = pd.DataFrame({"exam_id": ids * 2, "source": ["auto"] * n + ["manual"] * n,
                         "edvi": rng.normal(70, 10, 2 * n), "esvi": 25.0, "ef_pct": 60.0, "lvmi": 60.0})
    out = run_stats(scores, cov, ["hypertension", "diabetes", "smoking"], n_pcs=20, folds=5,
                    n_bootstrap=20, adjust_for=["age", "sex"], measures=meas)
    for df, schema in ((out.risk_factor_auc, RISK_FACTOR_AUC), (out.delong, DELONG),
                       (out.odds_ratios, ODDS_RATIOS), (out.measures_agreement, MEASURES_AGREEMENT),
                       (out.oof_predictions, OOF_PREDICTIONS)):
        conform(df, schema)
    auc = out.risk_factor_auc.set_index(["risk_factor", "source"])
    assert auc.loc[("hypertension", "manual"), "auc"] > 0.65
    assert auc.loc[("hypertension", "auto"), "k"] == 4
    assert "too few" in auc.loc[("diabetes", "auto"), "note"]
    assert "not in the covariates" in auc.loc[("smoking", "auto"), "note"]
    dl = out.delong.set_index("risk_factor")
    assert np.isfinite(dl.loc["hypertension", "p"]) and dl.loc["hypertension", "n"] == n
    assert set(out.odds_ratios["term"]) >= {"const", "pc1", "age", "sex_male"}
    assert out.measures_agreement.set_index("measure").loc["edvi", "n"] == n


def test_measures_agreement_without_manual():
    meas = pd.DataFrame({"exam_id": ["a", "b"], "source": "auto", "edvi": [1.0, 2.0]})
    df = measures_agreement(meas)
    assert list(df["measure"]) == ["edvi", "esvi", "ef_pct", "lvmi"] and (df["n"] == 0).all()


def test_delong_row_explains_missing_cv_auc():
    """A factor too rare for 10-fold CV gives a DeLong row that says so, not 'got 0 and 0'."""
    import pandas as pd

    from cmr_atlas.stats.risk_factors import run_stats

    rng = np.random.default_rng(0)
    ids = [f"E{i}" for i in range(30)]
    scores = pd.concat([pd.DataFrame({"exam_id": ids, "source": s, **{f"pc{k}": rng.normal(size=30) for k in (1, 2, 3)}})
                        for s in ("auto", "manual")], ignore_index=True)
    cov = pd.DataFrame({"exam_id": ids, "diabetes": [1, 1, 1] + [0] * 27})
    out = run_stats(scores, cov, risk_factors=["diabetes"], n_pcs=3, folds=10, n_bootstrap=0, seed=0)
    note = out.delong.iloc[0]["note"]
    assert "too few positives for 10-fold CV" in note


def test_measures_agreement_pairs_one_method_and_drops_failed_fits():
    """An exam whose automated model fit failed is left out, not paired with its slice summation."""
    rows = []
    for e, auto_status in (("a", "ok"), ("b", "ok"), ("c", "failed")):
        for src in ("auto", "manual"):
            status = auto_status if src == "auto" else "ok"
            rows.append({"exam_id": e, "source": src, "method": "model", "status": status,
                         "edvi": np.nan if status == "failed" else 70.0 + (src == "auto")})
            rows.append({"exam_id": e, "source": src, "method": "slices", "status": "ok", "edvi": 50.0})
    df = measures_agreement(pd.DataFrame(rows)).set_index("measure")
    assert df.loc["edvi", "n"] == 2 and df.loc["edvi", "bias"] == pytest.approx(1.0)
