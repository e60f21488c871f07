"""Which exams a reader should look at, and why: the ranking behind the report's Review section.

Pure table logic (no files): :func:`review_exams` takes the tables the pipeline already wrote and
returns one row per exam to review with every reason found.  Four kinds of reason, in priority
order (:data:`PRIORITIES`):

1. ``failed``: a per-exam stage failed (``exam_status``; ``exams`` when there is no status table),
   or a fit failed (``measures`` status ``failed``);
2. ``partial``: a fit is ``partial`` (some frames or surfaces missing);
3. ``qc_flag``: the segmentation QC flagged a SAX mask at the ED or ES frame (``segmentation_qc``
   joined to ``phases``; every frame when the exam has no phases row);
4. ``disagreement``: the automated and manual measure of an exam (EDV, ESV, EF, LV mass) differ by
   more than the cohort's Bland-Altman limits of agreement: ``z = (d - bias) / sd`` with
   ``d = auto - manual``, bias and SD over every paired exam (at least :data:`MIN_PAIRS`), flagged
   when ``|z| > 1.96``.

Ordering (stable, documented): the exam's most severe reason kind first, then the largest ``|z|``
of its disagreements (exams without one: 0), then the number of reasons, all descending, then
``exam_id``.  The list is capped at ``max_exams`` rows (config ``report.review_max_exams``); the
count before the cap is returned with it.  Rows carry ``exam_id`` only, never an identifier.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import pandas as pd

from cmr_atlas.stats.agreement import paired_measures

PRIORITIES: tuple[str, ...] = ("failed", "partial", "qc_flag", "disagreement")
# measure column -> (label, unit) of the auto-vs-manual disagreement check
DISAGREEMENT_MEASURES: dict[str, tuple[str, str]] = {
    "edv_ml": ("EDV", "ml"), "esv_ml": ("ESV", "ml"), "ef_pct": ("EF", "%"), "lv_mass_g": ("LV mass", "g"),
}
LOA_Z = 1.96  # Bland-Altman 95 % limits of agreement, in SDs of the differences
MIN_PAIRS = 3  # fewer paired exams give no usable SD: no disagreement reasons
REVIEW_COLUMNS = ("exam_id", "priority", "max_abs_z", "n_reasons", "reasons")


@dataclass(frozen=True)
class Reason:
    exam_id: str
    kind: str  # one of PRIORITIES
    text: str
    abs_z: float = 0.0


@dataclass(frozen=True)
class ReviewList:
    """The capped, ordered list (columns :data:`REVIEW_COLUMNS`) and how many exams had a reason."""

    exams: pd.DataFrame
    n_candidates: int


def review_exams(
    max_exams: int,
    exam_status: pd.DataFrame | None = None,
    measures: pd.DataFrame | None = None,
    segmentation_qc: pd.DataFrame | None = None,
    phases: pd.DataFrame | None = None,
    exams: pd.DataFrame | None = None,
) -> ReviewList:
    """The exams to review, ordered and capped (see the module docstring); any table may be None."""
    reasons = [
        *(stage_reasons(exam_status) if exam_status is not None else ingest_reasons(exams)),
        *fit_reasons(measures),
        *qc_reasons(segmentation_qc, phases),
        *disagreement_reasons(measures),
    ]
    table = _rank(reasons)
    return ReviewList(table.head(max(int(max_exams), 0)).reset_index(drop=True), len(table))


def stage_reasons(exam_status: pd.DataFrame | None) -> list[Reason]:
    """A failed per-exam stage; fit stages are left to :func:`fit_reasons` (measures say more)."""
    if exam_status is None or not len(exam_status):
        return []
    bad = exam_status[(exam_status["status"] == "failed") & ~exam_status["stage"].str.startswith("fit_")]
    return [Reason(r.exam_id, "failed", f"{r.stage} failed: {_reason_text(r.qc_reason)}")
            for r in bad.itertuples(index=False)]


def ingest_reasons(exams: pd.DataFrame | None) -> list[Reason]:
    """The ingest failures of ``exams`` (used when there is no exam_status table)."""
    if exams is None or not len(exams) or "status" not in exams:
        return []
    bad = exams[exams["status"] != "ok"]
    qc = bad["qc_reason"] if "qc_reason" in bad else pd.Series([None] * len(bad), index=bad.index)
    return [Reason(e, "failed", f"ingest failed: {_reason_text(q)}") for e, q in zip(bad["exam_id"], qc)]


def fit_reasons(measures: pd.DataFrame | None) -> list[Reason]:
    """Failed or partial fits, one reason per exam, source and status (methods merged)."""
    if measures is None or not len(measures) or "status" not in measures:
        return []
    bad = measures[measures["status"].isin(["failed", "partial"])]
    out = []
    for (exam, src, status), d in bad.groupby(["exam_id", "source", "status"], sort=True):
        why = sorted({_reason_text(q) for q in d.get("qc_reason", pd.Series([None]))})
        out.append(Reason(exam, status, f"fit {src} {status}: {'; '.join(why)}"))
    return out


def qc_reasons(segmentation_qc: pd.DataFrame | None, phases: pd.DataFrame | None) -> list[Reason]:
    """Flagged SAX masks at ED or ES: one reason per exam and phase, naming the flags and slices."""
    if segmentation_qc is None or not len(segmentation_qc):
        return []
    qc = segmentation_qc[segmentation_qc["flag"].fillna("").astype(str) != ""]
    frames = _phase_frames(phases)
    out = []
    for exam, d in qc.groupby("exam_id", sort=True):
        for phase, frame in frames.get(exam, {"any frame": None}).items():
            at = d if frame is None else d[d["frame"] == frame]
            if len(at):
                flags = sorted({f for fl in at["flag"] for f in str(fl).split(";") if f})
                slices = ",".join(str(int(s)) for s in sorted(at["slice_index"].unique()))
                out.append(Reason(exam, "qc_flag", f"segmentation QC at {phase}: {', '.join(flags)} (slices {slices})"))
    return out


def disagreement_reasons(measures: pd.DataFrame | None) -> list[Reason]:
    """Auto-vs-manual differences beyond the Bland-Altman limits of agreement (see module doc)."""
    wide = paired_measures(measures, DISAGREEMENT_MEASURES)
    if wide is None:
        return []
    out = []
    for col, (label, unit) in DISAGREEMENT_MEASURES.items():
        if f"{col}_auto" not in wide:
            continue
        d = (wide[f"{col}_auto"] - wide[f"{col}_manual"]).astype(float)
        ok = d.notna()
        if ok.sum() < MIN_PAIRS or not d[ok].std(ddof=1) > 0:
            continue
        z = (d - d[ok].mean()) / d[ok].std(ddof=1)
        for exam, di, zi in zip(wide["exam_id"][ok], d[ok], z[ok]):
            if abs(zi) > LOA_Z:
                out.append(Reason(exam, "disagreement",
                                  f"{label} auto - manual {di:+.1f} {unit} (z {zi:+.1f})", abs(float(zi))))
    return out


def _phase_frames(phases: pd.DataFrame | None) -> dict[str, dict[str, int]]:
    if phases is None or not len(phases):
        return {}
    return {r.exam_id: {"ED": int(r.ed_frame), "ES": int(r.es_frame)}
            for r in phases.dropna(subset=["ed_frame", "es_frame"]).itertuples(index=False)}


def _rank(reasons: list[Reason]) -> pd.DataFrame:
    if not reasons:
        return pd.DataFrame(columns=list(REVIEW_COLUMNS))
    rows = []
    by_exam: dict[str, list[Reason]] = {}
    for r in reasons:
        by_exam.setdefault(str(r.exam_id), []).append(r)
    for exam, rs in by_exam.items():
        rs = sorted(rs, key=lambda r: (PRIORITIES.index(r.kind), -r.abs_z, r.text))
        rows.append({"exam_id": exam, "priority": rs[0].kind, "max_abs_z": max(r.abs_z for r in rs),
                     "n_reasons": len(rs), "reasons": " | ".join(r.text for r in rs)})
    df = pd.DataFrame(rows)
    df["_p"] = df["priority"].map(PRIORITIES.index)
    df = df.sort_values(["_p", "max_abs_z", "n_reasons", "exam_id"], ascending=[True, False, False, True],
                        kind="mergesort")
    return df.drop(columns="_p").reset_index(drop=True)


def _reason_text(q) -> str:
    if q is None or (isinstance(q, float) and math.isnan(q)) or q is pd.NA or (isinstance(q, str) and not q):
        return "(no reason given)"
    return str(q)

