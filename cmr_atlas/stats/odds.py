"""Odds ratios of a risk factor per SD of each predictor: in-sample logistic regression."""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


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
