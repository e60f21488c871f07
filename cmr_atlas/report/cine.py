"""Report sections of the cine pipeline: clinical LV measures, the shape atlas and its modes, and
the automated against the manual path (agreement table, Bland-Altman plots).

The measures table is read as the fit stage wrote it: edvi, esvi and lvmi are already indexed by
BSA there (:mod:`cmr_atlas.stats.fit_aggregate`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd

from cmr_atlas.cine.atlas import Atlas
from cmr_atlas.cine.atlas_render import render_atlas_modes
from cmr_atlas.report import figures
from cmr_atlas.report.html import Page, ReportInputs, read_result
from cmr_atlas.stats.agreement import AGREEMENT_MEASURES, one_method, paired_measures

MEASURE_COLUMNS = [
    ("edv_ml", "EDV", "ml"), ("esv_ml", "ESV", "ml"), ("sv_ml", "SV", "ml"), ("ef_pct", "EF", "%"),
    ("lv_mass_g", "LV mass", "g"), ("edvi", "EDVi", "ml/m2"), ("esvi", "ESVi", "ml/m2"),
    ("lvmi", "LVMi", "g/m2"),
]
HISTOGRAMS = (("edvi", "EDVi", "ml/m2"), ("ef_pct", "EF", "%"))
RENDERED_MODES = 3  # modes the report renders itself when the atlas stage left no renders


# --------------------------------------------------------------------------------------------
# Clinical measures
# --------------------------------------------------------------------------------------------
def measures_section(page: Page, inputs: ReportInputs) -> None:
    """Summary of every measure per source and method (failed fits left out), and histograms."""
    m = read_result(inputs.results, "measures")
    if m is None or not len(m):
        page.note("measures.parquet not found or empty: the fitting stage has not run.")
        return
    if "status" in m:
        n_failed = int((m["status"] == "failed").sum())
        if n_failed:
            page.p(f"{n_failed} exam/source fits failed and are left out of this summary.", "muted")
        m = m[m["status"] != "failed"]
    page.table(measure_summary(m), digits=1)
    items = []
    one = one_method(m) if "exam_id" in m else m
    for col, label, unit in HISTOGRAMS:
        if col in one and one[col].notna().any():
            p = figures.histogram_plot({s: d[col] for s, d in one.groupby("source")}, label, unit,
                                       page.out_dir / f"hist_{col}.png")
            items.append((p, f"{label} distribution" + (" (method model)" if "method" in one else "")))
    page.figs(items)


def measure_summary(m: pd.DataFrame) -> pd.DataFrame:
    """n, mean, SD, min and max of each measure per source (and method)."""
    keys = ["source", "method"] if "method" in m else ["source"]
    rows = []
    for key, d in m.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        for col, label, unit in MEASURE_COLUMNS:
            if col in d and d[col].notna().any():
                v = d[col].astype(float)
                rows.append({"measure": f"{label} ({unit})", **dict(zip(keys, key)), "n": int(v.notna().sum()),
                             "mean": v.mean(), "sd": v.std(), "min": v.min(), "max": v.max()})
    return pd.DataFrame(rows)


# --------------------------------------------------------------------------------------------
# Shape atlas
# --------------------------------------------------------------------------------------------
def atlas_section(page: Page, inputs: ReportInputs) -> None:
    """Variance explained per atlas, the scree plot, and the renders of the first modes."""
    ev = read_result(inputs.results, "atlas/explained_variance")
    if ev is None or not len(ev):
        page.note("No atlas found (atlas/explained_variance.parquet missing or empty).")
        return
    summ = []
    for src, d in ev.groupby("source"):
        d = d.sort_values("component")
        summ.append({"atlas": src, "exams": int(d["n_exams"].iloc[0]), "modes": len(d),
                     "mode 1 (%)": 100 * d["ratio"].iloc[0],
                     "modes 1-3 (%)": 100 * d["ratio"].iloc[:3].sum(),
                     "all kept modes (%)": 100 * d["cumulative"].iloc[-1]})
    page.table(pd.DataFrame(summ), digits=1)
    if "manual" not in set(ev["source"]):
        page.note("No manual atlas: the cohort has no manual annotations, so only the automated atlas is shown.")
    page.figs([(figures.scree_plot(ev, page.out_dir / "scree.png"), "Explained variance per mode")])
    for src in sorted(ev["source"].unique()):
        found = _mode_renders(page, inputs, src)
        if found is None:
            page.note(f"{src}: atlas/{src}.npz not found, no renders.")
            continue
        paths, backend = found
        page.p(f"{src} atlas: modes 1-{len(paths)}, rows ED and ES, columns mean - 2 SD, mean, "
               f"mean + 2 SD (endocardium red, epicardium translucent; {backend}).", "muted")
        page.figs([(p, f"{src} atlas, {p.stem.split('_')[-1]}") for p in paths], cls="render")


def _mode_renders(page: Page, inputs: ReportInputs, src: str) -> tuple[list[Path], str] | None:
    """The atlas stage's renders of ``src`` copied beside the page, or drawn now from its npz
    when that stage left none; None when there is no atlas to draw."""
    atlas_dir = inputs.results / "atlas"
    renders = sorted((atlas_dir / "renders").glob(f"{src}_mode*.png"))
    if renders:
        paths = []
        for r in renders:
            dst = page.out_dir / f"atlas_{r.name}"
            shutil.copyfile(r, dst)
            paths.append(dst)
        return paths, "pre-rendered by the atlas stage"
    npz = atlas_dir / f"{src}.npz"
    if not npz.is_file():
        return None
    tmp = page.out_dir / "renders_tmp"
    raw, backend = render_atlas_modes(Atlas.load(npz), tmp, RENDERED_MODES, backend=inputs.render_backend)
    paths = []
    for r in raw:
        dst = page.out_dir / f"atlas_{r.name}"
        r.replace(dst)
        paths.append(dst)
    shutil.rmtree(tmp, ignore_errors=True)
    return paths, backend


# --------------------------------------------------------------------------------------------
# Automated vs manual
# --------------------------------------------------------------------------------------------
def agreement_section(page: Page, inputs: ReportInputs) -> None:
    """The stats stage's agreement table and one Bland-Altman plot per measure."""
    ag = read_result(inputs.results, "stats/measures_agreement")
    m = read_result(inputs.results, "measures")
    wide = paired_measures(m) if m is not None else None
    if wide is None or not len(wide):
        page.note("No comparison: the measures table has no exams with both automated and manual results.")
        return
    if ag is not None:
        page.table(ag)
    items = []
    for meas, unit in AGREEMENT_MEASURES.items():
        if f"{meas}_auto" in wide and wide[f"{meas}_auto"].notna().any():
            items.append((figures.bland_altman_plot(wide[f"{meas}_auto"], wide[f"{meas}_manual"], meas, unit,
                                                    page.out_dir / f"bland_altman_{meas}.png"),
                          f"Bland-Altman: {meas}"))
    page.figs(items)


# --------------------------------------------------------------------------------------------
# Motion: volume curves and function indices
# --------------------------------------------------------------------------------------------
INDEX_COLUMNS = (("per_edv_s", "peak ejection rate", "EDV/s"), ("pfr_e_edv_s", "peak early filling (E)", "EDV/s"),
                 ("pfr_a_edv_s", "peak atrial filling (A)", "EDV/s"), ("e_a_ratio", "E/A", ""),
                 ("time_to_pfr_ms", "time to peak filling", "ms"), ("diastasis_ms", "diastasis", "ms"))


def motion_section(page: Page, inputs: ReportInputs) -> None:
    """Function indices per source and method, and the volume curves of the automated source."""
    fi = read_result(inputs.results, "function_indices")
    vc = read_result(inputs.results, "volume_curves")
    if fi is None or vc is None or not len(vc):
        page.note("volume_curves.parquet not found or empty: the per-frame fits have not run "
                  "(config fit.all_frames) or no exam has every frame's guide points.")
        return
    ok = fi[fi["status"] == "ok"]
    rows = []
    for (src, m), d in ok.groupby(["source", "method"]):
        for col, label, unit in INDEX_COLUMNS:
            v = d[col].astype(float)
            rows.append({"index": f"{label} ({unit})" if unit else label, "source": src, "method": m,
                         "n": int(v.notna().sum()), "mean": v.mean(), "sd": v.std()})
    page.p("Indices from each exam's volume curve (docs/motion.md): n counts the exams whose curve "
           "shows the feature (no A peak when the acquisition ends before atrial contraction).", "muted")
    page.table(pd.DataFrame(rows), digits=2)
    items = []
    for src, d in vc.groupby("source"):
        p = figures.volume_curve_plot(d, page.out_dir / f"volume_curves_{src}.png")
        items.append((p, f"volume curves, source {src} (each exam's volume / its largest)"))
    page.figs(items)
    motion_atlas_part(page, inputs)


def motion_atlas_part(page: Page, inputs: ReportInputs) -> None:
    """The motion atlas: explained variance, risk-factor AUCs beside the ED+ES modes, strips of as
    many modes as the ED+ES atlas renders (config ``atlas.modes_to_render``)."""
    from cmr_atlas.cine.motion import MotionAtlas
    from cmr_atlas.core.config import default

    n_modes = default("atlas.modes_to_render")

    auc = read_result(inputs.results, "stats/motion_auc")
    ev = read_result(inputs.results, "atlas/motion_explained_variance")
    if ev is None or not len(ev):
        page.note("No motion atlas (too few exams with every frame fitted).")
        return
    cum = ev.groupby("source")["cumulative"].max()
    page.p("Motion atlas: PCA of each exam's phase-normalised endo/epi trajectory, aligned by one rigid "
           "transform per exam; modes explain " + ", ".join(f"{100 * v:.0f} % ({s})" for s, v in cum.items())
           + " of the variance.", "muted")
    if auc is not None and len(auc):
        page.p("Risk-factor AUC (cross-validated) from the ED+ES modes, the motion modes and both, with "
               "DeLong's p against ED+ES:", "muted")
        page.table(auc[["risk_factor", "source", "modes", "k", "auc", "ci_low", "ci_high", "n", "p_vs_ed_es"]],
                   digits=3)
    items = []
    for npz in sorted((inputs.results / "atlas").glob("motion_*.npz")):
        atlas = MotionAtlas.load(npz)
        for m in range(1, min(n_modes, len(atlas.variance)) + 1):
            p = figures.motion_mode_strip(atlas, m, page.out_dir / f"{npz.stem}_mode{m}.png")
            items.append((p, f"{atlas.source} motion mode {m}: {100 * atlas.variance_ratio[m - 1]:.0f} % of variance"))
    page.figs(items)
