"""Plausibility checks of quantified perfusion (cmr_atlas.perfusion.qc) and the global row that
leaves implausible segments out (cmr_atlas.perfusion.pipeline.global_row)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.perfusion import qc
from cmr_atlas.perfusion.pipeline import global_row


def ring(shape=(64, 64), r_endo=10.0, r_epi=14.0, gap_deg: float = 0.0):
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    rho = np.hypot(rr - 32, cc - 32)
    ang = np.degrees(np.arctan2(cc - 32, rr - 32))
    myo = (rho >= r_endo) & (rho < r_epi) & (np.abs(ang) >= gap_deg / 2)
    return myo, rho < r_endo


def test_pixels_above_the_aif_peak_cannot_be_tissue():
    t = np.zeros((30, 2, 2))
    t[10:, 0, 0] = 0.6  # tissue
    t[10:, 0, 1] = 65.0  # a pixel run off the signal model
    t[12, 1, 0] = 3.0  # blood for one beat
    t[:, 1, 1] = np.nan
    assert qc.valid_pixels(t, 4.0).tolist() == [[True, False], [False, False]]


def test_segment_reasons():
    assert qc.segment_reason(1.2, False, 0.01, 0.5, 4.0) is None
    assert "bound" in qc.segment_reason(28.6, True, 0.01, 0.5, 4.0)
    assert "implausible segment MBF" in qc.segment_reason(9.0, False, 0.01, 0.5, 4.0)
    assert "blood in the sector" in qc.segment_reason(2.0, False, 0.01, 2.5, 4.0)
    assert "poor fit" in qc.segment_reason(2.0, False, 0.2, 0.5, 4.0)
    assert "not finite" in qc.segment_reason(float("nan"), False, 0.0, 0.5, 4.0)


def test_aif_global_and_reserve_ranges():
    assert qc.aif_reason(4.0) is None and "AIF peak" in qc.aif_reason(0.3) and "AIF peak" in qc.aif_reason(60.0)
    assert qc.global_reason("rest", 1.0) is None and "rest" in qc.global_reason("rest", 6.8)
    assert qc.global_reason("stress", 3.5) is None and "stress" in qc.global_reason("stress", 0.1)
    assert qc.reserve_reason(2.5) is None and "reserve" in qc.reserve_reason(0.14)


def test_segmentation_reasons():
    myo, cav = ring()
    assert qc.segmentation_reason(myo, cav, 2.0) is None  # wall 8 mm
    assert "wall thickness" in qc.segmentation_reason(myo, cav, 0.5)  # 2 mm
    assert "encloses" in qc.segmentation_reason(*ring(gap_deg=180.0), 2.0)
    assert "no LV cavity" in qc.segmentation_reason(myo, np.zeros_like(cav), 2.0)


def test_global_mean_leaves_implausible_segments_out():
    segs = pd.DataFrame({"condition": ["stress"] * 3 + ["rest"] * 3, "mbf_ml_min_g": [2.0, 2.4, 28.6, 1.0, 1.2, 0.8],
                         "qc_reason": [None, None, "MBF fit at its bound", None, None, None]})
    row = global_row("e1", "auto", segs, no_reserve=False)
    assert row["mbf_stress_ml_min_g"] == 2.2 and row["n_segments_stress"] == 2
    assert abs(row["reserve"] - 2.2) < 1e-9
    assert row["qc_reason"] == "1 stress segments implausible (left out)"
    segs.loc[3:, "mbf_ml_min_g"] = 6.8
    row = global_row("e1", "auto", segs, no_reserve=True)
    assert "implausible global rest MBF 6.80" in row["qc_reason"] and row["reserve"] is None
