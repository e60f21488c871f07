"""The perfusion issue's figures on a held-out synthetic clinical cohort (seed 880000 by default:
disjoint from the network's training seeds 920000+ and the tests' 86).

Per exam (generated in memory, :mod:`cmr_atlas.perfusion.synthetic`): the whole pipeline
(:func:`cmr_atlas.perfusion.pipeline.run_exam`, automated and manual = observer 1's contours, the
paper's single reader; ``--observer obs2`` takes observer 2's instead, to see which differences
belong to one reader's style), then
- segmentation vs the generator's class maps (at the heart's median position, the grid the
  motion-corrected series is aligned to): myocardium Dice, precision, recall, mean boundary
  distance and Hausdorff distance (mm, symmetric, between the myocardium's boundary pixels);
- the same against the generator's exact contours (endo- and epicardium in the slice's mid plane
  at the label maps' pose): the network's sub-pixel contours (:func:`segment.contours`, the 0.5
  iso-lines of its class probabilities), mean symmetric distance and Hausdorff distance (mm,
  between the polylines, resolution-free: the paper drew its contours on 1 mm images);
  and against the boundary the image shows: the 0.5 iso-lines of the generator's class fractions
  (the slice profile's partial volume, what a reader contours; apical walls are oblique to it);
- RV insertion: angle between the automated and the true anterior insertion direction from the
  LV centre (slices where both exist; the truth at the heart's median breathing position over the
  dynamic frames, the pose of the motion-corrected slice and of the label maps, since 2026-12-04
  night: frame 0's before);
- MBF, automated vs manual per segment and global (paired t-test, Bland-Altman limits; the
  two-sample t-test beside it, which the paper's p-values fit), and each
  estimator vs the generator's segment MBF (bias, SD) per condition;
- what the angle goal against observer 1 asks of the network (:func:`angle_floor`): the mean
  angle to observer 1 were the network's error from the truth scaled down, slice by slice;
- residual in-plane motion of the true LV centre before and after correction (mm);
- speed: CNN per slice, whole stress + rest study (automated path with pixel maps).

    python benchmarks/perfusion.py [--n 40] [--seed 880000] [--models-dir resources/models]
    # split over two processes, then pool:
    python benchmarks/perfusion.py --n 20 --threads 1 --save a.pkl & \
      python benchmarks/perfusion.py --n 20 --start 20 --threads 1 --save b.pkl; wait
    python benchmarks/perfusion.py --report-saved a.pkl b.pkl
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
from scipy import ndimage, stats
from scipy.spatial import cKDTree

from cmr_atlas.core.config import default
from cmr_atlas.core.vocab import CORRECTED_POSE_FRAME
from cmr_atlas.perfusion import insertion_net, pipeline, prepare, segment, synthetic
from cmr_atlas.perfusion.quantify import QuantConfig
from cmr_atlas.perfusion.sectors import direction_error_deg
from cmr_atlas.stats import agreement


def boundary(mask: np.ndarray) -> np.ndarray:
    return mask & ~ndimage.binary_erosion(mask)


def surface_distances_mm(a: np.ndarray, b: np.ndarray, px_mm: float) -> tuple[float, float]:
    """(mean symmetric boundary distance, Hausdorff) between two masks, mm."""
    ba, bb = boundary(a), boundary(b)
    if not ba.any() or not bb.any():
        return np.nan, np.nan
    da = ndimage.distance_transform_edt(~bb)[ba] * px_mm
    db = ndimage.distance_transform_edt(~ba)[bb] * px_mm
    return float(np.r_[da, db].mean()), float(max(da.max(), db.max()))


def _dense(line_mm: np.ndarray, step_mm: float = 0.05) -> np.ndarray:
    """Points every ``step_mm`` along a closed polyline (N, 2)."""
    p = np.vstack([line_mm, line_mm[:1]])
    seg = np.diff(p, axis=0)
    n = np.maximum(1, np.ceil(np.hypot(*seg.T) / step_mm).astype(int))
    return np.vstack([p[i] + np.outer(np.arange(n[i]) / n[i], seg[i]) for i in range(len(seg))])


def contour_distances_mm(est: dict[str, np.ndarray], truth: dict[str, np.ndarray], px_mm: float) -> tuple[float, float, int]:
    """(mean symmetric distance, Hausdorff, surfaces one side lacks) between the endo/epi
    polylines (row, col pixels) of ``est`` and ``truth``, mm, over the surfaces both have."""
    d, missing = [], 0
    for surface in ("endo", "epi"):
        if (surface in est) != (surface in truth):
            missing += 1
        if surface in est and surface in truth:
            a, b = _dense(est[surface] * px_mm), _dense(truth[surface] * px_mm)
            d += [cKDTree(b).query(a)[0], cKDTree(a).query(b)[0]]
    if not d:
        return np.nan, np.nan, missing
    return float(np.mean([x.mean() for x in d])), float(max(x.max() for x in d)), missing


def upsampled(mask: np.ndarray, px_mm: float, to_mm: float = 1.0) -> np.ndarray:
    """A pixel mask on a ``to_mm`` grid (bilinear, 0.5 iso-line): the paper's 1 mm evaluation grid,
    without the native pixels' staircase."""
    return ndimage.zoom(mask.astype(float), px_mm / to_mm, order=1) > 0.5


def anterior_direction(marks: pd.DataFrame) -> np.ndarray | None:
    """LV centre -> anterior RV insertion (row, col) of one reader's landmarks on one slice."""
    m = marks.set_index("landmark")
    if not {"rv_insert_anterior", "lv_centre"} <= set(m.index):
        return None
    return m.loc["rv_insert_anterior", ["row_px", "col_px"]].to_numpy(float) - m.loc["lv_centre", ["row_px", "col_px"]].to_numpy(float)


def n_pd_of(ex, cond: str) -> int:
    """Proton-density frames at the start of the exam's ``cond`` perfusion series."""
    return next(prepare.pd_frame_count(s.flip_angle_deg[0]) for s in ex.series
                if s.kind == "perfusion" and s.stress_rest == cond)


def true_anterior_direction(ex, cond: str, slice_id: int) -> np.ndarray | None:
    """LV centre -> anterior RV insertion of the generator's truth at the heart's median breathing
    position over the dynamic frames: the anatomy the motion-corrected slice shows (its label maps'
    pose).  The truth of one acquired frame is not: near the apex, breathing moves the plane in and
    out of the RV's reach (exam 880000-6's apical stress slice touches the RV in 9 of 60 frames,
    frame 0 among them)."""
    t = insertion_net.truth_points(ex.truth["landmarks"], cond, slice_id, n_pd_of(ex, cond))
    return t["rv_insert_anterior"] - t["lv_centre"] if {"rv_insert_anterior", "lv_centre"} <= set(t) else None


def seg_rows(ex, out, px_by_cond) -> list[dict]:
    rows = []
    slice_ids = sorted({k[1] for k in ex.labels})
    lm = ex.truth["landmarks"]
    lm = lm[lm.frame == CORRECTED_POSE_FRAME]  # the observers trace the motion-corrected series
    for cond in ("stress", "rest"):
        for k, r in enumerate(out.slices.get(("auto", cond), [])):
            truth = ex.labels[(cond, slice_ids[k])] == segment.MYOCARDIUM
            auto = r.labels == segment.MYOCARDIUM
            tp = (truth & auto).sum()
            mean_d, hd = surface_distances_mm(auto, truth, px_by_cond[cond])
            px = px_by_cond[cond]
            ua, ut = upsampled(auto, px), upsampled(truth, px)
            mean_1, hd_1 = surface_distances_mm(ua, ut, px * auto.shape[0] / ua.shape[0])
            row = {"exam": ex.exam_id, "condition": cond, "slice": k, "truth_px": int(truth.sum()),
                   "dice": 2 * tp / max(truth.sum() + auto.sum(), 1), "precision": tp / max(auto.sum(), 1),
                   "recall": tp / max(truth.sum(), 1), "boundary_mm": mean_d, "hausdorff_mm": hd,
                   "boundary_1mm": mean_1, "hausdorff_1mm": hd_1, "px_mm": px, "angle_deg": np.nan}
            row["contour_mm"], row["contour_hausdorff_mm"], row["contour_missing"] = contour_distances_mm(
                r.contours, ex.contours.get((cond, slice_ids[k]), {}), px)
            fr = ex.fractions.get((cond, slice_ids[k]))
            if fr is not None:  # the boundary the image shows: half-lines of the slice-profile fractions
                shown = segment.contours(np.concatenate([1 - fr.sum(axis=0, keepdims=True), fr]))
                row["image_contour_mm"], row["image_contour_hausdorff_mm"], _ = contour_distances_mm(r.contours, shown, px)
            on = lm[(lm.condition == cond) & (lm.slice_index == slice_ids[k])]
            d = {who: anterior_direction(on[on.observer == who]) for who in ("obs1", "obs2")}
            d["truth"] = true_anterior_direction(ex, cond, slice_ids[k])
            auto = r.insertions.anterior_direction() if r.insertions is not None else None
            # vs the truth on the corrected grid (this benchmark's goal) and vs observer 1's clicks
            # (the paper's measure: auto vs manually determined direction, on the corrected series),
            # with what the two readers achieve beside it
            for col, a, b in (("angle_deg", auto, d["truth"]),
                              ("angle_vs_obs1_deg", auto, d["obs1"]),
                              ("obs1_vs_truth_deg", d["obs1"], d["truth"]), ("obs1_vs_obs2_deg", d["obs1"], d["obs2"])):
                row[col] = direction_error_deg(a, b) if a is not None and b is not None else np.nan
            rows.append(row)
    return rows


def motion_rows(ex, out, prepared_px) -> list[dict]:
    lm = ex.truth["landmarks"]
    lm = lm[(lm.observer == "truth") & (lm.landmark == "lv_centre")]
    slice_ids = sorted({k[1] for k in ex.labels})
    rows = []
    for cond in ("stress", "rest"):
        for k, r in enumerate(out.slices.get(("auto", cond), [])):
            rc = lm[(lm.condition == cond) & (lm.slice_index == slice_ids[k]) & (lm.frame >= 0)].sort_values("frame")[["row_px", "col_px"]]
            if len(rc) != len(r.shifts_px):
                continue
            n_pd = n_pd_of(ex, cond)
            d = rc.to_numpy(float)[n_pd:]
            d = d - np.median(d, axis=0)
            res = d - r.shifts_px[n_pd:]
            res = res - np.median(res, axis=0)
            px = prepared_px[cond]
            rows.append({"before_mm": np.linalg.norm(d, axis=1).mean() * px, "after_mm": np.linalg.norm(res, axis=1).mean() * px})
    return rows


def mbf_rows(ex, out) -> list[dict]:
    segs = pd.DataFrame(out.rows["perfusion_segments"])
    rows = []
    for _, s in segs.iterrows():
        rows.append({"exam": ex.exam_id, "condition": s.condition, "segment": s.aha_segment, "source": s.source,
                     "fermi": s.mbf_fermi_ml_min_g, "2cxm": s.mbf_2cxm_ml_min_g,
                     "truth": ex.segment_mbf[s.condition][int(s.aha_segment) - 1], "qc_reason": s.get("qc_reason")})
    return rows


def _frames(seg, mot, mbf, speed) -> dict[str, pd.DataFrame]:
    return {"seg": pd.DataFrame(seg), "motion": pd.DataFrame(mot), "mbf": pd.DataFrame(mbf), "speed": pd.DataFrame(speed)}


def run(n: int, seed: int, models_dir: str, save: str | None = None, start: int = 0,
        insertions: str | None = None, observer: str = "obs1") -> dict[str, pd.DataFrame]:
    """Exams ``start`` .. ``start + n - 1``; the speed figures on the first three of exam 0-2 (the
    study with pixel maps; the other runs skip the maps, which do not change the tables' figures);
    ``insertions``: config ``perfusion.insertions`` (None: its default); ``observer``: whose
    contours the manual path quantifies."""
    section = {**default("perfusion"), **({"insertions": insertions} if insertions else {})}
    cfg_maps = QuantConfig.from_config(section)
    cfg = QuantConfig.from_config({**section, "pixel_maps": False})
    model, card = segment.load_segmenter(models_dir)
    insertion = insertion_net.load(models_dir) if cfg.insertions == "network" else None
    seg, mot, mbf, speed = [], [], [], []
    for i in range(start, start + n):
        ex = synthetic.generate(seed, i, observers=2)
        c, lm = ex.truth["contours"], ex.truth["landmarks"]
        ann = pipeline.Annotations(c[c.observer == observer], lm[lm.observer == observer])
        t0 = time.perf_counter()
        auto_only = pipeline.run_exam(ex.exam_id, ex.series, cfg_maps, model, card, landmark_net=insertion) if i < 3 else None
        t_auto = time.perf_counter() - t0
        out = pipeline.run_exam(ex.exam_id, ex.series, cfg, model, card, ann, landmark_net=insertion)
        px = {s.stress_rest: float(np.mean(s.planes[0].pixel_spacing_mm)) for s in ex.series if s.kind == "perfusion"}
        seg += seg_rows(ex, out, px)
        mot += motion_rows(ex, out, px)
        mbf += mbf_rows(ex, out)
        if auto_only is not None:
            x = np.zeros((3,) + (len(card["input"]["frame_offsets"]), card["input"]["size"], card["input"]["size"]), np.float32)
            t1 = time.perf_counter()
            for _ in range(5):
                segment.predict(model, x)
            speed.append({"study_s": t_auto, "cnn_per_slice_ms": (time.perf_counter() - t1) / 15 * 1000})
        print(f"exam {i} {ex.exam_id}: {len(out.rows['perfusion_segments'])} segment rows", flush=True)
        if save:  # a run cut short still leaves its exams' figures (--report-saved)
            pd.to_pickle((_frames(seg, mot, mbf, speed), i + 1 - start, seed), save)
    return _frames(seg, mot, mbf, speed)


def bland_altman(a: np.ndarray, b: np.ndarray) -> str:
    """Bias and limits of agreement of ``a - b``, the paired t-test (the issue's goal) and the
    two-sample t-test beside it: the paper says only "a t test", and its p-values fit a two-sample
    test of the means and SDs it reports (stress 2.25 +- 0.59 vs 2.24 +- 0.59 ml/min/g on ~100 scans
    each: p ~ 0.9), which a paired test of ~100 pairs differing by 0.01 would give only if the
    pairs' differences scattered by ~1 ml/min/g."""
    ba = agreement.bland_altman(a, b)
    p = stats.ttest_rel(a, b).pvalue if len(a) > 1 else np.nan
    p2 = stats.ttest_ind(a, b, equal_var=False).pvalue if len(a) > 1 else np.nan
    return (f"mean diff {ba['bias']:+.3f}, limits [{ba['loa_low']:+.3f}, {ba['loa_high']:+.3f}], "
            f"paired t p = {p:.3f} (n {ba['n']}); auto {a.mean():.2f} +- {a.std(ddof=1):.2f} vs manual {b.mean():.2f} "
            f"+- {b.std(ddof=1):.2f}, two-sample t p = {p2:.2f}")


def report(r: dict[str, pd.DataFrame], n: int, seed: int | str) -> None:
    s, m, f, sp = r["seg"], r["motion"], r["mbf"], r["speed"]
    s = s[s.truth_px > 0]
    print(f"\nsynthetic clinical cohort: {n} exams (seed {seed}), {len(s)} slices with myocardium")
    print(f"myocardium Dice {s.dice.mean():.3f} +- {s.dice.std():.3f}; precision {s.precision.mean():.3f}, recall "
          f"{s.recall.mean():.3f} (false-positive rate {1 - s.precision.mean():.3f}, false-negative rate {1 - s.recall.mean():.3f})")
    print(f"boundary error {s.boundary_mm.mean():.2f} mm, Hausdorff {s.hausdorff_mm.mean():.2f} mm "
          f"(between boundary pixels of the native {s.get('px_mm', pd.Series([np.nan])).mean():.2f} mm grid)")
    if "boundary_1mm" in s:
        print(f"on the 1 mm grid (masks upsampled bilinearly, as the paper's 1 mm images): boundary error "
              f"{s.boundary_1mm.mean():.2f} mm, Hausdorff {s.hausdorff_1mm.mean():.2f} mm")
    if "contour_mm" in s:
        c = s.dropna(subset=["contour_mm"])
        print(f"network contours (0.5 iso-lines of its probabilities) vs the exact contours: boundary error "
              f"{c.contour_mm.mean():.2f} mm (median {c.contour_mm.median():.2f}), Hausdorff "
              f"{c.contour_hausdorff_mm.mean():.2f} mm (median {c.contour_hausdorff_mm.median():.2f}; n {len(c)} slices, "
              f"{int(s.contour_missing.sum())} surfaces found on one side only)")
        if "image_contour_mm" in c:
            print(f"  ... vs the boundary the image shows (the class fractions' half-lines, through-plane partial "
                  f"volume over the slice profile): {c.image_contour_mm.mean():.2f} mm (median "
                  f"{c.image_contour_mm.median():.2f}), Hausdorff {c.image_contour_hausdorff_mm.mean():.2f} mm")
        by = c.groupby(c["slice"].map({0: "basal", 1: "mid", 2: "apical"}))[["contour_mm", "contour_hausdorff_mm"]].mean()
        print("  by slice: " + "; ".join(f"{k} {v.contour_mm:.2f} / {v.contour_hausdorff_mm:.2f} mm" for k, v in by.iterrows()))
    a = s.angle_deg.dropna()
    print(f"RV insertion angle error vs truth {a.mean():.2f} +- {a.std():.2f} deg, median {a.median():.1f} "
          f"(n {len(a)} slices; {int((a > 60).sum())} above 60 deg)")
    for col, what in (("angle_vs_obs1_deg", "auto vs observer 1 (the paper's measure)"),
                      ("obs1_vs_truth_deg", "observer 1 vs truth"), ("obs1_vs_obs2_deg", "observer 1 vs observer 2")):
        if col in s:
            b = s[col].dropna()
            print(f"RV insertion angle {what}: {b.mean():.2f} +- {b.std():.2f} deg, median {b.median():.1f} (n {len(b)})")
    floor = angle_floor(s)
    if floor is not None:
        print("RV insertion angle vs observer 1 were the network's error from the truth scaled by k: "
              + ", ".join(f"k {k:.1f}: {v:.2f}" for k, v in floor.items()) + " deg")
    print(f"residual motion: {m.before_mm.mean():.2f} mm before -> {m.after_mm.mean():.2f} mm after (n {len(m)} slices)")
    # as the pipeline reports them: segments with a qc_reason are left out (perfusion_global's mean)
    ok = f[f["qc_reason"].isna()] if "qc_reason" in f else f
    for label, data in (("QC-plausible segments", ok), ("all segments", f)):
        wide = data.pivot_table(index=["exam", "condition", "segment"], columns="source", values="fermi")
        for cond in ("stress", "rest") if {"auto", "manual"} <= set(wide.columns) else ():
            w = wide.xs(cond, level="condition")
            g = w.groupby(level="exam").mean().dropna()  # each source's own global mean
            print(f"auto vs manual {cond} global (Fermi, {label}): " + bland_altman(g["auto"].to_numpy(), g["manual"].to_numpy()))
            w = w.dropna()
            print(f"auto vs manual {cond} per segment (Fermi, {label}): " + bland_altman(w["auto"].to_numpy(), w["manual"].to_numpy()))
    for src, cond, model in [(a, b, c) for a in ("auto", "manual") for b in ("stress", "rest") for c in ("fermi", "2cxm")]:
        x = f[(f.source == src) & (f.condition == cond)]
        e = x[model] - x.truth
        ok = x["qc_reason"].isna() if "qc_reason" in x else np.ones(len(x), bool)
        print(f"MBF vs truth {cond:6} {model:5} ({src}, per segment): truth {x.truth.mean():.2f}, bias {e.mean():+.3f}, "
              f"SD {e.std():.3f}, median abs {e.abs().median():.3f} ml/min/g (n {len(e)}); QC-plausible "
              f"segments: bias {e[ok].mean():+.3f}, SD {e[ok].std():.3f} (n {int(ok.sum())})")
    if "qc_reason" in f:
        q = f[f.source == "auto"]
        print(f"segments flagged implausible (auto): {int(q.qc_reason.notna().sum())} of {len(q)}; manual: "
              f"{int(f[f.source == 'manual'].qc_reason.notna().sum())} of {int((f.source == 'manual').sum())}")
    if len(sp):
        print(f"speed (2 CPU threads, shared machine): CNN {sp.cnn_per_slice_ms.mean():.0f} ms per slice; "
              f"stress + rest study with pixel maps {sp.study_s.mean():.1f} s (n {len(sp)})")


def angle_floor(seg: pd.DataFrame, scales: tuple[float, ...] = (1.0, 0.8, 0.6, 0.5, 0.4, 0.2, 0.0)
                ) -> dict[float, float] | None:
    """Mean automated-vs-observer-1 angle (deg) had the network's direction been ``k`` times as far
    from the truth, for each ``k`` in ``scales`` (0: the truth itself against observer 1).

    Per slice the three unsigned angles auto-truth ``a``, observer 1-truth ``b`` and auto-observer
    1 ``c`` say on which side of the truth each lies (``c`` is ``a + b`` or ``|a - b|``); the
    network's signed error is then scaled and compared with observer 1's.  None without the columns."""
    cols = ["angle_deg", "obs1_vs_truth_deg", "angle_vs_obs1_deg"]
    if not set(cols) <= set(seg.columns):
        return None
    a, b, c = (seg.dropna(subset=cols)[col].to_numpy(float) for col in cols)
    if not len(a):
        return None
    opposite = np.abs(c - (a + b)) < np.abs(c - np.abs(a - b))
    obs = np.where(opposite, -b, b)
    return {k: float(np.mean(np.abs(k * a - obs))) for k in scales}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n", type=int, default=40)
    ap.add_argument("--seed", type=int, default=880000)
    ap.add_argument("--models-dir", default="resources/models")
    ap.add_argument("--save", help="pickle the per-exam rows here after every exam")
    ap.add_argument("--start", type=int, default=0, help="first exam index (split a cohort over processes)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--insertions", choices=("network", "wall"),
                    help="config perfusion.insertions (default: the config's, network)")
    ap.add_argument("--observer", choices=("obs1", "obs2"), default="obs1",
                    help="whose contours the manual path quantifies (default: observer 1, the figures of record)")
    ap.add_argument("--report-saved", nargs="+", help="only print the figures of --save files (pooled)")
    args = ap.parse_args()
    if args.report_saved:
        parts = [pd.read_pickle(p) for p in args.report_saved]  # (frames, n exams[, seed]): older files lack the seed
        frames = {k: pd.concat([p[0][k] for p in parts], ignore_index=True) for k in parts[0][0]}
        seeds = sorted({p[2] if len(p) > 2 else args.seed for p in parts})
        report(frames, sum(p[1] for p in parts), ", ".join(map(str, seeds)))
        return
    import torch

    torch.set_num_threads(args.threads)
    report(run(args.n, args.seed, args.models_dir, args.save, args.start, args.insertions, args.observer),
           args.n, args.seed)


if __name__ == "__main__":
    main()
