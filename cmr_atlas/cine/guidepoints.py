"""The guide-point table: the seam between image analysis and geometry.

Everything upstream (CNN inference, or manual/core-lab annotations, or the synthetic truth)
produces contour and landmark points in patient coordinates; everything downstream (LV model
fitting, measures, atlas) reads only this table plus the slice planes.  Both the automated and the
manual path write the same columns, which makes auto-vs-manual comparisons a join.

Names used across the project:

* views: ``sax``, ``lax_2ch``, ``lax_4ch``
* phases: ``ED``, ``ES``
* surfaces: ``endo``, ``epi``
* landmarks per view: see :data:`LANDMARKS`
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.tables import Column, TableSchema, register

VIEWS = ("sax", "lax_2ch", "lax_4ch")
PHASES = ("ED", "ES")
SURFACES = ("endo", "epi")
LANDMARKS: dict[str, tuple[str, ...]] = {
    # mitral-valve hinge points and the epicardial apex on the long-axis views
    "lax_2ch": ("mv_anterior", "mv_inferior", "apex"),
    "lax_4ch": ("mv_septal", "mv_lateral", "apex"),
    # RV insertion points (where the RV free wall meets the septum) and the LV cavity centre
    "sax": ("rv_insert_anterior", "rv_insert_posterior", "lv_centre"),
}

GUIDE_POINTS = register(
    TableSchema(
        name="guide_points",
        description=(
            "Contour and landmark points in patient coordinates (DICOM LPS, mm) that the LV model "
            "is fitted to. Written by the automated path (`source=auto`) and, from annotations, "
            "by the manual path (`source=manual`, `obs1`, `obs2`)."
        ),
        row="point",
        columns=(
            Column("exam_id", "str", "keyed, de-identified exam id", nullable=False),
            Column("source", "str", "auto, manual, obs1 or obs2", nullable=False),
            Column("phase", "str", "ED or ES", nullable=False),
            Column("frame", "int", "cine frame index (0-based, trigger-time order)"),
            Column("view", "str", "sax, lax_2ch or lax_4ch", nullable=False),
            Column("slice_index", "int", "SAX slice index, 0 = most basal; 0 for LAX views"),
            Column("kind", "str", "contour or landmark", nullable=False),
            Column("surface", "str", "endo or epi for contours; null for landmarks"),
            Column("landmark", "str", "landmark name for landmarks; null for contours"),
            Column("point_index", "int", "order of the point along its contour"),
            Column("x_mm", "float", "patient x (left)", "mm", nullable=False),
            Column("y_mm", "float", "patient y (posterior)", "mm", nullable=False),
            Column("z_mm", "float", "patient z (superior)", "mm", nullable=False),
            Column("weight", "float", "relative weight in the fit (confidence for auto points)"),
        ),
    )
)

SLICE_PLANE_COLUMNS = (
    Column("exam_id", "str", "keyed, de-identified exam id", nullable=False),
    Column("view", "str", "sax, lax_2ch or lax_4ch", nullable=False),
    Column("slice_index", "int", "SAX slice index, 0 = most basal; 0 for LAX views", nullable=False),
    Column("ipp_x", "float", "ImagePositionPatient x", "mm"),
    Column("ipp_y", "float", "ImagePositionPatient y", "mm"),
    Column("ipp_z", "float", "ImagePositionPatient z", "mm"),
    Column("row_cos_x", "float", "ImageOrientationPatient[0]"),
    Column("row_cos_y", "float", "ImageOrientationPatient[1]"),
    Column("row_cos_z", "float", "ImageOrientationPatient[2]"),
    Column("col_cos_x", "float", "ImageOrientationPatient[3]"),
    Column("col_cos_y", "float", "ImageOrientationPatient[4]"),
    Column("col_cos_z", "float", "ImageOrientationPatient[5]"),
    Column("pixel_spacing_row_mm", "float", "PixelSpacing[0] (between rows)", "mm"),
    Column("pixel_spacing_col_mm", "float", "PixelSpacing[1] (between columns)", "mm"),
    Column("rows", "int", "pixel rows"),
    Column("cols", "int", "pixel columns"),
    Column("thickness_mm", "float", "SliceThickness", "mm"),
)
"""Columns every slice-plane table carries (ingest's `slices` and the truth's `slices`)."""


def plane_to_row(exam_id: str, view: str, slice_index: int, plane: SlicePlane) -> dict:
    """One slice-plane record in the shared column layout."""
    return {
        "exam_id": exam_id,
        "view": view,
        "slice_index": int(slice_index),
        "ipp_x": plane.position_mm[0],
        "ipp_y": plane.position_mm[1],
        "ipp_z": plane.position_mm[2],
        "row_cos_x": plane.row_cosine[0],
        "row_cos_y": plane.row_cosine[1],
        "row_cos_z": plane.row_cosine[2],
        "col_cos_x": plane.col_cosine[0],
        "col_cos_y": plane.col_cosine[1],
        "col_cos_z": plane.col_cosine[2],
        "pixel_spacing_row_mm": plane.pixel_spacing_mm[0],
        "pixel_spacing_col_mm": plane.pixel_spacing_mm[1],
        "rows": int(plane.shape[0]),
        "cols": int(plane.shape[1]),
        "thickness_mm": plane.thickness_mm,
    }


def row_to_plane(row: pd.Series | dict) -> SlicePlane:
    """Inverse of :func:`plane_to_row`."""
    return SlicePlane(
        position_mm=np.array([row["ipp_x"], row["ipp_y"], row["ipp_z"]], dtype=float),
        row_cosine=np.array([row["row_cos_x"], row["row_cos_y"], row["row_cos_z"]], dtype=float),
        col_cosine=np.array([row["col_cos_x"], row["col_cos_y"], row["col_cos_z"]], dtype=float),
        pixel_spacing_mm=(float(row["pixel_spacing_row_mm"]), float(row["pixel_spacing_col_mm"])),
        shape=(int(row["rows"]), int(row["cols"])),
        thickness_mm=float(row["thickness_mm"]),
    )


def planes_by_slice(slices: pd.DataFrame, exam_id: str) -> dict[tuple[str, int], SlicePlane]:
    """``{(view, slice_index): SlicePlane}`` for one exam from a slice-plane table."""
    sub = slices[slices["exam_id"] == exam_id]
    return {(r["view"], int(r["slice_index"])): row_to_plane(r) for _, r in sub.iterrows()}


# ---- manual path: annotations in the documented truth format -> guide points ------------------

ANNOTATION_FILES = ("contours.parquet", "landmarks.parquet")
"""An annotations folder (a core lab's, or a synthetic cohort's ``truth/``) holds these two tables
with the columns of :mod:`cmr_atlas.synth.truth` CONTOURS and LANDMARKS (x_mm, y_mm, z_mm in
patient coordinates; ``exam_id`` = the exam's top-level folder name in the cohort; ``phase`` ED/ES;
``observer``)."""


def match_annotation_planes(points: pd.DataFrame, slices: pd.DataFrame, tol_mm: float = 2.0) -> dict:
    """Map each annotated (view, slice_index) of one exam to the ingested slice it lies on.

    Matching is by geometry, not by index: the plane (of the same view) that the group's points
    are closest to, if their mean distance to it is under ``tol_mm``.  Returns
    ``{(view, slice_index): ingested slice_index}``.
    """
    planes = {(r["view"], int(r["slice_index"])): row_to_plane(r) for _, r in slices.iterrows()}
    out = {}
    for (view, sl), g in points.groupby(["view", "slice_index"]):
        xyz = g[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float)
        best, best_d = None, np.inf
        for (v, i), p in planes.items():
            if v != view:
                continue
            d = float(np.abs((xyz - p.position_mm) @ p.normal).mean())
            if d < best_d:
                best, best_d = i, d
        if best is not None and best_d < tol_mm:
            out[(view, int(sl))] = best
    return out


def manual_guide_points(
    contours: pd.DataFrame, landmarks: pd.DataFrame, slices: pd.DataFrame, folder_to_exam: dict[str, str],
    observer: str = "obs1", source: str = "manual",
) -> pd.DataFrame:
    """Guide points from annotations at ED and ES, keyed by the pipeline's exam_id.

    ``folder_to_exam`` maps an annotation ``exam_id`` (exam folder name) to the pipeline's
    ``exam_id``; exams missing there, or annotation slices that match no ingested plane, are
    skipped (the exam's fit then reports what is missing).
    """
    parts = []
    for table, kind in ((contours, "contour"), (landmarks, "landmark")):
        t = table[(table["observer"] == observer) & table["phase"].isin(PHASES)]
        for label, g in t.groupby("exam_id"):
            exam = folder_to_exam.get(label)
            if exam is None:
                continue
            plane_map = match_annotation_planes(g, slices[slices["exam_id"] == exam])
            keys = list(zip(g["view"], g["slice_index"].astype(int)))
            new_index = np.array([plane_map.get(k, -1) for k in keys])
            g = g.assign(slice_index=new_index)[new_index >= 0]
            parts.append(pd.DataFrame({
                "exam_id": exam, "source": source, "phase": g["phase"].to_numpy(),
                "frame": g["frame"].to_numpy(dtype="int64"), "view": g["view"].to_numpy(),
                "slice_index": g["slice_index"].to_numpy(dtype="int64"), "kind": kind,
                "surface": g["surface"].to_numpy() if kind == "contour" else None,
                "landmark": g["landmark"].to_numpy() if kind == "landmark" else None,
                "point_index": g["point_index"].to_numpy(dtype="int64") if kind == "contour" else 0,
                "x_mm": g["x_mm"].to_numpy(float), "y_mm": g["y_mm"].to_numpy(float),
                "z_mm": g["z_mm"].to_numpy(float), "weight": 1.0,
            }))
    if not parts:
        return GUIDE_POINTS.empty()
    return pd.concat(parts, ignore_index=True)
