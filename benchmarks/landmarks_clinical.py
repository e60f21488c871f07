"""Landmarks and SAX segmentation on the bSSFP cine of held-out synthetic clinical exams (issue 16;
Xue et al. 2021 Tables 2-4).

    PYTHONPATH=. python benchmarks/landmarks_clinical.py --n-exams 40 --seed 930001 \
        [--models-dir resources/models] [--keep-exams DIR] [--threads 2]

Test cohort: clinical exams of seed 930001 (exams 0..n-1, two simulated observers, MI fraction
0.2), only their cine rendered (:func:`cmr_atlas.cine.training.clinical_cine`: the same images as
the full exam's cine).  Disjoint from the training seeds (clinical 920000, legacy 910000-910001),
the test-suite's clinical cohort (86) and the legacy test cohort (30001).  Printed:

* detection rate per view (all the image's landmarks detected, as the paper's success rate) and
  per landmark, with false positives on SAX slices without the landmark;
* distance in mm to each observer and to the truth per landmark, beside observer vs observer;
* RV insertion angle and LV length: bias and 95 % limits of agreement vs each observer;
* Dice at the true ED/ES frames, EDV/ESV/EF/mass by slice summation vs truth, ED/ES frames
  (the legacy accuracy benchmark's tables, :mod:`benchmarks.accuracy`);
* speed: seconds per cine series (a LAX cine's landmarks on every frame; a SAX stack's
  segmentation of every image + landmarks at ED/ES) on ``--threads`` CPU threads.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from accuracy import evaluate_exam, print_derived, print_tables  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.geometry import SlicePlane  # noqa: E402
from cmr_atlas.core.imagecache import load_exam_images, save_exam_images  # noqa: E402
from cmr_atlas.cine.inference import detect_landmarks, load_models, segment_exam  # noqa: E402
from cmr_atlas.cine.training import clinical_cine  # noqa: E402

TRUTH_USED = ("exams", "contours", "landmarks")
SEQUENCE = "cine_ssfp"


def _save_3ch(images, path: Path) -> None:
    """The image cache keeps the legacy LAX views only: the 3CH cine and its plane go beside it."""
    p = images.lax_planes["lax_3ch"]
    np.savez_compressed(path, cine=images.lax["lax_3ch"], position_mm=p.position_mm, row_cosine=p.row_cosine,
                        col_cosine=p.col_cosine, pixel_spacing_mm=np.asarray(p.pixel_spacing_mm),
                        shape=np.asarray(p.shape), thickness_mm=p.thickness_mm)


def _load_3ch(images, path: Path):
    with np.load(path) as z:
        images.lax["lax_3ch"] = z["cine"]
        images.lax_planes["lax_3ch"] = SlicePlane(z["position_mm"], z["row_cosine"], z["col_cosine"],
                                                  tuple(map(float, z["pixel_spacing_mm"])),
                                                  tuple(map(int, z["shape"])), float(z["thickness_mm"]))
    return images


def clinical_exams(n: int, seed: int, observers: int, mi_fraction: float, keep: Path | None):
    """Held-out clinical cine exams; with ``keep`` stored there the first time and reused."""
    for i in range(n):
        stem = None if keep is None else keep / f"{seed}-{i:04d}"
        three = None if stem is None else Path(f"{stem}.lax_3ch.npz")
        if stem is not None and stem.with_suffix(".npz").is_file() and three.is_file():
            yield (_load_3ch(load_exam_images(stem.with_suffix(".npz")), three),
                   {t: pd.read_parquet(f"{stem}.{t}.parquet") for t in TRUTH_USED})
            continue
        images, truth = clinical_cine(seed, i, mi_fraction, observers)
        if stem is not None:
            keep.mkdir(parents=True, exist_ok=True)
            for t in TRUTH_USED:
                truth[t].to_parquet(f"{stem}.{t}.parquet")
            save_exam_images(images, stem.with_suffix(".npz"))
            _save_3ch(images, three)
        yield images, truth


def detection_by_view(rec: dict) -> None:
    """The paper's success rate: images whose landmarks (all those the truth has) were all detected."""
    lm = pd.DataFrame(rec["landmarks"])
    lm = lm[lm["truth_present"]]
    if not len(lm):
        return
    print(f"\nDetection rate per view and sequence ({SEQUENCE}): images with every present landmark detected")
    for (method, view), g in lm.groupby(["method", "view"], sort=False):
        per_image = g.groupby(["exam_id", "slice", "frame"])["auto_present"].all()
        print(f"  {method:8s} {view:8s} {per_image.mean() * 100:6.1f} % of {len(per_image)} images")


def speed(images, models, threads: int, repeats: int = 3) -> None:
    """Seconds per cine series: each LAX cine's landmarks on every frame; the SAX stack's segmentation
    of every image and its landmarks at two frames (best of ``repeats``)."""
    import torch

    torch.set_num_threads(threads)
    batch = default("inference.batch")
    thr = default("landmarks.absent_threshold")
    lax_only = type(images)(images.exam_id, images.sax[:0], [], images.trigger_times_ms, images.lax, images.lax_planes)
    sax_only = type(images)(images.exam_id, images.sax, images.sax_planes, images.trigger_times_ms)

    def best(fn):
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            fn()
            times.append(time.perf_counter() - t0)
        return min(times)

    t_lax = best(lambda: detect_landmarks(lax_only, models, [], absent_threshold=thr, batch=batch))
    t_seg = best(lambda: segment_exam(sax_only, models, batch=batch))
    t_sax = best(lambda: detect_landmarks(sax_only, models, [0, images.n_frames // 3], absent_threshold=thr,
                                          batch=batch))
    n_lax = len(images.lax)
    print(f"\nSpeed on {threads} CPU threads ({'float32' if models.dtype is None else models.dtype}): "
          f"LAX cine landmarks {t_lax / n_lax:.2f} s per series ({images.n_frames} frames, "
          f"{n_lax} series); SAX stack ({images.n_slices} x {images.n_frames} images) segmentation "
          f"{t_seg:.2f} s + landmarks at ED/ES {t_sax:.2f} s")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-exams", type=int, default=40)
    ap.add_argument("--seed", type=int, default=930001, help="held-out clinical cohort seed")
    ap.add_argument("--mi-fraction", type=float, default=0.2)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--precision", default=default("inference.precision"), choices=["auto", "float32", "bfloat16"])
    ap.add_argument("--keep-exams", help="folder to store the generated test exams in (and reuse them from)")
    ap.add_argument("--generate-only", action="store_true")
    ap.add_argument("--out", default="benchmarks/out/landmarks_clinical", help="folder for the Bland-Altman PNGs")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    keep = Path(args.keep_exams) if args.keep_exams else None
    exams = clinical_exams(args.n_exams, args.seed, 2, args.mi_fraction, keep)
    if args.generate_only:
        for i, _ in enumerate(exams):
            print(f"generated {i + 1}/{args.n_exams}", file=sys.stderr)
        return 0
    models = load_models(args.models_dir, method="heatmap", device="cpu", precision=args.precision)
    rec: dict[str, list[dict]] = {"dice": [], "measures": [], "landmarks": [], "phases": [], "derived": []}
    first = None
    for n, (images, truth) in enumerate(exams, 1):
        first = first or images
        r = evaluate_exam(images, truth, {"heatmap": models}, default("landmarks.absent_threshold"))
        for k in rec:
            rec[k] += r[k]
        print(f"evaluated {n} exams", file=sys.stderr)
    print(f"Held-out clinical cohort: {n} exams, bSSFP cine (seed {args.seed}, exams 0..{n - 1}); "
          f"models {args.models_dir}")
    detection_by_view(rec)
    print_tables(rec, Path(args.out))
    print_derived(rec)
    if first is not None:
        speed(first, models, args.threads)
    return 0


if __name__ == "__main__":
    sys.exit(main())
