"""The manual path: class maps and RV insertions of each perfusion slice from an observer's contours.

Observers trace the endocardium and epicardium and mark the RV insertion points on the reference
(first, proton-density) frame of each slice, in the annotations' documented truth format
(``contours``, ``landmarks``: patient mm and pixel row/col, ``condition``); each slice's rows are
found by plane (:func:`cmr_atlas.core.geometry.nearest_plane`), so no generator index is needed.
Annotations live on the acquired frame; the quantification runs on the motion-corrected grid, so
they move by the displacement removed from that frame.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from matplotlib.path import Path as PolyPath

from cmr_atlas.core.geometry import nearest_plane
from cmr_atlas.perfusion import segment
from cmr_atlas.perfusion.sectors import Insertions


def polygon_mask(rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Pixels whose centres lie inside the closed polygon ``rc`` (N, 2) (row, col)."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    pts = np.stack([rr.ravel(), cc.ravel()], axis=1)
    return PolyPath(rc).contains_points(pts).reshape(shape)


def _rows_on(df: pd.DataFrame, planes, k: int) -> pd.DataFrame:
    if df.empty:
        return df
    xyz = df[["x_mm", "y_mm", "z_mm"]].to_numpy()
    on = np.array([nearest_plane(p, planes, tol_mm=3.0) for p in xyz], dtype=object)
    return df[on == k]


def manual_slice(contours: pd.DataFrame, landmarks: pd.DataFrame, planes, order: list[int], k: int,
                 shift_px: np.ndarray, shape: tuple[int, int]) -> tuple[np.ndarray, Insertions | None]:
    """Class map (no RV: observers do not trace it) and insertions of ordered slice ``k`` on the
    motion-corrected grid; ``shift_px``: displacement removed from the annotated frame."""
    c = _rows_on(contours, planes, order[k])
    labels = np.zeros(shape, np.int8)
    masks = {}
    for surface in ("epi", "endo"):
        pts = c[c["surface"] == surface].sort_values("point_index")[["row_px", "col_px"]].to_numpy(float)
        if len(pts) >= 3:
            masks[surface] = polygon_mask(pts - shift_px, shape)
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
