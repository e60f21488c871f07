"""Cohort level of the perfusion pipeline: global MBF (stress, rest) and the perfusion reserve by
risk factor, the kind of association later studies drew from automated perfusion mapping (e.g.
lower stress MBF and reserve with diabetes and hypertension).

Inputs are the cohort's ``perfusion_global`` table and the covariates as the cine statistics read
them (:func:`cmr_atlas.stats.covariates.load_covariates_wide`: ``covariates.parquet`` with the
``covariates_extra`` columns pivoted back), joined on ``exam_id`` (so the cine atlas tables join
the same way).  Exams whose global MBF or reserve is itself implausible
(:mod:`cmr_atlas.perfusion.qc`: the global row's ``qc_reason`` says "implausible global" or
"implausible perfusion reserve") are left out.  Per risk factor (0/1) and level: n, mean and SD of
each measure; the p value of Welch's t test between the two levels sits on both rows.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from cmr_atlas.core.columns import EXAM_ID
from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.stats.covariates import load_covariates_wide

MEASURES = {"stress": "mbf_stress_ml_min_g", "rest": "mbf_rest_ml_min_g", "reserve": "reserve"}
_UNITS = {"stress": "ml/min/g", "rest": "ml/min/g", "reserve": ""}
IMPLAUSIBLE = ("implausible global", "implausible perfusion reserve")

PERFUSION_BY_RISK_FACTOR = register(TableSchema(
    name="perfusion_by_risk_factor", row="source, risk factor and level",
    description="Global stress and rest MBF and the perfusion reserve by risk factor (perfusion_global joined "
                "with the covariates on exam_id; exams with an implausible global value left out).",
    columns=(
        Column("source", "str", "auto (CNN segmentation) or manual", nullable=False),
        Column("risk_factor", "str", "covariate (config stats.risk_factors)", nullable=False),
        Column("level", "int", "0 or 1", nullable=False),
        Column("n", "int", "exams with this level and a global MBF"),
        *[c for m in MEASURES for c in (
            Column(f"{m}_mean", "float", f"mean {m} {'MBF' if m != 'reserve' else ''}".strip(), _UNITS[m]),
            Column(f"{m}_sd", "float", f"SD of {m}", _UNITS[m]),
            Column(f"{m}_p", "float", f"Welch t test of {m} between levels 0 and 1 (null: a level has < 2 exams, "
                                       "or neither level varies)"))],
    ),
))


def _plausible(glob: pd.DataFrame) -> pd.DataFrame:
    reason = glob["qc_reason"].fillna("") if "qc_reason" in glob else pd.Series("", index=glob.index)
    return glob[~reason.str.contains("|".join(IMPLAUSIBLE), regex=True)]


def _welch(a: pd.Series, b: pd.Series) -> float | None:
    a, b = a.dropna(), b.dropna()
    if len(a) < 2 or len(b) < 2:
        return None
    if a.nunique() < 2 and b.nunique() < 2:  # no spread within either level: the test is undefined
        return None
    p = stats.ttest_ind(a, b, equal_var=False).pvalue
    return float(p) if np.isfinite(p) else None


def perfusion_by_risk_factor(glob: pd.DataFrame, covariates: pd.DataFrame, risk_factors: list[str]) -> pd.DataFrame:
    """Rows of ``perfusion_by_risk_factor`` (see the module docstring); risk factors the covariates
    lack, or that are not 0/1, are skipped."""
    data = _plausible(glob).merge(covariates, on=EXAM_ID.name, how="inner")
    rows = []
    for source, g in data.groupby("source"):
        for rf in risk_factors:
            if rf not in g or not pd.to_numeric(g[rf], errors="coerce").dropna().isin([0, 1]).all():
                continue
            level = pd.to_numeric(g[rf], errors="coerce")
            groups = {lv: g[level == lv] for lv in (0, 1)}
            p = {m: _welch(groups[0][c], groups[1][c]) for m, c in MEASURES.items()}
            for lv, x in groups.items():
                row = {"source": source, "risk_factor": rf, "level": lv, "n": int(len(x))}
                for m, c in MEASURES.items():
                    v = x[c].dropna()
                    row |= {f"{m}_mean": float(v.mean()) if len(v) else None,
                            f"{m}_sd": float(v.std(ddof=1)) if len(v) > 1 else None, f"{m}_p": p[m]}
                rows.append(row)
    return pd.DataFrame(rows, columns=PERFUSION_BY_RISK_FACTOR.column_names)


def write_perfusion_by_risk_factor(global_path: str | Path, covariates_path: str | Path,
                                   extra_path: str | Path | None, risk_factors: list[str], out: str | Path) -> None:
    """Read the cohort tables, write ``perfusion_by_risk_factor`` (empty without covariates)."""
    glob = pd.read_parquet(global_path)
    cov = load_covariates_wide(covariates_path, extra_path) if Path(covariates_path).is_file() \
        else pd.DataFrame({EXAM_ID.name: pd.Series(dtype=str)})
    write_table(perfusion_by_risk_factor(glob, cov, list(risk_factors)), out, PERFUSION_BY_RISK_FACTOR)
