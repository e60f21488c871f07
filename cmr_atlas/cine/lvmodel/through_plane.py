"""Through-plane breath-hold shifts from where the SAX and LAX contours cross, over every frame.

A SAX slice displaced by ``t`` along its normal shows the heart's section at another level.  The
smooth model cannot tell (it absorbs a level error by bending: estimating ``t`` inside the model
fit, per exam or jointly over all frames with the shifts shared, did not beat leaving it at zero,
docs/motion.md).  The LAX contours can: where the line common to a SAX plane and a LAX plane
cuts the LAX contour (point ``b``, at the SAX plane's nominal level), the SAX contour must cross
the same line at ``b`` too, unless the slice shows another level; then it crosses at
``a = b - s t`` with ``s`` the LAX contour's in-line slope per mm along the SAX normal (the
taper).  Each (frame, LAX view, surface, wall) gives one such observation; mid-ventricular walls
(``s`` ~ 0) carry nothing, the apical and basal walls a lot, and over the cycle the base moves
through the basal slices, so every frame adds levels.

Per SAX slice: robust least squares of ``a - b = -s t + c_view`` (``c_view`` absorbs what is
left of the in-plane misregistration along the line, constant over the frames), then each
slice's ``t`` is shrunk towards the common level by its information (``ridge``, tuned on the
development cohort), and the stack's mean is removed (the gauge of ``shift_reference='sax_mean'``:
the stack's common level is the model's position along its axis).  Needs LAX contours: the
manual path (ED/ES) and truth contours have them; the automated path (SAX contours and LAX
landmarks only) has none, so its slices keep zero.
"""

from __future__ import annotations

import time
from dataclasses import replace

import numpy as np
import pandas as pd

from cmr_atlas.cine.lvmodel.cycle import with_sax_frame
from cmr_atlas.cine.lvmodel.exam import ExamFit, _xyz, fit_exam, shift_corrected
from cmr_atlas.cine.lvmodel.fit import FitSettings
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import SURFACES

BASE_MARGIN_MM = 4.0  # crossings closer to the frame's mitral plane are left out (valve chords, hinge ends)
MAX_SLOPE = 4.0  # steeper crossings (contour nearly in the SAX plane: the apical cap) are left out
MATCH_MM = 8.0  # a SAX crossing further than this from the LAX crossing is another wall
# information (1/mm^2, per frame observed) of the prior that pulls each slice to the common level:
# the crossings of one slice repeat the same shape misfit in every frame, so frames are not
# independent evidence and the prior grows with them (tuned on the development cohort, seed 11)
RIDGE_PER_FRAME = 0.4
ROBUST_FLOOR_MM = 0.3  # lower bound of the robust residual scale


def _crossings(p: np.ndarray, origin: np.ndarray, normal: np.ndarray, closed: bool):
    """Points where the polyline ``p`` crosses the plane, and the crossing segments' directions."""
    if closed:
        p = np.vstack([p, p[:1]])
    d = (p - origin) @ normal
    i = np.flatnonzero(np.sign(d[:-1]) * np.sign(d[1:]) < 0)
    f = d[i] / (d[i] - d[i + 1])
    seg = p[i + 1] - p[i]
    return p[i] + f[:, None] * seg, seg


def _bases(cgp: pd.DataFrame) -> dict[int, tuple[np.ndarray, np.ndarray]]:
    """Mitral plane (point, normal towards the apex) of each frame with >= 2 hinge points."""
    lm = cgp[cgp["kind"] == "landmark"]
    apex = _xyz(lm[lm["landmark"] == "apex"])
    out = {}
    for f, g in lm[lm["landmark"].astype(str).str.startswith("mv_")].groupby("frame_sax"):
        p = _xyz(g)
        c = p.mean(axis=0)
        if len(p) >= 3:
            n = np.linalg.svd(p - c)[2][-1]
        elif len(apex):
            n = apex.mean(axis=0) - c
        else:
            continue
        n = n / np.linalg.norm(n)
        if len(apex) and (apex.mean(axis=0) - c) @ n < 0:
            n = -n
        out[int(f)] = (c, n)
    return out


def _polylines(cont: pd.DataFrame, keys: list[str]) -> dict[tuple, np.ndarray]:
    cont = cont.sort_values("point_index", kind="stable")
    return {k: _xyz(g) for k, g in cont.groupby(keys)}


def crossing_observations(cgp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane],
                          shifts: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    """One row per matched SAX/LAX crossing: frame (SAX), slice_index, view, slope (in-line mm per mm along
    the SAX normal) and residual_mm (SAX crossing minus LAX crossing along the common line), on
    the guide points corrected by ``shifts`` (the in-plane breath-hold shifts)."""
    cgp = shift_corrected(with_sax_frame(cgp)[0], shifts)
    base = _bases(cgp)
    cont = cgp[(cgp["kind"] == "contour") & cgp["surface"].isin(SURFACES)]
    sax = _polylines(cont[cont["view"] == "sax"], ["frame_sax", "surface", "slice_index"])
    lax = _polylines(cont[cont["view"] != "sax"], ["frame_sax", "surface", "view"])
    by_fs: dict[tuple, list] = {}
    for (f, surf, k), q in sax.items():
        by_fs.setdefault((f, surf), []).append((int(k), q))
    rows = []
    for (f, surf, v), p in lax.items():
        pv = planes.get((str(v), 0))
        if pv is None:
            continue
        for k, q in by_fs.get((f, surf), []):
            pk = planes.get(("sax", k))
            if pk is None:
                continue
            u = np.cross(pk.normal, pv.normal)
            if np.linalg.norm(u) < 0.5:  # nearly parallel planes: no common line
                continue
            u /= np.linalg.norm(u)
            b, seg = _crossings(p, pk.position_mm, pk.normal, closed=False)
            a, _ = _crossings(q, pv.position_mm, pv.normal, closed=True)
            if int(f) in base:
                c0, n0 = base[int(f)]
                a = a[(a - c0) @ n0 > BASE_MARGIN_MM]
                keep = (b - c0) @ n0 > BASE_MARGIN_MM
                b, seg = b[keep], seg[keep]
            if not len(a) or not len(b):
                continue
            tn = seg @ pk.normal
            ok = np.abs(tn) > 1e-9
            slope = (seg[ok] @ u) / tn[ok]
            bu = b[ok] @ u
            au = a @ u
            resid = au[np.argmin(np.abs(au[None, :] - bu[:, None]), axis=1)] - bu
            good = (np.abs(resid) <= MATCH_MM) & (np.abs(slope) <= MAX_SLOPE)
            rows += [(int(f), k, str(v), s_, r_) for s_, r_ in zip(slope[good], resid[good])]
    return pd.DataFrame(rows, columns=["frame", "slice_index", "view", "slope", "residual_mm"])


def through_plane_shifts(obs: pd.DataFrame, slices: list[int], ridge_per_frame: float = RIDGE_PER_FRAME,
                         iterations: int = 5) -> dict[int, float]:
    """Through-plane shift (mm along the normal, the in-plane shifts' sign convention) of each
    SAX slice in ``slices``, zero mean; slices without observations stay at the common level.

    Robust (Huber) least squares of ``residual = -slope (t_slice - level_view) + c_(slice, view)``
    over all observations: ``level_view`` is what the LAX view's own (estimated) shift leaves along
    the axis, ``c`` the in-plane misregistration left along the common line; a prior of
    ``ridge_per_frame`` x the number of frames (1/mm^2, in units of the residuals' robust scale)
    pulls each ``t`` to the common level, so slices whose walls run along the normal stay there."""
    obs = obs[obs["slice_index"].isin(slices)]
    if obs.empty:
        return {k: 0.0 for k in slices}
    ridge = ridge_per_frame * obs["frame"].nunique()
    k_of = {k: i for i, k in enumerate(slices)}
    views = sorted(obs["view"].unique())
    pairs = sorted(set(zip(obs["slice_index"].astype(int), obs["view"])))
    n_k, n_v = len(slices), len(views)
    rows = np.arange(len(obs))
    a = np.zeros((len(obs), n_k + n_v + len(pairs)))
    slope = obs["slope"].to_numpy(dtype=float)
    a[rows, obs["slice_index"].map(k_of).to_numpy()] = -slope
    a[rows, n_k + obs["view"].map({v: j for j, v in enumerate(views)}).to_numpy()] = slope
    pair_of = {p: j for j, p in enumerate(pairs)}
    a[rows, n_k + n_v + np.array([pair_of[(int(k), v)] for k, v in zip(obs["slice_index"], obs["view"])])] = 1.0
    r = obs["residual_mm"].to_numpy(dtype=float)
    w, sigma = np.ones(len(obs)), ROBUST_FLOOR_MM
    prior = np.r_[np.full(n_k, max(ridge, 1e-9)), np.full(a.shape[1] - n_k, 1e-9)]
    for _ in range(iterations):
        h = (a * w[:, None]).T @ a / sigma**2 + np.diag(prior)
        x = np.linalg.solve(h, (a * w[:, None]).T @ r / sigma**2)
        e = r - a @ x
        sigma = max(1.4826 * float(np.median(np.abs(e))), ROBUST_FLOOR_MM)
        w = np.minimum(1.0, 1.345 * sigma / np.maximum(np.abs(e), 1e-12))
    t = x[:n_k] - x[:n_k].mean()
    return {k: float(v) for k, v in zip(slices, t)}


def fit_exam_through_plane(gp: pd.DataFrame, cgp: pd.DataFrame | None, planes: dict[tuple[str, int], SlicePlane],
                           exam_id: str, source: str, *, shift_reference: str,
                           settings: FitSettings | None = None, ridge_per_frame: float = RIDGE_PER_FRAME) -> ExamFit:
    """:func:`fit_exam` with breath-hold correction including each SAX slice's through-plane
    shift, estimated from the SAX/LAX crossings of every frame of ``cgp`` (cycle guide points;
    None: the ED/ES guide points ``gp``): ED/ES fit, estimate, ED/ES fit again on the guide
    points moved along the normals.  The returned fit's ``shifts`` carry both components (so
    :func:`~cmr_atlas.cine.lvmodel.cycle.fit_cycle` corrects every frame by them).  Without LAX
    contours, or when the first fit fails, the first fit is returned."""
    t0 = time.perf_counter()
    s = replace(settings or FitSettings(), through_plane=False)
    first = fit_exam(gp, planes, exam_id, source, breath_hold=True, shift_reference=shift_reference, settings=s)
    if first.status == "failed":
        return first
    shifts = {(v, int(k)): d for v, k, d in first.shifts}
    obs = crossing_observations(gp if cgp is None else cgp, planes, shifts)
    if obs.empty:
        return first
    slices = sorted(k for v, k in shifts if v == "sax")
    tp = through_plane_shifts(obs, slices, ridge_per_frame)
    normal = {k: tp[k] * planes[("sax", k)].normal for k in slices}
    moved = gp.copy()
    sax = (gp["view"] == "sax").to_numpy()
    sl = gp["slice_index"].fillna(-1).astype(int).to_numpy()
    d = np.zeros((len(gp), 3))
    for k, vec in normal.items():
        d[sax & (sl == k)] = vec
    moved[["x_mm", "y_mm", "z_mm"]] = _xyz(gp) - d
    out = fit_exam(moved, planes, exam_id, source, breath_hold=True, shift_reference=shift_reference, settings=s)
    if out.status == "failed":
        return first
    out.shifts = [(v, k, dv + normal.get(int(k), 0.0) if v == "sax" else dv) for v, k, dv in out.shifts]
    out.seconds = time.perf_counter() - t0
    return out
