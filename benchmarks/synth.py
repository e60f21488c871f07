"""Synthetic cohort generation speed and peak memory; optionally the README montage.

    python benchmarks/synth.py [--n-exams 6] [--jobs 1] [--montage docs/images/synth_montage.png]

Prints exams generated (and written as DICOM) per second and the peak resident memory.
"""

from __future__ import annotations

import argparse
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def montage(path: Path, seed: int = 20001, index: int = 0) -> None:
    """SAX ED/ES at base, mid and apex, plus 2CH and 4CH at ED and ES, with truth contours."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from cmr_atlas.synth.mesa.cohort import generate_exam

    ex = generate_exam(seed, index, observers=0)
    acq, c = ex.acq, ex.truth["contours"]
    n = ex.images.n_slices
    cols = [("sax", 1, "SAX base"), ("sax", n // 2, "SAX mid"), ("sax", n - 3, "SAX apex"),
            ("lax_2ch", 0, "2CH"), ("lax_4ch", 0, "4CH")]
    fig, axes = plt.subplots(2, len(cols), figsize=(3.2 * len(cols), 5.0))
    for j, (view, sl, title) in enumerate(cols):
        for i, (phase, f) in enumerate((("ED", acq.ed_frame), ("ES", acq.es_frame))):
            img = ex.images.sax[sl, f] if view == "sax" else ex.images.lax[view][f]
            ax = axes[i, j]
            ax.imshow(img, cmap="gray", vmin=0, vmax=np.percentile(img, 99.5))
            for surface, colour in (("endo", "tab:red"), ("epi", "tab:green")):
                pts = c[(c.view == view) & (c.slice_index == sl) & (c.frame == f) & (c.surface == surface)]
                if len(pts):
                    closed = view == "sax"
                    rr = np.r_[pts.row_px, pts.row_px.iloc[:1]] if closed else pts.row_px
                    cc = np.r_[pts.col_px, pts.col_px.iloc[:1]] if closed else pts.col_px
                    ax.plot(cc, rr, color=colour, lw=0.6)
            ax.set_title(f"{title} {phase}", fontsize=9)
            ax.axis("off")
    fig.suptitle(f"Synthetic legacy GRE cine exam {ex.label} ({acq.vendor}, SNR {acq.snr:.0f}); "
                 "truth endo (red) and epi (green) contours", fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=90)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n-exams", type=int, default=6)
    ap.add_argument("--jobs", type=int, default=1)
    ap.add_argument("--seed", type=int, default=777)
    ap.add_argument("--montage", type=Path, default=None)
    args = ap.parse_args()
    from cmr_atlas.synth.mesa.cohort import generate_cohort
    from cmr_atlas.synth.subjects import _intercepts

    _intercepts()  # one-off calibration, not per exam
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        generate_cohort(tmp, args.n_exams, args.seed, observers=2, jobs=args.jobs)
        dt = time.perf_counter() - t0
        size = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 1e6
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    child = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"synth: {args.n_exams} exams in {dt:.1f} s with {args.jobs} process(es): "
          f"{args.n_exams / dt:.2f} exams/s, {dt / args.n_exams:.2f} s/exam, {size / args.n_exams:.1f} MB/exam")
    print(f"peak RSS: {max(rss, child):.0f} MB")
    if args.montage:
        montage(args.montage)
        print(f"montage written to {args.montage}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
