"""Two networks' SAX landmarks on the same images, paired: the records of two
``landmark_confidence.py`` runs (same cohort and seed, different ``--models-dir``) compared image
by image (issue 16).

    PYTHONPATH=. python benchmarks/landmark_records_paired.py BEFORE.parquet AFTER.parquet [--threshold 0.1]

Printed, at the threshold (default: the config's ``landmarks.absent_threshold``): per SAX
landmark, on the images where the truth has it and both networks report it, the mean distance to
the truth and to observer 1 before -> after and the count more than 10 mm from the truth; over all
three, the paired difference to the truth with a 95 % bootstrap interval over exams (exams
resampled, as ``accuracy.view_distance_cis``); the false positives among absent landmarks; and the
present landmarks each network misses.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.core.config import default  # noqa: E402

KEYS = ["exam_id", "view", "slice", "frame", "landmark"]
FAR_MM = 10.0


def paired_sax(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The SAX rows of both record sets on the same image and landmark (suffixes ``_a``, ``_b``)."""
    m = before.merge(after, on=KEYS, suffixes=("_a", "_b"))
    if len(m) < max(len(before), len(after)):
        raise SystemExit(f"the records cover different images ({len(before)} and {len(after)} rows, "
                         f"{len(m)} shared): run both on the same cohort and seed")
    return m[m["view"] == "sax"]


def exam_bootstrap(diff: pd.Series, exams: pd.Series, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of ``diff`` with exams resampled (each exam's mean, equally weighted)."""
    per_exam = diff.groupby(exams.to_numpy()).mean().to_numpy()
    rng = np.random.default_rng(seed)
    means = per_exam[rng.integers(0, len(per_exam), (n, len(per_exam)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def report(sax: pd.DataFrame, threshold: float) -> None:
    present = sax[sax["truth_present_a"]]
    both = present[(present["confidence_a"] >= threshold) & (present["confidence_b"] >= threshold)]
    print(f"SAX landmarks at threshold {threshold:g}, {sax['exam_id'].nunique()} exams; before -> after")
    for name, g in both.groupby("landmark"):
        print(f"  {name:20s} n={len(g):4d}  vs truth {g['auto_truth_a'].mean():.3f} -> {g['auto_truth_b'].mean():.3f}"
              f"  vs Obs1 {g['auto_obs1_a'].mean():.3f} -> {g['auto_obs1_b'].mean():.3f}"
              f"  > {FAR_MM:g} mm {int((g['auto_truth_a'] > FAR_MM).sum())} -> "
              f"{int((g['auto_truth_b'] > FAR_MM).sum())}")
    diff = both["auto_truth_b"] - both["auto_truth_a"]
    lo, hi = exam_bootstrap(diff, both["exam_id"])
    print(f"  all                  vs truth {both['auto_truth_a'].mean():.3f} -> {both['auto_truth_b'].mean():.3f} "
          f"(paired {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}])  vs Obs1 {both['auto_obs1_a'].mean():.3f} -> "
          f"{both['auto_obs1_b'].mean():.3f}")
    absent = sax[~sax["truth_present_a"]]
    print(f"  false positives: {int((absent['confidence_a'] >= threshold).sum())} -> "
          f"{int((absent['confidence_b'] >= threshold).sum())} of {len(absent)} absent landmarks")
    print(f"  present landmarks missed: {int((present['confidence_a'] < threshold).sum())} -> "
          f"{int((present['confidence_b'] < threshold).sum())} of {len(present)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="landmark_confidence.py records (parquet) of the first network")
    ap.add_argument("after", help="records of the second, same cohort and seed")
    ap.add_argument("--threshold", type=float, default=default("landmarks.absent_threshold"))
    args = ap.parse_args(argv)
    report(paired_sax(pd.read_parquet(args.before), pd.read_parquet(args.after)), args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
