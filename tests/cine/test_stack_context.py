"""benchmarks/landmark_calibration.py's stack-context trial: a weak SAX peak next to a confident slice
of the same stack, landmark and frame is reported; other stacks, frames and views are not read."""

import numpy as np
import pandas as pd


def _row(slice_, conf, truth=True, frame=0, landmark="lv_centre", recon="lge", view="sax"):
    return {"exam_id": "e", "reconstruction": recon, "sequence": recon, "view": view, "slice": slice_,
            "frame": frame, "landmark": landmark, "confidence": conf, "truth_present": truth,
            "auto_obs1": 1.0, "auto_truth": 1.0}


def test_hysteresis_along_the_stack(benchmark_module):
    lc = benchmark_module("landmark_calibration")
    r = pd.DataFrame([_row(0, 0.02), _row(1, 0.9), _row(2, 0.02, truth=False), _row(4, 0.02),
                      _row(0, 0.9, frame=1), _row(3, 0.9, recon="lge_psir"), _row(0, 0.02, frame=2, landmark="rv_insert_anterior"),
                      _row(0, 0.9, view="lax_2ch")])
    peak = lc.neighbour_slice_peak(r)
    assert np.allclose(peak[:4], [0.9, 0.02, 0.9, 0.0])  # slice 4: its neighbour 3 is another stack's
    assert peak[4] == 0.0 and peak[6] == 0.0 and np.isnan(peak[7])  # other frame / landmark; off SAX
    sax = r[r["view"] == "sax"]
    sax = sax[sax["reconstruction"] == "lge"]
    plain = lc.rates(sax, None).iloc[0]
    trial = lc.rates(sax, None, (0.01, 0.5)).iloc[0]
    assert trial["detected_pct"] > plain["detected_pct"] and trial["false_pos_pct"] > plain["false_pos_pct"]
    assert lc.rates(sax, None, (0.05, 0.5)).iloc[0]["detected_pct"] == plain["detected_pct"]  # 0.02 < low
