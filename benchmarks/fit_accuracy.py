"""Accuracy of the LV model fit with and without breath-hold correction.

Usage:
    PYTHONPATH=$PWD python benchmarks/fit_accuracy.py                 # known-LV fixtures
    PYTHONPATH=$PWD python benchmarks/fit_accuracy.py --cohort DIR    # synthetic cohort truth
    PYTHONPATH=$PWD python benchmarks/fit_accuracy.py --legacy-seed 40001 --n 12 --no-off --through-plane crossings
                                     # legacy truth generated in memory (every frame), no images

Prints one row per setting: SAX shift recovery (RMS in-plane error after removing the common
in-plane translation, and the RMS of the true in-plane shifts for scale), mean distance of the
fitted surfaces to the true ones, and volume/mass bias (mean and SD of the % error) against the
truth; ``tp err``: RMS error of the SAX slices' through-plane shifts (each stack less its mean).
Cohort mode builds guide points from ``truth/contours`` (observer ``truth``, ED/ES) and
``truth/landmarks`` and takes the planes from ``truth/slices``.
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from cmr_atlas.core.config import default  # noqa: E402
from cmr_atlas.core.geometry import planes_by_slice  # noqa: E402
from cmr_atlas.cine.lvmodel.exam import fit_exam  # noqa: E402


@dataclass
class Case:
    exam_id: str
    guide_points: pd.DataFrame
    slices: pd.DataFrame
    shifts: pd.DataFrame  # view, slice_index, dx_mm, dy_mm, dz_mm (truth, patient)
    truth: dict  # edv_ml, esv_ml, lv_mass_g
    distance: Callable[[np.ndarray, str, str], np.ndarray]  # patient points -> distance to truth
    cycle: pd.DataFrame | None = None  # every frame's guide points (CYCLE_GUIDE_POINTS), if known


# ------------------------------------------------------------------------------------ cases
def fixture_cases(n: int, seed: int, shift_sd: float, noise: float,
                  through_plane: bool = True) -> list[Case]:
    from tests.cine.known_lv import SHAPES, ellipsoid_distance, make_fixture

    out = []
    for i in range(n):
        fx = make_fixture(seed + i, exam_id=f"fx{i}", shift_sd_mm=shift_sd, noise_mm=noise,
                          through_plane=through_plane)

        def dist(pts, phase, surf, fx=fx):
            return ellipsoid_distance((pts - fx.origin) @ fx.rotation, SHAPES[(phase, surf)])

        out.append(Case(f"fx{i}", fx.guide_points, fx.slices, fx.shifts, fx.truth, dist))
    return out


def truth_guide_points(tables: dict[str, pd.DataFrame], observer: str = "truth") -> pd.DataFrame:
    """Guide points (GUIDE_POINTS columns) from the synthetic truth's ED/ES contours and landmarks."""
    c = tables["contours"]
    c = c[(c["observer"] == observer) & c["phase"].isin(["ED", "ES"])]
    lm = tables["landmarks"]
    lm = lm[(lm["observer"] == observer) & lm["phase"].isin(["ED", "ES"])]
    cols = ["exam_id", "phase", "frame", "view", "slice_index", "x_mm", "y_mm", "z_mm"]
    a = c[cols + ["surface", "point_index"]].assign(kind="contour", landmark=None)
    b = lm[cols + ["landmark"]].assign(kind="landmark", surface=None, point_index=0)
    gp = pd.concat([a, b], ignore_index=True).assign(source=observer, weight=1.0)
    return gp


def _surface_sampler(grid: np.ndarray, n_circ: int, per_edge: int = 6) -> np.ndarray:
    """Dense points on a ring grid (n_long * n_circ, 3) by bilinear subdivision of its quads."""
    g = grid.reshape(-1, n_circ, 3)
    g = np.concatenate([g, g[:, :1]], axis=1)  # close the rings
    t = np.linspace(0, 1, per_edge + 1)
    a, b = np.meshgrid(t, t, indexing="ij")
    p00, p01, p10, p11 = g[:-1, :-1], g[:-1, 1:], g[1:, :-1], g[1:, 1:]
    out = ((1 - a) * (1 - b))[None, None, ..., None] * p00[:, :, None, None] \
        + ((1 - a) * b)[None, None, ..., None] * p01[:, :, None, None] \
        + (a * (1 - b))[None, None, ..., None] * p10[:, :, None, None] \
        + (a * b)[None, None, ..., None] * p11[:, :, None, None]
    return out.reshape(-1, 3)


def _truth_tables(cohort: Path) -> dict[str, pd.DataFrame]:
    names = ("contours", "landmarks", "slices", "slice_shifts", "exams", "shapes")
    return {n: pd.read_parquet(cohort / "truth" / f"{n}.parquet") for n in names}


def cohort_cases(cohort: Path, observer: str = "truth") -> list[Case]:
    """Cases of a synthetic cohort folder (``cmr-atlas synth``)."""
    return cases_from_truth(_truth_tables(cohort), observer)


def legacy_cases(seed: int, n: int, observer: str = "truth") -> list[Case]:
    """Cases of the legacy cohort ``seed`` (exams 0..n-1), truth tables generated in memory without
    images (the same truth as ``cmr-atlas synth --seed SEED``), every frame's guide points."""
    from benchmarks.motion import truth_cycle_guide_points, truth_only

    out = []
    for i in range(n):
        tables = truth_only(seed, i, 0 if observer == "truth" else 2)
        case = cases_from_truth(tables, observer)[0]
        # observers contour ED/ES only: their cases have no every-frame guide points
        case.cycle = truth_cycle_guide_points(tables, observer) if observer == "truth" else None
        out.append(case)
    return out


def cases_from_truth(tables: dict[str, pd.DataFrame], observer: str = "truth") -> list[Case]:
    from scipy.spatial import cKDTree

    gp_all = truth_guide_points(tables, observer)
    slices, shifts, shapes = tables["slices"], tables["slice_shifts"], tables["shapes"]
    exams = tables["exams"].set_index("exam_id")
    out = []
    for exam_id, gp in gp_all.groupby("exam_id"):
        trees = {}
        for (phase, surf), s in shapes[shapes["exam_id"] == exam_id].groupby(["phase", "surface"]):
            s = s.sort_values("point_index")
            pts = s[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float)
            # apex ring = the first points that coincide with point 0
            n_circ = int(np.argmax(np.linalg.norm(pts - pts[0], axis=1) > 1e-6)) or 1
            if n_circ <= 1:  # a single apex point: infer the ring size from the base ring
                n_circ = len(pts) - 1
            trees[(phase, surf)] = cKDTree(_surface_sampler(pts, n_circ) if n_circ > 1 else pts)

        def dist(pts, phase, surf, trees=trees):
            return trees[(phase, surf)].query(pts)[0]

        row = exams.loc[exam_id]
        out.append(Case(str(exam_id), gp, slices[slices["exam_id"] == exam_id],
                        shifts[shifts["exam_id"] == exam_id],
                        {"edv_ml": row["edv_ml"], "esv_ml": row["esv_ml"],
                         "lv_mass_g": row["lv_mass_g"]}, dist))
    return out


# ------------------------------------------------------------------------------- evaluation
def shift_errors(case: Case, fit, planes) -> tuple[np.ndarray, np.ndarray]:
    """In-plane (estimate - truth) and truth per SAX slice, common translation removed."""
    est = {s: d for v, s, d in fit.shifts if v == "sax"}
    tru = case.shifts[case.shifts["view"] == "sax"].set_index("slice_index")
    errs, trues = [], []
    for s, d in est.items():
        if s not in tru.index:
            continue
        p = planes[("sax", s)]
        b = np.stack([p.row_cosine, p.col_cosine])
        t = tru.loc[s, ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(dtype=float)
        errs.append(b @ (d - t))
        trues.append(b @ t)
    errs, trues = np.array(errs), np.array(trues)
    return errs - errs.mean(axis=0), trues - trues.mean(axis=0)


def through_plane_errors(case: Case, fit, planes) -> tuple[np.ndarray, np.ndarray]:
    """Through-plane (estimate - truth) and truth per SAX slice, each less its mean (the stack's
    common through-plane offset is the model's position along the axis: a gauge)."""
    est = {s: d for v, s, d in fit.shifts if v == "sax"}
    tru = case.shifts[case.shifts["view"] == "sax"].set_index("slice_index")
    errs, trues = [], []
    for s, d in est.items():
        if s not in tru.index:
            continue
        n = planes[("sax", s)].normal
        t = tru.loc[s, ["dx_mm", "dy_mm", "dz_mm"]].to_numpy(dtype=float)
        errs.append(n @ (d - t))
        trues.append(n @ t)
    errs, trues = np.array(errs), np.array(trues)
    return errs - errs.mean(), trues - trues.mean()


def aligned_distance(c: Case, f, n_iter: int = 6) -> float:
    """Mean surface distance after removing the best common translation of all four surfaces
    (the heart's absolute position under breath-holds is a gauge, see docs/lvmodel.md)."""
    pts = {k: f.frame.to_patient(p) for k, p in f.surfaces.items()}
    t = np.zeros(3)
    for _ in range(n_iter):
        steps = []
        for (phase, surf), p in pts.items():
            q = p + t
            d = c.distance(q, phase, surf)
            eps = 0.05  # numerical gradient of the distance field: cheap and generic
            g = np.stack([(c.distance(q + eps * e, phase, surf) - d) / eps for e in np.eye(3)], 1)
            steps.append((g, d))
        g = np.concatenate([s[0] for s in steps])
        d = np.concatenate([s[1] for s in steps])
        t = t - np.linalg.lstsq(g, d, rcond=None)[0]
    return float(np.mean([c.distance(p + t, ph, su).mean() for (ph, su), p in pts.items()]))


def evaluate(cases: list[Case], breath_hold: bool, shift_reference: str, settings=None,
             crossings: str | None = None, ridge: float | None = None) -> dict:
    """Fit every case and compare with its truth; ``crossings`` ('cycle' or 'ed-es'): through-plane
    shifts from the SAX/LAX contour crossings of every frame of ``case.cycle`` or of ED/ES only
    (:func:`fit_exam_through_plane`)."""
    from cmr_atlas.cine.lvmodel.through_plane import fit_exam_through_plane

    sh_err, sh_true, dist, ev, es, mass, slc_ev, rms, failed = [], [], [], [], [], [], [], [], 0
    tp_err, tp_true = [], []
    adist, seconds = [], []
    for c in cases:
        planes = planes_by_slice(c.slices, c.exam_id)
        if crossings and breath_hold:
            kw = {} if ridge is None else {"ridge_per_frame": ridge}
            f = fit_exam_through_plane(c.guide_points, c.cycle if crossings == "cycle" else None, planes,
                                       c.exam_id, "truth", shift_reference=shift_reference, settings=settings, **kw)
        else:
            f = fit_exam(c.guide_points, planes, c.exam_id, "truth", breath_hold=breath_hold,
                         shift_reference=shift_reference, settings=settings)
        seconds.append(f.seconds)
        if f.status == "failed":
            failed += 1
            print(f"  {c.exam_id}: failed ({f.qc_reason})", file=sys.stderr)
            continue
        e, t = shift_errors(c, f, planes)
        sh_err.append(e)
        sh_true.append(t)
        e, t = through_plane_errors(c, f, planes)
        tp_err.append(e)
        tp_true.append(t)
        for (phase, surf), pts in f.surfaces.items():
            dist.append(c.distance(f.frame.to_patient(pts), phase, surf).mean())
        adist.append(aligned_distance(c, f))
        v = f.volumes["model"]
        ev.append(100 * (v["ED_cavity_ml"] / c.truth["edv_ml"] - 1))
        es.append(100 * (v["ES_cavity_ml"] / c.truth["esv_ml"] - 1))
        mass.append(100 * (1.05 * v["ED_myo_ml"] / c.truth["lv_mass_g"] - 1))
        slc_ev.append(100 * (f.volumes["slices"]["ED_cavity_ml"] / c.truth["edv_ml"] - 1))
        rms.append(f.rms_residual_mm)
    cat = np.concatenate
    return {
        "shift_err": float(np.sqrt((cat(sh_err) ** 2).sum(1).mean())) if sh_err else np.nan,
        "shift_true": float(np.sqrt((cat(sh_true) ** 2).sum(1).mean())) if sh_true else np.nan,
        "tp_err": float(np.sqrt((cat(tp_err) ** 2).mean())) if tp_err else np.nan,
        "tp_true": float(np.sqrt((cat(tp_true) ** 2).mean())) if tp_true else np.nan,
        "dist": float(np.mean(dist)) if dist else np.nan,
        "adist": float(np.mean(adist)) if adist else np.nan,
        "edv": (np.mean(ev), np.std(ev)), "esv": (np.mean(es), np.std(es)),
        "mass": (np.mean(mass), np.std(mass)), "slices_edv": (np.mean(slc_ev), np.std(slc_ev)),
        "rms": float(np.mean(rms)) if rms else np.nan, "n": len(cases) - failed, "failed": failed,
        "seconds": float(np.mean(seconds)) if seconds else np.nan,
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cohort", type=Path, help="synthetic cohort folder (with truth/)")
    ap.add_argument("--n", type=int, default=8, help="fixture exams (without --cohort)")
    ap.add_argument("--seed", type=int, default=100)
    ap.add_argument("--shift-sd", type=float, default=3.0, help="fixture shift SD per axis, mm")
    ap.add_argument("--noise", type=float, default=0.5, help="fixture contour noise SD, mm")
    ap.add_argument("--shift-reference", default=default("fit.shift_reference"), choices=["sax_mean", "lax"],
                    help="gauge of the breath-hold shifts (docs/lvmodel.md; config fit.shift_reference)")
    ap.add_argument("--in-plane-only", action="store_true",
                    help="fixture shifts without a through-plane component")
    ap.add_argument("--observer", default="truth", help="cohort contours: truth, obs1 or obs2")
    ap.add_argument("--sax-only", action="store_true",
                    help="drop LAX contours (keep LAX landmarks), like the automated path")
    ap.add_argument("--smooth-bh", type=float, help="override FitSettings.smooth_breath_hold")
    ap.add_argument("--smooth-final", type=float, help="override FitSettings.smooth_final")
    ap.add_argument("--no-off", action="store_true", help="skip the run without correction")
    ap.add_argument("--legacy-seed", type=int,
                    help="legacy cohort generated in memory (truth only, every frame; with --n exams)")
    ap.add_argument("--through-plane", nargs="?", const="model", default="off",
                    choices=["off", "model", "crossings", "crossings-ed-es"],
                    help="through-plane shifts: not estimated; estimated within the ED/ES model fit "
                         "(FitSettings.through_plane); from the SAX/LAX contour crossings of every frame "
                         "(config fit.through_plane; needs --legacy-seed) or of ED/ES only")
    ap.add_argument("--tp-ridge", type=float, help="override FitSettings.through_plane_ridge (model) or "
                                                   "through_plane.RIDGE_PER_FRAME (crossings)")
    args = ap.parse_args(argv)
    from cmr_atlas.cine.lvmodel.fit import FitSettings

    from cmr_atlas.cine.lvmodel import through_plane

    crossings = {"crossings": "cycle", "crossings-ed-es": "ed-es"}.get(args.through_plane)
    over = {k: v for k, v in (("smooth_breath_hold", args.smooth_bh),
                              ("smooth_final", args.smooth_final),
                              ("through_plane_ridge", None if crossings else args.tp_ridge)) if v is not None}
    over["through_plane"] = args.through_plane == "model"
    settings = FitSettings(**over)
    if args.legacy_seed is not None:
        cases = legacy_cases(args.legacy_seed, args.n, args.observer)
        label = f"legacy cohort seed {args.legacy_seed} in memory ({args.observer} contours, {len(cases)} exams)"
    elif args.cohort:
        cases = cohort_cases(args.cohort, args.observer)
        label = f"synthetic cohort {args.cohort} ({args.observer} contours, {len(cases)} exams)"
    else:
        cases = fixture_cases(args.n, args.seed, args.shift_sd, args.noise, not args.in_plane_only)
        label = (f"known-LV fixtures: {args.n} exams, 3D shifts SD {args.shift_sd} mm, "
                 f"noise {args.noise} mm")
    if args.sax_only:
        for c in cases:
            gp = c.guide_points
            c.guide_points = gp[~((gp["view"] != "sax") & (gp["kind"] == "contour"))]
        label += ", SAX contours only (LAX landmarks kept)"
    print(label)
    ridge = args.tp_ridge if crossings and args.tp_ridge is not None else through_plane.RIDGE_PER_FRAME
    tp = {"off": "not estimated", "model": f"estimated in the ED/ES fit (ridge {settings.through_plane_ridge:g})",
          "crossings": f"from the SAX/LAX crossings of every frame (ridge {ridge:g} per frame)",
          "crossings-ed-es": f"from the SAX/LAX crossings at ED and ES (ridge {ridge:g} per frame)"}[args.through_plane]
    if crossings == "cycle" and any(c.cycle is None for c in cases):
        ap.error("--through-plane crossings needs every frame's contours: --legacy-seed")
    print(f"shift reference: {args.shift_reference}; smoothing: breath-hold stage "
          f"{settings.smooth_breath_hold:g}, final {settings.smooth_final:g}; through-plane {tp}")
    hdr = (f"{'breath-hold':<12}{'n':>3} {'shift err':>9} {'(true)':>7} {'surf dist':>9} {'aligned':>7} "
           f"{'EDV bias %':>14} {'ESV bias %':>14} {'mass bias %':>14} {'slices EDV %':>14} {'rms':>6} "
           f"{'tp err':>6} {'(true)':>6} {'s/exam':>6}")
    print(hdr)
    for bh in (True,) if args.no_off else (True, False):
        r = evaluate(cases, bh, args.shift_reference, settings, crossings, ridge)
        pm = lambda m: f"{m[0]:+6.2f}+-{m[1]:5.2f}"  # noqa: E731
        print(f"{'on' if bh else 'off':<12}{r['n']:>3} {r['shift_err']:>9.2f} {r['shift_true']:>7.2f} "
              f"{r['dist']:>9.2f} {r['adist']:>7.2f} {pm(r['edv']):>14} {pm(r['esv']):>14} {pm(r['mass']):>14} "
              f"{pm(r['slices_edv']):>14} {r['rms']:>6.2f} {r['tp_err']:>6.2f} {r['tp_true']:>6.2f} {r['seconds']:>6.2f}")
    print("shift err: RMS in-plane error of SAX shifts after removing the common in-plane "
          "translation (mm); (true): RMS of the true in-plane shifts likewise; surf dist: mean "
          "distance of the 841-point surfaces to the truth (mm); aligned: the same after removing the best common translation; rms: data-to-surface RMS (mm)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
