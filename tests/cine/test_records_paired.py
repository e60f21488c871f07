"""benchmarks/landmark_records_paired.py: two networks' records compared image by image, view by view."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

from landmark_records_paired import exam_bootstrap, main, paired, report  # noqa: E402


def _records(shift: float, conf_absent: float) -> pd.DataFrame:
    rows = []
    for e in range(4):
        for s in range(3):
            present = s < 2
            rows.append({"exam_id": f"e{e}", "view": "sax", "slice": s, "frame": 0, "landmark": "lv_centre",
                         "truth_present": present, "confidence": 0.9 if present else conf_absent,
                         "auto_truth": 1.0 + shift + 0.1 * e if present else np.nan,
                         "auto_obs1": 2.0 + shift if present else np.nan})
    return pd.DataFrame(rows)


def test_paired_report_counts_and_differences(capsys):
    report(paired(_records(0.0, 0.5), _records(-0.25, 0.05)), 0.1)
    out = capsys.readouterr().out
    assert "vs truth 1.150 -> 0.900 (paired -0.250 [-0.250, -0.250])" in out
    assert "vs Obs1 2.000 -> 1.750 (paired -0.250 [-0.250, -0.250])" in out
    assert "false positives: 4 -> 0 of 4" in out and "missed: 0 -> 0 of 8" in out


def test_records_of_other_images_are_refused():
    with pytest.raises(SystemExit, match="different images"):
        paired(_records(0.0, 0.5), _records(0.0, 0.5).iloc[:5])


def test_views_are_reported_one_by_one_and_an_absent_view_is_named(tmp_path, capsys):
    lax = _records(0.0, 0.5).assign(view="lax_3ch", truth_present=True, confidence=0.9,
                                    auto_truth=2.0, auto_obs1=3.0)
    before, after = tmp_path / "a.parquet", tmp_path / "b.parquet"
    pd.concat([_records(0.0, 0.5), lax]).to_parquet(before)
    pd.concat([_records(-0.25, 0.05), lax.assign(auto_truth=1.5)]).to_parquet(after)
    main([str(before), str(after), "--views", "all"])
    out = capsys.readouterr().out
    assert out.index("lax_3ch landmarks") < out.index("sax landmarks")
    assert "vs truth 2.000 -> 1.500 (paired -0.500" in out
    assert out.count("false positives") == 1  # the long-axis view has no absent landmarks
    with pytest.raises(SystemExit, match="no lax_2ch rows"):
        main([str(before), str(after), "--views", "lax_2ch"])


def test_exam_bootstrap_weighs_exams_not_rows():
    diff = pd.Series([1.0] * 9 + [0.0])
    exams = pd.Series(["a"] * 9 + ["b"])
    lo, hi = exam_bootstrap(diff, exams)
    assert lo == 0.0 and hi == 1.0  # two exams: means of 0, 0.5 or 1, not a 0.9 weighted by rows
