"""Sub-pixel decoders of the landmark heatmaps compared on the same maps (issue 16).

    PYTHONPATH=. python benchmarks/landmark_decoders.py --seed 940123 --n-exams 9 --keep-exams DIR \
        [--variants c50,c30,c70,lq5w] [--models-dir resources/models] [--threads 2]

The shipped decoder (:func:`cmr_atlas.nets.heatmaps.decode_heatmap`) places a landmark at the
probability-weighted centroid of the blob above half its peak (``c50``).  Here the network runs
once per exam (the clinical cine exams of ``landmarks_clinical.py``, kept in ``--keep-exams``;
use validation seeds, never the held-out ones, to choose) and each variant decodes the same maps:
``cNN`` the blob centroid with the cut at NN % of the peak, ``lq5w`` a quadratic fitted to the log
probabilities of the 5 x 5 pixels round the peak (weighted by probability; the classic sub-pixel
peak of a Gaussian heatmap; the centroid where the fit has no maximum within 2 pixels).  Presence
(the peak against the threshold, 0 here) does not depend on the decoder, so every variant is
measured on the same landmarks.  Printed: per view and variant, the mean and median distance in mm
to the truth and the mean to observer 1 (the means carry the same few gross errors in every variant).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import landmark_confidence as lc  # noqa: E402
import cmr_atlas.cine.inference as inference  # noqa: E402
from cmr_atlas.nets.heatmaps import decode_heatmap  # noqa: E402


def blob_centroid(p: np.ndarray, fraction: float) -> tuple[float, float]:
    """The shipped read-out (:func:`decode_heatmap`) with the blob cut at ``fraction`` of the peak."""
    d = decode_heatmap(p, 0.0, fraction)
    return d.row, d.col


def log_quadratic(p: np.ndarray, peak_rc: tuple[int, int], half: int = 2) -> tuple[float, float]:
    r0, c0 = peak_rc
    if not (half <= r0 < p.shape[0] - half and half <= c0 < p.shape[1] - half):
        return blob_centroid(p, 0.5)
    win = p[r0 - half:r0 + half + 1, c0 - half:c0 + half + 1]
    rr, cc = (g.ravel().astype(float) for g in np.mgrid[-half:half + 1, -half:half + 1])
    design = np.stack([np.ones_like(rr), rr, cc, rr * rr, cc * cc, rr * cc], 1)
    w = np.sqrt(win.ravel())
    coef = np.linalg.lstsq(design * w[:, None], np.log(np.maximum(win.ravel(), 1e-12)) * w, rcond=None)[0]
    hess = np.array([[2 * coef[3], coef[5]], [coef[5], 2 * coef[4]]])
    if coef[3] >= 0 or coef[4] >= 0 or np.linalg.det(hess) <= 0:
        return blob_centroid(p, 0.5)
    dr, dc = np.linalg.solve(hess, -coef[1:3])
    if max(abs(dr), abs(dc)) > half:
        return blob_centroid(p, 0.5)
    return r0 + dr, c0 + dc


def variant(name: str):
    if name.startswith("c") and name[1:].isdigit():
        return lambda p, rc: blob_centroid(p, int(name[1:]) / 100)
    if name == "lq5w":
        return log_quadratic
    raise SystemExit(f"unknown decoder {name!r} (cNN or lq5w)")


def decoding_with(position, shipped):
    """``decode_arrays`` with presence and confidence as shipped, positions by ``position``."""
    def decode_arrays(probs, absent_threshold):
        rc, present, conf = shipped(probs, absent_threshold)
        for b, k in zip(*np.nonzero(present)):
            p = probs[b, k + 1]
            rc[b, k] = position(p, np.unravel_index(int(np.argmax(p)), p.shape))
        return rc, present, conf
    return decode_arrays


def once_per_exam(network_outputs):
    """The network's outputs computed once per exam and handed to every variant."""
    cache: dict = {}

    def outputs(images, *args, **kwargs):
        if images.exam_id not in cache:
            cache.clear()
            cache[images.exam_id] = network_outputs(images, *args, **kwargs)
        return {i: o.clone() for i, o in cache[images.exam_id].items()}
    return outputs


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=940123)
    ap.add_argument("--n-exams", type=int, default=9)
    ap.add_argument("--keep-exams", required=True)
    ap.add_argument("--mi-fraction", type=float, default=0.2)
    ap.add_argument("--variants", default="c50,c30,c40,c60,c70,lq5w")
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", help="parquet of the per-landmark rows, with a variant column")
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    decoders = {v: variant(v) for v in args.variants.split(",")}
    models = inference.load_models(args.models_dir, method="heatmap", device="cpu", precision="auto")
    lc.without_calibrated_thresholds(models)
    shipped = inference.decode_arrays
    inference._network_outputs = once_per_exam(inference._network_outputs)
    rows = []
    exams = lc.clinical_exams(args.n_exams, args.seed, 2, args.mi_fraction, Path(args.keep_exams))
    for images, truth in exams:
        for name, position in decoders.items():
            inference.decode_arrays = decoding_with(position, shipped)
            rows += [dict(r, variant=name) for r in lc.exam_records(images, truth, models, "cine_ssfp")]
        print(images.exam_id, file=sys.stderr)
    df = pd.DataFrame(rows)
    if args.out:
        df.to_parquet(args.out)
    found = df[df["truth_present"] & df["auto_present"]]
    for col, stat, what in (("auto_truth", "mean", "to the truth"), ("auto_truth", "median", "to the truth"),
                            ("auto_obs1", "mean", "to observer 1")):
        print(f"\n{stat.capitalize()} distance {what} (mm), landmarks found (threshold 0), per view and decoder")
        print(found.groupby(["view", "variant"])[col].agg(stat).unstack()[list(decoders)].round(3).to_string())
    return 0


if __name__ == "__main__":
    sys.exit(main())
