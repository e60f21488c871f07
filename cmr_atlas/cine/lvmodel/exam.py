"""Fit one exam (one source of guide points): landmarks -> frame -> fit -> surfaces and measures.

Failures are values: :func:`fit_exam` returns an :class:`ExamFit` with ``status='failed'`` and a
specific ``qc_reason`` instead of raising, so one bad exam never stops a shard.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cmr_atlas.cine.lvmodel import measures
from cmr_atlas.cine.lvmodel.fit import FitData, FitResult, FitSettings, ShiftStage, finish_fit, fit_shifts
from cmr_atlas.cine.lvmodel.frame import FrameError, ModelFrame, base_plane, build_frame
from cmr_atlas.core.geometry import SlicePlane, slice_spacing_mm
from cmr_atlas.core.vocab import PHASES, SURFACES

log = logging.getLogger(__name__)

MIN_SAX_SLICES = 3
APEX_WEIGHT = 2.0  # the apex landmark counts as two contour points on the epicardium
MV_WEIGHT = 2.0  # each mitral hinge point counts as two endocardial contour points
FINE_MU, FINE_THETA = 61, 96  # sampling used for volumes and wall thickness (finer than 29x29)
MIN_SHIFT_RADIUS_MM = 8.0  # SAX slices with only smaller contours get no shift of their own
BASE_MARGIN_MM = 2.0  # contour points closer than this to the mitral plane are not fitted
MAX_OUTLIER_FRACTION = 0.1  # more rejected contour points than this flags the fit for review
HIGH_RESIDUAL_MM = 3.0  # RMS data-to-surface distance that flags a fit for review (status stays ok)


@functools.lru_cache(maxsize=1)
def _blas_controller():
    """The process's BLAS/OpenMP thread pools, found once (threadpool_limits scans every loaded
    library on each call: ~3 ms, per exam fit and per cycle)."""
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def single_thread_blas():
    """Context manager holding BLAS to one thread: the systems are small (a few hundred unknowns)
    and threads only contend with the other jobs of a shard-parallel workflow."""
    return _blas_controller().limit(limits=1)


class ExamError(ValueError):
    """A per-exam problem with a QC reason (caught by :func:`fit_exam`)."""


@dataclass
class ExamFit:
    exam_id: str
    source: str
    status: str = "ok"
    qc_reason: str | None = None
    frame: ModelFrame | None = None
    planes: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)  # phase -> base
    surfaces: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)  # local (841, 3)
    shifts: list[tuple[str, int, np.ndarray]] = field(default_factory=list)  # view, slice, patient
    volumes: dict[str, dict[str, float]] = field(default_factory=dict)  # method -> measures
    thickness: dict[str, np.ndarray] = field(default_factory=dict)  # phase -> (17,)
    rms_residual_mm: float | None = None
    result: FitResult | None = None
    seconds: float = 0.0


def _landmarks(gp: pd.DataFrame, names: tuple[str, ...] | str, phase: str | None) -> pd.DataFrame:
    """Landmark rows named ``names`` (a prefix if a string), of ``phase`` if it has any.  The
    selection on the columns' arrays, one row take: pandas selections cost ~2 ms a call, and a fit
    makes six (the same rows as ``gp[gp.kind == 'landmark']`` then the name and phase masks)."""
    rows = np.flatnonzero(gp["kind"].to_numpy() == "landmark")
    names_of = gp["landmark"].to_numpy()[rows]
    if isinstance(names, str):  # as astype(str).str.startswith: a missing name matches no prefix
        sel = np.array([isinstance(n, str) and n.startswith(names) for n in names_of], dtype=bool)
    else:
        sel = np.array([n in names for n in names_of], dtype=bool)
    rows = rows[sel]
    if phase is not None:
        of_phase = gp["phase"].to_numpy()[rows] == phase
        rows = rows[of_phase] if of_phase.any() else rows
    return gp.iloc[rows]


def _weights(df: pd.DataFrame) -> np.ndarray:
    """Guide-point weights (confidence for automated landmarks); missing = 1."""
    if "weight" not in df:
        return np.ones(len(df))
    w = df["weight"].to_numpy(dtype=float)
    return np.where(np.isfinite(w) & (w >= 0), w, 1.0)


def _xyz(df: pd.DataFrame) -> np.ndarray:
    # column by column: a list selection re-indexes the frame, ~10x slower (called ~100x per fit)
    return np.stack([df["x_mm"].to_numpy(dtype=float), df["y_mm"].to_numpy(dtype=float),
                     df["z_mm"].to_numpy(dtype=float)], axis=1)


def _septum_direction(gp: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Mean direction from the LV centre to the RV insertion midpoint over SAX slices, and the
    mean posterior-to-anterior insertion vector (for the anterior side)."""
    lm = gp[(gp["kind"] == "landmark") & (gp["view"] == "sax")]
    ed = lm[lm["phase"] == "ED"] if (lm["phase"] == "ED").any() else lm
    cont = gp[(gp["kind"] == "contour") & (gp["view"] == "sax") & (gp["phase"] == "ED") & (gp["surface"] == "endo")]
    name, xyz = ed["landmark"].to_numpy(), _xyz(ed)
    cont_slice, cont_xyz = cont["slice_index"].to_numpy(), _xyz(cont)
    dirs, ant_post = [], []
    for s, idx in sorted(ed.groupby("slice_index").indices.items()):
        first = {}  # each landmark's first row on the slice
        for i in idx:
            first.setdefault(name[i], xyz[i])
        if "rv_insert_anterior" not in first or "rv_insert_posterior" not in first:
            continue
        ant, post = first["rv_insert_anterior"], first["rv_insert_posterior"]
        mid = (ant + post) / 2
        if "lv_centre" in first:
            c = first["lv_centre"]
        else:
            pts = cont_xyz[cont_slice == s]
            if not len(pts):
                continue
            c = pts.mean(axis=0)
        v = mid - c
        if np.linalg.norm(v) > 1e-6:
            dirs.append(v / np.linalg.norm(v))
            ant_post.append(ant - post)
    if not dirs:
        raise ExamError("missing_landmarks: rv_insert")
    return np.mean(dirs, axis=0), np.mean(ant_post, axis=0)


def _frame(gp: pd.DataFrame) -> tuple[ModelFrame, float, str | None]:
    mv = _landmarks(gp, "mv_", "ED")
    if len(mv) < 2:
        raise ExamError("missing_landmarks: mv")
    mv_pts = _xyz(mv)
    apex = _landmarks(gp, ("apex",), "ED")
    if len(apex):
        apex_pt = _xyz(apex).mean(axis=0)
    else:  # the apex from the contours: the LAX epicardial point furthest from the base
        lax_epi = gp[(gp["kind"] == "contour") & (gp["view"] != "sax") & (gp["surface"] == "epi")
                     & (gp["phase"] == "ED")]
        if lax_epi.empty:
            raise ExamError("missing_landmarks: apex")
        pts = _xyz(lax_epi)
        apex_pt = pts[np.argmax(np.linalg.norm(pts - mv_pts.mean(axis=0), axis=1))]
    try:
        septum, ant_post = _septum_direction(gp)
        note = None
    except ExamError:
        # No RV insertion points: the 4CH hinge points span septum-lateral and the 2CH ones
        # anterior-inferior, which orients the model nearly as well.
        sep, lat = _landmarks(gp, ("mv_septal",), "ED"), _landmarks(gp, ("mv_lateral",), "ED")
        ant, inf = _landmarks(gp, ("mv_anterior",), "ED"), _landmarks(gp, ("mv_inferior",), "ED")
        if sep.empty or lat.empty or ant.empty or inf.empty:
            raise
        septum = _xyz(sep).mean(axis=0) - _xyz(lat).mean(axis=0)
        ant_post = _xyz(ant).mean(axis=0) - _xyz(inf).mean(axis=0)
        note = "septum_from_mv"
    axis = apex_pt - mv_pts.mean(axis=0)
    axis = axis / max(np.linalg.norm(axis), 1e-9)
    epi = gp[(gp["kind"] == "contour") & (gp["view"] == "sax") & (gp["surface"] == "epi")
             & (gp["phase"] == "ED")]
    src = epi if len(epi) else gp[(gp["kind"] == "contour") & (gp["view"] == "sax")]
    rel = _xyz(src) - mv_pts.mean(axis=0)
    radius = float(np.median(np.linalg.norm(rel - np.outer(rel @ axis, axis), axis=1)))
    if len(epi) == 0:
        radius += 10.0  # endocardium only: add a typical wall
    try:
        frame = build_frame(mv_pts, apex_pt, septum, radius)
    except FrameError as exc:
        raise ExamError(f"bad_landmarks: {exc}") from exc
    anterior_sign = 1.0 if frame.vec_to_local(ant_post)[1] >= 0 else -1.0
    return frame, anterior_sign, note


def _below_base(cont: pd.DataFrame, gp: pd.DataFrame, frame: ModelFrame) -> np.ndarray:
    """Mask of contour points to fit: SAX points must lie BASE_MARGIN_MM below the mitral plane.

    A SAX slice at the level of the mitral plane cuts the cavity's flat top: its contour runs
    partly across the valve opening (a chord on the base plane, not a wall).  Points within the
    margin of the plane, or on the atrial side, are left out of the fit; the model is extrapolated
    over that band.
    """
    keep = np.ones(len(cont), dtype=bool)
    for phase in PHASES:
        # LAX contours end at the hinge points by definition: only SAX contours are trimmed
        m = ((cont["phase"] == phase) & (cont["view"] == "sax")).to_numpy()
        mv = _landmarks(gp, "mv_", phase)
        if not m.any() or mv.empty:
            continue
        point, normal = base_plane(frame.to_local(_xyz(mv)))
        depth = (frame.to_local(_xyz(cont[m])) - point) @ normal
        keep[m] = depth > BASE_MARGIN_MM
    return keep


def _small_contour_slices(cont: pd.DataFrame) -> set[tuple[str, int]]:
    """SAX slices whose largest contour has a mean radius below MIN_SHIFT_RADIUS_MM."""
    sax = cont[cont["view"] == "sax"]
    if sax.empty:
        return set()
    xyz_all = _xyz(sax)
    radius: dict[int, float] = {}
    for (s, _, _), idx in sax.groupby(["slice_index", "phase", "surface"]).indices.items():
        xyz = xyz_all[idx]
        r = float(np.linalg.norm(xyz - xyz.mean(axis=0), axis=1).mean())
        radius[int(s)] = max(radius.get(int(s), 0.0), r)
    return {("sax", s) for s, r in radius.items() if r < MIN_SHIFT_RADIUS_MM}


def build_fit_data(gp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane],
                   frame: ModelFrame, shift_reference: str, through_plane: bool = False,
                   ) -> tuple[FitData, list[tuple[str, int]]]:
    """Data points in local coordinates, and the (view, slice_index) of each shift unknown.

    ``shift_reference='sax_mean'``: every slice with contours and a plane gets an in-plane shift;
    the SAX shifts sum to zero (the gauge).  ``'lax'``: only SAX slices are shifted; the LAX views
    are the fixed reference.  ``through_plane``: each shift also has a component along its
    plane's normal (shift_basis (K, 3, 3)).
    """
    if shift_reference not in ("sax_mean", "lax"):
        raise ValueError(f"unknown shift reference {shift_reference!r}")
    cont = gp[(gp["kind"] == "contour") & gp["phase"].isin(PHASES) & gp["surface"].isin(SURFACES)]
    cont = cont[_below_base(cont, gp, frame)]
    apex = gp[(gp["kind"] == "landmark") & (gp["landmark"] == "apex") & gp["phase"].isin(PHASES)]
    # mitral hinge points lie on the endocardial base ring: endocardial guide points
    mv = gp[(gp["kind"] == "landmark") & gp["landmark"].astype(str).str.startswith("mv_")
            & gp["phase"].isin(PHASES)] if MV_WEIGHT > 0 else gp.iloc[:0]
    lms = pd.concat([apex, mv])
    phase_map = {p: i for i, p in enumerate(PHASES)}
    phase_i = np.concatenate([cont["phase"].map(phase_map).to_numpy(),
                              lms["phase"].map(phase_map).to_numpy()])
    surf_i = np.concatenate([cont["surface"].map({s: i for i, s in enumerate(SURFACES)}).to_numpy(),
                             np.ones(len(apex), dtype=int),  # the apex landmark is epicardial
                             np.zeros(len(mv), dtype=int)])
    both = pd.concat([cont[["view", "slice_index"]], lms[["view", "slice_index"]]], ignore_index=True)
    pts = frame.to_local(np.concatenate([_xyz(cont), _xyz(lms)]))
    w = np.concatenate([_weights(cont), APEX_WEIGHT * _weights(apex), MV_WEIGHT * _weights(mv)])
    views = both["view"].astype(str).to_numpy()
    sl = both["slice_index"].fillna(0).astype(int).to_numpy()
    # Slices with contours get a shift; a LAX view with landmarks only (the automated path has
    # no LAX contours) stays fixed, else its shift would simply absorb its apex landmark.
    # (lists, not Series: iterating a Series boxes every element, ~2 ms a fit)
    with_contours = set(zip(cont["view"].astype(str).tolist(), cont["slice_index"].fillna(0).astype(int).tolist()))
    # A SAX slice whose contours are all tiny (a tangential cut of the apical cap) has no
    # identifiable in-plane position: it keeps zero shift rather than sliding over the dome.
    small = _small_contour_slices(cont)
    keys = sorted({k for k in with_contours if k in planes and k not in small
                   and (k[0] == "sax" or shift_reference == "sax_mean")},
                  key=lambda k: (k[0] != "sax", k[0], k[1]))
    kmap = {k: i for i, k in enumerate(keys)}
    slice_id = np.array([kmap.get(k, -1) for k in zip(views.tolist(), sl.tolist())], dtype=int)
    vecs = ("row_cosine", "col_cosine", "normal") if through_plane else ("row_cosine", "col_cosine")
    basis = np.array([[frame.vec_to_local(getattr(planes[k], v)) for v in vecs]
                      for k in keys]).reshape(-1, len(vecs), 3)
    zero_mean = np.array([k[0] == "sax" for k in keys], dtype=bool)
    data = FitData(pts, (phase_i * 2 + surf_i).astype(int), w, slice_id, basis, n_fields=4,
                   zero_mean=zero_mean if shift_reference == "sax_mean" else None)
    return data, keys


def slice_summation(gp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane]) -> dict[str, float]:
    """Volumes and mass by the slice-summation (disc) method on the SAX contours."""
    cont = gp[(gp["kind"] == "contour") & (gp["view"] == "sax")]
    spacing = sax_spacing_mm(planes)
    out: dict[str, float] = {}
    for phase in PHASES:
        cav, myo = slice_volumes_ml(cont[cont["phase"] == phase], planes, spacing)
        out[f"{phase}_cavity_ml"], out[f"{phase}_myo_ml"] = cav, myo
    return out


def sax_spacing_mm(planes: dict[tuple[str, int], SlicePlane]) -> float:
    """Slice spacing of the SAX stack (thickness + gap; one slice: its thickness; none: NaN)."""
    sax = [planes[("sax", s)] for s in sorted(s for v, s in planes if v == "sax")]
    spacing = slice_spacing_mm(sax)
    if spacing is None:
        spacing = sax[0].thickness_mm if sax else float("nan")
    return spacing


def slice_volumes_ml(cont: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane],
                     spacing: float) -> tuple[float, float]:
    """(cavity, myocardium) volumes of one frame's SAX contours by slice summation (NaN if none).
    Only LV contours count (an RV contour, as in clinical annotations, is not the LV's)."""
    cont = cont[cont["surface"].isin(SURFACES)]
    return slice_volumes_arrays(cont["slice_index"].to_numpy(dtype=int), (cont["surface"] == "epi").to_numpy(),
                                cont["point_index"].to_numpy(), _xyz(cont), planes, spacing)


def _median(a: np.ndarray) -> np.ndarray:
    """``np.median(a, axis=0)`` (same values) without its overhead: called twice per contour."""
    a = np.sort(a, axis=0)
    n = len(a)
    return a[n // 2] if n % 2 else (a[n // 2 - 1] + a[n // 2]) / 2


def slice_volumes_arrays(sl: np.ndarray, epi: np.ndarray, point_index: np.ndarray, xyz: np.ndarray,
                         planes: dict[tuple[str, int], SlicePlane], spacing: float) -> tuple[float, float]:
    """:func:`slice_volumes_ml` on plain arrays (one row per LV contour point: slice index, epicardial
    flag, point index, patient mm): the per-frame volume curves call it ~30 times an exam."""
    order = np.lexsort((point_index, epi, sl))
    sl, epi, xyz = sl[order], epi[order], xyz[order]
    key = sl * 2 + epi
    starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if len(key) else np.zeros(0, dtype=int)
    areas = {}
    for a, b in zip(starts, np.r_[starts[1:], len(key)]):
        plane = planes.get(("sax", int(sl[a])))
        if plane is None or b - a < 3:
            continue
        xy = plane.in_plane_mm(xyz[a:b])
        # a stray point (far beyond the contour's typical radius) would distort the polygon
        rad = np.linalg.norm(xy - _median(xy), axis=1)
        xy = xy[rad <= 2.5 * _median(rad) + 1.0]
        if len(xy) >= 3:
            areas[(int(sl[a]), "epi" if epi[a] else "endo")] = measures.polygon_area_mm2(xy)
    endo = [a for (s, su), a in areas.items() if su == "endo"]
    cav = sum(endo) * spacing / 1000.0 if endo else float("nan")
    myo = [areas[(s, "epi")] - areas[(s, "endo")] for (s, su) in areas if su == "epi" and (s, "endo") in areas]
    return cav, (sum(myo) * spacing / 1000.0 if myo else float("nan"))


def fit_exam(gp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane], exam_id: str,
             source: str, *, breath_hold: bool, shift_reference: str,
             settings: FitSettings | None = None,
             fixed_shifts: dict[tuple[str, int], np.ndarray] | None = None) -> ExamFit:
    """Fit the model to one exam's guide points; never raises for bad data (status 'failed').
    ``breath_hold`` and ``shift_reference``: the config's ``fit`` block.  ``fixed_shifts``:
    known breath-hold shifts (patient mm) of slices the fit does not estimate (a LAX view with
    landmarks only, registered on the images: :mod:`cmr_atlas.cine.lvmodel.lax_shifts`); their
    guide points are corrected by them and they are listed in ``shifts``."""
    return fit_exam_staged(gp, planes, exam_id, source, breath_hold=breath_hold, shift_reference=shift_reference,
                           settings=settings, fixed_shifts=fixed_shifts).finish()


@dataclass
class StagedFit:
    """A :func:`fit_exam` in stages: ``fit`` has the breath-hold stage (frame and shifts; status
    'failed' if that failed) but no fields, surfaces, measures or QC verdict yet.  The LAX
    registration needs only the shifts of a fit its refit usually replaces, so the rest of that
    fit is computed only when it is kept."""

    fit: ExamFit
    gp: pd.DataFrame  # the guide points fitted (shift-corrected)
    planes: dict[tuple[str, int], SlicePlane]
    shifts: _Shifts | None  # None: the breath-hold stage failed
    t0: float
    finished: bool = False

    def finish(self) -> ExamFit:
        """``fit`` completed in place, as :func:`fit_exam` returns it (again: the same fit)."""
        out = self.fit
        if self.finished:
            return out
        self.finished = True
        with single_thread_blas():
            pending = self.shifts
            model = _guarded(out, lambda: _complete(pending, out)) if pending is not None else None
            if model is not None:
                _guarded(out, lambda: _measure(self.gp, out, model))
            _add_slice_summation(out, self.gp, self.planes)
        out.seconds = time.perf_counter() - self.t0
        return out


def fit_exam_staged(gp: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane], exam_id: str,
                    source: str, *, breath_hold: bool, shift_reference: str,
                    settings: FitSettings | None = None,
                    fixed_shifts: dict[tuple[str, int], np.ndarray] | None = None) -> StagedFit:
    """:func:`fit_exam`'s breath-hold stage, the rest left to :meth:`StagedFit.finish`."""
    t0 = time.perf_counter()
    out = ExamFit(exam_id, source)
    gp = shift_corrected(gp, fixed_shifts) if fixed_shifts else gp
    with single_thread_blas():
        pending = _guarded(out, lambda: _fit_shifts(gp, planes, out, breath_hold, settings or FitSettings(),
                                                    shift_reference))
        if fixed_shifts and out.frame is not None:
            have = {(v, k) for v, k, _ in out.shifts}
            out.shifts += [(v, int(k), np.asarray(d, dtype=float)) for (v, k), d in sorted(fixed_shifts.items())
                           if (v, int(k)) not in have]
    return StagedFit(out, gp, planes, pending, t0)


def shift_corrected(gp: pd.DataFrame, shifts: dict[tuple[str, int], np.ndarray]) -> pd.DataFrame:
    """Guide points minus their slice's breath-hold shift (patient coordinates; slices without
    an entry in ``shifts`` unchanged)."""
    d = np.zeros((len(gp), 3))
    keys = pd.DataFrame({"v": gp["view"].astype(str).to_numpy(), "s": gp["slice_index"].fillna(0).astype(int).to_numpy()})
    for (v, k), idx in keys.groupby(["v", "s"]).indices.items():
        d[idx] = shifts.get((v, int(k)), np.zeros(3))
    out = gp.copy()
    out[["x_mm", "y_mm", "z_mm"]] = _xyz(gp) - d
    return out


def _guarded(out: ExamFit, step):
    """``step()``'s value, or None with ``out`` failed (a QC reason) if it raises a data problem."""
    try:
        return step()
    except ExamError as exc:
        out.status, out.qc_reason = "failed", str(exc)
    except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
        log.warning("exam %s/%s: fit failed: %s", out.exam_id, out.source, exc)
        out.status, out.qc_reason = "failed", f"fit_error: {type(exc).__name__}"
    return None


def _add_slice_summation(out: ExamFit, gp: pd.DataFrame, planes) -> None:
    try:  # the slice method needs no model: report it even when the fit failed
        out.volumes["slices"] = slice_summation(gp, planes)
    except (ValueError, KeyError) as exc:
        log.warning("exam %s/%s: slice summation failed: %s", out.exam_id, out.source, exc)


@dataclass
class _Shifts:
    """A model fit after its breath-hold stage."""

    frame: ModelFrame
    data: FitData
    stage: ShiftStage
    shift_of: dict[tuple[str, int], np.ndarray]  # patient mm
    anterior_sign: float
    note: str | None
    settings: FitSettings


@dataclass
class _Model:
    """What the measures of a model fit need of it: its breath-hold stage and final result."""

    base: _Shifts
    res: FitResult


def _fit_shifts(gp, planes, out: ExamFit, breath_hold: bool, settings: FitSettings,
                shift_reference: str) -> _Shifts:
    """The model frame and the breath-hold stage; sets ``out``'s frame and shifts."""
    cont = gp[gp["kind"] == "contour"]
    ed_sax = cont[(cont["phase"] == "ED") & (cont["view"] == "sax") & (cont["surface"] == "endo")]
    if ed_sax["slice_index"].nunique() < MIN_SAX_SLICES:
        raise ExamError("too_few_sax_contours")
    frame, anterior_sign, note = _frame(gp)
    out.frame = frame
    data, keys = build_fit_data(gp, planes, frame, shift_reference, settings.through_plane)
    stage = fit_shifts(data, frame.focal_mm, settings, breath_hold=breath_hold)
    # Shifts in patient coordinates for every slice with data; with the LAX reference the LAX
    # views are listed with zero.  Slices without contours have no estimate and no row.
    vecs = ("row_cosine", "col_cosine", "normal")
    shift_of = {k: sum(stage.shifts[i, j] * getattr(planes[k], vecs[j]) for j in range(stage.shifts.shape[1]))
                for i, k in enumerate(keys)}
    if shift_reference == "lax":
        lax_views = {(v, int(s)) for v, s in zip(gp["view"], gp["slice_index"].fillna(0))
                     if v != "sax" and (v, int(s)) in planes}
        shift_of.update({k: np.zeros(3) for k in lax_views})
    for k in sorted(shift_of, key=lambda k: (k[0] != "sax", k[0], k[1])):
        out.shifts.append((k[0], k[1], shift_of[k]))
    return _Shifts(frame, data, stage, shift_of, anterior_sign, note, settings)


def _complete(p: _Shifts, out: ExamFit) -> _Model:
    """The final stage of a model fit (the shifts held); sets ``out``'s result and residual."""
    res = finish_fit(p.stage)
    out.result = res
    # RMS over the points the final fit kept (Tukey weight > 0); rejected points are counted
    inlier = res.robust_weight > 0
    out.rms_residual_mm = float(np.sqrt(np.mean(res.residual[inlier] ** 2))) if inlier.any() else None
    return _Model(p, res)


def _measure(gp, out: ExamFit, m: _Model, thickness: bool = True) -> None:
    """Surfaces, model volumes, wall thickness (unless not ``thickness``) and QC verdict of a model fit."""
    frame, data, res, shift_of = m.base.frame, m.base.data, m.res, m.base.shift_of
    mesh = m.base.settings.mesh
    tris_fine = measures.triangles(FINE_MU, FINE_THETA)
    missing = []
    model: dict[str, float] = {}
    for pi, phase in enumerate(PHASES):
        have = [bool((data.field == pi * 2 + si).sum() >= 10) for si in range(2)]
        if not have[0]:
            missing.append(phase)
            continue
        mv = _landmarks(gp, "mv_", phase)
        # hinge points corrected by their view's breath-hold shift, like the contours
        mv_xyz = _xyz(mv) - np.array([shift_of.get((v, int(s)), np.zeros(3)) for v, s in
                                      zip(mv["view"], mv["slice_index"].fillna(0))]).reshape(-1, 3)
        point, normal = base_plane(frame.to_local(mv_xyz))
        out.planes[phase] = (point, normal)
        surfs = [surf for si, surf in enumerate(SURFACES) if have[si]]
        xs = np.array([res.params[pi * 2 + si] for si in range(len(SURFACES)) if have[si]])
        # endo and epi, the 29 x 29 shape and the fine sampling of the volumes, at once
        grid, fine = measures.sample_surface_grids(mesh, frame.focal_mm, xs, point, normal,
                                                   ((measures.N_GRID, measures.N_GRID), (FINE_MU, FINE_THETA)))
        out.surfaces.update({(phase, surf): g for surf, g in zip(surfs, grid)})
        fine = dict(zip(surfs, fine))
        model[f"{phase}_cavity_ml"] = measures.enclosed_volume_ml(fine["endo"], tris_fine, point)
        if "epi" in fine:
            v_epi = measures.enclosed_volume_ml(fine["epi"], tris_fine, point)
            model[f"{phase}_myo_ml"] = v_epi - model[f"{phase}_cavity_ml"]
            if thickness:
                out.thickness[phase] = measures.wall_thickness(fine["endo"], fine["epi"], point,
                                                               normal, m.base.anterior_sign)
    out.volumes["model"] = model
    if "ED" in missing:
        raise ExamError("missing_phase: ED")
    if any(v <= 0 for k, v in model.items()):
        raise ExamError("implausible_fit: non-positive volume")
    inlier = res.robust_weight > 0
    outlier_frac = 1.0 - float(inlier.mean())
    warnings = [w for w in (
        m.base.note, None if res.converged else "not_converged",
        "high_residual" if (out.rms_residual_mm or 0.0) > HIGH_RESIDUAL_MM else None,
        f"outliers: {100 * outlier_frac:.0f}% of points" if outlier_frac > MAX_OUTLIER_FRACTION else None,
    ) if w]
    if missing:
        out.status = "partial"
        warnings.insert(0, "missing_phase: " + ",".join(missing))
    out.qc_reason = "; ".join(warnings) or None
