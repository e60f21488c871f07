"""Report section "Exams to review": the exams a reader should look at, with an overlay strip each.

The list is :func:`cmr_atlas.stats.review.review_exams` over the tables the pipeline wrote
(``exam_status``, ``exams``, ``measures``, the shards' ``segmentation_qc`` and ``phases``), capped at
``report.review_max_exams``.  It is computed here, not written as a results table: it is a view of
tables that already exist, ordered for a reader, and it changes with the cap.  Each listed exam gets
a strip (:mod:`cmr_atlas.report.overlay`) from the image cache, the inference masks and the guide
points; an exam without a cache file gets a note instead.  The loop that follows (export as DICOM
SEG, correct, import as the manual source) is in ``docs/review.md``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.config import default
from cmr_atlas.core.imagecache import load_exam_images, load_masks
from cmr_atlas.report.html import Page, ReportInputs, read_result
from cmr_atlas.report.overlay import COLOURS, overlay_strip, phase_frames
from cmr_atlas.stats.review import LOA_Z, ReviewList, review_exams

log = logging.getLogger(__name__)

EXPLANATION = (
    "Exams a reader should look at, most urgent first: failed stages, then partial fits, then "
    "segmentation QC flags at ED/ES, then automated-vs-manual differences (EDV, ESV, EF, LV mass) beyond "
    f"the Bland-Altman limits of agreement (|z| > {LOA_Z}); ties by the largest |z|, the number of reasons, "
    "exam_id. Strips: rows ED and ES, SAX base/mid/apex and the long-axis views; automated contours "
    f"in yellow ({COLOURS['auto']}), manual in cyan ({COLOURS['manual']}). To correct an exam and feed "
    "it back as the manual source, see docs/review.md."
)
POINT_COLUMNS = ["exam_id", "source", "phase", "view", "kind", "surface", "point_index", "x_mm", "y_mm", "z_mm"]


def review_section(page: Page, inputs: ReportInputs, max_exams: int | None = None) -> None:
    """The ranked table and one strip per listed exam (``max_exams``: default the config's)."""
    cap = default("report.review_max_exams") if max_exams is None else int(max_exams)
    ranked = rank_exams(inputs.results, cap)
    if ranked is None:
        page.note("Nothing to rank: exam_status, exams and measures tables are all missing.")
        return
    if not ranked.n_candidates:
        page.p("No exam has a failed stage, a partial fit, a QC flag at ED/ES or an outlying auto-vs-manual "
               "difference.")
        return
    page.p(EXPLANATION, "muted")
    page.p(f"{ranked.n_candidates} exams have a reason for review; listed: {len(ranked.exams)} "
           f"(report.review_max_exams = {cap}).")
    page.table(ranked.exams[["exam_id", "priority", "max_abs_z", "reasons"]], digits=1)
    _strips(page, inputs.results, ranked.exams["exam_id"].tolist())


def rank_exams(results: Path, max_exams: int) -> ReviewList | None:
    """:func:`review_exams` over the tables of ``results`` (None when none of the inputs exists)."""
    status, exams, measures = (read_result(results, n) for n in ("exam_status", "exams", "measures"))
    if status is None and exams is None and measures is None:
        return None
    return review_exams(max_exams, exam_status=status, measures=measures,
                        segmentation_qc=shard_table(results, "segmentation_qc"),
                        phases=shard_table(results, "phases"), exams=exams)


def shard_table(results: Path, name: str) -> pd.DataFrame | None:
    """``shards/*/<name>.parquet`` concatenated (unreadable files skipped, logged); None if none."""
    frames = []
    for p in sorted(results.glob(f"shards/*/{name}.parquet")):
        try:
            frames.append(pd.read_parquet(p))
        except Exception as exc:
            log.warning("report: cannot read %s (%s)", p, exc)
    frames = [f for f in frames if len(f)]
    return pd.concat(frames, ignore_index=True) if frames else None


def _strips(page: Page, results: Path, exam_ids: list[str]) -> None:
    points = _guide_points(results, exam_ids)
    phases = shard_table(results, "phases")
    phases = {} if phases is None else {r["exam_id"]: r for r in phases.to_dict("records")}
    items, notes = [], []
    for old in (page.out_dir / "review").glob("*.png"):  # strips of exams no longer listed
        old.unlink()
    for exam in exam_ids:
        cache = results / "cache" / f"{exam}.npz"
        if not cache.is_file():
            notes.append(f"{exam}: no image cache (cache/{exam}.npz), no strip.")
            continue
        try:
            images = load_exam_images(cache)
            masks, where = _masks(results, exam, images.sax_masks)
            pts = points[points["exam_id"] == exam] if points is not None else None
            path = overlay_strip(images, masks, pts, phase_frames(images, masks, phases.get(exam)),
                                 page.out_dir / "review" / f"{exam}.png")
        except Exception as exc:  # one unreadable exam must not lose the others
            log.exception("report: overlay strip of %s failed", exam)
            notes.append(f"{exam}: strip could not be drawn ({type(exc).__name__}: {exc}).")
            continue
        if masks is None:
            notes.append(f"{exam}: no inference masks found; automated contours from guide points only.")
        items.append((path, f"{exam}" + (f" (masks: {where})" if where else "")))
    page.figs(items)
    for n in notes:
        page.note(n)


def _masks(results: Path, exam: str, cached: np.ndarray | None) -> tuple[np.ndarray | None, str]:
    """The exam's inference masks (shards/*/masks/<exam>.npz, else the cache's) and where from."""
    for p in sorted(results.glob(f"shards/*/masks/{exam}.npz")):
        return load_masks(p), "inference"
    return (cached, "image cache") if cached is not None else (None, "")


def _guide_points(results: Path, exam_ids: list[str]) -> pd.DataFrame | None:
    """The listed exams' rows of guide_points.parquet (None when absent or unreadable)."""
    p = results / "guide_points.parquet"
    if not p.is_file() or not exam_ids:
        return None
    try:
        df = pd.read_parquet(p, filters=[("exam_id", "in", list(exam_ids))])
    except Exception as exc:
        log.warning("report: cannot read %s (%s)", p, exc)
        return None
    return df[[c for c in POINT_COLUMNS if c in df]]
