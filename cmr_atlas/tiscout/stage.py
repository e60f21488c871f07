"""Workflow stage of one shard: the null point of every TI scout (table ``ti_selection``) and the
audit of every LGE series of an exam with a scout (table ``lge_ti_audit``), from the series cache
that ingest wrote (``<results>/cache/series/<exam_id>/``).

Exams without a scout get no rows; a scout that cannot give a null point gets a row with its
``qc_reason`` (and its LGE series the verdict ``no_reliable_null``); one failing series never stops
the shard.  The scouts an LGE series is judged against: those with a reliable null acquired
before it (see :func:`audit_rows`).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from cmr_atlas.core.columns import EXAM_ID, SERIES_INDEX
from cmr_atlas.core.seriescache import SeriesImages, list_series_images, load_series_images
from cmr_atlas.core.tables import Column, TableSchema, read_table, register, write_table
from cmr_atlas.tiscout import audit

if TYPE_CHECKING:
    from cmr_atlas.tiscout.select import TiSelection

log = logging.getLogger(__name__)

SCOUT_KINDS = ("ti_scout",)
LGE_KINDS = ("lge", "lge_psir")

TI_SELECTION = register(TableSchema(
    name="ti_selection", row="TI scout series",
    description="Myocardial null point of every TI scout (STEMI-Net window classification, "
                "docs/tiscout.md); frames are 0-based in order of increasing inversion time.",
    columns=(
        EXAM_ID, SERIES_INDEX,
        Column("null_frame", "int", "frame at the myocardial null (null: none found)"),
        Column("null_ti_ms", "float", "inversion time of null_frame", "ms"),
        Column("method", "str", "model:decoding (e.g. ti_default:change_point) or classical"),
        Column("confidence", "float", "likelihood share of change points within one frame of null_frame (0-1; network decodings)"),
        Column("classical_ti_ms", "float", "null TI of the classical magnitude-IR fit (second opinion)", "ms"),
        Column("acquisition_time_s", "float", "scout acquisition time, seconds since midnight", "s"),
        Column("qc_reason", "str", "why the null point is missing or unreliable (null: ok)"),
    ),
))

LGE_TI_AUDIT = register(TableSchema(
    name="lge_ti_audit", row="LGE series of an exam with a TI scout",
    description="Was the LGE acquired with the myocardium nulled? The null TI expected at the LGE's "
                "acquisition time (the scout's null drifted by the contrast washout between the two, "
                "cmr_atlas.tiscout.audit) against the LGE series' InversionTime.",
    columns=(
        EXAM_ID, SERIES_INDEX,
        Column("kind", "str", "lge (magnitude) or lge_psir"),
        Column("scout_series_index", "int", "series_index of the latest scout it is judged against (the "
               "reliable scouts acquired before it; their drifted nulls' median is the expectation)"),
        Column("scout_null_ti_ms", "float", "median null TI of those scouts", "ms"),
        Column("minutes_after_scout", "float", "LGE acquisition minus the latest such scout's acquisition time", "min"),
        Column("expected_null_ti_ms", "float", "myocardial null TI expected at the LGE time", "ms"),
        Column("lge_ti_ms", "float", "the LGE series' InversionTime (median over its images)", "ms"),
        Column("ti_error_ms", "float", "lge_ti_ms - expected_null_ti_ms", "ms"),
        Column("verdict", "str", "ok, too_short, too_long or no_reliable_null"),
    ),
))


def _field_t(s: SeriesImages) -> float:
    f = s.field_strength_t or 1.5
    return min(audit.NATIVE_T1_MS, key=lambda k: abs(k - f))


def _first_time(s: SeriesImages) -> float:
    t = np.asarray(s.acquisition_time_s, float)
    return float(np.nanmin(t)) if np.isfinite(t).any() else np.nan


def scout_row(s: SeriesImages, **options) -> tuple[dict, TiSelection]:
    """``ti_selection`` row of one cached scout series (plane 0: a scout has one)."""
    from cmr_atlas.tiscout.select import select_null  # torch: only where a shard has a scout

    n = int(s.n_frames[0]) if len(s.n_frames) else 0
    frames = s.pixels[0, :n] if s.pixels.ndim == 4 else np.zeros((0, 1, 1))
    ti = s.inversion_time_ms[0, :n] if n else []
    spacing = tuple(s.planes[0].pixel_spacing_mm) if s.planes else (1.0, 1.0)
    sel = select_null(frames, ti, spacing, **options)
    row = {"exam_id": s.exam_id, "series_index": s.series_index, "null_frame": sel.null_frame,
           "null_ti_ms": sel.null_ti_ms, "method": sel.method, "confidence": sel.confidence,
           "classical_ti_ms": sel.classical_ti_ms, "acquisition_time_s": _first_time(s), "qc_reason": sel.qc_reason}
    return row, sel


def _scouts_for(scouts: pd.DataFrame, t_lge: float) -> pd.DataFrame:
    """The scouts an LGE is judged against: the reliable ones acquired before it (all reliable
    ones when none is before it; all scouts when none is reliable), by acquisition time."""
    reliable = scouts[scouts.null_ti_ms.notna() & scouts.qc_reason.isna()]
    pick = reliable if len(reliable) else scouts
    before = pick[pick.acquisition_time_s <= t_lge]
    return (before if len(before) else pick).sort_values("acquisition_time_s")


def audit_rows(scouts: pd.DataFrame, lges: list[SeriesImages], washout_per_min: float, scout_to_lge: float,
               tolerance_ms: float, tolerance_fraction: float) -> list[dict]:
    """``lge_ti_audit`` rows of an exam's LGE series against its scouts' rows (options: the
    config's ``tiscout.audit``).  With several usable scouts (a SAX and a 4-chamber one) the
    expected null is the median of each one's drifted null: readers differ by a frame between
    views, and one view's frame should not decide alone."""
    rows = []
    any_reliable = bool((scouts.null_ti_ms.notna() & scouts.qc_reason.isna()).any())
    for s in lges:
        t_lge = _first_time(s)
        ti = np.asarray(s.inversion_time_ms, float)
        lge_ti = float(np.nanmedian(ti)) if np.isfinite(ti).any() else None
        used = _scouts_for(scouts, t_lge)
        ref = used.iloc[-1]
        minutes = (t_lge - used.acquisition_time_s.to_numpy()) / 60.0
        expected = None
        if any_reliable and np.isfinite(minutes).all():
            expected = float(np.median(audit.expected_lge_null_ms(used.null_ti_ms.to_numpy(float), minutes,
                                                                  _field_t(s), washout_per_min, scout_to_lge)))
        verdict = audit.ti_verdict(lge_ti, expected, tolerance_ms, tolerance_fraction)
        rows.append({"exam_id": s.exam_id, "series_index": s.series_index, "kind": s.kind,
                     "scout_series_index": int(ref.series_index), "scout_null_ti_ms": float(used.null_ti_ms.median()),
                     "minutes_after_scout": float(minutes[-1]), "expected_null_ti_ms": expected, "lge_ti_ms": lge_ti,
                     "ti_error_ms": None if expected is None or lge_ti is None else lge_ti - expected,
                     "verdict": verdict})
    return rows


def _load(path: Path) -> SeriesImages | str:
    try:
        return load_series_images(path)
    except Exception as exc:  # a broken cache file is that series' reason, not the shard's end
        log.exception("cannot read %s", path)
        return f"unreadable series cache: {type(exc).__name__}: {exc}"


def exam_tables(cache_dir: str | Path, exam_id: str, select_options: dict, audit_options: dict):
    """``(ti_selection rows, lge_ti_audit rows)`` of one exam (none without a scout)."""
    paths = list_series_images(cache_dir, exam_id, SCOUT_KINDS + LGE_KINDS)
    loaded = [(p, _load(p)) for p in paths]
    scouts = [(p, s) for p, s in loaded if p.stem[4:] in SCOUT_KINDS]
    if not scouts:
        return [], []
    sel_rows = []
    for path, s in scouts:
        if isinstance(s, str):
            sel_rows.append({"exam_id": exam_id, "series_index": int(path.stem[:3]), "qc_reason": s})
            continue
        try:
            sel_rows.append(scout_row(s, **select_options)[0])
        except Exception as exc:  # a failing scout never stops the shard: it gets a reason
            log.exception("%s series %s: TI selection failed", exam_id, s.series_index)
            sel_rows.append({"exam_id": exam_id, "series_index": s.series_index, "acquisition_time_s": _first_time(s),
                             "qc_reason": f"TI selection failed: {type(exc).__name__}: {exc}"})
    table = pd.DataFrame(sel_rows).reindex(columns=TI_SELECTION.column_names)
    lges = [s for p, s in loaded if p.stem[4:] in LGE_KINDS and not isinstance(s, str)]
    return sel_rows, audit_rows(table, lges, **audit_options)


def run_shard(series_table: str | Path, cache_dir: str | Path, selection_path: str | Path, audit_path: str | Path,
              config: dict, models_dir: str | Path, threads: int = 1) -> tuple[Path, Path]:
    """The workflow's call: options from the config's ``tiscout:`` section."""
    if read_table(series_table)["kind"].isin(SCOUT_KINDS).any():  # a legacy shard needs no torch
        import torch

        torch.set_num_threads(max(1, int(threads)))
    select = {"model": config["model"], "decoding": config["decoding"], "min_confidence": config["min_confidence"],
              "models_dir": Path(models_dir)}
    return tiscout_shard(series_table, cache_dir, selection_path, audit_path, select, dict(config["audit"]))


def tiscout_shard(series_table: str | Path, cache_dir: str | Path, selection_path: str | Path,
                  audit_path: str | Path, select_options: dict, audit_options: dict) -> tuple[Path, Path]:
    """Both tables of one shard, for every exam of its ingest ``series`` table."""
    exams = read_table(series_table)["exam_id"].drop_duplicates().tolist()
    sel, aud = [], []
    for exam_id in exams:
        try:
            s, a = exam_tables(cache_dir, exam_id, select_options, audit_options)
        except Exception:  # unreadable cache of one exam: log it and go on
            log.exception("%s: TI scout stage failed", exam_id)
            continue
        sel += s
        aud += a
    log.info("tiscout: %d scouts, %d LGE series audited in %d exams", len(sel), len(aud), len(exams))
    sel_df = pd.DataFrame(sel, columns=TI_SELECTION.column_names)
    aud_df = pd.DataFrame(aud, columns=LGE_TI_AUDIT.column_names)
    return write_table(sel_df, selection_path, TI_SELECTION), write_table(aud_df, audit_path, LGE_TI_AUDIT)
