"""benchmarks/landmarks_lge.py's summary: detection per image counts each reconstruction's image
separately when magnitude and PSIR are pooled, false positives only where the truth has none."""

import pandas as pd


def _row(kind, name, truth, auto, d=2.0):
    return {"method": "m", "reconstruction": kind, "exam_id": "e", "view": "sax", "slice": 0, "frame": 0,
            "landmark": name, "truth_present": truth, "auto_present": auto, "auto_obs1": d if auto else float("nan"),
            "auto_obs2": d if auto else float("nan"), "obs1_obs2": 1.0}


def test_pooled_detection_counts_each_reconstruction_image(benchmark_module):
    lm = pd.DataFrame([_row("lge", "a", True, True), _row("lge", "b", True, True),
                       _row("lge_psir", "a", True, True), _row("lge_psir", "b", True, False),
                       _row("lge", "c", False, True), _row("lge_psir", "c", False, False)])
    t = benchmark_module("landmarks_lge").summary_table(lm).set_index("reconstruction")
    assert t.loc["lge", "detected_pct"] == 100 and t.loc["lge_psir", "detected_pct"] == 0
    both = t.loc["both"]
    assert both["images"] == 2 and both["detected_pct"] == 50 and both["landmarks_detected_pct"] == 75
    assert both["false_pos_pct"] == 50 and both["auto_obs1_mm"] == 2.0
