"""The manual path: class maps and RV insertions of each perfusion slice from an observer's contours.

Observers trace the endocardium and epicardium and mark the RV insertion points in the
annotations' documented truth format (``contours``, ``landmarks``: patient mm and pixel row/col,
``condition``); each slice's rows are found by plane (:func:`cmr_atlas.core.geometry.nearest_plane`),
so no generator index is needed.  Two conventions, told apart by ``frame``:

- **On the motion-corrected series** (``frame`` = :data:`~cmr_atlas.core.vocab.CORRECTED_POSE_FRAME`,
  the heart's median breathing position over the dynamic frames, the grid the correction aligns
  to), as the paper's reader traced: the contours are used as they are.  The synthetic clinical
  observers trace so since 2026-12-04 (night).
- **On an acquired frame**: the quantification runs on the motion-corrected grid, so the contours
  move by the displacement removed from that frame.  A proton-density reference frame cannot be
  registered by the motion correction (another contrast, before the bolus): its displacement is a
  guess (the first dynamic frames'), 2.5-3 mm off on average.  So the contours are then aligned to
  the corrected series as an observer would check them on it (:func:`align_offset_px`: the cavity
  brightest, the myocardium darkest at peak enhancement; 1.6 mm off on validation exams).  Even
  exact contours of the acquired frame read ~0.02 ml/min/g above the corrected series' anatomy at
  rest: breathing moves the heart through the plane too, so that frame's cross-section is not the
  corrected slice's (docs/perfusion.md "Why the manual path read higher at rest").
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import nearest_plane, rasterise_polygon
from cmr_atlas.core.vocab import CORRECTED_POSE_FRAME
from cmr_atlas.perfusion import segment
from cmr_atlas.perfusion.motion import subpixel_argmin
from cmr_atlas.perfusion.sectors import Insertions


def _rows_on(df: pd.DataFrame, planes, k: int) -> pd.DataFrame:
    if df.empty:
        return df
    xyz = df[["x_mm", "y_mm", "z_mm"]].to_numpy()
    on = np.array([nearest_plane(p, planes, tol_mm=3.0) for p in xyz], dtype=object)
    return df[on == k]


def on_corrected_pose(rows: pd.DataFrame) -> bool:
    """Whether annotations were traced on the motion-corrected series (frame
    :data:`~cmr_atlas.core.vocab.CORRECTED_POSE_FRAME`): they sit on the corrected grid as they are,
    with nothing to move or align."""
    return bool(len(rows)) and bool((rows["frame"] == CORRECTED_POSE_FRAME).all())


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
