"""Calibrate the heatmap landmark networks' absent thresholds per sequence, view and landmark on
VALIDATION exams and store them, with the test-time rotations they were calibrated for, in the
networks' cards (``decode``; :mod:`cmr_atlas.cine.landmark_calibration`, issue 16).

    # peak probabilities at threshold 0 on validation exams (seeds disjoint from training and test)
    PYTHONPATH=. python benchmarks/landmark_confidence.py --cohort clinical --n-exams 40 --seed 940123 \
        --keep-exams VAL_SSFP --rotations=-20,0,20 --out val_ssfp.parquet
    PYTHONPATH=. python benchmarks/landmark_confidence.py --cohort legacy --n-exams 16 --seed 940124 \
        --keep-exams VAL_GRE --rotations=-20,0,20 --out val_gre.parquet
    PYTHONPATH=. python benchmarks/landmark_calibration.py val_ssfp.parquet val_gre.parquet \
        --rotations=-20,0,20 [--compare val_ssfp_r0.parquet val_gre_r0.parquet] [--write resources/models]

Prints per (sequence, view, landmark) the chosen threshold and the validation errors (misses, false
positives, points > 10 mm from the truth) at it and at 0.1, then per sequence and view the image
detection rate and false-positive rate at 0.1 and at the calibrated thresholds.  ``--write DIR``
sets ``decode`` in the cards of DIR's networks that run each sequence and view (routed by sequence:
bSSFP SAX -> ``lm_heatmap_sax_ssfp`` where DIR has it; :func:`write_decode`; the weights are
untouched).  Records of a test or training seed are refused.

``--stack-context LOW HIGH`` (no calibration) prints the rates at 0.1 and, beside them, with a SAX
landmark under 0.1 also reported where its peak is at least LOW and an adjacent slice of the stack
has it at HIGH or more (a trial: docs/models.md, "Stack context"); ``landmarks_lge.py --out``
records work too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.cine.landmark_calibration import calibrate, exam_seed, write_decode  # noqa: E402


def neighbour_slice_peak(records: pd.DataFrame) -> np.ndarray:
    """Per SAX row, the larger peak probability of the same landmark at the same frame on the two
    adjacent slices of its stack (0 at the stack's ends; NaN off SAX).  A stack is one exam's series,
    one per reconstruction where the records have that column (LGE magnitude and PSIR)."""
    keys = ["exam_id"] + (["reconstruction"] if "reconstruction" in records else [])
    sax = records[records["view"] == "sax"]
    peak = sax.set_index([*keys, "frame", "landmark", "slice"])["confidence"]
    peak = peak[~peak.index.duplicated()]
    out = np.full(len(records), np.nan)
    idx = np.flatnonzero((records["view"] == "sax").to_numpy())
    for step in (-1, 1):
        moved = sax.assign(slice=sax["slice"] + step)
        look = peak.reindex(pd.MultiIndex.from_frame(moved[[*keys, "frame", "landmark", "slice"]])).to_numpy()
        out[idx] = np.fmax(np.nan_to_num(out[idx], nan=0.0), np.nan_to_num(look, nan=0.0))
    return out


def rates(records: pd.DataFrame, thresholds: pd.DataFrame | None,
          stack_context: tuple[float, float] | None = None) -> pd.DataFrame:
    """Per sequence and view: image detection (every present landmark reported), landmarks
    reported, false positives (reported where the truth has none), mean distance to observer 1 of
    the reported points; at 0.1 (``thresholds`` None) or at the calibrated thresholds.
    ``stack_context=(low, high)`` (a trial, docs/models.md "Stack context"): a SAX landmark under
    its threshold is also reported where its peak is at least ``low`` and an adjacent slice of the
    stack has it at ``high`` or more (hysteresis along the stack, as an edge detector's)."""
    r = records.copy()
    if thresholds is None:
        r["thr"] = 0.1
    else:
        r = r.merge(thresholds[["sequence", "view", "landmark", "threshold"]], on=["sequence", "view", "landmark"])
        r["thr"] = r["threshold"]
    r["reported"] = r["confidence"] >= r["thr"]
    if stack_context is not None:
        low, high = stack_context
        r["reported"] |= (r["confidence"] >= low) & (neighbour_slice_peak(r) >= high)
    out = []
    for (seq, view), g in r.groupby(["sequence", "view"]):
        tp = g[g["truth_present"]]
        per_image = tp.groupby(["exam_id", "slice", "frame"])["reported"].all()
        fp = g[~g["truth_present"]]["reported"]
        out.append({"sequence": seq, "view": view, "images": len(per_image), "detected_pct": 100 * per_image.mean(),
                    "false_pos_pct": 100 * fp.mean() if len(fp) else np.nan,
                    "auto_obs1_mm": tp.loc[tp["reported"], "auto_obs1"].mean()})
    return pd.DataFrame(out)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records", nargs="+", help="landmark_confidence.py parquets of validation exams")
    ap.add_argument("--rotations", help="the rotations the records were made with, e.g. -20,0,20 (needed to calibrate)")
    ap.add_argument("--compare", nargs="*", help="records of the same exams made without rotations (the baseline)")
    ap.add_argument("--write", help="models folder whose landmark cards get the decode entry")
    ap.add_argument("--note", default="")
    ap.add_argument("--stack-context", type=float, nargs=2, metavar=("LOW", "HIGH"),
                    help="also print the rates at 0.1 with SAX hysteresis along the stack (a trial)")
    args = ap.parse_args()
    records = pd.concat([pd.read_parquet(p) for p in args.records], ignore_index=True)
    if "sequence" not in records and "reconstruction" in records:  # landmarks_lge.py's records
        records["sequence"] = records["reconstruction"]
    if args.stack_context:
        pd.set_option("display.width", 200)
        print(f"one threshold 0.1:\n{rates(records, None).to_string(index=False, float_format='%.2f')}")
        print(f"\n0.1, and {args.stack_context[0]:g} next to a slice at {args.stack_context[1]:g} or more:")
        print(rates(records, None, tuple(args.stack_context)).to_string(index=False, float_format="%.2f"))
        return 0
    if args.rotations is None:
        ap.error("--rotations is needed to calibrate (the rotations the records were made with)")
    table = calibrate(records)
    pd.set_option("display.width", 200)
    print(table.to_string(index=False))
    if args.compare:
        base = pd.concat([pd.read_parquet(p) for p in args.compare], ignore_index=True)
        print("\nwithout rotations, one threshold 0.1 (the config's default):")
        print(rates(base, None).to_string(index=False, float_format="%.2f"))
    print(f"\nrotations {args.rotations}, one threshold 0.1:")
    print(rates(records, None).to_string(index=False, float_format="%.2f"))
    print(f"\nrotations {args.rotations}, calibrated thresholds:")
    print(rates(records, table).to_string(index=False, float_format="%.2f"))
    if args.write:
        rot = [float(a) for a in args.rotations.split(",")]
        seeds = sorted({s for s in map(exam_seed, records["exam_id"].unique()) if s is not None})
        for path in write_decode(table, args.write, rot, seeds, args.note):
            print(f"wrote decode to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
