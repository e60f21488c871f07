"""Two networks' landmarks on the same images, paired: the records of two
``landmark_confidence.py`` runs (same cohort and seed, different ``--models-dir``) compared image
by image (issue 16).

    PYTHONPATH=. python benchmarks/landmark_records_paired.py BEFORE.parquet AFTER.parquet [--threshold 0.1] \
        [--views sax lax_3ch | --views all]

Printed per view (default SAX; ``all``: every view in the records), at the threshold (default: the
config's ``landmarks.absent_threshold``): per landmark, on the images where the truth has it and
both networks report it, the mean distance to the truth and to observer 1 before -> after and the
count more than 10 mm from the truth; over the view's landmarks, the paired difference to the
truth and to observer 1 with 95 % bootstrap intervals over exams (exams resampled, as
``accuracy.view_distance_cis``); the false positives among absent landmarks (views that have any);
and the present landmarks each network misses.
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


def paired(before: pd.DataFrame, after: pd.DataFrame) -> pd.DataFrame:
    """The rows of both record sets on the same image and landmark (suffixes ``_a``, ``_b``)."""
    m = before.merge(after, on=KEYS, suffixes=("_a", "_b"))
    if len(m) < max(len(before), len(after)):
        raise SystemExit(f"the records cover different images ({len(before)} and {len(after)} rows, "
                         f"{len(m)} shared): run both on the same cohort and seed")
    return m


def exam_bootstrap(diff: pd.Series, exams: pd.Series, n: int = 2000, seed: int = 0) -> tuple[float, float]:
    """95 % interval of the mean of ``diff`` with exams resampled (each exam's mean, equally weighted)."""
    per_exam = diff.groupby(exams.to_numpy()).mean().to_numpy()
    rng = np.random.default_rng(seed)
    means = per_exam[rng.integers(0, len(per_exam), (n, len(per_exam)))].mean(1)
    return float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))


def report(rows: pd.DataFrame, threshold: float) -> None:
    """One view's paired rows (:func:`paired`), printed as the module's docstring says."""
    present = rows[rows["truth_present_a"]]
    both = present[(present["confidence_a"] >= threshold) & (present["confidence_b"] >= threshold)]
    view = "/".join(sorted(rows["view"].unique()))
    print(f"{view} landmarks at threshold {threshold:g}, {rows['exam_id'].nunique()} exams; before -> after")
    for name, g in both.groupby("landmark"):
        print(f"  {name:20s} n={len(g):4d}  vs truth {g['auto_truth_a'].mean():.3f} -> {g['auto_truth_b'].mean():.3f}"
              f"  vs Obs1 {g['auto_obs1_a'].mean():.3f} -> {g['auto_obs1_b'].mean():.3f}"
              f"  > {FAR_MM:g} mm {int((g['auto_truth_a'] > FAR_MM).sum())} -> "
              f"{int((g['auto_truth_b'] > FAR_MM).sum())}")
    line = "  all                 "
    for col, what in (("auto_truth", "vs truth"), ("auto_obs1", "vs Obs1")):
        diff = both[f"{col}_b"] - both[f"{col}_a"]
        lo, hi = exam_bootstrap(diff, both["exam_id"])
        line += (f" {what} {both[f'{col}_a'].mean():.3f} -> {both[f'{col}_b'].mean():.3f} "
                 f"(paired {diff.mean():+.3f} [{lo:+.3f}, {hi:+.3f}]) ")
    print(line.rstrip())
    absent = rows[~rows["truth_present_a"]]
    if len(absent):
        print(f"  false positives: {int((absent['confidence_a'] >= threshold).sum())} -> "
              f"{int((absent['confidence_b'] >= threshold).sum())} of {len(absent)} absent landmarks")
    print(f"  present landmarks missed: {int((present['confidence_a'] < threshold).sum())} -> "
          f"{int((present['confidence_b'] < threshold).sum())} of {len(present)}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("before", help="landmark_confidence.py records (parquet) of the first network")
    ap.add_argument("after", help="records of the second, same cohort and seed")
    ap.add_argument("--threshold", type=float, default=default("landmarks.absent_threshold"))
    ap.add_argument("--views", nargs="+", default=["sax"], help="views to compare (default sax; all: every one)")
    args = ap.parse_args(argv)
    rows = paired(pd.read_parquet(args.before), pd.read_parquet(args.after))
    views = sorted(rows["view"].unique()) if args.views == ["all"] else args.views
    for view in views:
        if not (rows["view"] == view).any():
            raise SystemExit(f"no {view} rows in the records (they have {', '.join(sorted(rows['view'].unique()))})")
        report(rows[rows["view"] == view], args.threshold)
    return 0


if __name__ == "__main__":
    sys.exit(main())
