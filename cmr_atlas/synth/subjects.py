"""Synthetic participants: demographics, risk factors and their LV clinical indices.

Covariates follow the MESA baseline figures (:mod:`.calibration`).  The six CAP clinical indices
(EDVI, sphericity, EF, RWT, conicity, LS) are drawn from the real MESA (or MI) joint distribution,
with documented risk-factor effects added on top and the residual covariance reduced so that the
marginal means, SDs and correlations still match the reference.

Risk-factor effects, in SD units of each index (order edvi, sphericity, ef, rwt, conicity, ls).
They encode textbook remodelling patterns, sized so that a logistic regression on shape gives AUCs
in the range the MESA paper reports (0.5-0.75), not 0.99:

* hypertension: concentric remodelling (much higher RWT, more spherical, less long-axis shortening)
* diabetes: mild concentric remodelling
* current smoking: smaller, more spherical ventricle
* high cholesterol: almost no direct effect (the MESA manual AUC was 0.50)
* calcium score > 0: small concentric effect; most of its association comes through age and sex
* age (per 10 years) and male sex: the known MESA gradients (older: smaller, thicker; men: larger
  indexed volume, lower EF)
* myocardial infarction (``--mi-fraction``): indices drawn from the DETERMINE MI distribution
  (larger, more spherical, lower EF, less shortening).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np
import pandas as pd
from scipy.optimize import brentq
from scipy.special import expit

from cmr_atlas.synth import calibration as cal

EFFECTS_SD: dict[str, np.ndarray] = {
    "age_per_10y": np.array([-0.25, 0.05, 0.05, 0.25, -0.05, -0.15]),
    "male": np.array([0.35, -0.10, -0.20, 0.20, 0.00, -0.10]),
    "hypertension": np.array([-0.03, 0.23, 0.03, 0.43, -0.14, -0.20]),
    "diabetes": np.array([-0.10, 0.13, -0.08, 0.27, -0.05, -0.13]),
    "current_smoker": np.array([-0.30, 0.25, 0.00, 0.05, 0.20, -0.12]),
    "high_cholesterol": np.array([0.00, 0.00, 0.00, 0.03, 0.00, 0.00]),
    "calcium_positive": np.array([-0.05, 0.05, 0.00, 0.15, 0.00, -0.05]),
}


def _truncnorm(rng: np.random.Generator, mean: float, sd: float, lo: float, hi: float, n: int) -> np.ndarray:
    out = rng.normal(mean, sd, n)
    bad = (out < lo) | (out > hi)
    while bad.any():
        out[bad] = rng.normal(mean, sd, bad.sum())
        bad = (out < lo) | (out > hi)
    return out


def _draw_covariates(rng: np.random.Generator, n: int, icpt: dict[str, float]) -> pd.DataFrame:
    """Draw covariates; ``icpt`` holds the logistic intercepts (see :func:`_intercepts`)."""
    m = cal.MESA
    sex = np.where(rng.random(n) < m["female"], "F", "M")
    male = (sex == "M").astype(float)
    age = _truncnorm(rng, m["age_mean_untruncated"], m["age_sd_untruncated"], m["age_min"], m["age_max"], n)
    a10 = (age - m["age_mean"]) / 10.0
    hyp = rng.random(n) < expit(icpt["hypertension"] + 0.6 * a10 + 0.1 * male)
    diab = rng.random(n) < expit(icpt["diabetes"] + 0.3 * a10 + 0.15 * male + 0.6 * hyp)
    u = rng.random(n)
    p_current = expit(icpt["current_smoker"] - 0.35 * a10 + 0.2 * male)
    p_former = (1 - p_current) * expit(icpt["former_smoker"] + 0.4 * male + 0.1 * a10)
    smoking = np.where(u < p_current, "current", np.where(u < p_current + p_former, "former", "never"))
    female = sex == "F"
    hf, hm = cal.MESA_BODY["height_cm"]["F"], cal.MESA_BODY["height_cm"]["M"]
    wf, wm = cal.MESA_BODY["weight_kg"]["F"], cal.MESA_BODY["weight_kg"]["M"]
    h = np.where(female, rng.normal(hf[0], hf[1], n), rng.normal(hm[0], hm[1], n))
    w = np.where(female, rng.normal(wf[0], wf[1], n), rng.normal(wm[0], wm[1], n)) + 4.0 * hyp + 6.0 * diab - 3.0
    w = np.clip(w, 42.0, 160.0)
    h = np.clip(h, 140.0, 200.0)
    bsa = np.sqrt(h * w / 3600.0)  # Mosteller
    sbp = np.where(hyp, rng.normal(142.0, 22.0, n), rng.normal(116.0, 14.0, n))
    dbp = np.where(hyp, rng.normal(77.0, 11.0, n), rng.normal(69.0, 9.0, n))
    sbp, dbp = np.clip(sbp, 85, 230), np.clip(dbp, 40, 130)
    hr = np.clip(rng.normal(m["hr_mean"] - 0.8 + 3.0 * diab, m["hr_sd"]), 42, 110)
    chol = np.clip(rng.normal(*cal.MESA_CHOLESTEROL_MEAN_SD, n) + 6.0 * (1 - male), 100, 380)
    treated = rng.random(n) < expit(icpt["lipid_treated"] + 0.4 * a10 + 0.5 * diab)
    high_chol = (chol >= 240) | treated
    cac_logit = np.where(male > 0, icpt["cac_M"], icpt["cac_F"]) + 0.9 * a10 + 0.4 * diab + 0.4 * (smoking == "current") + 0.3 * hyp
    cac_pos = rng.random(n) < expit(cac_logit)
    cac = np.where(cac_pos, np.exp(rng.normal(np.log(60.0) + 0.3 * a10, 1.5, n)), 0.0)
    cac = np.round(np.maximum(cac, cac_pos * 1.0), 1)
    return pd.DataFrame({
        "age": np.round(age, 1), "sex": sex, "height_cm": np.round(h, 1), "weight_kg": np.round(w, 1),
        "bsa_m2": np.round(bsa, 3), "sbp": np.round(sbp), "dbp": np.round(dbp), "heart_rate": np.round(hr),
        "hypertension": hyp.astype(int), "diabetes": diab.astype(int), "smoking": smoking,
        "current_smoker": (smoking == "current").astype(int), "total_cholesterol": np.round(chol),
        "high_cholesterol": high_chol.astype(int), "calcium_score": cac,
        "calcium_positive": (cac > 0).astype(int),
    })


_TARGETS = {
    "hypertension": cal.MESA["hypertension"],
    "diabetes": cal.MESA["diabetes"],
    "current_smoker": cal.MESA["smoking"]["current"],
    "former_smoker": cal.MESA["smoking"]["former"],
    "lipid_treated": None,  # solved so that high_cholesterol hits its target
    "cac_F": cal.MESA_CALCIUM_POSITIVE["F"],
    "cac_M": cal.MESA_CALCIUM_POSITIVE["M"],
}


@lru_cache(maxsize=1)
def _intercepts() -> dict[str, float]:
    """Logistic intercepts that reproduce the MESA prevalences in a large reference population.

    Solved once (deterministically, fixed internal seed) in dependency order.
    """
    icpt = {k: 0.0 for k in _TARGETS}
    n = 20000

    def prevalence(key: str, value: float) -> float:
        trial = dict(icpt, **{key: value})
        df = _draw_covariates(np.random.default_rng(12345), n, trial)
        if key == "former_smoker":
            return float((df.smoking == "former").mean())
        if key == "lipid_treated":
            return float(df.high_cholesterol.mean())
        if key in ("cac_F", "cac_M"):
            return float(df.calcium_positive[df.sex == key[-1]].mean())
        return float(df[key].mean())

    order = ["hypertension", "diabetes", "current_smoker", "former_smoker", "lipid_treated", "cac_F", "cac_M"]
    for key in order:
        target = cal.MESA_HIGH_CHOLESTEROL if key == "lipid_treated" else _TARGETS[key]
        icpt[key] = brentq(lambda v: prevalence(key, v) - target, -8.0, 6.0, xtol=1e-3)
    return icpt


def effect_matrix(cov: pd.DataFrame) -> np.ndarray:
    """Risk-factor effects on the six indices for each subject, in SD units, shape (n, 6)."""
    age10 = ((cov["age"].to_numpy() - cal.MESA["age_mean"]) / 10.0)[:, None]
    male = (cov["sex"].to_numpy() == "M").astype(float)[:, None]
    eff = age10 * EFFECTS_SD["age_per_10y"] + male * EFFECTS_SD["male"]
    for k in ("hypertension", "diabetes", "current_smoker", "high_cholesterol", "calcium_positive"):
        eff = eff + cov[k].to_numpy(dtype=float)[:, None] * EFFECTS_SD[k]
    return eff


@lru_cache(maxsize=2)
def _residual_model(group: str) -> tuple[np.ndarray, np.ndarray]:
    """(mean offset, residual covariance) so that index = mean + effects + residual matches CAP.

    The effects' own mean and covariance (over a large reference population) are removed from the
    reference moments; the residual covariance is projected to the nearest PSD matrix.
    """
    ref = _draw_covariates(np.random.default_rng(54321), 20000, _intercepts())
    eff = effect_matrix(ref) * cal.CAP_INDEX_SD[group]
    resid = cal.cap_covariance(group) - np.cov(eff.T)
    w, v = np.linalg.eigh(resid)
    floor = 0.05 * np.diag(cal.cap_covariance(group)).min()
    resid = (v * np.maximum(w, floor)) @ v.T
    return eff.mean(axis=0), resid


def sample_subjects(rng: np.random.Generator, n: int, mi_fraction: float = 0.0) -> pd.DataFrame:
    """Covariates plus target clinical indices for ``n`` subjects.

    Returns one row per subject with the covariate columns of the truth ``subjects`` table (minus
    ids), ``group``, ``mi``, and the target indices named as in :data:`calibration.INDEX_NAMES`
    with a ``target_`` prefix.
    """
    cov = _draw_covariates(rng, n, _intercepts())
    mi = rng.random(n) < mi_fraction
    cov["mi"] = mi.astype(int)
    cov["group"] = np.where(mi, "MI", "ASYMP")
    eff = effect_matrix(cov)
    idx = np.empty((n, 6))
    for group in ("ASYMP", "MI"):
        sel = cov["group"].to_numpy() == group
        if not sel.any():
            continue
        offset, resid = _residual_model(group)
        sd = cal.CAP_INDEX_SD[group]
        z = rng.multivariate_normal(np.zeros(6), resid, size=int(sel.sum()))
        idx[sel] = cal.CAP_INDEX_MEAN[group] - offset + eff[sel] * sd + z
    lo, hi = cal.CAP_INDEX_RANGE
    idx = np.clip(idx, lo, hi)
    for i, name in enumerate(cal.INDEX_NAMES):
        cov[f"target_{name}"] = idx[:, i]
    return cov
