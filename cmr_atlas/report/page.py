"""The cohort report: one HTML page (``report/index.html``) with its PNG figures beside it.

This module is the page frame: header, navigation, the software and model-card section, and the
list of sections in page order.  The sections themselves live with their pipeline:
:mod:`~cmr_atlas.report.cohort` (cohort and QC, every pipeline), :mod:`~cmr_atlas.report.cine`
(measures, atlas, auto vs manual), :mod:`~cmr_atlas.report.stats` (risk factors) and
:mod:`~cmr_atlas.report.review` (the exams a reader should look at, with overlay strips).  A new
pipeline plugs in by adding a module with a function ``(page, inputs) -> None`` and one
:class:`Section` line to :data:`SECTIONS`.

Each section reads only the tables it needs and says plainly what is missing (no manual source, no
covariates, a stage not run) instead of failing: a report of a partial run is still useful.
"""

from __future__ import annotations

import datetime as _dt
import html
import json
import logging
import os
import platform
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas import __version__
from cmr_atlas.cine.atlas_render import RENDER_BACKENDS
from cmr_atlas.core.tables import atomic_write_bytes
from cmr_atlas.report.cine import agreement_section, atlas_section, measures_section, motion_section
from cmr_atlas.report.cohort import cohort_section
from cmr_atlas.report.html import Page, ReportInputs
from cmr_atlas.report.perfusion import perfusion_section
from cmr_atlas.report.review import review_section
from cmr_atlas.report.stats import risk_factor_section
from cmr_atlas.report.tiscout import tiscout_section
from cmr_atlas.report.tissue import tissue_section

log = logging.getLogger(__name__)

DEFAULT_TITLE = "cmr-atlas cohort report"
CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1100px;
color:#222;line-height:1.4;padding:0 1em}
h1{border-bottom:2px solid #345;padding-bottom:.2em}h2{margin-top:2em;color:#345;border-bottom:1px solid #ccd}
table{border-collapse:collapse;margin:.6em 0;font-size:.9em}th,td{border:1px solid #ccd;padding:.25em .6em;
text-align:right}th{background:#eef1f5}td.l,th.l{text-align:left}.note{color:#835;font-style:italic}
.figs{display:flex;flex-wrap:wrap;gap:.8em}.figs figure{margin:0}figcaption{font-size:.8em;color:#555}
img{max-width:100%;border:1px solid #eee}img.render{max-width:500px}.muted{color:#777;font-size:.85em}
"""


@dataclass(frozen=True)
class Section:
    anchor: str  # also the section's name in logs and error notes
    nav: str  # link text in the navigation bar
    heading: str
    write: Callable[..., None]  # (page, inputs, **options of build_report) -> None


def versions_section(page: Page, inputs: ReportInputs) -> None:
    """Versions of the software that made the tables, and the model cards of the networks."""
    page.table(pd.DataFrame(_software_versions(), columns=["software", "version"]))
    models_dir = inputs.models_dir
    cards = sorted(Path(models_dir).glob("*.json")) if models_dir and Path(models_dir).is_dir() else []
    if not cards:
        page.note(f"No model cards found in {models_dir}." if models_dir else "No models folder given.")
        return
    page.table(pd.DataFrame(_model_card_rows(cards)))


def _software_versions() -> list[tuple[str, str]]:
    import matplotlib
    import scipy
    import sklearn
    import statsmodels

    rows = [("cmr-atlas", __version__), ("python", platform.python_version()), ("numpy", np.__version__),
            ("pandas", pd.__version__), ("scipy", scipy.__version__), ("scikit-learn", sklearn.__version__),
            ("statsmodels", statsmodels.__version__), ("matplotlib", matplotlib.__version__)]
    for mod in ("torch", "pyvista", "pydicom"):
        try:
            rows.append((mod, __import__(mod).__version__))
        except Exception:
            pass
    return rows


def _model_card_rows(cards: list[Path]) -> list[dict]:
    """One row per scalar field of each model card (a card that cannot be read: one error row)."""
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
    return rows


SECTIONS: tuple[Section, ...] = (
    Section("cohort", "Cohort", "Cohort and quality control", cohort_section),
    Section("measures", "Measures", "Clinical measures", measures_section),
    Section("motion", "Motion", "Volume curves and filling rates", motion_section),
    Section("atlas", "Atlas", "Shape atlas", atlas_section),
    Section("risk", "Risk factors", "Risk factors and shape", risk_factor_section),
    Section("agreement", "Auto vs manual", "Automated vs manual", agreement_section),
    Section("perfusion", "Perfusion", "Myocardial perfusion", perfusion_section),
    Section("tiscout", "TI scout", "TI scout null points and LGE inversion times", tiscout_section),
    Section("tissue", "Tissue", "T1 maps and ECV per AHA segment", tissue_section),
    Section("review", "Review", "Exams to review", review_section),
    Section("versions", "Versions", "Software and models", versions_section),
)


def build_report(
    results_dir: str | os.PathLike,
    index_path: str | os.PathLike | None = None,
    models_dir: str | os.PathLike | None = None,
    title: str = DEFAULT_TITLE,
    render_backend: str = RENDER_BACKENDS[0],
    review_max_exams: int | None = None,
) -> Path:
    """Write the report page at ``index_path`` (default ``<results_dir>/report/index.html``) with its
    figures beside it; returns its path.  ``review_max_exams``: exams in the Review section (None:
    the config default ``report.review_max_exams``)."""
    results = Path(results_dir)
    index = Path(index_path) if index_path else results / "report" / "index.html"
    index.parent.mkdir(parents=True, exist_ok=True)
    page = Page(index.parent)
    inputs = ReportInputs(results, Path(models_dir) if models_dir else None, render_backend)
    options = {"review": {"max_exams": review_max_exams}}  # per-section settings from the config
    for s in SECTIONS:
        page.h2(s.heading, s.anchor)
        try:
            s.write(page, inputs, **options.get(s.anchor, {}))
        except Exception as exc:  # one broken section must not lose the others
            log.exception("report section %s failed", s.anchor)
            page.note(f"Section '{s.anchor}' could not be produced: {exc}")
    atomic_write_bytes(index, _document(page, results, title).encode("utf-8"))
    log.info("report: %s (%d figures)", index, len(page.figures))
    return index


def _document(page: Page, results: Path, title: str) -> str:
    """The whole page: head, title, provenance line, navigation and the sections' HTML."""
    nav = " · ".join(f'<a href="#{s.anchor}">{s.nav}</a>' for s in SECTIONS)
    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f"<title>{html.escape(title)}</title><style>{CSS}</style></head><body>"
        f"<h1>{html.escape(title)}</h1><p class=\"muted\">Results folder: {html.escape(results.name or str(results))}"
        f" · generated {stamp} · cmr-atlas {html.escape(__version__)}</p><nav>{nav}</nav>"
        + "\n".join(page.parts) + "</body></html>\n"
    )
