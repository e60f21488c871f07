"""Measures derived from landmarks (Xue et al. 2021): the anterior RV insertion angle on SAX
images and the LV length on long-axis images.

* anterior RV insertion angle: the direction of the in-plane vector from the LV centre to the
  anterior RV insertion point, in degrees counter-clockwise from the image's row direction (x to
  the right, y up as displayed), in (-180, 180];
* LV length: the distance from the apex to the midpoint of the view's two mitral points (2CH
  anterior/inferior, 4CH septal/lateral, 3CH inferolateral/anteroseptal), in mm.

Both come from patient coordinates, so automated and observer landmarks of the same image are
measured alike (observers' landmarks are rows that exist; automated ones carry ``present``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd

from cmr_atlas.core.columns import EXAM_ID, FRAME, SLICE_INDEX, VIEW
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import LANDMARKS

LANDMARK_MEASURES = register(TableSchema(
    name="landmark_measures", row="image with the landmarks of a measure",
    description=(
        "Measures from the CNN landmarks of one image (Xue et al. 2021): the anterior RV insertion "
        "angle on SAX images with an LV centre and an anterior RV insertion point, the LV length on "
        "long-axis images with both mitral points and the apex."
    ),
    columns=(
        EXAM_ID,
        VIEW,
        SLICE_INDEX,
        FRAME,
        Column("sequence", "str", "the cine's acquisition contrast (as the landmarks table)"),
        Column("rv_insert_angle_deg", "float", "direction of LV centre -> anterior RV insertion, counter-"
               "clockwise from the image row direction (y up as displayed), (-180, 180]; SAX only", "deg"),
        Column("lv_length_mm", "float", "apex to the midpoint of the two mitral points; long-axis only", "mm"),
    ),
))


def rv_insertion_angle_deg(rvi_xyz: np.ndarray, centre_xyz: np.ndarray, plane: SlicePlane) -> float:
    """Angle of ``centre -> rvi`` (patient mm) in ``plane``, degrees counter-clockwise from its rows."""
    v = np.asarray(rvi_xyz, float) - np.asarray(centre_xyz, float)
    return float(np.degrees(np.arctan2(-(v @ plane.col_cosine), v @ plane.row_cosine)))


def lv_length_mm(mv_a_xyz: np.ndarray, mv_b_xyz: np.ndarray, apex_xyz: np.ndarray) -> float:
    """Apex to the midpoint of the two mitral points (patient mm)."""
    mid = 0.5 * (np.asarray(mv_a_xyz, float) + np.asarray(mv_b_xyz, float))
    return float(np.linalg.norm(np.asarray(apex_xyz, float) - mid))


def angle_difference_deg(a, b) -> np.ndarray:
    """``a - b`` wrapped to (-180, 180]."""
    d = (np.asarray(a, float) - np.asarray(b, float) + 180.0) % 360.0 - 180.0
    return np.where(d == -180.0, 180.0, d)


def image_measures(points: dict[str, np.ndarray], view: str, plane: SlicePlane | None) -> dict[str, float]:
    """The measures of one image from its landmarks ``{name: xyz}`` (missing names: NaN)."""
    names = LANDMARKS[view]
    if view == "sax":
        ok = plane is not None and "rv_insert_anterior" in points and "lv_centre" in points
        angle = rv_insertion_angle_deg(points["rv_insert_anterior"], points["lv_centre"], plane) if ok else np.nan
        return {"rv_insert_angle_deg": angle, "lv_length_mm": np.nan}
    ok = all(n in points for n in names)
    return {"rv_insert_angle_deg": np.nan, "lv_length_mm": lv_length_mm(*(points[n] for n in names)) if ok else np.nan}


def landmark_measures(landmarks: pd.DataFrame,
                      plane_of: Callable[[str, str, int], SlicePlane | None]) -> pd.DataFrame:
    """:data:`LANDMARK_MEASURES` rows of every image of ``landmarks`` (the inference table, or the
    truth format: one observer's rows; one exam or many) that has a measure; ``plane_of(exam_id,
    view, slice_index)`` gives the image's plane (SAX angles need it).  Images as rows and
    landmarks as columns, so each measure is computed for every image at once, a shard's in one
    call (:func:`image_measures` is the one-image definition)."""
    lm = landmarks[landmarks["present"].astype(bool)] if "present" in landmarks else landmarks
    keys = ["exam_id", "view", "slice_index", "frame"]
    if lm.empty:
        return LANDMARK_MEASURES.empty()
    lm = lm.assign(slice_index=lm["slice_index"].astype(int), frame=lm["frame"].astype(int))
    xyz = lm.drop_duplicates(keys + ["landmark"], keep="last").set_index(keys + ["landmark"])[["x_mm", "y_mm", "z_mm"]]
    wide = xyz.unstack("landmark").sort_index()  # one row per image, columns (coordinate, landmark)
    images = wide.index.to_frame(index=False)
    images["sequence"] = (lm.drop_duplicates(keys).set_index(keys)["sequence"].reindex(wide.index).to_numpy()
                          if "sequence" in lm else None)

    def point(name: str) -> np.ndarray:
        if ("x_mm", name) not in wide.columns:
            return np.full((len(wide), 3), np.nan)
        return wide[[("x_mm", name), ("y_mm", name), ("z_mm", name)]].to_numpy(float)

    angle, length = np.full(len(wide), np.nan), np.full(len(wide), np.nan)
    views = images["view"].astype(str).to_numpy()
    sax = views == "sax"
    if sax.any():
        cosines = np.full((len(wide), 2, 3), np.nan)  # the image plane's row and column directions
        on_sax = images[sax]
        for (exam, k), rows in on_sax.groupby(["exam_id", "slice_index"], sort=False).indices.items():
            plane = plane_of(str(exam), "sax", int(k))
            if plane is not None:
                cosines[on_sax.index[rows]] = plane.row_cosine, plane.col_cosine
        v = point("rv_insert_anterior") - point("lv_centre")
        angle[sax] = np.degrees(np.arctan2(-(v * cosines[:, 1]).sum(1), (v * cosines[:, 0]).sum(1)))[sax]
    for view in set(views[~sax]):
        names = LANDMARKS[view]
        on = views == view
        mid = 0.5 * (point(names[0]) + point(names[1]))
        length[on] = np.linalg.norm(point(names[2]) - mid, axis=1)[on]
    images["rv_insert_angle_deg"], images["lv_length_mm"] = angle, length
    out = images[np.isfinite(angle) | np.isfinite(length)].reset_index(drop=True)
    return out[list(LANDMARK_MEASURES.column_names)] if len(out) else LANDMARK_MEASURES.empty()
