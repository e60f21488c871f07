"""Report section shared by every pipeline: the cohort, its quality control and its covariates."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.report.html import Page, ReportInputs, read_result

BINARY_COVARIATES = ("hypertension", "diabetes", "current_smoker", "high_cholesterol", "calcium_positive", "mi")


def cohort_section(page: Page, inputs: ReportInputs) -> None:
    """Exams in, ok and failed (by reason), vendors; covariates joined and their summary."""
    _exams_qc(page, inputs)
    _covariates(page, inputs)


def _exams_qc(page: Page, inputs: ReportInputs) -> None:
    exams = read_result(inputs.results, "exams")
    if exams is None:
        page.note("exams.parquet not found: the ingest stage has not run for this results folder.")
        return
    n = len(exams)
    status = exams["status"].value_counts() if "status" in exams else pd.Series(dtype=int)
    page.p(f"Exams in: {n}; ok: {int(status.get('ok', 0))}; failed: {int(n - status.get('ok', 0))}.")
    if "status" in exams and (exams["status"] != "ok").any():
        failed = exams[exams["status"] != "ok"]
        reason = failed["qc_reason"].fillna("(no reason)") if "qc_reason" in failed else pd.Series(
            ["(no reason)"] * len(failed))
        page.table(reason.value_counts().rename_axis("failure reason").reset_index(name="exams"))
    if "vendor" in exams:
        page.table(exams["vendor"].fillna("unknown").value_counts().rename_axis("vendor").reset_index(name="exams"))


def _covariates(page: Page, inputs: ReportInputs) -> None:
    cov = read_result(inputs.results, "covariates")
    missing = read_result(inputs.results, "covariates_missing")
    if cov is None:
        page.note("covariates.parquet not found: risk-factor analyses are not available.")
        return
    page.p(f"Covariates joined for {len(cov)} exams"
           + (f"; {len(missing)} exams without covariates." if missing is not None else "."))
    if missing is not None and len(missing):
        page.table(missing["reason"].value_counts().rename_axis("missing covariates").reset_index(name="exams"))
    if len(cov):
        page.table(covariate_summary(cov), digits=1)


def covariate_summary(cov: pd.DataFrame) -> pd.DataFrame:
    """One row per covariate present: n, mean and SD (continuous) or % yes (binary, female)."""
    rows = []
    for col, label in (("age", "age (years)"), ("bsa_m2", "BSA (m2)"), ("sbp", "SBP (mmHg)")):
        if col in cov and cov[col].notna().any():
            v = cov[col].astype(float)
            rows.append({"covariate": label, "n": int(v.notna().sum()), "mean": v.mean(), "sd": v.std()})
    for col in BINARY_COVARIATES:
        if col in cov and cov[col].notna().any():
            v = cov[col].astype(float)
            rows.append({"covariate": f"{col} (% yes)", "n": int(v.notna().sum()), "mean": 100 * v.mean(),
                         "sd": np.nan})
    if "sex" in cov and cov["sex"].notna().any():
        rows.append({"covariate": "female (%)", "n": int(cov["sex"].notna().sum()),
                     "mean": 100 * (cov["sex"].astype(str).str.upper().str[0] == "F").mean(), "sd": np.nan})
    return pd.DataFrame(rows)
