"""Report section of the stats stage: risk factors against atlas shape (cross-validated AUC,
DeLong manual vs auto, ROC curves, significant odds ratios)."""

from __future__ import annotations

import pandas as pd

from cmr_atlas.report import figures
from cmr_atlas.report.html import Page, ReportInputs, read_result

METHOD_NOTE = (
    "Logistic regression of each risk factor on the first k PC scores, stratified k-fold "
    "cross-validation; AUC of the pooled out-of-fold predictions with a bootstrap 95 % CI. "
    "DeLong's test compares the manual and automated atlases on the same subjects "
    "(legacy-atlas paper, Table 5: hypertension 0.69/0.71, diabetes 0.56/0.53, smoking "
    "0.59/0.61, cholesterol 0.50/0.54, calcium 0.61/0.61, manual/auto)."
)
AUC_COLUMNS = ("risk factor", "AUC manual", "95% CI manual", "AUC auto", "95% CI auto", "DeLong p",
               "n", "positive", "k", "note")


def risk_factor_section(page: Page, inputs: ReportInputs) -> None:
    """AUC table (manual and auto side by side, DeLong p), ROC curves, odds ratios with p < 0.05."""
    auc = read_result(inputs.results, "stats/risk_factor_auc")
    if auc is None or not len(auc):
        page.note("No risk-factor statistics (stats/risk_factor_auc.parquet missing or empty).")
        return
    page.p(METHOD_NOTE, "muted")
    dl = read_result(inputs.results, "stats/delong")
    dl = dl.set_index("risk_factor") if dl is not None and len(dl) else None
    page.table(auc_table(auc, dl))
    if dl is None:
        page.note("No DeLong comparison: it needs both an automated and a manual atlas.")
    _roc_curves(page, inputs, auc)
    ors = read_result(inputs.results, "stats/odds_ratios")
    if ors is not None and len(ors):
        sig = ors[(ors["term"] != "const") & (ors["p"] < 0.05)].sort_values(["risk_factor", "source", "p"])
        page.p("In-sample odds ratios per SD of a score with p < 0.05 (full table: stats/odds_ratios.parquet):",
               "muted")
        page.table(sig[["risk_factor", "source", "term", "odds_ratio", "ci_low", "ci_high", "p"]])


def auc_table(auc: pd.DataFrame, delong: pd.DataFrame | None) -> pd.DataFrame:
    """One row per risk factor: AUC and CI per source (manual first), DeLong p, n, notes."""
    wide = []
    for rf, d in auc.groupby("risk_factor", sort=False):
        row = {"risk factor": rf}
        for r in d.sort_values("source", key=lambda s: s.map({"manual": 0, "auto": 1})).itertuples():
            ci = f"{r.ci_low:.2f}-{r.ci_high:.2f}" if pd.notna(r.ci_low) else ""
            row[f"AUC {r.source}"] = r.auc
            row[f"95% CI {r.source}"] = ci
            row["n"] = r.n
            row["positive"] = r.n_positive
            row["k"] = r.k
        if delong is not None and rf in delong.index:
            row["DeLong p"] = delong.loc[rf, "p"]
        row["note"] = "; ".join(sorted({n for n in d["note"] if n}))
        wide.append(row)
    tab = pd.DataFrame(wide)
    order = [c for c in AUC_COLUMNS if c in tab.columns]
    return tab[order + [c for c in tab.columns if c not in order]]


def _roc_curves(page: Page, inputs: ReportInputs, auc: pd.DataFrame) -> None:
    oof = read_result(inputs.results, "stats/oof_predictions")
    if oof is None or not len(oof):
        return
    items = []
    for rf in auc["risk_factor"].unique():
        d = auc[auc["risk_factor"] == rf]
        aucs = dict(zip(d["source"], d["auc"]))
        if (oof["risk_factor"] == rf).any():
            items.append((figures.roc_plot(oof, rf, page.out_dir / f"roc_{rf}.png", aucs), f"ROC: {rf}"))
    page.figs(items)
