"""AUC of a risk-factor model: Mann-Whitney AUC, percentile bootstrap CI, cross-validated AUC.

The design follows the legacy-atlas paper (section 2.5, Table 5): for each risk factor a logistic
regression with the factor as binary outcome and the first k principal-component scores of the
atlas as predictors, evaluated by stratified k-fold cross-validation; the AUC of the pooled
out-of-fold predictions measures the strength of the shape association.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.stats.delong import check_binary, check_scores, delong_placements


def auc_score(y_true, scores) -> float:
    """Mann-Whitney AUC (positive class = 1, ties 1/2)."""
    y = check_binary(y_true)
    s = check_scores(scores, y.shape[0], "scores")
    return float(delong_placements(y, s)[0][0])


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


def bootstrap_auc_ci(y, scores, n_boot: int, seed: int, level: float = 0.95) -> tuple[float, float]:
    """Percentile bootstrap CI of the AUC, resampling subjects (draws with one class are redrawn
    from the stream and skipped; returns NaNs when ``n_boot`` is 0)."""
    y = check_binary(y)
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


def _oof_logistic(X: np.ndarray, y: np.ndarray, folds: int, seed: int, C: float) -> np.ndarray:
    """Out-of-fold probabilities of a standardised L2 logistic regression, stratified k folds."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    pred = np.empty(y.shape[0])
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    for train, test in skf.split(X, y):
        model = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=2000))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence chatter on tiny folds
            model.fit(X[train], y[train])
        pred[test] = model.predict_proba(X[test])[:, 1]
    return pred


def cv_auc(
    X,
    y,
    *,
    folds: int,
    n_bootstrap: int,
    seed: int | None = None,
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
    result has NaN AUC and a ``note`` instead of raising.  ``seed`` None: the configured default
    (``stats.seed`` in the config schema).
    """
    if seed is None:
        from cmr_atlas.core.config import default

        seed = default("stats.seed")
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
    yk = yk.astype(int)
    pred = _oof_logistic(X[ok], yk, folds, seed, C)
    oof[ok] = pred
    auc = float(delong_placements(yk, pred)[0][0])
    lo, hi = bootstrap_auc_ci(yk, pred, n_bootstrap, seed)
    return CVResult(auc, lo, hi, n, npos, oof)
