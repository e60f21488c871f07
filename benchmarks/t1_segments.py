"""Native T1, post-contrast T1 and ECV per AHA segment (``t1_segments``) against the generator's truth
on held-out synthetic clinical exams (issue 16).

    PYTHONPATH=. python benchmarks/t1_segments.py --n-exams 40 --seed 940003 [--models-dir resources/models] \
        [--truth-landmarks] [--threads 2]

Per exam the T1 maps are rendered in memory (``cmr_atlas.cine.training_lge.clinical_t1map``'s
renderer) while a wrapper keeps, per map pixel, what the renderer computed before the scanner saw
it: the true T1 (proton-density weighted through the slice, before the k-space blur and the fit
noise), whether the pixel is LV myocardium through the whole slice thickness, and its ECV.  Truth
per segment: the mean of those over the pixels that are myocardium, sectors from the truth SAX
landmarks and the truth level.  The estimate is the stage's own code
(:func:`cmr_atlas.cine.tissue.segments.exam_rows`) on the stored maps, with landmarks from the
T1-map network (default) or the truth landmarks (``--truth-landmarks``: the ROI and ECV method
alone).  The hematocrit is the subject's true one (what a measured covariate gives) and the config
default (what an exam without one gets).  Seeds: T1-map test 940003 (disjoint from the T1-map
training seed 940002, LGE 940000-940001 and every cine seed).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cmr_atlas.core.aha import aha16_segment, insertion_angle_deg  # noqa: E402
from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.seriescache import SeriesImages  # noqa: E402
from cmr_atlas.cine.tissue.landmarks import load_tissue_models, series_landmarks  # noqa: E402
from cmr_atlas.cine.tissue.segments import apply_hematocrit, exam_rows  # noqa: E402


def render_with_truth(seed: int, index: int, mi_fraction: float):
    """(rendered series, truth tables, physiology, per-map pixel truth list in render order)."""
    from cmr_atlas.synth import anatomy as an
    from cmr_atlas.synth.clinical import cohort, t1map
    from cmr_atlas.synth.clinical.render import myocardial_ecv

    kept = []
    original = t1map.t1_map

    def capture(ctx, sampler, w, blood, rel_sd, kfrac, rng):
        t1, pd_, _ = t1map.sample_t1(ctx, sampler, w, blood)  # deterministic: no draws from rng
        lab = sampler.labels(w)
        ecv, _ = myocardial_ecv(sampler, w, ctx.physiology, lab)
        myo = (lab == an.LV_MYO).all(-1)
        kept.append({"t1": (t1 * pd_).sum(-1) / np.maximum(pd_.sum(-1), 1e-9), "myo": myo,
                     "ecv": np.where(myo, np.nan_to_num(ecv).mean(axis=-1), np.nan)})
        return original(ctx, sampler, w, blood, rel_sd, kfrac, rng)

    rngs = cohort.exam_streams(seed, index)
    ctx = cohort.make_context(seed, index, mi_fraction, rngs)
    t1map.t1_map = capture
    try:
        res = t1map.render(ctx, rngs["t1map"], 0)
    finally:
        t1map.t1_map = original
    return res, ctx, kept


def as_series(exam_id: str, rs, index: int) -> SeriesImages:
    """A rendered map series as the series cache gives it."""
    p = len(rs.planes)
    nan = np.full((p, 1), np.nan)
    return SeriesImages(exam_id, index, index + 1, "t1map", "t1map", None, rs.kind == "t1map_post",
                        np.stack([im.astype(np.float32) for im in rs.images]), np.ones(p, int), list(rs.planes),
                        nan, nan, nan, nan, map_units="ms")


def truth_segments(exam_id: str, rs, truth_lm: pd.DataFrame, pixels: list[dict],
                   native_pixels: list[dict]) -> list[dict]:
    """Truth rows per (slice, segment) of one exam from the renderer's pixel truth."""
    from cmr_atlas.synth.clinical.t1map import LEVELS

    levels = LEVELS[len(rs.planes)]
    rows = []
    xyz = {}  # slice -> {landmark: patient mm} of the truth
    for p, sl in enumerate(rs.slice_indices):
        lm = truth_lm[(truth_lm["observer"] == "truth") & (truth_lm["slice_index"] == sl)]
        xyz[p] = {r.landmark: np.array([r.x_mm, r.y_mm, r.z_mm]) for r in lm.itertuples()}
    full = [p for p in xyz if len(xyz[p]) == 3]
    for p, plane in enumerate(rs.planes):
        if "lv_centre" not in xyz[p] or not full:
            continue
        # apical slices without RV insertions: the nearest full slice's insertion directions
        near = min(full, key=lambda k: abs(k - p))
        ref = {k: xyz[p]["lv_centre"] + xyz[near][k] - xyz[near]["lv_centre"] for k in ("rv_insert_anterior",
                                                                                       "rv_insert_posterior")}
        pts = {k: plane.in_plane_mm(v) for k, v in {**ref, **xyz[p]}.items()}
        rc = np.indices(plane.shape).reshape(2, -1).T.astype(float)
        xy = plane.in_plane_mm(plane.pixel_to_patient(rc))
        theta = insertion_angle_deg(xy, pts["lv_centre"], pts["rv_insert_anterior"], pts["rv_insert_posterior"])
        seg = aha16_segment(theta, levels[p]).reshape(plane.shape)
        myo = native_pixels[p]["myo"]
        for s in np.unique(seg[myo]):
            m = myo & (seg == s)
            rows.append({"exam_id": exam_id, "slice_index": p, "true_level": levels[p], "segment": int(s),
                         "true_native_t1_ms": float(native_pixels[p]["t1"][m].mean()),
                         "true_post_t1_ms": float(pixels[p]["t1"][m].mean()),
                         "true_ecv": float(np.nanmean(native_pixels[p]["ecv"][m]))})
    return rows


def exam_compare(seed: int, i: int, mi: float, models, truth_landmarks: bool) -> tuple[list[dict], list[dict], float]:
    res, ctx, kept = render_with_truth(seed, i, mi)
    exam_id = ctx.label
    by_kind = {s.kind: s for s in res.series}
    native, post = as_series(exam_id, by_kind["t1map_native"], 0), as_series(exam_id, by_kind["t1map_post"], 1)
    n = len(native.planes)
    truth_lm = res.truth["landmarks"]
    if truth_landmarks:
        lm = truth_as_detected(truth_lm, native, by_kind["t1map_native"])
    else:
        lm = pd.concat([series_landmarks(s, models, absent_threshold=default("landmarks.absent_threshold"),
                                         batch=default("inference.batch")) for s in (native, post)])
    auto = exam_rows(exam_id, native, post, lm, default("tissue.hematocrit"))
    truth = truth_segments(exam_id, by_kind["t1map_native"], truth_lm, kept[n:], kept[:n])
    return auto, truth, float(ctx.physiology.hematocrit)


def truth_as_detected(truth_lm: pd.DataFrame, native: SeriesImages, rs) -> pd.DataFrame:
    """The truth SAX landmarks as ``tissue_landmarks`` rows of the native map."""
    rows = []
    for p, (plane, sl) in enumerate(zip(native.planes, rs.slice_indices)):
        for r in truth_lm[(truth_lm["observer"] == "truth") & (truth_lm["slice_index"] == sl)].itertuples():
            rc, _ = plane.patient_to_pixel(np.array([r.x_mm, r.y_mm, r.z_mm]))
            rows.append({"series_index": native.series_index, "slice_index": p, "landmark": r.landmark,
                         "present": True, "y_px": float(rc[0]), "x_px": float(rc[1])})
    return pd.DataFrame(rows, columns=["series_index", "slice_index", "landmark", "present", "y_px", "x_px"])


def summary(auto: pd.DataFrame, truth: pd.DataFrame) -> None:
    ok = auto[auto["qc_reason"].isna()]
    slices = auto.drop_duplicates(["exam_id", "slice_index"])
    print(f"\nslices {len(slices)}; with segment values {ok.drop_duplicates(['exam_id', 'slice_index']).shape[0]}; "
          f"qc reasons: {slices['qc_reason'].value_counts().to_dict()}")
    lv = ok.drop_duplicates(["exam_id", "slice_index"]).merge(truth.drop_duplicates(["exam_id", "slice_index"]),
                                                             on=["exam_id", "slice_index"])
    print(f"level agreement {100 * (lv['level'] == lv['true_level']).mean():.1f} % of {len(lv)} slices; "
          f"(auto, truth) counts {lv.groupby(['level', 'true_level']).size().to_dict()}")
    m = ok.merge(truth, on=["exam_id", "slice_index", "segment"])
    print(f"segments compared {len(m)} (truth segments {len(truth)})\n")
    print("| quantity | hematocrit | n | bias (auto - truth) | SD | mean abs | truth mean (SD) |")
    print("|---|---|---|---|---|---|---|")
    for col, unit, scale in (("native_t1_ms", "ms", 1), ("post_t1_ms", "ms", 1)):
        d = m[col] - m[f"true_{col}"]
        print(f"| {col} | | {d.notna().sum()} | {d.mean():+.1f} {unit} | {d.std():.1f} | {d.abs().mean():.1f} | "
              f"{m[f'true_{col}'].mean():.0f} ({m[f'true_{col}'].std():.0f}) |")
    for label, e in (("true (covariate)", m["ecv_true_hct"]), ("default 0.42", m["ecv"])):
        d = 100 * (e - m["true_ecv"])
        print(f"| ECV, % points | {label} | {d.notna().sum()} | {d.mean():+.2f} | {d.std():.2f} | "
              f"{d.abs().mean():.2f} | "
              f"{100 * m['true_ecv'].mean():.1f} ({100 * m['true_ecv'].std():.1f}) |")
    print("\nper segment (true hematocrit): ECV error mean (SD) % points, native T1 error mean (SD) ms")
    for s, g in m.groupby("segment"):
        d = 100 * (g["ecv_true_hct"] - g["true_ecv"])
        t = g["native_t1_ms"] - g["true_native_t1_ms"]
        print(f"  segment {int(s):2d}: n {len(g):3d}  ECV {d.mean():+.2f} ({d.std():.2f})  "
              f"native T1 {t.mean():+.1f} ({t.std():.1f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-exams", type=int, default=40)
    ap.add_argument("--seed", type=int, default=940003)
    ap.add_argument("--mi-fraction", type=float, default=0.3)
    ap.add_argument("--models-dir", default=str(Path(__file__).resolve().parent.parent / "resources/models"))
    ap.add_argument("--truth-landmarks", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(args.threads)
    models = None
    if not args.truth_landmarks:
        models = load_tissue_models(args.models_dir, device="cpu", precision=default("inference.precision"))["t1map"]
    autos, truths, hct = [], [], {}
    for i in range(args.n_exams):
        a, t, h = exam_compare(args.seed, i, args.mi_fraction, models, args.truth_landmarks)
        autos += a
        truths += t
        hct[a[0]["exam_id"]] = h
        print(f"exam {i + 1}/{args.n_exams}", file=sys.stderr)
    auto = pd.DataFrame(autos)
    with_true = apply_hematocrit(auto, pd.Series(hct))
    auto["ecv_true_hct"] = with_true["ecv"]
    print(f"===== t1_segments vs truth: clinical seed {args.seed}, {args.n_exams} exams, landmarks "
          f"{'truth' if args.truth_landmarks else 'network (' + args.models_dir + ')'}")
    summary(auto, pd.DataFrame(truths))
    return 0


if __name__ == "__main__":
    sys.exit(main())
