"""The cohort report: one HTML page (``report/index.html``) with its PNG figures beside it.

Sections: cohort and QC, clinical measures, atlas, risk factors, automated vs manual, software and
model versions.  Each section reads only the tables it needs and says plainly what is missing
(no manual source, no covariates, a stage not run) instead of failing: a report of a partial run
is still useful.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import platform
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas import __version__
from cmr_atlas.report import figures

log = logging.getLogger(__name__)

MEASURE_COLUMNS = [
    ("edv_ml", "EDV", "ml"), ("esv_ml", "ESV", "ml"), ("sv_ml", "SV", "ml"), ("ef_pct", "EF", "%"),
    ("lv_mass_g", "LV mass", "g"), ("edvi", "EDVi", "ml/m2"), ("esvi", "ESVi", "ml/m2"),
    ("lvmi", "LVMi", "g/m2"),
]

CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:2em;color:#345;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccd;padding:.25em .6em;
text-align:right}th{background:#eef1f5}td.l,th.l{text-align:left}.note{color:#835;font-style:italic}
.figs{display:flex;flex-wrap:wrap;gap:.8em}.figs figure{margin:0}figcaption{font-size:.8em;color:#555}
img{max-width:100%;border:1px solid #eee}img.render{max-width:500px}.muted{color:#777;font-size:.85em}
"""


@dataclass
class Page:
    out_dir: Path
    parts: list[str] = field(default_factory=list)
    figures: list[Path] = field(default_factory=list)

    def h2(self, text: str, anchor: str) -> None:
        self.parts.append(f'<h2 id="{anchor}">{html.escape(text)}</h2>')

    def p(self, text: str, cls: str = "") -> None:
        c = f' class="{cls}"' if cls else ""
        self.parts.append(f"<p{c}>{html.escape(text)}</p>")

    def note(self, text: str) -> None:
        self.p(text, "note")

    def table(self, df: pd.DataFrame, digits: int = 3) -> None:
        if df is None or not len(df):
            self.note("(no rows)")
            return
        head = "".join(f'<th class="l">{html.escape(str(c))}</th>' if i == 0 else f"<th>{html.escape(str(c))}</th>"
                       for i, c in enumerate(df.columns))
        rows = []
        for r in df.itertuples(index=False):
            cells = []
            for i, v in enumerate(r):
                cls = ' class="l"' if i == 0 or isinstance(v, str) else ""
                cells.append(f"<td{cls}>{html.escape(_fmt(v, digits))}</td>")
            rows.append("<tr>" + "".join(cells) + "</tr>")
        self.parts.append(f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>")

    def figs(self, items: list[tuple[Path, str]], cls: str = "") -> None:
        items = [(p, c) for p, c in items if p is not None and Path(p).is_file()]
        if not items:
            return
        out = ['<div class="figs">']
        for p, caption in items:
            rel = Path(p).relative_to(self.out_dir).as_posix()
            self.figures.append(Path(p))
            c = f' class="{cls}"' if cls else ""
            out.append(f'<figure><img{c} src="{html.escape(rel)}" alt="{html.escape(caption)}">'
                       f"<figcaption>{html.escape(caption)}</figcaption></figure>")
        out.append("</div>")
        self.parts.append("".join(out))


def _fmt(v, digits: int) -> str:
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "" if v is None or np.isnan(v) else str(v)
    if isinstance(v, (float, np.floating)):
        if v != 0 and abs(v) < 10 ** (-digits):
            return f"{v:.2e}"
        return f"{v:.{digits}f}"
    if v is pd.NA:
        return ""
    return str(v)


def _measures_indexed(results: Path) -> pd.DataFrame | None:
    """measures.parquet with edvi/esvi/lvmi filled from the covariates' BSA where missing."""
    from cmr_atlas.stats.covariates import index_by_bsa

    m = _read(results, "measures")
    cov = _read(results, "covariates")
    if m is None or cov is None or not len(m) or "bsa_m2" not in cov:
        return m
    filled = index_by_bsa(m, cov)
    for c in ("edvi", "esvi", "lvmi"):
        if c in filled:
            m[c] = m[c].where(m[c].notna(), filled[c]) if c in m else filled[c]
    return m


def _read(results: Path, name: str) -> pd.DataFrame | None:
    p = results / f"{name}.parquet"
    if not p.is_file():
        return None
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # a corrupt table should not take the whole report down
        log.warning("report: cannot read %s (%s)", p, exc)
        return None


# --------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------
def _cohort(page: Page, results: Path) -> None:
    page.h2("Cohort and quality control", "cohort")
    exams = _read(results, "exams")
    if exams is None:
        page.note("exams.parquet not found: the ingest stage has not run for this results folder.")
    else:
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
    cov = _read(results, "covariates")
    missing = _read(results, "covariates_missing")
    if cov is None:
        page.note("covariates.parquet not found: risk-factor analyses are not available.")
    else:
        page.p(f"Covariates joined for {len(cov)} exams"
               + (f"; {len(missing)} exams without covariates." if missing is not None else "."))
        if missing is not None and len(missing):
            page.table(missing["reason"].value_counts().rename_axis("missing covariates").reset_index(name="exams"))
        if len(cov):
            rows = []
            for col, label in (("age", "age (years)"), ("bsa_m2", "BSA (m2)"), ("sbp", "SBP (mmHg)")):
                if col in cov and cov[col].notna().any():
                    v = cov[col].astype(float)
                    rows.append({"covariate": label, "n": int(v.notna().sum()), "mean": v.mean(), "sd": v.std()})
            for col in ("hypertension", "diabetes", "current_smoker", "high_cholesterol", "calcium_positive", "mi"):
                if col in cov and cov[col].notna().any():
                    v = cov[col].astype(float)
                    rows.append({"covariate": f"{col} (% yes)", "n": int(v.notna().sum()), "mean": 100 * v.mean(),
                                 "sd": np.nan})
            if "sex" in cov and cov["sex"].notna().any():
                rows.append({"covariate": "female (%)", "n": int(cov["sex"].notna().sum()),
                             "mean": 100 * (cov["sex"].astype(str).str.upper().str[0] == "F").mean(), "sd": np.nan})
            page.table(pd.DataFrame(rows), digits=1)


def _measures(page: Page, results: Path) -> None:
    from cmr_atlas.stats.agreement import one_method

    page.h2("Clinical measures", "measures")
    m = _measures_indexed(results)
    if m is None or not len(m):
        page.note("measures.parquet not found or empty: the fitting stage has not run.")
        return
    if "status" in m:
        n_failed = int((m["status"] == "failed").sum())
        if n_failed:
            page.p(f"{n_failed} exam/source fits failed and are left out of this summary.", "muted")
        m = m[m["status"] != "failed"]
    keys = ["source", "method"] if "method" in m else ["source"]
    rows = []
    for key, d in m.groupby(keys):
        key = key if isinstance(key, tuple) else (key,)
        for col, label, unit in MEASURE_COLUMNS:
            if col in d and d[col].notna().any():
                v = d[col].astype(float)
                rows.append({"measure": f"{label} ({unit})", **dict(zip(keys, key)), "n": int(v.notna().sum()),
                             "mean": v.mean(), "sd": v.std(), "min": v.min(), "max": v.max()})
    page.table(pd.DataFrame(rows), digits=1)
    items = []
    one = one_method(m) if "exam_id" in m else m
    for col, label, unit in (("edvi", "EDVi", "ml/m2"), ("ef_pct", "EF", "%")):
        if col in one and one[col].notna().any():
            p = figures.histogram_plot({s: d[col] for s, d in one.groupby("source")}, label, unit,
                                       page.out_dir / f"hist_{col}.png")
            items.append((p, f"{label} distribution" + (" (method model)" if "method" in one else "")))
    page.figs(items)


def _atlas(page: Page, results: Path, render_backend: str) -> None:
    from cmr_atlas.cine.atlas import Atlas

    page.h2("Shape atlas", "atlas")
    ev = _read(results, "atlas/explained_variance")
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
        renders = sorted((results / "atlas" / "renders").glob(f"{src}_mode*.png"))
        if renders:
            paths = []
            for r in renders:
                dst = page.out_dir / f"atlas_{r.name}"
                shutil.copyfile(r, dst)
                paths.append(dst)
            backend = "pre-rendered by the atlas stage"
        else:
            npz = results / "atlas" / f"{src}.npz"
            if not npz.is_file():
                page.note(f"{src}: atlas/{src}.npz not found, no renders.")
                continue
            raw, backend = figures.render_atlas_modes(Atlas.load(npz), page.out_dir / "renders_tmp", 3,
                                                      backend=render_backend)
            paths = []
            for r in raw:
                dst = page.out_dir / f"atlas_{r.name}"
                r.replace(dst)
                paths.append(dst)
            shutil.rmtree(page.out_dir / "renders_tmp", ignore_errors=True)
        page.p(f"{src} atlas: modes 1-{len(paths)}, rows ED and ES, columns mean - 2 SD, mean, "
               f"mean + 2 SD (endocardium red, epicardium translucent; {backend}).", "muted")
        page.figs([(p, f"{src} atlas, {p.stem.split('_')[-1]}") for p in paths], cls="render")


def _risk(page: Page, results: Path) -> None:
    page.h2("Risk factors and shape", "risk")
    auc = _read(results, "stats/risk_factor_auc")
    if auc is None or not len(auc):
        page.note("No risk-factor statistics (stats/risk_factor_auc.parquet missing or empty).")
        return
    page.p("Logistic regression of each risk factor on the first k PC scores, stratified k-fold "
           "cross-validation; AUC of the pooled out-of-fold predictions with a bootstrap 95 % CI. "
           "DeLong's test compares the manual and automated atlases on the same subjects "
           "(legacy-atlas paper, Table 5: hypertension 0.69/0.71, diabetes 0.56/0.53, smoking "
           "0.59/0.61, cholesterol 0.50/0.54, calcium 0.61/0.61, manual/auto).", "muted")
    wide = []
    dl = _read(results, "stats/delong")
    dl = dl.set_index("risk_factor") if dl is not None and len(dl) else None
    for rf, d in auc.groupby("risk_factor", sort=False):
        row = {"risk factor": rf}
        for r in d.sort_values("source", key=lambda s: s.map({"manual": 0, "auto": 1})).itertuples():
            ci = f"{r.ci_low:.2f}-{r.ci_high:.2f}" if pd.notna(r.ci_low) else ""
            row[f"AUC {r.source}"] = r.auc
            row[f"95% CI {r.source}"] = ci
            row["n"] = r.n
            row["positive"] = r.n_positive
            row["k"] = r.k
        if dl is not None and rf in dl.index:
            row["DeLong p"] = dl.loc[rf, "p"]
        notes = "; ".join(sorted({n for n in d["note"] if n}))
        row["note"] = notes
        wide.append(row)
    tab = pd.DataFrame(wide)
    order = [c for c in ("risk factor", "AUC manual", "95% CI manual", "AUC auto", "95% CI auto", "DeLong p",
                         "n", "positive", "k", "note") if c in tab.columns]
    page.table(tab[order + [c for c in tab.columns if c not in order]])
    if dl is None:
        page.note("No DeLong comparison: it needs both an automated and a manual atlas.")
    oof = _read(results, "stats/oof_predictions")
    if oof is not None and len(oof):
        items = []
        for rf in auc["risk_factor"].unique():
            d = auc[auc["risk_factor"] == rf]
            aucs = dict(zip(d["source"], d["auc"]))
            if (oof["risk_factor"] == rf).any():
                items.append((figures.roc_plot(oof, rf, page.out_dir / f"roc_{rf}.png", aucs), f"ROC: {rf}"))
        page.figs(items)
    ors = _read(results, "stats/odds_ratios")
    if ors is not None and len(ors):
        sig = ors[(ors["term"] != "const") & (ors["p"] < 0.05)].sort_values(["risk_factor", "source", "p"])
        page.p("In-sample odds ratios per SD of a score with p < 0.05 (full table: stats/odds_ratios.parquet):",
               "muted")
        page.table(sig[["risk_factor", "source", "term", "odds_ratio", "ci_low", "ci_high", "p"]])


def _agreement(page: Page, results: Path) -> None:
    from cmr_atlas.stats.agreement import AGREEMENT_MEASURES, paired_measures

    page.h2("Automated vs manual", "agreement")
    ag = _read(results, "stats/measures_agreement")
    m = _measures_indexed(results)
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


def _versions(page: Page, models_dir: Path | None) -> None:
    import matplotlib
    import scipy
    import sklearn
    import statsmodels

    page.h2("Software and models", "versions")
    rows = [("cmr-atlas", __version__), ("python", platform.python_version()), ("numpy", np.__version__),
            ("pandas", pd.__version__), ("scipy", scipy.__version__), ("scikit-learn", sklearn.__version__),
            ("statsmodels", statsmodels.__version__), ("matplotlib", matplotlib.__version__)]
    for mod in ("torch", "pyvista", "pydicom"):
        try:
            rows.append((mod, __import__(mod).__version__))
        except Exception:
            pass
    page.table(pd.DataFrame(rows, columns=["software", "version"]))
    cards = sorted(Path(models_dir).glob("*.json")) if models_dir and Path(models_dir).is_dir() else []
    if not cards:
        page.note(f"No model cards found in {models_dir}." if models_dir else "No models folder given.")
        return
    rows = []
    for c in cards:
        try:
            card = json.loads(c.read_text())
        except Exception as exc:
            rows.append({"model card": c.name, "field": "error", "value": str(exc)})
            continue
        for k, v in (card.items() if isinstance(card, dict) else []):
            if isinstance(v, (str, int, float, bool)) or v is None:
                rows.append({"model card": c.name, "field": k, "value": str(v)})
    page.table(pd.DataFrame(rows))


# --------------------------------------------------------------------------------------------
def build_report(
    results_dir: str | Path,
    out_dir: str | Path | None = None,
    models_dir: str | Path | None = None,
    title: str = "cmr-atlas cohort report",
    render_backend: str = "auto",
) -> Path:
    """Write ``<out_dir>/index.html`` (default ``<results_dir>/report``) and its figures."""
    results = Path(results_dir)
    out = Path(out_dir) if out_dir else results / "report"
    out.mkdir(parents=True, exist_ok=True)
    page = Page(out)
    sections = (("cohort", lambda: _cohort(page, results)), ("measures", lambda: _measures(page, results)),
                ("atlas", lambda: _atlas(page, results, render_backend)), ("risk", lambda: _risk(page, results)),
                ("agreement", lambda: _agreement(page, results)), ("versions", lambda: _versions(page, models_dir)))
    for name, fn in sections:
        try:
            fn()
        except Exception as exc:  # one broken section must not lose the others
            log.exception("report section %s failed", name)
            page.note(f"Section '{name}' could not be produced: {exc}")
    nav = " · ".join(f'<a href="#{a}">{t}</a>' for a, t in (
        ("cohort", "Cohort"), ("measures", "Measures"), ("atlas", "Atlas"), ("risk", "Risk factors"),
        ("agreement", "Auto vs manual"), ("versions", "Versions")))
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    doc = (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=\"muted\">Results folder: {html.escape(results.name or str(results))}"
        f" · generated {stamp} · cmr-atlas {html.escape(__version__)}</p><nav>{nav}</nav>"
        + "\n".join(page.parts) + "</body></html>\n"
    )
    from cmr_atlas.core.tables import atomic_write_bytes

    index = atomic_write_bytes(out / "index.html", doc.encode("utf-8"))
    log.info("report: %s (%d figures)", index, len(page.figures))
    return index
