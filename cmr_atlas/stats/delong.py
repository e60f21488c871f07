"""DeLong's test for two correlated AUCs on the same subjects, with the fast mid-rank algorithm of
Sun and Xu (2014):

    X (m positives), Y (n negatives); midranks Tx within X, Ty within Y, Tz within X u Y
    AUC      = (sum_i Tz_i - m (m + 1) / 2) / (m n)
    V10_i    = (Tz_i - Tx_i) / n                 (case placement: share of negatives below, ties 1/2)
    V01_j    = 1 - (Tz_{m+j} - Ty_j) / m         (control placement: share of positives above)
    S        = cov(V10) / m + cov(V01) / n       (covariance matrix of the AUCs, ddof = 1)
    z        = (AUC_a - AUC_b) / sqrt(S_aa + S_bb - 2 S_ab),  p = 2 Phi(-|z|)

This is what R's pROC ``roc.test(..., method="delong", paired=TRUE)`` computes (tests check it on
pROC's own aSAH figures).  Degenerate variance follows pROC: equal AUCs with zero variance give
z = 0, p = 1; different AUCs with zero variance give z = +-inf, p = 0.  The placements also give
the AUC itself (:func:`cmr_atlas.stats.auc.auc_score`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats as sps


@dataclass(frozen=True)
class DeLongResult:
    """AUCs of score a and score b, and DeLong's z (of auc_a - auc_b) and two-sided p."""

    auc_a: float
    auc_b: float
    z: float
    p: float


def check_binary(y_true) -> np.ndarray:
    """A one-dimensional 0/1 outcome as int8 (booleans accepted); ValueError otherwise."""
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be one-dimensional, got shape {y.shape}")
    if y.dtype == bool:
        return y.astype(np.int8)
    yf = y.astype(float)
    if not np.all(np.isin(yf, (0.0, 1.0))):
        raise ValueError("y_true must hold only 0 and 1 (positive class = 1)")
    return yf.astype(np.int8)


def check_scores(scores, n: int, name: str) -> np.ndarray:
    """``n`` finite scores as float; ValueError naming ``name`` otherwise."""
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
    y = check_binary(y_true)
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
    y = check_binary(y_true)
    s = np.atleast_2d(np.asarray(scores, dtype=float))
    aucs, v10s, v01s = [], [], []
    for row in s:
        pos, neg = row[y == 1], row[y == 0]
        psi = (pos[:, None] > neg[None, :]).astype(float) + 0.5 * (pos[:, None] == neg[None, :])
        v10s.append(psi.mean(axis=1))
        v01s.append(psi.mean(axis=0))
        aucs.append(psi.mean())
    return np.array(aucs), np.array(v10s), np.array(v01s)


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
    y = check_binary(y_true)
    a = check_scores(score_a, y.shape[0], "score_a")
    b = check_scores(score_b, y.shape[0], "score_b")
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
