"""The workflow stage: ti_selection and lge_ti_audit from a series cache, and the audit's choice of
scout and verdicts."""

from __future__ import annotations

from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.config import default
from cmr_atlas.core.seriescache import save_series_images, series_cache_path
from cmr_atlas.core.tables import read_table
from cmr_atlas.dicom.series_read import read_folder_series
from cmr_atlas.report.html import Page, ReportInputs
from cmr_atlas.report.tiscout import tiscout_section
from cmr_atlas.tiscout import stage as ST
from cmr_atlas.tiscout.select import default_options

AUDIT = default("tiscout.audit")


def _scouts(rows):
    return pd.DataFrame(rows).reindex(columns=ST.TI_SELECTION.column_names)


def _lge(ti_ms, t_s, index=20, kind="lge"):
    return SimpleNamespace(exam_id="E", series_index=index, kind=kind, field_strength_t=1.5,
                           acquisition_time_s=np.array([[t_s]]), inversion_time_ms=np.array([[ti_ms]]))


def test_audit_judges_against_the_reliable_scouts_before_the_lge():
    scouts = _scouts([
        {"exam_id": "E", "series_index": 11, "null_ti_ms": 300.0, "acquisition_time_s": 36060.0},
        {"exam_id": "E", "series_index": 12, "null_ti_ms": 300.0, "acquisition_time_s": 36060.0},
        {"exam_id": "E", "series_index": 13, "null_ti_ms": 150.0, "acquisition_time_s": 36000.0,
         "qc_reason": "ambiguous null point (confidence 0.31 < 0.5)"},  # unreliable: ignored
        {"exam_id": "E", "series_index": 30, "null_ti_ms": 500.0, "acquisition_time_s": 40000.0},  # after
    ])
    lge_null = AUDIT["scout_to_lge"] * 300.0  # the LGE readout's null at the scout's time
    rows = ST.audit_rows(scouts, [_lge(lge_null + 10, 36360.0), _lge(lge_null - 60, 36360.0, 21),
                                  _lge(lge_null + 80, 36360.0, 22)], **AUDIT)
    assert [r["scout_series_index"] for r in rows] == [12, 12, 12]
    assert rows[0]["minutes_after_scout"] == pytest.approx(5.0)
    assert lge_null < rows[0]["expected_null_ti_ms"] < lge_null + 30.0  # drifted up in 5 minutes
    assert [r["verdict"] for r in rows] == ["ok", "too_short", "too_long"]


def test_an_unreliable_scout_makes_every_lge_of_the_exam_unjudged():
    scouts = _scouts([{"exam_id": "E", "series_index": 11, "null_ti_ms": 280.0, "acquisition_time_s": 36000.0,
                       "qc_reason": "ambiguous null point (confidence 0.31 < 0.5)"}])
    rows = ST.audit_rows(scouts, [_lge(330.0, 36360.0), _lge(np.nan, 36360.0, 21)], **AUDIT)
    assert {r["verdict"] for r in rows} == {"no_reliable_null"}
    assert rows[1]["lge_ti_ms"] is None


def test_stage_writes_both_tables_from_the_series_cache(tmp_path, clinical_synth_cohort):
    folder = next((clinical_synth_cohort / "dicom").iterdir())
    results = tmp_path / "results"
    cache = results / "cache"
    kinds = ST.SCOUT_KINDS + ST.LGE_KINDS
    series = [replace(s, exam_id="EXAM1") for s in read_folder_series(folder, kinds) if not isinstance(s, Exception)]
    for s in series:
        save_series_images(s, series_cache_path(cache, "EXAM1", s.series_index, s.kind))
    broken = series_cache_path(cache, "EXAM2", 5, "ti_scout")  # an unreadable scout of another exam
    broken.parent.mkdir(parents=True)
    broken.write_bytes(b"not a cache file")
    table = tmp_path / "series.parquet"
    pd.DataFrame({"exam_id": ["EXAM1", "EXAM2", "EXAM3"]}).to_parquet(table)
    opts = default_options()
    ST.tiscout_shard(table, cache, results / "ti_selection.parquet", results / "lge_ti_audit.parquet", opts, AUDIT)
    sel = read_table(results / "ti_selection.parquet", ST.TI_SELECTION)
    aud = read_table(results / "lge_ti_audit.parquet", ST.LGE_TI_AUDIT)
    truth = pd.read_parquet(clinical_synth_cohort / "truth" / "ti_scout.parquet")
    assert set(sel.exam_id) == {"EXAM1", "EXAM2"}  # EXAM3 has no scout: no rows
    bad = sel[sel.exam_id == "EXAM2"]
    assert len(bad) == 1 and bad.qc_reason.iloc[0].startswith("unreadable series cache") and bad.null_frame.isna().all()
    sel = sel[sel.exam_id == "EXAM1"]
    assert len(sel) == len(truth)
    assert sel.qc_reason.isna().all() and sel.method.str.startswith("ti_default").all()
    assert np.all(np.abs(np.sort(sel.null_frame.to_numpy()) - np.sort(truth.obs1_frame.to_numpy())) <= 1)
    n_lge = sum(s.kind in ST.LGE_KINDS for s in series)
    assert len(aud) == n_lge and aud.verdict.isin(["ok", "too_short", "too_long", "no_reliable_null"]).all()
    assert (aud.minutes_after_scout > 0).all() and aud.expected_null_ti_ms.notna().all()

    # the report section reads both tables and the cache: audit summary and saliency figures
    page = Page(tmp_path / "report")
    page.out_dir.mkdir()
    tiscout_section(page, ReportInputs(results, opts["models_dir"], "matplotlib"))
    html = "".join(page.parts)
    assert "median TI error" in html and "unreadable series cache" in html
    assert len(page.figures) == len(truth) and all(f.is_file() for f in page.figures)
