"""Report section of the perfusion pipeline: QC, global MBF and reserve, 16-segment bull's-eyes
(stress, rest, reserve; cohort means with values), AIF curves, MBF maps of a few exams with the
segmentation and sector overlay, and the automated vs manual Bland-Altman plots (the paper's
Figure 5)."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.report.figures import bland_altman_plot, plt, save_png
from cmr_atlas.report.html import Page, ReportInputs, qc_counts, read_result

MAX_MAP_EXAMS = 2
RINGS = ((range(1, 7), 3, 2), (range(7, 13), 2, 1), (range(13, 17), 1, 0))  # segments, outer, inner radius


def bullseye_plot(values: dict[int, float], title: str, path: Path, vmin: float, vmax: float, unit: str,
                  fmt: str = ".2f") -> Path:
    """AHA 16-segment bull's-eye with each segment's value written in it (segment 1 anterior at the
    top, septum on the left as in the AHA convention)."""
    fig, ax = plt.subplots(figsize=(3.6, 3.6), subplot_kw={"projection": "polar"})
    cmap = plt.get_cmap("jet")
    for segs, outer, inner in RINGS:
        n = len(segs)
        width = 2 * np.pi / n
        start = np.pi / 2 + (np.pi / 3 if n == 6 else np.pi / 4)  # sector 1 (anterior) centred at the top
        for j, s in enumerate(segs):
            theta = start + j * width - width / 2  # counter-clockwise: anterior, anteroseptal, ...
            v = values.get(s, np.nan)
            colour = cmap((v - vmin) / (vmax - vmin)) if np.isfinite(v) else (0.9, 0.9, 0.9, 1)
            ax.bar(theta, outer - inner, width=width, bottom=inner, color=colour, edgecolor="k", align="edge")
            label = f"{v:{fmt}}" if np.isfinite(v) else "-"
            ax.text(theta + width / 2, inner + (outer - inner) / 2, label, ha="center", va="center", fontsize=7)
    ax.set_axis_off()
    ax.set_title(f"{title} ({unit})", fontsize=9)
    return save_png(fig, path)


def _bullseyes(page: Page, segs: pd.DataFrame) -> None:
    auto = segs[segs["source"] == "auto"]
    if auto.empty:
        page.note("No automated segment rows.")
        return
    mean = auto.groupby(["condition", "aha_segment"])["mbf_ml_min_g"].mean()
    stress, rest = mean.get("stress", pd.Series(dtype=float)), mean.get("rest", pd.Series(dtype=float))
    reserve = (stress / rest).dropna()
    items = []
    for name, vals, lo, hi, unit in (("stress MBF", stress, 0, 4, "ml/min/g"), ("rest MBF", rest, 0, 2, "ml/min/g"),
                                     ("reserve", reserve, 0, 4, "ratio")):
        p = bullseye_plot({int(k): float(v) for k, v in vals.items()}, f"cohort mean {name}",
                          page.out_dir / f"perfusion_bullseye_{name.split()[0]}.png", lo, hi, unit)
        items.append((p, f"cohort mean {name} per AHA segment"))
    page.figs(items)


def _maps(page: Page, results: Path) -> None:
    pngs = sorted(results.glob("shards/*/perfusion_maps/*/*.png"))
    exams = sorted({p.parent.name for p in pngs})[:MAX_MAP_EXAMS]
    items = []
    for p in pngs:
        if p.parent.name in exams:
            dest = page.out_dir / f"perfusion_map_{p.parent.name[:12]}_{p.stem}.png"
            shutil.copyfile(p, dest)
            items.append((dest, f"exam {p.parent.name[:12]} {p.stem}: MBF (ml/min/g), myocardium and sectors"))
    page.figs(items) if items else page.note("No MBF maps (perfusion.pixel_maps off or no exam quantified).")


def _aif(page: Page, aif: pd.DataFrame | None) -> None:
    if aif is None or aif.empty:
        return
    fig, ax = plt.subplots(figsize=(4.6, 3.2))
    for (exam, cond), g in list(aif.groupby(["exam_id", "condition"]))[:20]:
        ax.plot(g["time_s"], g["concentration_mmol_l"], color="r" if cond == "stress" else "b", lw=0.8, alpha=0.6)
    ax.set_xlabel("time (s)")
    ax.set_ylabel("AIF [Gd] (mmol/l, whole blood)")
    ax.set_title("AIF curves (red stress, blue rest)")
    page.figs([(save_png(fig, page.out_dir / "perfusion_aif.png"), "arterial input functions")])


def _agreement(page: Page, glob: pd.DataFrame) -> None:
    wide = glob.pivot_table(index="exam_id", columns="source", values=["mbf_stress_ml_min_g", "mbf_rest_ml_min_g"])
    if "manual" not in wide.columns.get_level_values(1):
        page.note("No manual source (no annotations with perfusion contours): no automated vs manual comparison.")
        return
    items = []
    for col, name in (("mbf_stress_ml_min_g", "global stress MBF"), ("mbf_rest_ml_min_g", "global rest MBF")):
        p = bland_altman_plot(wide[(col, "auto")], wide[(col, "manual")], name, "ml/min/g",
                              page.out_dir / f"perfusion_ba_{col}.png")
        items.append((p, f"{name}: automated - manual"))
    page.figs(items)


def perfusion_section(page: Page, inputs: ReportInputs) -> None:
    series = read_result(inputs.results, "perfusion_series")
    if series is None:
        page.note("perfusion_series.parquet not found: the perfusion stage has not run (`snakemake perfusion`).")
        return
    page.p(f"Perfusion series rows: {len(series)}; exams: {series['exam_id'].nunique()}.")
    page.table(qc_counts(series, "slices"))
    glob = read_result(inputs.results, "perfusion_global")
    if glob is not None and len(glob):
        cols = ["mbf_stress_ml_min_g", "mbf_rest_ml_min_g", "reserve"]
        page.table(glob.groupby("source")[cols].agg(["mean", "std"]).reset_index().set_axis(
            ["source"] + [f"{c} {s}" for c in cols for s in ("mean", "sd")], axis=1))
    segs = read_result(inputs.results, "perfusion_segments")
    if segs is not None and len(segs):
        _bullseyes(page, segs)
    _maps(page, inputs.results)
    _aif(page, read_result(inputs.results, "aif_curves"))
    if glob is not None and len(glob):
        _agreement(page, glob)
    _by_risk_factor(page, read_result(inputs.results, "perfusion_by_risk_factor"))


def _by_risk_factor(page: Page, table: pd.DataFrame | None) -> None:
    """The cohort's global MBF and reserve by risk factor (cmr_atlas.stats.perfusion_risk)."""
    if table is None or not len(table):
        page.note("perfusion_by_risk_factor: not computed (no covariates, or `snakemake "
                  "perfusion_by_risk_factor` not run).")
        return
    page.p("Global MBF (ml/min/g) and perfusion reserve by risk factor (Welch t test between levels; "
           "exams with an implausible global value left out).")
    page.table(table.round(3))
