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
                                         MV_WEIGHT, ExamFit, _weights, _xyz, sax_spacing_mm, shift_corrected,
                                         slice_volumes_arrays)
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


@dataclass
class _Points:
    """An exam's shift-corrected cycle guide points as arrays (rows in guide-point order)."""

    local: np.ndarray  # (N, 3) local mm
    frame: np.ndarray  # (N,) SAX frame each row stands for
    contour: np.ndarray  # (N,) bool
    sax: np.ndarray
    epi: np.ndarray
    mv: np.ndarray  # mitral hinge landmark
    apex: np.ndarray
    weight: np.ndarray

    @classmethod
    def of(cls, gp: pd.DataFrame, frame_local) -> "_Points":
        lm = gp["landmark"].astype(str)
        return cls(frame_local(_xyz(gp)), gp["frame_sax"].to_numpy(dtype=int),
                   (gp["kind"] == "contour").to_numpy(), (gp["view"] == "sax").to_numpy(),
                   (gp["surface"] == "epi").to_numpy(), ((gp["kind"] == "landmark") & lm.str.startswith("mv_")).to_numpy(),
                   ((gp["kind"] == "landmark") & (lm == "apex")).to_numpy(), _weights(gp))

    def frame_data(self, rows: np.ndarray, plane: tuple[np.ndarray, np.ndarray]) -> FitData:
        """Fit data of one frame's ``rows``: SAX contour points below the base margin and LAX
        contours, the hinge points (endocardial) and apex (epicardial)."""
        c = rows[self.contour[rows]]
        sax = self.sax[c]
        keep = ~sax
        keep[sax] = (self.local[c[sax]] - plane[0]) @ plane[1] > BASE_MARGIN_MM
        c = c[keep]
        mv, apex = rows[self.mv[rows]], rows[self.apex[rows]]
        idx = np.concatenate([c, mv, apex])
        fld = np.concatenate([self.epi[c].astype(int), np.zeros(len(mv), dtype=int), np.ones(len(apex), dtype=int)])
        w = self.weight[idx] * np.concatenate([np.ones(len(c)), np.full(len(mv), MV_WEIGHT),
                                               np.full(len(apex), APEX_WEIGHT)])
        n = len(idx)
        return FitData(self.local[idx], fld, w, np.full(n, -1), np.zeros((0, 2, 3)), n_fields=2)


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
    out.volumes["slices"] = _slice_curve(cgp, frames, planes)
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


def _slice_curve(cgp: pd.DataFrame, frames: np.ndarray, planes: dict[tuple[str, int], SlicePlane]) -> np.ndarray:
    """Slice-summation cavity volume of each frame (its SAX LV contours, not shift-corrected)."""
    cont = cgp[(cgp["kind"] == "contour") & (cgp["view"] == "sax")]
    fr = cont["frame_sax"].to_numpy(dtype=int)
    sl, epi = cont["slice_index"].to_numpy(dtype=int), (cont["surface"] == "epi").to_numpy()
    pi, xyz = cont["point_index"].to_numpy(), _xyz(cont)
    spacing = sax_spacing_mm(planes)
    out = []
    for f in frames:
        m = fr == f
        out.append(slice_volumes_arrays(sl[m], epi[m], pi[m], xyz[m], planes, spacing)[0])
    return np.array(out)


def _fit_frames(cgp: pd.DataFrame, frames: np.ndarray, ed: ExamFit, s: FitSettings, iterations: int,
                out: CycleFit, keep_surfaces: bool) -> None:
    frame = ed.frame
    shifts = {(v, int(k)): d for v, k, d in ed.shifts}
    cgp = shift_corrected(cgp, shifts)
    base = _planes(cgp, frames, frame.to_local, ed.planes["ED"])
    anchors = {_anchor(cgp, "ED"): "ED", _anchor(cgp, "ES"): "ES"}
    anchors = {f: p for f, p in anchors.items() if f is not None and p in ed.planes}
    start = next((f for f, p in anchors.items() if p == "ED"), int(frames[0]))
    out.ed_frame = next((f for f, p in anchors.items() if p == "ED"), None)
    out.es_frame = next((f for f, p in anchors.items() if p == "ES"), None)
    params = ed.result.params
    x_of = {"ED": params[0:2], "ES": params[2:4]}
    pts = _Points.of(cgp, frame.to_local)
    by_frame = {int(f): np.flatnonzero(pts.frame == f) for f in frames}
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
            data = pts.frame_data(by_frame[f], plane)
            x = fit_warm(data, frame.focal_mm, x, s, iterations, final_residuals=False).params
            grids = ((FINE_MU, FINE_THETA), (measures.N_GRID, measures.N_GRID))[:2 if keep_surfaces else 1]
            sampled = measures.sample_surface_grids(s.mesh, frame.focal_mm, x, *plane, grids, N_BISECT)
            endo, epi = sampled[0]
            cav[f] = measures.enclosed_volume_ml(endo, tris, plane[0])
            myo[f] = measures.enclosed_volume_ml(epi, tris, plane[0]) - cav[f]
            if keep_surfaces:
                out.surfaces[f] = dict(zip(("endo", "epi"), sampled[1]))
    out.volumes["model"] = np.array([cav[int(f)] for f in frames])
    out.myo_ml = np.array([myo[int(f)] for f in frames])
