"""How near the truth a landmark network must come for a distance-to-observer goal (issue 16).

    PYTHONPATH=. python benchmarks/landmark_error_budget.py RECORDS.parquet [--views lax_3ch | all] \
        [--goal-mm 2.0] [--threshold 0.1] [--per-landmark]

RECORDS: ``landmark_confidence.py --out`` (or any ``accuracy.landmark_records`` rows), which carry
each point's error vector from the truth (``auto_d{x,y,z}_mm``, ``obs1_...``, ``obs2_...``).  The
network's errors are scaled by ``alpha`` (its point moved along the line to the truth: 1 = as
measured, 0 = the truth itself) with the observers' errors kept, and the mean distance to each
observer recomputed on the images where the truth, the observers and the network (at the
threshold) all have the landmark.  Printed per view: the table over ``alpha``, and the largest
``alpha`` (in steps of 0.01) at which the mean distance to each observer is within the goal, with
the network's mean distance to the truth there.  ``alpha`` 0 gives the observer's own distance to
the truth: when that is over the goal, no network can meet it against that observer.

This is exact on the records, unlike the estimate that independent errors add in quadrature
(the mean of a Euclidean distance is not the root of summed squared means when errors are
heavy-tailed or biased), but it assumes a better network shrinks every error by the same factor.
The other way to improve, the tail: the same distances with the network's worst points (the given
shares of its largest errors) moved onto the truth and the rest kept, and the smallest such share
(in steps of one point) that meets the goal.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.core.config import default  # noqa: E402

OBSERVERS = ("obs1", "obs2")
ALPHAS = (1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.25, 0.0)
TAIL_SHARES = (0.01, 0.02, 0.05)


def _vectors(rows: pd.DataFrame, source: str) -> np.ndarray:
    cols = [f"{source}_d{a}_mm" for a in "xyz"]
    missing = [c for c in cols if c not in rows]
    if missing:
        raise SystemExit(f"the records have no {', '.join(missing)}: rerun landmark_confidence.py "
                         "(its records carry the error vectors since 2026-12-06)")
    return rows[cols].to_numpy(float)


def compared(records: pd.DataFrame, threshold: float) -> pd.DataFrame:
    """The rows where the truth, both observers and the network (confidence >= ``threshold``) have the landmark."""
    ok = records["truth_present"].astype(bool) & (records["confidence"] >= threshold)
    for src in ("auto", *OBSERVERS):
        ok &= np.isfinite(_vectors(records, src)).all(1)
    return records[ok]


def scaled_distances(rows: pd.DataFrame, alpha: float) -> dict[str, float]:
    """Mean distance (mm) of the network's points, their errors scaled by ``alpha``, to the truth
    and to each observer."""
    auto = alpha * _vectors(rows, "auto")
    out = {"truth": float(np.linalg.norm(auto, axis=1).mean())}
    for obs in OBSERVERS:
        out[obs] = float(np.linalg.norm(auto - _vectors(rows, obs), axis=1).mean())
    return out


def without_worst(rows: pd.DataFrame, n_points: int) -> dict[str, float]:
    """:func:`scaled_distances` at alpha 1 with the network's ``n_points`` largest errors set to 0
    (those points moved onto the truth), the others kept."""
    auto = _vectors(rows, "auto")
    err = np.linalg.norm(auto, axis=1)
    scale = np.ones(len(auto))
    scale[np.argsort(-err, kind="stable")[:n_points]] = 0.0
    out = {"truth": float((err * scale).mean())}
    for obs in OBSERVERS:
        out[obs] = float(np.linalg.norm(auto * scale[:, None] - _vectors(rows, obs), axis=1).mean())
    return out


def fewest_fixed(rows: pd.DataFrame, observer: str, goal_mm: float) -> int | None:
    """The fewest worst network points (:func:`without_worst`) to move onto the truth for the mean
    distance to ``observer`` to be within ``goal_mm``; None when even all of them are not enough."""
    for n in range(len(rows) + 1):
        if without_worst(rows, n)[observer] <= goal_mm:
            return n
    return None


def largest_alpha(rows: pd.DataFrame, observer: str, goal_mm: float, step: float = 0.01) -> float | None:
    """The largest ``alpha`` in [0, 1] (grid of ``step``) at which the mean distance to ``observer``
    is within ``goal_mm``; None when even the truth itself (alpha 0) is not."""
    for alpha in np.round(np.arange(1.0, -step / 2, -step), 6):
        if scaled_distances(rows, float(alpha))[observer] <= goal_mm:
            return float(alpha)
    return None


def report(rows: pd.DataFrame, view: str, goal_mm: float) -> None:
    print(f"\n{view}: {len(rows)} points, {rows['exam_id'].nunique()} exams; network errors scaled by alpha")
    print("  alpha  Auto vs truth  Auto vs Obs1  Auto vs Obs2")
    for alpha in ALPHAS:
        d = scaled_distances(rows, alpha)
        print(f"  {alpha:5.2f}  {d['truth']:13.2f}  {d['obs1']:12.2f}  {d['obs2']:12.2f}")
    for obs in OBSERVERS:
        a = largest_alpha(rows, obs, goal_mm)
        if a is None:
            print(f"  vs {obs}: not within {goal_mm:g} mm even at the truth itself: the observer limits it")
        else:
            print(f"  vs {obs}: within {goal_mm:g} mm up to alpha {a:.2f}, the network "
                  f"{scaled_distances(rows, a)['truth']:.2f} mm from the truth (now "
                  f"{scaled_distances(rows, 1.0)['truth']:.2f})")
    print("  the network's worst points moved onto the truth, the rest kept:")
    for share in TAIL_SHARES:
        n = int(round(share * len(rows)))
        d = without_worst(rows, n)
        print(f"    worst {100 * share:g} % ({n} points): Auto vs truth {d['truth']:.2f}, "
              f"Auto vs Obs1 {d['obs1']:.2f}, Auto vs Obs2 {d['obs2']:.2f}")
    for obs in OBSERVERS:
        n = fewest_fixed(rows, obs, goal_mm)
        said = ("not enough even with every point" if n is None else
                f"{n} of {len(rows)} points ({100 * n / len(rows):.1f} %)")
        print(f"    vs {obs}: the fewest worst points to fix for {goal_mm:g} mm: {said}")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("records")
    ap.add_argument("--views", nargs="+", default=["lax_3ch"], help="views, or all")
    ap.add_argument("--goal-mm", type=float, default=2.0)
    ap.add_argument("--per-landmark", action="store_true",
                    help="each landmark of a view on its own (issue 16 states its goal per landmark)")
    ap.add_argument("--threshold", type=float, default=None,
                    help="absent threshold (default: the config's landmarks.absent_threshold)")
    args = ap.parse_args(argv)
    threshold = default("landmarks.absent_threshold") if args.threshold is None else args.threshold
    records = pd.read_parquet(args.records)
    views = sorted(records["view"].unique()) if args.views == ["all"] else args.views
    for view in views:
        of_view = records[records["view"] == view]
        parts = of_view.groupby("landmark", sort=False) if args.per_landmark else [(None, of_view)]
        for name, part in parts:
            label = view if name is None else f"{view} {name}"
            rows = compared(part, threshold)
            if not len(rows):
                print(f"\n{label}: no point that the truth, both observers and the network have")
                continue
            report(rows, label, args.goal_mm)
    return 0


if __name__ == "__main__":
    sys.exit(main())
