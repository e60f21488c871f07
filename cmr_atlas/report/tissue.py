"""Report section of the tissue stage (cmr_atlas.cine.tissue): T1-map QC, and AHA bull's-eyes of native
T1 and ECV, the cohort's mean and a few exams' own (the perfusion section's bull's-eye)."""

from __future__ import annotations

import pandas as pd

from cmr_atlas.report.html import Page, ReportInputs, qc_counts, read_result
from cmr_atlas.report.perfusion import bullseye_plot

MAX_EXAMS = 2  # exams with their own bull's-eyes (the first ones with values)
SCALES = {"native_t1_ms": ("native T1", 900.0, 1400.0, "ms", 1.0), "ecv": ("ECV", 15.0, 60.0, "%", 100.0)}


def _bullseyes(page: Page, seg: pd.DataFrame, label: str, stem: str) -> None:
    """Native T1 and ECV per AHA segment (mean over the rows of ``seg``, e.g. slices of one exam)."""
    items = []
    for col, (name, lo, hi, unit, scale) in SCALES.items():
        vals = (scale * seg.groupby("segment")[col].mean()).dropna()
        p = bullseye_plot({int(k): float(v) for k, v in vals.items()}, f"{label} {name}",
                          page.out_dir / f"tissue_bullseye_{stem}_{col}.png", lo, hi, unit,
                          fmt=".0f" if col.endswith("_ms") else ".1f")
        items.append((p, f"{label}: {name} per AHA segment"))
    page.figs(items)


def tissue_section(page: Page, inputs: ReportInputs) -> None:
    seg = read_result(inputs.results, "t1_segments")
    if seg is None:
        page.note("t1_segments.parquet not found: the tissue stage has not run (`snakemake tissue`).")
        return
    slices = seg.drop_duplicates(["exam_id", "slice_index"])
    page.p(f"T1-map slices: {slices['slice_index'].notna().sum()}; exams: {seg['exam_id'].nunique()}; "
           f"hematocrit measured for {seg.loc[seg['hematocrit_source'] == 'covariates', 'exam_id'].nunique()} exams "
           "(the others: the config default).")
    page.table(qc_counts(slices, "rows"))
    ok = seg[seg["qc_reason"].isna() & seg["segment"].notna()]
    if ok.empty:
        page.note("No T1-map segment with values.")
        return
    _bullseyes(page, ok, "cohort mean", "cohort")
    for exam_id in ok["exam_id"].drop_duplicates().head(MAX_EXAMS):
        _bullseyes(page, ok[ok["exam_id"] == exam_id], f"exam {str(exam_id)[:10]}", str(exam_id)[:16])
