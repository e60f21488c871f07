"""The LV model at every cine frame: a trajectory of shapes with fixed topology and volume curves.

The exam's ED/ES fit (:func:`cmr_atlas.cine.lvmodel.exam.fit_exam`) gives the local frame and the
breath-hold shifts (one per slice: the slices of one breath-hold are displaced alike in every
frame).  Each frame's guide points (:data:`cmr_atlas.cine.guidepoints.CYCLE_GUIDE_POINTS`) are
corrected by those shifts and fitted with the final-stage objective of the ED/ES fit, warm-started
from the neighbouring frame (:func:`cmr_atlas.cine.lvmodel.fit.fit_warm`): the chain starts at the
ED frame from the ED fit's fields and runs forwards and backwards; at the ES frame it takes the ES
fit's fields.  So the ED and ES frames of the curve are exactly the ED/ES fit (its measures), and
every frame has the same 29 x 29 sampling.  Each frame has its own base plane from that frame's
mitral hinge points (the LAX frame at the same cycle fraction), else the nearest frame's.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cmr_atlas.cine.lvmodel import measures
from cmr_atlas.cine.lvmodel.exam import (APEX_WEIGHT, BASE_MARGIN_MM, FINE_MU, FINE_THETA, MIN_SAX_SLICES,
                                         MV_WEIGHT, ExamFit, _weights, _xyz, sax_spacing_mm, slice_volumes_ml)
from cmr_atlas.cine.lvmodel.fit import FitData, FitSettings, fit_warm
from cmr_atlas.cine.lvmodel.frame import base_plane
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import SURFACES

WARM_ITERATIONS = 2  # Levenberg-Marquardt steps per frame from the neighbour's fit (docs/motion.md)
N_BISECT = 20  # bisection steps of each frame's base ring (40 for ED/ES; 20 are within 1e-4 mm)


@dataclass
class CycleFit:
    """Per-frame model fits of one exam and source (arrays over ``frames``, in frame order)."""

    exam_id: str
    source: str
    frames: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=int))
    time_ms: np.ndarray = field(default_factory=lambda: np.zeros(0))
    volumes: dict[str, np.ndarray] = field(default_factory=dict)  # method -> cavity ml per frame
    myo_ml: np.ndarray = field(default_factory=lambda: np.zeros(0))  # model myocardial volume
    surfaces: dict[int, dict[str, np.ndarray]] = field(default_factory=dict)  # frame -> surface -> (841, 3)
    ed_frame: int | None = None  # the ED/ES fit's frames (the anchors of the chain)
    es_frame: int | None = None
    qc_reason: str | None = None
    seconds: float = 0.0


def _frame_data(pts: pd.DataFrame, frame_local, plane: tuple[np.ndarray, np.ndarray]) -> FitData:
    """Fit data of one frame (already shift-corrected, local mm): SAX contour points below the
    base margin and LAX contours, the hinge points (endocardial) and apex (epicardial)."""
    cont = pts[pts["kind"] == "contour"]
    loc = frame_local(_xyz(cont))
    keep = np.ones(len(cont), dtype=bool)
    sax = (cont["view"] == "sax").to_numpy()
    keep[sax] = (loc[sax] - plane[0]) @ plane[1] > BASE_MARGIN_MM
    cont, loc = cont[keep], loc[keep]
    lm = pts[pts["kind"] == "landmark"]
    mv = lm[lm["landmark"].astype(str).str.startswith("mv_")]
    apex = lm[lm["landmark"] == "apex"]
    points = np.concatenate([loc, frame_local(_xyz(mv)), frame_local(_xyz(apex))])
    fld = np.concatenate([(cont["surface"] == "epi").to_numpy().astype(int),
                          np.zeros(len(mv), dtype=int), np.ones(len(apex), dtype=int)])
    w = np.concatenate([_weights(cont), MV_WEIGHT * _weights(mv), APEX_WEIGHT * _weights(apex)])
    n = len(points)
    return FitData(points, fld, w, np.full(n, -1), np.zeros((0, 2, 3)), n_fields=2)


def with_sax_frame(cgp: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
    """``cgp`` with column ``frame_sax`` (the SAX frame each row stands for) and the SAX frames'
    times (ms).  LAX rows carry their LAX frame; the SAX frame they stand for is the one with the
    same trigger time (cycle guide points), else the one of the same phase (ED/ES guide points,
    which have no ``time_ms``; their SAX frame numbers then stand in for times)."""
    is_sax = (cgp["view"] == "sax").to_numpy()
    sax = cgp[is_sax]
    if "time_ms" in cgp:
        key, times = "time_ms", sax.groupby("frame")["time_ms"].first()
        by_key = {float(t): int(f) for f, t in times.items()}
        lax_frame = cgp[key].astype(float).map(by_key)
    else:
        times = sax.groupby("frame")["frame"].first().astype(float)
        by_key = {p: int(f) for p, f in zip(sax["phase"], sax["frame"]) if isinstance(p, str)}
        lax_frame = cgp["phase"].map(by_key)
    lax_frame = lax_frame.fillna(-1).to_numpy(dtype=int)
    return cgp.assign(frame_sax=np.where(is_sax, cgp["frame"].to_numpy(dtype=int), lax_frame)), times


def usable_frames(cgp: pd.DataFrame) -> np.ndarray:
    """SAX frames (of ``frame_sax``) with an endocardial contour on at least MIN_SAX_SLICES slices."""
    endo = cgp[(cgp["kind"] == "contour") & (cgp["view"] == "sax") & (cgp["surface"] == "endo")]
    n_sl = endo.groupby("frame_sax")["slice_index"].nunique()
    return np.array(sorted(int(f) for f, n in n_sl.items() if n >= MIN_SAX_SLICES), dtype=int)


def corrected(gp: pd.DataFrame, shifts: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    """Guide points minus their slice's breath-hold shift (patient coordinates)."""
    d = np.zeros((len(gp), 3))
    keys = pd.DataFrame({"v": gp["view"].astype(str).to_numpy(), "s": gp["slice_index"].fillna(0).astype(int).to_numpy()})
    for (v, k), idx in keys.groupby(["v", "s"]).indices.items():
        d[idx] = shifts.get((v, int(k)), np.zeros(3))
    out = gp.copy()
    out[["x_mm", "y_mm", "z_mm"]] = _xyz(gp) - d
    return out


def _planes(gp: pd.DataFrame, frames: np.ndarray, to_local, fallback) -> dict[int, tuple]:
    """Base plane of each frame from its hinge points, else the nearest frame's (else ``fallback``)."""
    own = {}
    hinges = gp[(gp["kind"] == "landmark") & gp["landmark"].astype(str).str.startswith("mv_")]
    for f, mv in hinges.groupby("frame_sax"):
        if len(mv) >= 2 and f in set(frames.tolist()):
            own[int(f)] = base_plane(to_local(_xyz(mv)))
    if not own:
        return {int(f): fallback for f in frames}
    have = np.array(sorted(own))
    return {int(f): own[int(have[np.argmin(np.abs(have - f))])] for f in frames}


def fit_cycle(cgp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane], ed: ExamFit,
              settings: FitSettings | None = None, iterations: int = WARM_ITERATIONS,
              keep_surfaces: bool = False) -> CycleFit:
    """Model and slice-summation volumes (and surfaces) at every frame of one exam and source.

    ``cgp``: its cycle guide points; ``ed``: its ED/ES fit (frame, shifts, fields).  Frames with
    fewer than 3 SAX slices with an endocardial contour are left out; without a usable ED fit only
    the slice-summation curve is computed (``qc_reason`` says why).  ``keep_surfaces``: also
    sample every frame's 29 x 29 endo/epi grid (the trajectory; ``surfaces``).
    """
    t0 = time.perf_counter()
    s = settings or FitSettings()
    out = CycleFit(ed.exam_id, ed.source)
    if cgp.empty:
        out.qc_reason = "no_cycle_guide_points"
        return out
    cgp, times = with_sax_frame(cgp)
    cgp = cgp[(cgp["kind"] != "contour") | cgp["surface"].isin(SURFACES)]  # LV contours only (no RV)
    frames = usable_frames(cgp)
    out.frames, out.time_ms = frames, np.array([float(times[f]) for f in frames])
    spacing = sax_spacing_mm(planes)
    cont = dict(tuple(cgp[(cgp["kind"] == "contour") & (cgp["view"] == "sax")].groupby("frame_sax")))
    out.volumes["slices"] = np.array([slice_volumes_ml(cont[f], planes, spacing)[0] for f in frames])
    if ed.status == "failed" or ed.result is None or ed.frame is None:
        out.qc_reason = "no_model_fit"
        out.seconds = time.perf_counter() - t0
        return out
    _fit_frames(cgp, frames, ed, s, iterations, out, keep_surfaces)
    out.seconds = time.perf_counter() - t0
    return out


def _anchor(cgp: pd.DataFrame, phase: str) -> int | None:
    f = cgp.loc[cgp["phase"] == phase, "frame_sax"]
    return int(f.iloc[0]) if len(f) else None


def _fit_frames(cgp: pd.DataFrame, frames: np.ndarray, ed: ExamFit, s: FitSettings, iterations: int,
                out: CycleFit, keep_surfaces: bool) -> None:
    frame = ed.frame
    shifts = {(v, int(k)): d for v, k, d in ed.shifts}
    cgp = corrected(cgp, shifts)
    base = _planes(cgp, frames, frame.to_local, ed.planes["ED"])
    anchors = {_anchor(cgp, "ED"): "ED", _anchor(cgp, "ES"): "ES"}
    anchors = {f: p for f, p in anchors.items() if f is not None and p in ed.planes}
    start = next((f for f, p in anchors.items() if p == "ED"), int(frames[0]))
    out.ed_frame = next((f for f, p in anchors.items() if p == "ED"), None)
    out.es_frame = next((f for f, p in anchors.items() if p == "ES"), None)
    params = ed.result.params
    x_of = {"ED": params[0:2], "ES": params[2:4]}
    by_frame = dict(tuple(cgp.groupby("frame_sax")))
    cav, myo = {}, {}
    tris = measures.triangles(FINE_MU, FINE_THETA)
    i0 = int(np.searchsorted(frames, start))
    for order in (frames[i0:], frames[:i0][::-1]):
        x = x_of["ED"]
        for f in order:
            f = int(f)
            plane = base[f]
            if f in anchors:  # the ED/ES fit itself: the curve passes through its measures
                ph = anchors[f]
                x = x_of[ph]
                cav[f] = ed.volumes["model"][f"{ph}_cavity_ml"]
                myo[f] = ed.volumes["model"].get(f"{ph}_myo_ml", np.nan)
                if keep_surfaces:
                    out.surfaces[f] = {surf: ed.surfaces[(ph, surf)] for surf in ("endo", "epi")
                                       if (ph, surf) in ed.surfaces}
                continue
            data = _frame_data(by_frame[f], frame.to_local, plane)
            x = fit_warm(data, frame.focal_mm, x, s, iterations).params
            fine = {surf: measures.sample_surface(s.mesh, frame.focal_mm, x[i], *plane, FINE_MU, FINE_THETA,
                                                  N_BISECT) for i, surf in enumerate(("endo", "epi"))}
            cav[f] = measures.enclosed_volume_ml(fine["endo"], tris, plane[0])
            myo[f] = measures.enclosed_volume_ml(fine["epi"], tris, plane[0]) - cav[f]
            if keep_surfaces:
                out.surfaces[f] = {surf: measures.sample_surface(s.mesh, frame.focal_mm, x[i], *plane,
                                                                 n_bisect=N_BISECT)
                                   for i, surf in enumerate(("endo", "epi"))}
    out.volumes["model"] = np.array([cav[int(f)] for f in frames])
    out.myo_ml = np.array([myo[int(f)] for f in frames])
