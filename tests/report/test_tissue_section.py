"""The report's tissue section: bull's-eyes of native T1 and ECV from t1_segments, QC counts, and a
note when the stage has not run."""

import pandas as pd

from cmr_atlas.cine.tissue.segments import T1_SEGMENTS
from cmr_atlas.core.tables import write_table
from cmr_atlas.report.html import Page, ReportInputs
from cmr_atlas.report.tissue import tissue_section

def test_bullseyes_of_the_cohort_and_the_first_exams(tmp_path):
    rows = [{"exam_id": e, "slice_index": 0, "level": "mid", "segment": s, "native_t1_ms": 1000.0 + s,
             "ecv": 0.25, "hematocrit": 0.42, "hematocrit_source": "default"} for e in ("a", "b", "c")
            for s in range(7, 13)]
    rows.append({"exam_id": "d", "qc_reason": "no_t1_map"})
    write_table(pd.DataFrame(rows, columns=T1_SEGMENTS.column_names), tmp_path / "t1_segments.parquet", T1_SEGMENTS)
    page = Page(tmp_path / "report")
    page.out_dir.mkdir()
    tissue_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    html = "".join(page.parts)
    assert "no_t1_map" in html and "native T1 per AHA segment" in html
    assert len(page.figures) == 2 * 3 and all(f.is_file() for f in page.figures)  # cohort + 2 exams

def test_note_without_the_table(tmp_path):
    page = Page(tmp_path / "report")
    tissue_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    assert "snakemake tissue" in "".join(page.parts) and not page.figures
