import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.stats.agreement import bland_altman, measures_agreement
from cmr_atlas.stats.auc import auc_score, cv_auc
from cmr_atlas.stats.delong import delong_placements, delong_placements_slow, delong_test
from cmr_atlas.stats.odds import odds_ratios
from cmr_atlas.stats.risk_factors import (
    DELONG,
    MEASURES_AGREEMENT,
    ODDS_RATIOS,
    OOF_PREDICTIONS,
    RISK_FACTOR_AUC,
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


def _stats_inputs(root, n=60, seed=0):
    """scores, covariates (+ extra) and BSA-indexed measures files of a small two-atlas cohort."""
    from cmr_atlas.core.tables import write_table
    from cmr_atlas.stats.covariates import COVARIATES, COVARIATES_EXTRA

    rng = np.random.default_rng(seed)
    X, y = _simulated(n=n, effect=1.5, k=3, seed=seed)
    ids = [f"E{i:04d}" for i in range(n)]
    pd.concat([pd.DataFrame({"exam_id": ids, "source": s, **{f"pc{i + 1}": X[:, i] + z * rng.normal(size=n)
                                                              for i in range(3)}})
               for s, z in (("auto", 0.3), ("manual", 0.0))], ignore_index=True).to_parquet(root / "scores.parquet")
    cov = COVARIATES.empty().reindex(range(n))
    cov["exam_id"], cov["hypertension"], cov["age"] = ids, pd.array(y, dtype="Int64"), rng.normal(60, 10, n)
    write_table(cov, root / "covariates.parquet", COVARIATES)
    extra = pd.DataFrame({"exam_id": ids, "name": "ldl", "value_num": rng.normal(100, 10, n), "value_str": None})
    write_table(extra, root / "covariates_extra.parquet", COVARIATES_EXTRA)
    pd.DataFrame({"exam_id": ids * 2, "source": ["auto"] * n + ["manual"] * n, "edvi": rng.normal(70, 5, 2 * n),
                  "esvi": np.nan, "ef_pct": 60.0, "lvmi": 60.0}).to_parquet(root / "measures.parquet")
    return [root / f for f in ("scores.parquet", "covariates.parquet", "covariates_extra.parquet", "measures.parquet")]


def test_write_stats_writes_the_five_tables_from_files(tmp_path):
    from cmr_atlas.core.tables import read_table
    from cmr_atlas.stats.risk_factors import STATS_TABLES, stats_paths, write_stats

    inputs = _stats_inputs(tmp_path)
    out = stats_paths(tmp_path / "results")
    assert sorted(p.relative_to(tmp_path / "results").as_posix() for p in out.values()) == sorted(
        f"{s.name}.parquet" for s in STATS_TABLES)
    kw = dict(risk_factors=["hypertension", "ldl"], n_pcs=2, folds=5, n_bootstrap=10, adjust_for=["age"], seed=1)
    res = write_stats(*inputs, out, **kw)
    auc = read_table(out["risk_factor_auc"], RISK_FACTOR_AUC).set_index(["risk_factor", "source"])
    assert auc.loc[("hypertension", "manual"), "auc"] > 0.6 and (auc["k"] == 2).all()
    assert auc.loc[("hypertension", "auto"), "adjusted_for"] == "age"
    assert "not binary" in auc.loc[("ldl", "auto"), "note"]  # the extra column is read back in (wide)
    assert read_table(out["delong"], DELONG)["n"].tolist() == [60, 0]
    assert read_table(out["odds_ratios"], ODDS_RATIOS)["term"].tolist()[:4] == ["const", "pc1", "pc2", "age"]
    agreement = read_table(out["measures_agreement"], MEASURES_AGREEMENT).set_index("measure")
    # the measures are used as they come (already BSA-indexed): esvi stays unpaired
    assert agreement.loc["edvi", "n"] == 60 and agreement.loc["esvi", "n"] == 0
    oof = read_table(out["oof_predictions"], OOF_PREDICTIONS)
    pd.testing.assert_frame_equal(oof, res.oof_predictions, check_dtype=False)
    # the same as run_stats on the frames, and seeded
    again = write_stats(*inputs, stats_paths(tmp_path / "again"), **kw)
    pd.testing.assert_frame_equal(again.risk_factor_auc, res.risk_factor_auc)


def test_write_stats_without_measures_or_covariates_and_bad_outputs(tmp_path):
    from cmr_atlas.stats.risk_factors import stats_paths, write_stats

    scores, cov, _extra, _meas = _stats_inputs(tmp_path)
    out = stats_paths(tmp_path / "r")
    kw = dict(risk_factors=["hypertension"], n_pcs=3, folds=5, n_bootstrap=0, adjust_for=[], seed=0)
    res = write_stats(scores, tmp_path / "absent.parquet", None, None, out, **kw)
    assert res.risk_factor_auc["note"].iloc[0] == "risk factor has no values in the covariates"
    assert (pd.read_parquet(out["measures_agreement"])["n"] == 0).all()
    with pytest.raises(ValueError, match="need paths for"):
        write_stats(scores, cov, None, None, {"delong": tmp_path / "d.parquet"}, **kw)


def test_measures_agreement_columns_are_the_schema():
    meas = pd.DataFrame({"exam_id": ["a", "a"], "source": ["auto", "manual"], "edvi": [1.0, 2.0]})
    assert list(measures_agreement(meas).columns) == MEASURES_AGREEMENT.column_names
    assert list(measures_agreement(None).columns) == MEASURES_AGREEMENT.column_names


def test_cv_auc_default_seed_is_the_configured_one():
    from cmr_atlas.core.config import default

    X, y = _simulated(n=120, effect=1.5)
    a = cv_auc(X, y, folds=5, n_bootstrap=20)
    b = cv_auc(X, y, folds=5, n_bootstrap=20, seed=default("stats.seed"))
    np.testing.assert_array_equal(a.oof, b.oof)
    assert (a.ci_low, a.ci_high) == (b.ci_low, b.ci_high)


def test_stats_cli_defaults_come_from_the_config_schema():
    import argparse

    from cmr_atlas.cli import stats as cli
    from cmr_atlas.core.config import default

    p = argparse.ArgumentParser()
    cli.add_arguments(p)
    args = p.parse_args(["--scores", "s", "--covariates", "c", "--out", "o"])
    assert args.risk_factors == default("stats.risk_factors")
    assert (args.n_pcs, args.folds, args.bootstrap, args.adjust_for, args.seed) == tuple(
        default(f"stats.{k}") for k in ("n_pcs", "folds", "bootstrap", "adjust_for", "seed"))


def test_workflow_stats_script_writes_the_rule_outputs(tmp_path):
    """workflow/scripts/stats.py with a stand-in for Snakemake's ``snakemake`` object."""
    import runpy
    from types import SimpleNamespace

    from cmr_atlas.core.config import default

    scores, cov, extra, meas = _stats_inputs(tmp_path)
    names = ("auc", "delong", "odds_ratios", "agreement", "oof")
    output = SimpleNamespace(**{k: str(tmp_path / "stats" / f"{k}.parquet") for k in names})
    cfg = {**default("stats"), "n_pcs": 2, "folds": 5, "bootstrap": 0, "risk_factors": ["hypertension"]}
    smk = SimpleNamespace(
        input=SimpleNamespace(scores=str(scores), covariates=str(cov), extra=str(extra), measures=str(meas)),
        output=output, params=SimpleNamespace(stats=cfg), log=[str(tmp_path / "stats.log")])
    runpy.run_path(str(Path(__file__).parents[2] / "workflow" / "scripts" / "stats.py"), init_globals={"snakemake": smk})
    auc = pd.read_parquet(output.auc)
    assert len(auc) == 2 and set(auc.columns) == set(RISK_FACTOR_AUC.column_names)
    assert set(pd.read_parquet(output.agreement)["measure"]) == {"edvi", "esvi", "ef_pct", "lvmi"}
    assert len(pd.read_parquet(output.oof)) == 120 and len(pd.read_parquet(output.delong)) == 1
