"""Native T1, post-contrast T1 and ECV per AHA segment of every T1-map slice (table ``t1_segments``).

Per slice of an exam's native map: the ROIs of :mod:`cmr_atlas.cine.tissue.roi` from the slice's
landmarks (the native map's, else the post map's: both maps share the breath-hold position, so one
ROI serves both, as a core lab copies its ROIs between them), the mean T1 of each segment's ROI
pixels in both maps, the blood pool's, and

    ECV = (1 - hematocrit) x (1/T1myo,post - 1/T1myo,native) / (1/T1blood,post - 1/T1blood,native)

(Messroghli et al., J Cardiovasc Magn Reson 2017).  The hematocrit is the config default
(``tissue.hematocrit``, ``hematocrit_source = default``) in the per-shard table; the cohort table
takes each exam's measured one from the covariates where they have it
(:func:`apply_hematocrit`, ``hematocrit_source = covariates``).

Rows without values carry a ``qc_reason``: per exam ``no_t1_map``, ``no_native_map`` and (from
the stage) ``no_series_cache``, ``no_landmark_network``; per slice ``no_landmarks`` (the LV centre
or an RV insertion not found on either map), ``geometry_mismatch`` (no post-map slice on the native
slice's plane and pixel grid), ``implausible_landmarks``, ``no_blood_myocardium_contrast``; per
segment ``no_post_map`` (native T1 only, no ECV).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.cine.tissue.landmarks import points_rc
from cmr_atlas.cine.tissue.roi import RoiError, SliceRoi, slice_levels, slice_roi, slice_roi_without_insertions
from cmr_atlas.core.aha import SEGMENT_NAMES
from cmr_atlas.core.columns import EXAM_ID, SLICE_INDEX
from cmr_atlas.core.geometry import planes_match
from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.core.tables import Column, TableSchema, register


T1_SEGMENTS = register(TableSchema(
    name="t1_segments", row="exam, T1-map slice and AHA segment",
    description=(
        "Myocardial native and post-contrast T1 and extracellular volume per AHA segment of every SAX "
        "T1-map slice (mid-wall ROI from the map's landmarks, cmr_atlas.cine.tissue.roi). A row without "
        "values has a qc_reason (no_t1_map, no_native_map, no_post_map, no_landmarks, geometry_mismatch, ...)."
    ),
    columns=(
        EXAM_ID,
        Column("native_series_index", "int", "series_index of the native T1 map (null: none)"),
        Column("post_series_index", "int", "series_index of the post-contrast T1 map (null: none)"),
        Column("slice_index", "int", SLICE_INDEX.description.split(",")[0] + " of the native map (its plane order)"),
        Column("level", "str", "AHA level of the slice: basal, mid or apical (roi.slice_levels)"),
        Column("segment", "int", "AHA 16-segment number (cmr_atlas.core.aha)"),
        Column("segment_name", "str", "AHA segment name"),
        Column("native_t1_ms", "float", "mean native T1 of the segment's mid-wall ROI", "ms"),
        Column("post_t1_ms", "float", "mean post-contrast T1 of the same ROI", "ms"),
        Column("blood_native_t1_ms", "float", "mean native T1 of the LV blood pool ROI of the slice", "ms"),
        Column("blood_post_t1_ms", "float", "mean post-contrast T1 of the LV blood pool ROI", "ms"),
        Column("hematocrit", "float", "hematocrit used for the ECV (fraction)"),
        Column("hematocrit_source", "str", "covariates (measured) or default (config tissue.hematocrit)"),
        Column("ecv", "float", "extracellular volume fraction (0-1)"),
        Column("n_pixels", "int", "ROI pixels of the segment"),
        Column("qc_reason", "str", "why values are missing (null: ok)"),
    ),
))


def ecv(native_myo_ms, post_myo_ms, native_blood_ms, post_blood_ms, hematocrit) -> np.ndarray:
    """Extracellular volume fraction from myocardial and blood T1 before and after contrast."""
    d_myo = 1.0 / np.asarray(post_myo_ms, float) - 1.0 / np.asarray(native_myo_ms, float)
    d_blood = 1.0 / np.asarray(post_blood_ms, float) - 1.0 / np.asarray(native_blood_ms, float)
    return (1.0 - np.asarray(hematocrit, float)) * d_myo / d_blood


def _post_slice(native: SeriesImages, post: SeriesImages | None, p: int) -> int | None | str:
    """The post map's plane of native plane ``p``: index, None (no post map) or ``geometry_mismatch``."""
    if post is None:
        return None
    for q, plane in enumerate(post.planes):
        if planes_match(native.planes[p], plane):
            return q
    return "geometry_mismatch"


def _mean(img: np.ndarray, mask: np.ndarray) -> float:
    v = np.asarray(img, float)[mask]
    v = v[np.isfinite(v)]
    return float(v.mean()) if len(v) else np.nan


INSERTIONS = ("rv_insert_anterior", "rv_insert_posterior")


def _slice_points(lm_of: dict, native: SeriesImages, post: SeriesImages | None, p: int, q) -> dict[str, np.ndarray]:
    """Landmarks of native slice ``p``: the native map's when it has all three, else the post map's
    slice ``q`` when that has more (same plane and grid: pixels carry over)."""
    pts = points_rc(lm_of[native.series_index], p)
    if len(pts) < 3 and isinstance(q, int) and len(other := points_rc(lm_of[post.series_index], q)) > len(pts):
        return other
    return pts


def _borrowed_insertions(native: SeriesImages, p: int, centre_rc: np.ndarray, rois: dict, pts_of: dict):
    """Insertion points for slice ``p`` (LV centre only) carried from the nearest slice with an ROI
    from its own insertions (``rois``: never a slice that borrowed them) along the same patient
    directions, and that slice's myocardial T1; None without one."""
    if not rois:
        return None
    plane = native.planes[p]
    near = min(rois, key=lambda k: abs(float((native.planes[k].centre_mm - plane.centre_mm) @ plane.normal)))
    src = native.planes[near]
    c_mm = plane.pixel_to_patient(centre_rc)
    c_src = src.pixel_to_patient(pts_of[near]["lv_centre"])
    out = [plane.patient_to_pixel(c_mm + src.pixel_to_patient(pts_of[near][k]) - c_src)[0] for k in INSERTIONS]
    return out, _mean(native.pixels[near, 0], rois[near][1].myo)


def _rois(native: SeriesImages, post: SeriesImages | None, lm_of: dict) -> tuple[dict, dict]:
    """``({slice: (post slice, SliceRoi)}, {slice: qc_reason})`` of a native map: slices with all
    three landmarks first, then slices with the LV centre only (apical) from their neighbours."""
    rois, reasons, pts_of = {}, {}, {}
    for p in range(native.n_planes):
        q = _post_slice(native, post, p)
        pts_of[p] = pts = _slice_points(lm_of, native, post, p, q)
        sp = tuple(native.planes[p].pixel_spacing_mm)
        try:
            if isinstance(q, str):
                raise RoiError(q)
            if "lv_centre" not in pts:
                raise RoiError("no_landmarks")
            if all(k in pts for k in INSERTIONS):
                rois[p] = (q, slice_roi(native.pixels[p, 0], sp, pts["lv_centre"], *(pts[k] for k in INSERTIONS)))
        except RoiError as exc:
            reasons[p] = str(exc)
    direct = dict(rois)  # the sources: a borrowed ROI has no insertion points of its own to lend
    for p in sorted(set(range(native.n_planes)) - set(rois) - set(reasons)):
        borrowed = _borrowed_insertions(native, p, pts_of[p]["lv_centre"], direct, pts_of)
        if borrowed is None:
            reasons[p] = "no_landmarks"
            continue
        try:
            rois[p] = (_post_slice(native, post, p), slice_roi_without_insertions(
                native.pixels[p, 0], tuple(native.planes[p].pixel_spacing_mm), pts_of[p]["lv_centre"], *borrowed[0],
                borrowed[1]))
        except RoiError as exc:
            reasons[p] = str(exc)
    return rois, reasons


def slice_rows(native: SeriesImages, post: SeriesImages | None, p: int, q: int | None, roi: SliceRoi, level: str,
               hematocrit: float) -> list[dict]:
    """Rows of one slice with an ROI: one per AHA segment its ROI covers."""
    seg = roi.segments(level)
    post_img = None if q is None else post.pixels[q, 0]
    b_nat, b_post = _mean(native.pixels[p, 0], roi.blood), (np.nan if q is None else _mean(post_img, roi.blood))
    rows = []
    for s in sorted(set(np.unique(seg)) - {0}):
        m = seg == s
        nat, pst = _mean(native.pixels[p, 0], m), (np.nan if q is None else _mean(post_img, m))
        rows.append({"segment": int(s), "segment_name": SEGMENT_NAMES[int(s)], "native_t1_ms": nat, "post_t1_ms": pst,
                     "blood_native_t1_ms": b_nat, "blood_post_t1_ms": b_post, "n_pixels": int(m.sum()),
                     "ecv": float(ecv(nat, pst, b_nat, b_post, hematocrit)) if q is not None else np.nan,
                     "qc_reason": "no_post_map" if post is None else None})
    return rows


def exam_rows(exam_id: str, native: SeriesImages | None, post: SeriesImages | None, landmarks: pd.DataFrame,
              hematocrit: float) -> list[dict]:
    """``t1_segments`` rows of one exam's native and post-contrast maps (either may be None) from
    their ``tissue_landmarks`` rows; hematocrit from the config default (:func:`apply_hematocrit`
    replaces it by a measured one at cohort level)."""
    base = {"exam_id": exam_id, "native_series_index": None if native is None else native.series_index,
            "post_series_index": None if post is None else post.series_index,
            "hematocrit": hematocrit, "hematocrit_source": "default"}
    if native is None:
        return [{**base, "qc_reason": "no_t1_map" if post is None else "no_native_map"}]
    lm_of = {i: landmarks[landmarks["series_index"] == i] for i in (native.series_index,) +
             (() if post is None else (post.series_index,))}
    rois, reasons = _rois(native, post, lm_of)
    centres = np.array([pl.centre_mm for pl in native.planes])
    positions = (centres - centres.mean(axis=0)) @ native.planes[0].normal
    radii = [rois[p][1].epi_radius_mm if p in rois else np.nan for p in range(native.n_planes)]
    levels = slice_levels(positions, radii)
    rows = []
    for p in range(native.n_planes):
        head = {**base, "slice_index": p, "level": levels[p]}
        if p in reasons:
            rows.append({**head, "qc_reason": reasons[p]})
            continue
        rows += [{**head, **r} for r in slice_rows(native, post, p, rois[p][0], rois[p][1], levels[p], hematocrit)]
    return rows


def hematocrit_by_exam(covariates: pd.DataFrame | None, extra: pd.DataFrame | None) -> pd.Series:
    """Measured hematocrit (fraction) per exam id from the covariates tables (a ``hematocrit`` or
    ``hct`` column of the wide table, or such a name in ``covariates_extra``); percentages
    (values > 1) are divided by 100."""
    parts = []
    for name in ("hematocrit", "hct"):
        if covariates is not None and name in covariates:
            parts.append(covariates.set_index("exam_id")[name])
        if extra is not None and len(extra):
            e = extra[extra["name"].str.lower() == name]
            parts.append(e.set_index("exam_id")["value_num"])
    if not parts:
        return pd.Series(dtype=float)
    h = pd.concat(parts).astype(float).dropna()
    h = h[~h.index.duplicated()]
    return h.where(h <= 1.0, h / 100.0)


def apply_hematocrit(segments: pd.DataFrame, hematocrit: pd.Series) -> pd.DataFrame:
    """``t1_segments`` with the ECV recomputed from each exam's measured hematocrit where there is one."""
    out = segments.copy()
    measured = out["exam_id"].map(hematocrit)
    has = measured.notna() & measured.between(0.0, 1.0, inclusive="neither")
    out.loc[has, "hematocrit"] = measured[has]
    out.loc[has, "hematocrit_source"] = "covariates"
    out["ecv"] = ecv(out["native_t1_ms"], out["post_t1_ms"], out["blood_native_t1_ms"], out["blood_post_t1_ms"],
                     out["hematocrit"])
    return out
