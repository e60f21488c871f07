"""Risk-factor statistics on atlas scores: the stats tables and the cohort analysis that fills them.

For each risk factor and atlas source (auto, manual): the cross-validated AUC of a logistic
regression on the first k PC scores (:mod:`cmr_atlas.stats.auc`), in-sample odds ratios
(:mod:`cmr_atlas.stats.odds`), and, where both atlases exist, DeLong's test of the two out-of-fold
AUCs on the same subjects (:mod:`cmr_atlas.stats.delong`); plus the agreement of automated and
manual clinical measures (:mod:`cmr_atlas.stats.agreement`).  The measures table arrives
BSA-indexed (the cohort measures aggregate applies :func:`cmr_atlas.stats.covariates.index_by_bsa`).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.stats.agreement import measures_agreement
from cmr_atlas.stats.auc import cv_auc
from cmr_atlas.stats.covariates import COVARIATES, load_covariates_wide
from cmr_atlas.stats.delong import delong_test
from cmr_atlas.stats.odds import odds_ratios

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


# --------------------------------------------------------------------------------------------
# Cohort analysis
# --------------------------------------------------------------------------------------------
@dataclass
class StatsOutputs:
    """The five stats tables; field names are the table names without ``stats/``."""

    risk_factor_auc: pd.DataFrame
    delong: pd.DataFrame
    odds_ratios: pd.DataFrame
    measures_agreement: pd.DataFrame
    oof_predictions: pd.DataFrame


# StatsOutputs field -> its table schema.
OUTPUT_SCHEMAS: dict[str, TableSchema] = {s.name.removeprefix("stats/"): s for s in STATS_TABLES}


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


def _source_design(
    scores: pd.DataFrame, covariates: pd.DataFrame, source: str, risk_factors: list[str], n_pcs: int,
    adjust_for: list[str],
) -> tuple[pd.DataFrame, list[str], np.ndarray | None, list[str]]:
    """One atlas source's scores joined to the covariates: (data, PC columns used (the first
    ``n_pcs`` present with values), adjustment matrix or None, adjustment column names)."""
    pcs_avail = [c for c in scores.columns if c.startswith("pc") and c[2:].isdigit()]
    pcs = [f"pc{i}" for i in range(1, n_pcs + 1) if f"pc{i}" in pcs_avail and scores[f"pc{i}"].notna().any()]
    data = scores[["exam_id", *pcs]].merge(covariates, on="exam_id", how="left")
    n_missing = int(data[risk_factors[0]].isna().sum()) if risk_factors and risk_factors[0] in data else len(data)
    log.info("stats %s: %d exams with scores, k = %d PCs, %d without covariates", source, len(data), len(pcs), n_missing)
    try:
        A, a_names = encode_adjustment(data, adjust_for) if adjust_for else (None, [])
    except ValueError as exc:
        raise ValueError(f"stats.adjust_for: {exc}") from exc
    return data, pcs, A, a_names


def _unevaluated(base: dict, note: str) -> dict:
    """risk_factor_auc row of a factor that could not be modelled."""
    return {**base, "auc": np.nan, "ci_low": np.nan, "ci_high": np.nan, "n": 0, "n_positive": 0, "note": note}


def _risk_factor_models(
    data: pd.DataFrame, rf: str, source: str, pcs: list[str], A: np.ndarray | None, a_names: list[str],
    base: dict, folds: int, n_bootstrap: int, seed: int | None,
) -> tuple[dict, pd.DataFrame | None, pd.DataFrame | None]:
    """One risk factor on one source: (risk_factor_auc row, out-of-fold rows, odds-ratio rows);
    the last two are None when no model could be fitted."""
    if rf not in data.columns:
        return _unevaluated(base, "risk factor not in the covariates table"), None, None
    y = pd.to_numeric(data[rf], errors="coerce").to_numpy(dtype=float)
    if not np.isfinite(y).any():
        return _unevaluated(base, "risk factor has no values in the covariates"), None, None
    if not pcs:
        return _unevaluated(base, "no PC scores"), None, None
    X = data[pcs].to_numpy(dtype=float)
    res = cv_auc(X, y, folds=folds, seed=seed, n_bootstrap=n_bootstrap, adjust=A)
    if res.note:
        log.warning("stats %s %s: %s", source, rf, res.note)
    row = {**base, "auc": res.auc, "ci_low": res.ci_low, "ci_high": res.ci_high,
           "n": res.n, "n_positive": res.n_positive, "note": res.note}
    used = np.isfinite(res.oof)
    oof = pd.DataFrame({"exam_id": data["exam_id"].to_numpy()[used], "risk_factor": rf, "source": source,
                        "outcome": y[used].astype(int), "probability": res.oof[used]})
    ors = odds_ratios(X if A is None else np.hstack([X, A]), y, [*pcs, *a_names])
    return row, oof, ors.assign(risk_factor=rf, source=source)


def _delong_row(
    rf: str, a: pd.Series | None, m: pd.Series | None, auc_rows: list[dict], covariates: pd.DataFrame,
) -> dict:
    """stats/delong row of one risk factor from the out-of-fold probabilities (by exam_id) of the
    auto (``a``) and manual (``m``) models; None where that source has no model."""
    row = {"risk_factor": rf, "auc_manual": np.nan, "auc_auto": np.nan, "z": np.nan, "p": np.nan,
           "n": 0, "note": ""}
    if a is None or m is None:
        row["note"] = "no out-of-fold predictions for both sources"
        return row
    common = a.index.intersection(m.index)
    if common.size == 0:  # no out-of-fold scores: say why, from the AUC rows
        notes = {r["note"] for r in auc_rows if r["risk_factor"] == rf and r["note"]}
        row["note"] = "; ".join(sorted(notes)) or "no exam scored by both sources"
        return row
    yy = covariates.set_index("exam_id").loc[common, rf].to_numpy(dtype=float)
    row["n"] = int(common.size)
    try:
        r = delong_test(yy, m.loc[common].to_numpy(), a.loc[common].to_numpy())
        row.update(auc_manual=r.auc_a, auc_auto=r.auc_b, z=r.z, p=r.p)
    except ValueError as exc:
        row["note"] = str(exc)
    return row


def run_stats(
    scores: pd.DataFrame,
    covariates: pd.DataFrame,
    risk_factors: list[str],
    *,
    n_pcs: int,
    folds: int,
    n_bootstrap: int,
    adjust_for: list[str] | None = None,
    seed: int | None = None,
    measures: pd.DataFrame | None = None,
) -> StatsOutputs:
    """All stats tables from ``atlas/scores`` (wide pc1..), the covariates table and the
    (BSA-indexed) measures.  ``seed`` None: the configured default, see :func:`cv_auc`."""
    adjust_for = list(adjust_for or [])
    auc_rows, or_rows, oof_rows = [], [], []
    oof_by: dict[tuple[str, str], pd.Series] = {}  # (risk factor, source) -> probability by exam_id
    sources = sorted(scores["source"].unique()) if len(scores) else []
    for source in sources:
        data, pcs, A, a_names = _source_design(scores[scores["source"] == source], covariates, source,
                                               risk_factors, n_pcs, adjust_for)
        for rf in risk_factors:
            base = {"risk_factor": rf, "source": source, "k": len(pcs), "adjusted_for": ",".join(adjust_for)}
            row, oof, ors = _risk_factor_models(data, rf, source, pcs, A, a_names, base, folds, n_bootstrap, seed)
            auc_rows.append(row)
            if oof is not None:
                oof_rows.append(oof)
                or_rows.append(ors)
                oof_by[(rf, source)] = oof.set_index("exam_id")["probability"]
    delong_rows = []
    if {"auto", "manual"} <= set(sources):
        delong_rows = [_delong_row(rf, oof_by.get((rf, "auto")), oof_by.get((rf, "manual")), auc_rows, covariates)
                       for rf in risk_factors]
    oof = pd.concat(oof_rows, ignore_index=True) if oof_rows else OOF_PREDICTIONS.empty()
    ors = pd.concat(or_rows, ignore_index=True) if or_rows else ODDS_RATIOS.empty()
    return StatsOutputs(
        risk_factor_auc=pd.DataFrame(auc_rows, columns=RISK_FACTOR_AUC.column_names),
        delong=pd.DataFrame(delong_rows, columns=DELONG.column_names),
        odds_ratios=ors[ODDS_RATIOS.column_names] if len(ors) else ODDS_RATIOS.empty(),
        measures_agreement=measures_agreement(measures)[MEASURES_AGREEMENT.column_names],
        oof_predictions=oof[OOF_PREDICTIONS.column_names] if len(oof) else oof,
    )


# --------------------------------------------------------------------------------------------
# Step entry point (cmr-atlas stats and the workflow script)
# --------------------------------------------------------------------------------------------
def stats_paths(results_dir: str | Path) -> dict[str, Path]:
    """Where the stats tables go under a results folder, keyed like :class:`StatsOutputs`."""
    return {key: Path(results_dir) / f"{schema.name}.parquet" for key, schema in OUTPUT_SCHEMAS.items()}


def read_stats_inputs(
    scores_path: str | Path, covariates_path: str | Path, covariates_extra_path: str | Path | None,
    measures_path: str | Path | None,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame | None]:
    """(scores, wide covariates (empty when the file is absent), measures or None)."""
    scores = pd.read_parquet(scores_path)
    cov = load_covariates_wide(covariates_path, covariates_extra_path) if Path(covariates_path).is_file() \
        else COVARIATES.empty()
    measures = pd.read_parquet(measures_path) if measures_path and Path(measures_path).is_file() else None
    return scores, cov, measures


def write_stats(
    scores_path: str | Path,
    covariates_path: str | Path,
    covariates_extra_path: str | Path | None,
    measures_path: str | Path | None,
    out: Mapping[str, str | Path],
    *,
    risk_factors: list[str],
    n_pcs: int,
    folds: int,
    n_bootstrap: int,
    adjust_for: list[str],
    seed: int,
) -> StatsOutputs:
    """Run the cohort analysis on the files and write the five stats tables to ``out`` (keys as
    :class:`StatsOutputs`' fields, e.g. from :func:`stats_paths`).  The measures must already be
    BSA-indexed (the cohort measures aggregate does it); absent measures give n = 0 agreement."""
    if set(out) != set(OUTPUT_SCHEMAS):
        raise ValueError(f"stats outputs: need paths for {sorted(OUTPUT_SCHEMAS)}, got {sorted(out)}")
    scores, cov, measures = read_stats_inputs(scores_path, covariates_path, covariates_extra_path, measures_path)
    res = run_stats(scores, cov, list(risk_factors), n_pcs=n_pcs, folds=folds, n_bootstrap=n_bootstrap,
                    adjust_for=list(adjust_for), seed=seed, measures=measures)
    for f in fields(res):
        df, schema = getattr(res, f.name), OUTPUT_SCHEMAS[f.name]
        write_table(df if len(df) else schema.empty(), out[f.name], schema)
    for r in res.risk_factor_auc.itertuples():
        log.info("stats: %-18s %-6s AUC %s (n %d, %d positive)%s", r.risk_factor, r.source,
                 f"{r.auc:.3f}" if pd.notna(r.auc) else "n/a", r.n, r.n_positive,
                 f" [{r.note}]" if r.note else "")
    return res
