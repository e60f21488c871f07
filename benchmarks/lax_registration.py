"""LAX view registration (:mod:`cmr_atlas.cine.lax_registration`) against the synthetic truth, for
several numbers of cine frames, on the automated guide points of a finished workflow run.

    PYTHONPATH=. python benchmarks/lax_registration.py --results DIR --cohort COHORT \
        [--frames 8 10 12 15] [--key cmr-atlas-demo-key]

``DIR``: a results folder of the workflow (``shards/*/guide_points.parquet``, ``slices.parquet``,
``exam_keys.parquet`` and the image cache; e.g. the one ``benchmarks/throughput.py`` leaves);
``COHORT``: the synthetic cohort it ran on (``truth/slice_shifts.parquet``); ``--key``: the run's
``exam_id_key``.  Per exam and landmark-only LAX view: the plain ED/ES fit's SAX shifts start the
registration as in the fit stage; the error is the in-plane distance between the estimated view
shift and the true one relative to the mean true SAX shift (the fit's ``sax_mean`` gauge).
Printed per number of frames: mean, RMS, median and 90th percentile of the error (mm) and the
registration's time per exam.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.cine.lax_registration import N_FRAMES, lax_view_shifts  # noqa: E402
from cmr_atlas.cine.lvmodel.exam import fit_exam_staged  # noqa: E402
from cmr_atlas.cine.lvmodel.lax_shifts import landmark_only_views, lv_centres  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.geometry import planes_by_slice  # noqa: E402
from cmr_atlas.core.ids import keyed_hash  # noqa: E402
from cmr_atlas.core.imagecache import load_exam_images  # noqa: E402


def truth_labels(results: Path, labels: list[str], key: str) -> dict[str, str]:
    """Pipeline ``exam_id`` -> synthetic exam label (the folder name), from the shards' exam keys."""
    keys = pd.concat([pd.read_parquet(p) for p in sorted(results.glob("shards/*/exam_keys.parquet"))])
    keys = keys[keys["key_type"] == "exam_folder"]
    by_hash = dict(zip(keys["key_hash"], keys["exam_id"]))
    return {by_hash[h]: label for label in labels if (h := keyed_hash(label, key)) in by_hash}


def view_errors(results: Path, cohort: Path, key: str, frames: list[int]) -> tuple[pd.DataFrame, dict[int, float]]:
    """One row per (exam, view, n_frames) with the in-plane error (mm); seconds per exam per n."""
    shifts = pd.read_parquet(cohort / "truth" / "slice_shifts.parquet")
    label = truth_labels(results, sorted(shifts["exam_id"].unique()), key)
    rows, seconds, n_exams = [], dict.fromkeys(frames, 0.0), 0
    xyz = ["dx_mm", "dy_mm", "dz_mm"]
    for shard in sorted(p.parent for p in results.glob("shards/*/guide_points.parquet")):
        gp_all = pd.read_parquet(shard / "guide_points.parquet")
        slices = pd.read_parquet(shard / "slices.parquet")
        for eid, gp in gp_all[gp_all["source"] == "auto"].groupby("exam_id"):
            images = load_exam_images(results / "cache" / f"{eid}.npz", stored=True)
            views = landmark_only_views(gp) & set(images.lax)
            if eid not in label or not views:
                continue
            planes = planes_by_slice(slices, eid)
            fit0 = fit_exam_staged(gp, planes, eid, "auto", breath_hold=True,
                                   shift_reference=default("fit.shift_reference")).fit
            if fit0.status == "failed":
                continue
            sax = {int(k): d for v, k, d in fit0.shifts if v == "sax"}
            true = shifts[shifts["exam_id"] == label[eid]]
            sax_mean = true.loc[true["view"] == "sax", xyz].to_numpy().mean(axis=0)
            n_exams += 1
            for n in frames:
                t0 = time.perf_counter()
                found = lax_view_shifts(images, lv_centres(gp), sax, views, n_frames=n)
                seconds[n] += time.perf_counter() - t0
                for view, d in found.items():
                    normal = images.lax_planes[view].normal
                    err = d - (true.loc[true["view"] == view, xyz].to_numpy()[0] - sax_mean)
                    rows.append({"exam_id": eid, "view": view, "n_frames": n,
                                 "error_mm": float(np.linalg.norm(err - (err @ normal) * normal))})
    return pd.DataFrame(rows), {n: s / max(n_exams, 1) for n, s in seconds.items()}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--results", type=Path, required=True)
    ap.add_argument("--cohort", type=Path, required=True)
    ap.add_argument("--frames", type=int, nargs="+", default=[8, 10, 12, 15])
    ap.add_argument("--key", default="cmr-atlas-demo-key", help="the run's exam_id_key")
    args = ap.parse_args()
    errors, seconds = view_errors(args.results, args.cohort, args.key, args.frames)
    if not len(errors):
        print("no exam with landmark-only LAX views and truth (wrong --key or --cohort?)")
        return 1
    print(f"LAX view registration vs truth: {errors['exam_id'].nunique()} exams, "
          f"{len(errors) // len(args.frames)} views (in-plane error, mm; shipped N_FRAMES = {N_FRAMES})")
    print("frames   mean    RMS  median    p90   registration s/exam")
    for n, g in errors.groupby("n_frames"):
        e = g["error_mm"].to_numpy()
        print(f"{n:6d} {e.mean():6.3f} {np.sqrt((e ** 2).mean()):6.3f} {np.median(e):7.3f} "
              f"{np.percentile(e, 90):6.3f}   {seconds[n]:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
