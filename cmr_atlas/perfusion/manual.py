"""The manual path: class maps and RV insertions of each perfusion slice from an observer's contours.

Observers trace the endocardium and epicardium and mark the RV insertion points on the reference
(first, proton-density) frame of each slice, in the annotations' documented truth format
(``contours``, ``landmarks``: patient mm and pixel row/col, ``condition``); each slice's rows are
found by plane (:func:`cmr_atlas.core.geometry.nearest_plane`), so no generator index is needed.
Annotations live on the acquired frame; the quantification runs on the motion-corrected grid, so
they move by the displacement removed from that frame.  The reference frame is a proton-density
frame, which the motion correction cannot register (another contrast, before the bolus): its
displacement is a guess (the first dynamic frames'), off by 2.5 mm on average and up to 10 mm
against the generator's truth (exams 880000-6..9, 24 slices), which puts LV blood into the manual
sectors (manual read +0.03 rest / +0.06 stress ml/min/g above the generator's own label maps on
the same corrected frames, exams 0-5, where the CNN's read +0.01).  So the contours are then
aligned to the corrected series as an observer would check them on it (:func:`align_offset_px`:
the cavity brightest, the myocardium darkest at peak enhancement): 2.5 -> 1.6 mm on those slices
with whole pixels; sub-pixel since 2026-12-03 (exams 0-13: auto - manual at rest, per segment,
-0.041 p 0.002 -> -0.023 p 0.07).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import nearest_plane, rasterise_polygon
from cmr_atlas.perfusion import segment
from cmr_atlas.perfusion.motion import subpixel_argmin
from cmr_atlas.perfusion.sectors import Insertions


def _rows_on(df: pd.DataFrame, planes, k: int) -> pd.DataFrame:
    if df.empty:
        return df
    xyz = df[["x_mm", "y_mm", "z_mm"]].to_numpy()
    on = np.array([nearest_plane(p, planes, tol_mm=3.0) for p in xyz], dtype=object)
    return df[on == k]


def peak_enhancement(dynamic: np.ndarray, n_baseline: int = 3) -> np.ndarray:
    """Peak signal rise (R, C) of a motion-corrected dynamic series (T, R, C) over its first frames."""
    dynamic = np.asarray(dynamic, float)
    return dynamic.max(axis=0) - dynamic[:n_baseline].mean(axis=0)


def align_offset_px(labels: np.ndarray, enhancement: np.ndarray, max_px: int) -> np.ndarray:
    """(row, col) move of a manual class map, within ``max_px``, that makes the LV cavity's mean
    peak enhancement exceed the myocardium's most (blood enhances several times more than muscle:
    a contour off by a few mm takes blood into the ring and muscle into the cavity).  Whole pixels
    searched, then a parabola through each axis' neighbours of the best (sub-pixel: the pixels are
    2-2.5 mm, and half a pixel of blood in the myocardial ring reads as flow)."""
    cav, myo = np.argwhere(labels == segment.CAVITY), np.argwhere(labels == segment.MYOCARDIUM)
    if not len(cav) or not len(myo):
        return np.zeros(2)
    hi = np.array(enhancement.shape) - 1

    def mean_at(pts, off):
        q = np.clip(pts + off, 0, hi)
        return enhancement[q[:, 0], q[:, 1]].mean()

    steps = np.arange(-max_px, max_px + 1)
    scores = np.array([[mean_at(cav, (dr, dc)) - mean_at(myo, (dr, dc)) for dc in steps] for dr in steps])
    return subpixel_argmin(-scores) - max_px


def manual_slice(contours: pd.DataFrame, landmarks: pd.DataFrame, planes, order: list[int], k: int,
                 shift_px: np.ndarray, shape: tuple[int, int], enhancement: np.ndarray | None = None,
                 max_align_px: int = 0) -> tuple[np.ndarray, Insertions | None]:
    """Class map (no RV: observers do not trace it) and insertions of ordered slice ``k`` on the
    motion-corrected grid; ``shift_px``: displacement removed from the annotated frame (a guess
    for a proton-density frame); with ``enhancement`` (:func:`peak_enhancement`) and
    ``max_align_px`` > 0 the contours are then aligned to the corrected series (:func:`align_offset_px`)."""
    labels, ins = _place(contours, landmarks, planes, order, k, shift_px, shape)
    if enhancement is not None and max_align_px > 0:
        off = align_offset_px(labels, enhancement, max_align_px)
        if off.any():
            labels, ins = _place(contours, landmarks, planes, order, k, np.asarray(shift_px, float) - off, shape)
    return labels, ins


def _place(contours: pd.DataFrame, landmarks: pd.DataFrame, planes, order: list[int], k: int,
           shift_px: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, Insertions | None]:
    c = _rows_on(contours, planes, order[k])
    labels = np.zeros(shape, np.int8)
    masks = {}
    for surface in ("epi", "endo"):
        pts = c[c["surface"] == surface].sort_values("point_index")[["row_px", "col_px"]].to_numpy(float)
        if len(pts) >= 3:
            masks[surface] = rasterise_polygon(pts - shift_px, shape)
    if "epi" in masks:
        labels[masks["epi"]] = segment.MYOCARDIUM
    if "endo" in masks:
        labels[masks["endo"]] = segment.CAVITY
    lm = _rows_on(landmarks, planes, order[k])
    got = {n: g[["row_px", "col_px"]].to_numpy(float).mean(axis=0) - shift_px for n, g in lm.groupby("landmark")}
    ins = None
    if {"rv_insert_anterior", "rv_insert_posterior"} <= set(got) and (labels > 0).any():
        centre = got.get("lv_centre", np.array(np.nonzero(labels > 0)).mean(axis=1))
        ins = Insertions(np.asarray(centre, float), got["rv_insert_anterior"], got["rv_insert_posterior"])
    return labels, ins
