"""The HTML builder every report section writes into, and the tolerant table reader they share.

A section is a function ``(page, inputs) -> None`` that appends its HTML to ``page`` (headings,
paragraphs, tables, figures saved beside the page); :mod:`cmr_atlas.report.page` runs them in order.
"""

from __future__ import annotations

import html
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ReportInputs:
    """What the sections may read: the results folder, the model cards, the render backend."""

    results: Path
    models_dir: Path | None
    render_backend: str


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


def read_result(results: Path, name: str) -> pd.DataFrame | None:
    """``<results>/<name>.parquet``, or None when it is absent or unreadable (logged)."""
    p = results / f"{name}.parquet"
    if not p.is_file():
        return None
    try:
        return pd.read_parquet(p)
    except Exception as exc:  # a corrupt table should not take the whole report down
        log.warning("report: cannot read %s (%s)", p, exc)
        return None


def qc_counts(rows: pd.DataFrame, unit: str) -> pd.DataFrame:
    """How many ``rows`` (counted as ``unit``) carry each ``qc_reason``, "ok" for none."""
    return rows["qc_reason"].fillna("ok").value_counts().rename_axis("qc_reason").reset_index(name=unit)
