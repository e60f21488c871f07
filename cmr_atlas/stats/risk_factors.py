"""Risk-factor statistics on atlas scores: cross-validated AUC, bootstrap CIs, odds ratios, DeLong.

The design follows the legacy-atlas paper (section 2.5, Table 5): for each risk factor a logistic
regression with the factor as binary outcome and the first k principal-component scores of the
atlas as predictors, evaluated by stratified 10-fold cross-validation; the AUC of the pooled
out-of-fold predictions measures the strength of the shape association.  The automated and the
manual atlas give two out-of-fold scores for the same subjects, compared with DeLong's test for two
correlated AUCs, implemented with the fast mid-rank algorithm of Sun and Xu (2014):

    X (m positives), Y (n negatives); midranks Tx within X, Ty within Y, Tz within X u Y
    AUC      = (sum_i Tz_i - m (m + 1) / 2) / (m n)
    V10_i    = (Tz_i - Tx_i) / n                 (case placement: share of negatives below, ties 1/2)
    V01_j    = 1 - (Tz_{m+j} - Ty_j) / m         (control placement: share of positives above)
    S        = cov(V10) / m + cov(V01) / n       (covariance matrix of the AUCs, ddof = 1)
    z        = (AUC_a - AUC_b) / sqrt(S_aa + S_bb - 2 S_ab),  p = 2 Phi(-|z|)

This is what R's pROC ``roc.test(..., method="delong", paired=TRUE)`` computes (tests check it on
pROC's own aSAH figures).  Degenerate variance follows pROC: equal AUCs with zero variance give
z = 0, p = 1; different AUCs with zero variance give z = +-inf, p = 0.
"""

from __future__ import annotations

import logging
import math
import warnings
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
from scipy import stats as sps

from cmr_atlas.stats import covariates as _covariates  # noqa: F401  (registers the covariates tables)
from cmr_atlas.core.tables import Column, TableSchema, register

log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------
# Tables
# --------------------------------------------------------------------------------------------
_RF = Column("risk_factor", "str", "risk-factor column of the covariates (binary outcome)", nullable=False)
_SRC = Column("source", "str", "atlas source: auto or manual", nullable=False)

RISK_FACTOR_AUC = register(TableSchema(
    name="stats/risk_factor_auc",
    description=(
        "Strength of the shape association per risk factor and atlas: logistic regression of the "
        "factor on the first k PC scores (standardised; plus the adjustment covariates when "
        "configured), stratified k-fold cross-validation, AUC of the pooled out-of-fold "
        "probabilities with a percentile bootstrap 95 % CI over subjects (legacy-atlas paper, "
        "Table 5). A factor that cannot be evaluated has null AUC and the reason in `note`."
    ),
    row="risk factor and atlas source",
    columns=(
        _RF, _SRC,
        Column("k", "int", "number of PC scores used as predictors"),
        Column("adjusted_for", "str", "adjustment covariates, comma-separated ('' = none)"),
        Column("auc", "float", "out-of-fold AUC"),
        Column("ci_low", "float", "bootstrap 2.5th percentile of the AUC"),
        Column("ci_high", "float", "bootstrap 97.5th percentile of the AUC"),
        Column("n", "int", "subjects with outcome and predictors"),
        Column("n_positive", "int", "subjects with the risk factor"),
        Column("note", "str", "why the AUC is missing, else ''"),
    ),
))

DELONG = register(TableSchema(
    name="stats/delong",
    description=(
        "Automated vs manual atlas, same subjects: DeLong's test for two correlated AUCs of the "
        "out-of-fold predictions (two-sided; z > 0 when the manual AUC is larger)."
    ),
    row="risk factor",
    columns=(
        _RF,
        Column("auc_manual", "float", "out-of-fold AUC, manual atlas"),
        Column("auc_auto", "float", "out-of-fold AUC, automated atlas"),
        Column("z", "float", "DeLong z statistic of auc_manual - auc_auto"),
        Column("p", "float", "two-sided p value"),
        Column("n", "int", "subjects in both"),
        Column("note", "str", "why the test is missing, else ''"),
    ),
))

ODDS_RATIOS = register(TableSchema(
    name="stats/odds_ratios",
    description=(
        "In-sample logistic regression (statsmodels Logit, all subjects) of each risk factor on the "
        "first k PC scores, each standardised to unit SD: odds ratio per SD of the score."
    ),
    row="risk factor, atlas source and model term",
    columns=(
        _RF, _SRC,
        Column("term", "str", "const, pc1..pcK, or an adjustment covariate"),
        Column("coef", "float", "log odds ratio per SD"),
        Column("odds_ratio", "float", "exp(coef)"),
        Column("ci_low", "float", "95 % CI of the odds ratio, low"),
        Column("ci_high", "float", "95 % CI of the odds ratio, high"),
        Column("p", "float", "Wald p value"),
    ),
))

MEASURES_AGREEMENT = register(TableSchema(
    name="stats/measures_agreement",
    description=(
        "Automated vs manual clinical measures on the same exams: Pearson correlation and "
        "Bland-Altman bias (auto - manual), SD of the differences and 95 % limits of agreement "
        "(bias +- 1.96 SD)."
    ),
    row="measure",
    columns=(
        Column("measure", "str", "edvi, esvi, ef_pct or lvmi", nullable=False),
        Column("unit", "str", "unit of the measure"),
        Column("n", "int", "exams with both values"),
        Column("correlation", "float", "Pearson r"),
        Column("bias", "float", "mean of auto - manual"),
        Column("sd", "float", "SD of auto - manual"),
        Column("loa_low", "float", "bias - 1.96 SD"),
        Column("loa_high", "float", "bias + 1.96 SD"),
    ),
))

OOF_PREDICTIONS = register(TableSchema(
    name="stats/oof_predictions",
    description=(
        "Out-of-fold predicted probabilities of the cross-validated risk-factor models (the input "
        "of the AUCs, ROC curves and DeLong tests)."
    ),
    row="exam, risk factor and atlas source",
    columns=(
        Column("exam_id", "str", "exam", nullable=False),
        _RF, _SRC,
        Column("outcome", "int", "observed risk factor (0/1)"),
        Column("probability", "float", "out-of-fold predicted probability"),
    ),
))

STATS_TABLES = (RISK_FACTOR_AUC, DELONG, ODDS_RATIOS, MEASURES_AGREEMENT, OOF_PREDICTIONS)

# Units of the measures compared in stats/measures_agreement.
AGREEMENT_MEASURES = {"edvi": "ml/m2", "esvi": "ml/m2", "ef_pct": "%", "lvmi": "g/m2"}


# --------------------------------------------------------------------------------------------
# AUC and DeLong
# --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DeLongResult:
    auc_a: float
    auc_b: float
    z: float
    p: float


def _check_binary(y_true) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int8)
    yf = y.astype(float)
    if not np.all(np.isin(yf, (0.0, 1.0))):
        raise ValueError("y_true must hold only 0 and 1 (positive class = 1)")
    return yf.astype(np.int8)


def _check_scores(scores, n: int, name: str) -> np.ndarray:
    s = np.asarray(scores, dtype=float)
    if s.ndim != 1 or s.shape[0] != n:
        raise ValueError(f"{name} must be one-dimensional with {n} values, got shape {s.shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError(f"{name} has non-finite values (NaN or inf)")
    return s


def delong_placements(y_true, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Fast (Sun & Xu 2014) AUCs and placements of one or more score vectors.

    ``scores``: shape (k, N) or (N,).  Returns ``(auc (k,), v10 (k, m), v01 (k, n))`` where v10 are
    the positives' placements (share of negatives below, ties 1/2) in input order and v01 the
    negatives' (share of positives above).  O(k N log N).
    """
    y = _check_binary(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    pos, neg = s[:, y == 1], s[:, y == 0]
    m, n = pos.shape[1], neg.shape[1]
    if m == 0 or n == 0:
        raise ValueError(f"need positives and negatives, got {m} positive and {n} negative")
    tx = sps.rankdata(pos, axis=1)
    ty = sps.rankdata(neg, axis=1)
    tz = sps.rankdata(np.concatenate([pos, neg], axis=1), axis=1)
    auc = (tz[:, :m].sum(axis=1) - m * (m + 1) / 2.0) / (m * n)
    v10 = (tz[:, :m] - tx) / n
    v01 = 1.0 - (tz[:, m:] - ty) / m
    return auc, v10, v01


def delong_placements_slow(y_true, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The O(m n) structural components of DeLong et al. (1988); reference for the fast version."""
    y = _check_binary(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    aucs, v10s, v01s = [], [], []
    for row in s:
        pos, neg = row[y == 1], row[y == 0]
        psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    return np.array(aucs), np.array(v10s), np.array(v01s)


def auc_score(y_true, scores) -> float:
    """Mann-Whitney AUC (positive class = 1, ties 1/2)."""
    y = _check_binary(y_true)
    s = _check_scores(scores, y.shape[0], "scores")
    return float(delong_placements(y, s)[0][0])


def delong_covariance(v10: np.ndarray, v01: np.ndarray) -> np.ndarray:
    """Covariance matrix of the AUCs from the placements (DeLong 1988, eq. for S = S10/m + S01/n)."""
    m, n = v10.shape[1], v01.shape[1]
    s10 = np.atleast_2d(np.cov(v10, ddof=1))
    s01 = np.atleast_2d(np.cov(v01, ddof=1))
    return s10 / m + s01 / n


def delong_test(y_true, score_a, score_b) -> DeLongResult:
    """DeLong's test for two correlated AUCs on the same subjects (two-sided).

    ``y_true``: 0/1 with positive class 1; ``score_a``/``score_b``: finite scores, higher = more
    likely positive.  Needs at least two positives and two negatives (the variance uses ddof = 1).
    z = (AUC_a - AUC_b) / SE; constant scores are allowed (AUC 0.5, zero placement variance).
    """
    y = _check_binary(y_true)
    a = _check_scores(score_a, y.shape[0], "score_a")
    b = _check_scores(score_b, y.shape[0], "score_b")
    m, n = int(y.sum()), int((1 - y).sum())
    if m < 2 or n < 2:
        raise ValueError(f"DeLong's test needs >= 2 positives and >= 2 negatives, got {m} and {n}")
    auc, v10, v01 = delong_placements(y, np.vstack([a, b]))
    cov = delong_covariance(v10, v01)
    var = cov[0, 0] + cov[1, 1] - 2.0 * cov[0, 1]
    d = auc[0] - auc[1]
    # Round-off can leave a tiny negative variance for identical placements; treat as zero.
    if var <= 1e-15 * max(1.0, cov[0, 0] + cov[1, 1]):
        if abs(d) < 1e-15:
            return DeLongResult(float(auc[0]), float(auc[1]), 0.0, 1.0)
        return DeLongResult(float(auc[0]), float(auc[1]), math.copysign(math.inf, d), 0.0)
    z = d / math.sqrt(var)
    p = 2.0 * sps.norm.sf(abs(z))
    return DeLongResult(float(auc[0]), float(auc[1]), float(z), float(p))


# --------------------------------------------------------------------------------------------
# Cross-validated AUC
# --------------------------------------------------------------------------------------------
@dataclass
class CVResult:
    """Out-of-fold AUC of one logistic model; ``oof`` aligned with the input rows (NaN = unused)."""

    auc: float
    ci_low: float
    ci_high: float
    n: int
    n_positive: int
    oof: np.ndarray = field(repr=False)
    note: str = ""


def bootstrap_auc_ci(y, scores, n_boot: int = 1000, seed: int = 0, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC, resampling subjects (draws with one class are redrawn
    from the stream and skipped; returns NaNs when ``n_boot`` is 0)."""
    y = _check_binary(y)
    s = np.asarray(scores, dtype=float)
    if n_boot <= 0:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    N = y.shape[0]
    aucs = np.empty(n_boot)
    for b in range(n_boot):
        idx = rng.integers(0, N, N)
        yb = y[idx]
        k = int(yb.sum())
        if k == 0 or k == N:
            aucs[b] = np.nan
            continue
        aucs[b] = delong_placements(yb, s[idx])[0][0]
    aucs = aucs[np.isfinite(aucs)]
    if aucs.size == 0:
        return math.nan, math.nan
    lo, hi = np.percentile(aucs, [50 * (1 - level), 100 - 50 * (1 - level)])
    return float(lo), float(hi)


def cv_auc(
    X,
    y,
    folds: int = 10,
    seed: int = 0,
    n_bootstrap: int = 1000,
    adjust=None,
    C: float = 1.0,
) -> CVResult:
    """Stratified k-fold out-of-fold AUC of a logistic regression of ``y`` on ``X``.

    Predictors (``X`` plus the optional ``adjust`` columns, e.g. age and sex coded 0/1) are
    standardised inside each training fold; the model is sklearn's L2 logistic regression with
    ``C`` (1.0 = mild ridge on standardised predictors, which keeps 20 PCs stable in small folds).
    The AUC is that of the pooled out-of-fold probabilities; the CI a percentile bootstrap over
    subjects (``n_bootstrap`` draws, seeded).  Rows with a missing outcome or predictor are left
    out (``oof`` NaN there).  When the outcome has fewer than ``folds`` positives or negatives the
    result has NaN AUC and a ``note`` instead of raising.
    """
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    if adjust is not None:
        A = np.asarray(adjust, dtype=float)
        X = np.hstack([X, A[:, None] if A.ndim == 1 else A])
    yv = np.asarray(y, dtype=float)
    if yv.shape[0] != X.shape[0]:
        raise ValueError(f"X has {X.shape[0]} rows but y has {yv.shape[0]}")
    oof = np.full(yv.shape[0], np.nan)
    ok = np.isfinite(yv) & np.all(np.isfinite(X), axis=1)
    yk = yv[ok]
    if yk.size and not np.all(np.isin(yk, (0.0, 1.0))):
        return CVResult(math.nan, math.nan, math.nan, int(ok.sum()), 0, oof, "outcome is not binary 0/1")
    n, npos = int(ok.sum()), int(yk.sum())
    if min(npos, n - npos) < folds:
        note = f"too few {'positives' if npos < folds else 'negatives'} for {folds}-fold CV ({npos} of {n} positive)"
        return CVResult(math.nan, math.nan, math.nan, n, npos, oof, note)
    Xk, yk = X[ok], yk.astype(int)
    pred = np.empty(n)
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in skf.split(Xk, yk):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny folds
            model.fit(Xk[train], yk[train])
        pred[test] = model.predict_proba(Xk[test])[:, 1]
    oof[ok] = pred
    auc = float(delong_placements(yk, pred)[0][0])
    lo, hi = bootstrap_auc_ci(yk, pred, n_bootstrap, seed)
    return CVResult(auc, lo, hi, n, npos, oof)


def odds_ratios(X, y, names: list[str] | None = None) -> pd.DataFrame:
    """In-sample statsmodels Logit of ``y`` on standardised ``X`` (plus a constant).

    Returns one row per term (const first): term, coef, odds_ratio, ci_low, ci_high (95 % CI of the
    OR), p.  A model that cannot be fitted (separation, singular design) gives NaN rows.
    """
    import statsmodels.api as sm

    X = np.asarray(X, dtype=float)
    if X.ndim == 1:
        X = X[:, None]
    names = list(names) if names is not None else [f"x{i + 1}" for i in range(X.shape[1])]
    if len(names) != X.shape[1]:
        raise ValueError(f"{len(names)} names for {X.shape[1]} predictors")
    yv = np.asarray(y, dtype=float)
    ok = np.isfinite(yv) & np.all(np.isfinite(X), axis=1)
    Xk, yk = X[ok], yv[ok]
    terms = ["const", *names]
    nan_rows = pd.DataFrame({"term": terms, "coef": np.nan, "odds_ratio": np.nan,
                             "ci_low": np.nan, "ci_high": np.nan, "p": np.nan})
    if yk.size < X.shape[1] + 2 or len(np.unique(yk)) < 2:
        return nan_rows
    sd = Xk.std(axis=0, ddof=1)
    sd[~(sd > 0)] = 1.0
    Z = sm.add_constant((Xk - Xk.mean(axis=0)) / sd, has_constant="add")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = sm.Logit(yk, Z).fit(disp=0, maxiter=200)
        ci = np.asarray(res.conf_int(0.05))
        coef = np.asarray(res.params)
        pv = np.asarray(res.pvalues)
    except Exception as exc:  # perfect separation, singular matrix: report, do not crash
        log.warning("odds ratios: logistic fit failed (%s)", exc)
        return nan_rows
    with np.errstate(over="ignore"):  # a quasi-separated term: OR and CI overflow to inf, say so
        return pd.DataFrame({"term": terms, "coef": coef, "odds_ratio": np.exp(coef),
                             "ci_low": np.exp(ci[:, 0]), "ci_high": np.exp(ci[:, 1]), "p": pv})


# --------------------------------------------------------------------------------------------
# Agreement of clinical measures
# --------------------------------------------------------------------------------------------
def bland_altman(auto, manual) -> dict:
    """Pearson r, bias (auto - manual), SD and 95 % limits of agreement over pairs with both values."""
    a, m = np.asarray(auto, dtype=float), np.asarray(manual, dtype=float)
    ok = np.isfinite(a) & np.isfinite(m)
    a, m = a[ok], m[ok]
    n = int(a.size)
    out = {"n": n, "correlation": math.nan, "bias": math.nan, "sd": math.nan,
           "loa_low": math.nan, "loa_high": math.nan}
    if n == 0:
        return out
    d = a - m
    out["bias"] = float(d.mean())
    if n >= 2:
        out["sd"] = float(d.std(ddof=1))
        out["loa_low"] = out["bias"] - 1.96 * out["sd"]
        out["loa_high"] = out["bias"] + 1.96 * out["sd"]
        if a.std() > 0 and m.std() > 0:
            out["correlation"] = float(np.corrcoef(a, m)[0, 1])
    return out


def measures_agreement(measures: pd.DataFrame) -> pd.DataFrame:
    """stats/measures_agreement from a measures table with ``source`` auto and manual rows."""
    rows = []
    wide = paired_measures(measures)
    for meas, unit in AGREEMENT_MEASURES.items():
        if wide is None or f"{meas}_auto" not in wide:
            r = bland_altman([], [])
        else:
            r = bland_altman(wide[f"{meas}_auto"], wide[f"{meas}_manual"])
        rows.append({"measure": meas, "unit": unit, **r})
    return pd.DataFrame(rows, columns=MEASURES_AGREEMENT.column_names)


def one_method(measures: pd.DataFrame) -> pd.DataFrame:
    """The measures of one method (``model`` when present; the fit stage also writes ``slices``)
    without failed fits: one row per exam and source, never mixing methods, so an exam whose
    model fit failed is left out rather than represented by its slice summation."""
    df = measures
    if "method" in df and df["method"].notna().any():
        methods = sorted(df["method"].dropna().unique())
        df = df[df["method"] == ("model" if "model" in methods else methods[0])]
    if "status" in df:  # fit status ok/partial/failed: a failed fit has no usable measures
        df = df[df["status"] != "failed"]
    return df.drop_duplicates(["exam_id", "source"], keep="first")


def paired_measures(measures: pd.DataFrame) -> pd.DataFrame | None:
    """One row per exam with ``<measure>_auto`` and ``<measure>_manual`` columns (None when a source
    is absent), from :func:`one_method`."""
    if measures is None or not len(measures) or "source" not in measures:
        return None
    df = one_method(measures)
    cols = [c for c in AGREEMENT_MEASURES if c in df]
    a = df[df["source"] == "auto"].set_index("exam_id")[cols]
    m = df[df["source"] == "manual"].set_index("exam_id")[cols]
    if not len(a) or not len(m):
        return None
    return a.add_suffix("_auto").join(m.add_suffix("_manual"), how="inner").reset_index()


# --------------------------------------------------------------------------------------------
# Cohort analysis
# --------------------------------------------------------------------------------------------
@dataclass
class StatsOutputs:
    risk_factor_auc: pd.DataFrame
    delong: pd.DataFrame
    odds_ratios: pd.DataFrame
    measures_agreement: pd.DataFrame
    oof_predictions: pd.DataFrame


def encode_adjustment(cov: pd.DataFrame, names: list[str]) -> tuple[np.ndarray, list[str]]:
    """Numeric adjustment columns: numbers as they are, ``sex`` as 1 = male (M/male/1), others as
    0/1 indicators of their non-first category."""
    cols, out = [], []
    for name in names:
        if name not in cov:
            raise ValueError(f"adjustment covariate {name!r} not in the covariates table")
        v = cov[name]
        if name == "sex":
            s = v.astype("string").str.strip().str.upper()
            cols.append(np.where(s.isin(["M", "MALE", "1"]), 1.0, np.where(s.isna(), np.nan, 0.0)))
            out.append("sex_male")
        elif pd.api.types.is_numeric_dtype(v):
            cols.append(v.to_numpy(dtype=float))
            out.append(name)
        else:
            cats = sorted(v.dropna().astype(str).unique())
            for c in cats[1:]:
                cols.append(np.where(v.isna(), np.nan, (v.astype(str) == c).astype(float)))
                out.append(f"{name}_{c}")
    if not cols:
        return np.empty((len(cov), 0)), []
    return np.column_stack(cols), out


def run_stats(
    scores: pd.DataFrame,
    covariates: pd.DataFrame,
    risk_factors: list[str],
    n_pcs: int = 20,
    folds: int = 10,
    n_bootstrap: int = 1000,
    adjust_for: list[str] | None = None,
    seed: int = 0,
    measures: pd.DataFrame | None = None,
) -> StatsOutputs:
    """All stats tables from ``atlas/scores`` (wide pc1..) and the covariates table."""
    adjust_for = list(adjust_for or [])
    pcs_avail = [c for c in scores.columns if c.startswith("pc") and c[2:].isdigit()]
    auc_rows, or_rows, oof_rows = [], [], []
    oof_by = {}
    sources = sorted(scores["source"].unique()) if len(scores) else []
    for source in sources:
        sc = scores[scores["source"] == source]
        pcs = [f"pc{i}" for i in range(1, n_pcs + 1) if f"pc{i}" in pcs_avail and sc[f"pc{i}"].notna().any()]
        k = len(pcs)
        data = sc[["exam_id", *pcs]].merge(covariates, on="exam_id", how="left")
        n_missing = int(data[risk_factors[0]].isna().sum()) if risk_factors and risk_factors[0] in data else len(data)
        log.info("stats %s: %d exams with scores, k = %d PCs, %d without covariates", source, len(data), k, n_missing)
        try:
            A, a_names = encode_adjustment(data, adjust_for) if adjust_for else (None, [])
        except ValueError as exc:
            raise ValueError(f"stats.adjust_for: {exc}") from exc
        for rf in risk_factors:
            base = {"risk_factor": rf, "source": source, "k": k, "adjusted_for": ",".join(adjust_for)}
            if rf not in data.columns:
                auc_rows.append({**base, "auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0,
                                 "n_positive": 0, "note": "risk factor not in the covariates table"})
                continue
            y = pd.to_numeric(data[rf], errors="coerce").to_numpy(dtype=float)
            if not np.isfinite(y).any():
                auc_rows.append({**base, "auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0,
                                 "n_positive": 0, "note": "risk factor has no values in the covariates"})
                continue
            if k == 0:
                auc_rows.append({**base, "auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0,
                                 "n_positive": 0, "note": "no PC scores"})
                continue
            X = data[pcs].to_numpy(dtype=float)
            res = cv_auc(X, y, folds=folds, seed=seed, n_bootstrap=n_bootstrap, adjust=A)
            if res.note:
                log.warning("stats %s %s: %s", source, rf, res.note)
            auc_rows.append({**base, "auc": res.auc, "ci_low": res.ci_low, "ci_high": res.ci_high,
                             "n": res.n, "n_positive": res.n_positive, "note": res.note})
            used = np.isfinite(res.oof)
            oof_by[(rf, source)] = pd.Series(res.oof[used], index=data["exam_id"].to_numpy()[used])
            oof_rows.append(pd.DataFrame({"exam_id": data["exam_id"].to_numpy()[used], "risk_factor": rf,
                                          "source": source, "outcome": y[used].astype(int),
                                          "probability": res.oof[used]}))
            Xo = X if A is None else np.hstack([X, A])
            ors = odds_ratios(Xo, y, [*pcs, *a_names])
            or_rows.append(ors.assign(risk_factor=rf, source=source))
    delong_rows = []
    if {"auto", "manual"} <= set(sources):
        for rf in risk_factors:
            row = {"risk_factor": rf, "auc_manual": np.nan, "auc_auto": np.nan, "z": np.nan,
                   "p": np.nan, "n": 0, "note": ""}
            a, m = oof_by.get((rf, "auto")), oof_by.get((rf, "manual"))
            if a is None or m is None:
                row["note"] = "no out-of-fold predictions for both sources"
                delong_rows.append(row)
                continue
            common = a.index.intersection(m.index)
            if common.size == 0:  # no out-of-fold scores: say why, from the AUC rows
                notes = {r["note"] for r in auc_rows if r["risk_factor"] == rf and r["note"]}
                row["note"] = "; ".join(sorted(notes)) or "no exam scored by both sources"
                delong_rows.append(row)
                continue
            yy = covariates.set_index("exam_id").loc[common, rf].to_numpy(dtype=float)
            row["n"] = int(common.size)
            try:
                r = delong_test(yy, m.loc[common].to_numpy(), a.loc[common].to_numpy())
                row.update(auc_manual=r.auc_a, auc_auto=r.auc_b, z=r.z, p=r.p)
            except ValueError as exc:
                row["note"] = str(exc)
            delong_rows.append(row)
    oof = pd.concat(oof_rows, ignore_index=True) if oof_rows else OOF_PREDICTIONS.empty()
    ors = pd.concat(or_rows, ignore_index=True) if or_rows else ODDS_RATIOS.empty()
    return StatsOutputs(
        risk_factor_auc=pd.DataFrame(auc_rows, columns=RISK_FACTOR_AUC.column_names),
        delong=pd.DataFrame(delong_rows, columns=DELONG.column_names),
        odds_ratios=ors[ODDS_RATIOS.column_names] if len(ors) else ODDS_RATIOS.empty(),
        measures_agreement=measures_agreement(measures) if measures is not None else measures_agreement(pd.DataFrame()),
        oof_predictions=oof[OOF_PREDICTIONS.column_names] if len(oof) else oof,
    )
