"""The report's motion section: function indices and the volume-curve figure."""

import numpy as np

from cmr_atlas.cine.volume_curves import curve_rows, indices_table
from cmr_atlas.report.cine import motion_section
from cmr_atlas.report.html import Page, ReportInputs
from cmr_atlas.synth.anatomy import activation_curve


def test_motion_section_shows_indices_and_curves(tmp_path):
    parts = []
    for i, hr in enumerate((55.0, 70.0)):
        rr = 60.0 / hr
        t = np.arange(25) * rr * 0.95 / 25
        v = 140.0 * (1 - 0.6 * activation_curve(t / rr, 0.33 / np.sqrt(rr)))
        for m in ("model", "slices"):
            parts.append(curve_rows(f"E{i}", "auto", m, np.arange(25), 1000 * t, v))
    import pandas as pd

    vc = pd.concat(parts, ignore_index=True)
    vc.to_parquet(tmp_path / "volume_curves.parquet")
    indices_table(vc).to_parquet(tmp_path / "function_indices.parquet")
    page = Page(tmp_path / "report")
    page.out_dir.mkdir()
    motion_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    html = "\n".join(page.parts)
    assert "peak early filling (E) (EDV/s)" in html and "volume_curves_auto.png" in html
    assert (page.out_dir / "volume_curves_auto.png").stat().st_size > 1000


def test_motion_section_says_what_is_missing(tmp_path):
    page = Page(tmp_path)
    motion_section(page, ReportInputs(tmp_path, None, "matplotlib"))
    assert "fit.all_frames" in "\n".join(page.parts)
