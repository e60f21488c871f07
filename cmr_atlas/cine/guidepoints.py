"""The guide-point table: the seam between image analysis and geometry.

Everything upstream (CNN inference, or manual/core-lab annotations, or the synthetic truth)
produces contour and landmark points in patient coordinates; everything downstream (LV model
fitting, measures, atlas) reads only this table plus the slice planes.  Both the automated and the
manual path write the same columns, which makes auto-vs-manual comparisons a join.

Names (views, phases, surfaces, landmarks) are those of :mod:`cmr_atlas.core.vocab`; slice planes
are read with :func:`cmr_atlas.core.geometry.planes_by_slice`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.columns import (EXAM_ID, FRAME, GUIDE_POINT_SOURCE, PATIENT_XYZ_MM, PHASE, SLICE_INDEX,
                                    VIEW, optional, required)
from cmr_atlas.core.geometry import nearest_plane, row_to_plane
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import PHASES

GUIDE_POINTS = register(
    TableSchema(
        name="guide_points",
        description=(
            "Contour and landmark points in patient coordinates (DICOM LPS, mm) that the LV model "
            "is fitted to. Written by the automated path (`source=auto`) and, from annotations, "
            "by the manual path (`source=manual`, `obs1`, `obs2`). With the config's "
            "`manual_landmarks_from_auto`, the manual landmarks of an exam's (phase, view) that the "
            "annotations lack (DICOM SEG, NIfTI) are copies of the automated ones: the same landmark, "
            "frame, slice, coordinates and weight as the exam's `source=auto` row."
        ),
        row="point",
        columns=(
            EXAM_ID,
            GUIDE_POINT_SOURCE,
            PHASE,
            optional(FRAME),
            VIEW,
            optional(SLICE_INDEX),
            Column("kind", "str", "contour or landmark", nullable=False),
            Column("surface", "str", "endo or epi for contours; null for landmarks"),
            Column("landmark", "str", "landmark name for landmarks; null for contours"),
            Column("point_index", "int", "order of the point along its contour"),
            *(required(c) for c in PATIENT_XYZ_MM),
            Column("weight", "float", "relative weight in the fit (confidence for auto points)"),
        ),
    )
)


# Not registered: the fit stage builds these frames in memory from the inference outputs and writes
# only what it fits from them (volume_curves, function_indices, motion_shapes); the schema fixes
# the columns that cine.autoguide.cycle_guide_points returns and cine.lvmodel.cycle reads.
CYCLE_GUIDE_POINTS = (
    TableSchema(
        name="cycle_guide_points",
        description=(
            "Guide points of every cine frame (the automated path: contours from each frame's SAX "
            "masks, LAX landmarks of the LAX frame at the same cycle fraction; SAX landmarks exist "
            "at ED and ES only), for the per-frame LV model fits and volume curves "
            "(`cmr_atlas.cine.lvmodel.cycle`). Columns of `guide_points`, with `phase` null on "
            "frames other than ED and ES, and each frame's trigger time."
        ),
        row="point",
        columns=(
            EXAM_ID,
            GUIDE_POINT_SOURCE,
            Column("phase", "str", "ED, ES or null for other frames"),
            FRAME,
            *GUIDE_POINTS.columns[4:],
            Column("time_ms", "float", "trigger time of the SAX frame after the R wave", "ms"),
        ),
    )
)


# ---- manual path: annotations in the documented truth format -> guide points ------------------

ANNOTATION_FILES = ("contours.parquet", "landmarks.parquet")
"""An annotations folder (a core lab's, or a synthetic cohort's ``truth/``) holds these two tables
with the columns of :mod:`cmr_atlas.synth.truth` CONTOURS and LANDMARKS (x_mm, y_mm, z_mm in
patient coordinates; ``exam_id`` = the exam's top-level folder name in the cohort; ``phase`` ED/ES;
``observer``)."""


def match_annotation_planes(points: pd.DataFrame, slices: pd.DataFrame) -> dict:
    """Map each annotated (view, slice_index) of one exam to the ingested slice it lies on.

    Matching is by geometry, not by index: :func:`~cmr_atlas.core.geometry.nearest_plane` among the
    planes of the same view.  Returns ``{(view, slice_index): ingested slice_index}``.
    """
    by_view: dict[str, tuple[list[int], list]] = {}
    for _, r in slices.iterrows():
        index, planes = by_view.setdefault(r["view"], ([], []))
        index.append(int(r["slice_index"]))
        planes.append(row_to_plane(r))
    out = {}
    for (view, sl), g in points.groupby(["view", "slice_index"]):
        index, planes = by_view.get(view, ([], []))
        j = nearest_plane(g[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float), planes)
        if j is not None:
            out[(view, int(sl))] = index[j]
    return out


def manual_guide_points(
    contours: pd.DataFrame, landmarks: pd.DataFrame, slices: pd.DataFrame, folder_to_exam: dict[str, str],
    observer: str, source: str = "manual",
) -> pd.DataFrame:
    """Guide points from annotations at ED and ES, keyed by the pipeline's exam_id.

    ``folder_to_exam`` maps an annotation ``exam_id`` (exam folder name) to the pipeline's
    ``exam_id``; exams missing there, or annotation slices that match no ingested plane, are
    skipped (the exam's fit then reports what is missing).  ``observer``: the annotator whose
    contours are manual (the config's ``manual_observer``).
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


def landmarks_from_auto(manual: pd.DataFrame, auto: pd.DataFrame) -> pd.DataFrame:
    """``manual`` plus, for each of its exams, the automated landmarks of every (phase, view) in which
    the manual guide points have no landmark (config ``manual_landmarks_from_auto``).

    A copy keeps the automated row (frame, slice, coordinates, weight) and takes the manual rows'
    source, so it can be found afterwards by its equal ``source=auto`` row.  Exams without manual
    guide points get nothing: there is no manual source to complete.
    """
    lm = auto[(auto["kind"] == "landmark") & auto["exam_id"].isin(set(manual["exam_id"]))]
    if lm.empty:
        return manual
    has = manual[manual["kind"] == "landmark"][["exam_id", "phase", "view"]].drop_duplicates()
    key = pd.MultiIndex.from_frame(lm[["exam_id", "phase", "view"]])
    take = lm[~key.isin(pd.MultiIndex.from_frame(has))]
    sources = manual.groupby("exam_id")["source"].first()  # one source per table in practice
    take = take.assign(source=take["exam_id"].map(sources))
    return pd.concat([manual, take[manual.columns]], ignore_index=True)
