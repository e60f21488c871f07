"""The report's perfusion section on small tables (cmr_atlas.report.perfusion)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.tables import write_table
from cmr_atlas.perfusion.tables import AIF_CURVES, PERFUSION_GLOBAL, PERFUSION_SEGMENTS, PERFUSION_SERIES
from cmr_atlas.report.html import Page, ReportInputs
from cmr_atlas.report.perfusion import perfusion_section


def _tables(tmp_path):
    rng = np.random.default_rng(0)
    segs, glob = [], []
    for e in range(4):
        for source in ("auto", "manual"):
            for cond, mu in (("stress", 2.2), ("rest", 1.1)):
                for s in range(1, 17):
                    v = mu + rng.normal(0, 0.1)
                    segs.append({"exam_id": f"e{e}", "condition": cond, "aha_segment": s, "mbf_ml_min_g": v,
                                 "mbf_fermi_ml_min_g": v, "mbf_2cxm_ml_min_g": v, "n_pixels": 60, "source": source,
                                 "qc_reason": None, "qc_reason_fermi": None, "qc_reason_2cxm": None})
            glob.append({"exam_id": f"e{e}", "source": source, "mbf_stress_ml_min_g": 2.2 + rng.normal(0, .1),
                         "mbf_rest_ml_min_g": 1.1, "reserve": 2.0, "n_segments_stress": 16, "n_segments_rest": 16,
                         "qc_reason": None})
    series = [{"exam_id": "e0", "condition": "stress", "series_index": 3, "slice": None, "level": None, "n_frames": 20,
               "n_pd": 2, "rr_s": None, "motion_mean_mm": None, "motion_max_mm": None, "residual_motion_mm": None,
               "aif_peak_mmol_l": None, "myocardium_pixels": None, "rv_insertion": None,
               "qc_reason": "truncated bolus: 18 dynamic frames (< 30)"}]
    aif = [{"exam_id": "e0", "condition": "rest", "frame": i, "time_s": i * 0.9, "concentration_mmol_l": float(i % 7)}
           for i in range(30)]
    for schema, rows in ((PERFUSION_SEGMENTS, segs), (PERFUSION_GLOBAL, glob), (PERFUSION_SERIES, series),
                         (AIF_CURVES, aif)):
        write_table(pd.DataFrame(rows), tmp_path / f"{schema.name}.parquet", schema)


def test_section_has_bullseyes_agreement_and_the_qc_reason(tmp_path):
    _tables(tmp_path)
    out = tmp_path / "report"
    out.mkdir()
    page = Page(out)
    perfusion_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    html = "".join(page.parts)
    assert "truncated bolus" in html
    names = {p.name for p in page.figures}
    assert {"perfusion_bullseye_stress.png", "perfusion_bullseye_rest.png", "perfusion_bullseye_reserve.png",
            "perfusion_aif.png", "perfusion_ba_mbf_stress_ml_min_g.png"} <= names
    assert all(p.stat().st_size > 1000 for p in page.figures)
    assert "not computed" in html  # no perfusion_by_risk_factor table yet


def test_section_shows_mbf_by_risk_factor(tmp_path):
    from cmr_atlas.stats.perfusion_risk import PERFUSION_BY_RISK_FACTOR, perfusion_by_risk_factor

    _tables(tmp_path)
    glob = pd.read_parquet(tmp_path / "perfusion_global.parquet")
    cov = pd.DataFrame({"exam_id": [f"e{e}" for e in range(4)], "diabetes": [0, 0, 1, 1]})
    write_table(perfusion_by_risk_factor(glob, cov, ["diabetes"]), tmp_path / "perfusion_by_risk_factor.parquet",
                PERFUSION_BY_RISK_FACTOR)
    page = Page(tmp_path / "r")
    perfusion_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    html = "".join(page.parts)
    assert "by risk factor" in html and "diabetes" in html


def test_section_says_when_the_stage_has_not_run(tmp_path):
    page = Page(tmp_path)
    perfusion_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    assert "has not run" in "".join(page.parts)
