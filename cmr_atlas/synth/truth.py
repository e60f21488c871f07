"""Ground-truth tables written by ``cmr-atlas synth`` under ``DIR/truth/``.

The truth is keyed by ``exam_id`` = the synthetic exam's folder name (``DIR/dicom/<exam_id>``),
which doubles as a covariates key; ``study_instance_uid`` lets the pipeline compute its own keyed id
(:func:`cmr_atlas.core.ids.exam_id`).  No pipeline stage may read these tables except to evaluate
itself or, for the manual path, as annotations (``contours``, ``landmarks``, observers).

Breath-hold convention (``slice_shifts``): during the acquisition of a slice the heart is displaced
by ``(dx_mm, dy_mm, dz_mm)`` in patient coordinates, so a point ``p`` of the reference anatomy
appears in that slice's image at ``p + d``.  Contours and landmarks in ``contours``/``landmarks``
include that displacement (they are what an observer would trace on the image); ``shapes`` do not.
"""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from cmr_atlas.core.columns import (ED_FRAME, ES_FRAME, FRAME, PATIENT_XYZ_MM, PHASE, SHIFT_MM, SLICE_INDEX,
                                    SLICE_PLANE_COLUMNS, SURFACE, VIEW, optional)
from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.core.vocab import SEQUENCES, one_of

_EXAM = Column("exam_id", "str", "synthetic exam label = folder name under dicom/", nullable=False)
_PHASE_OR_NULL = Column("phase", "str", "ED, ES or null for other frames")
_OBSERVER = Column("observer", "str", "truth, obs1 or obs2")
_SEQUENCE = Column("sequence", "str", f"image contrast, {one_of(SEQUENCES)} (null: not known, e.g. an imported "
                   "annotation)")
_CONDITION = Column("condition", "str", "stress or rest on perfusion rows, null elsewhere")
_PX = (
    Column("row_px", "float", "pixel row of the point in its slice (sub-pixel)", "px"),
    Column("col_px", "float", "pixel column of the point in its slice (sub-pixel)", "px"),
)

SUBJECTS = register(TableSchema(
    name="subjects", group="truth", row="exam",
    description=(
        "Synthetic participants: demographics and risk factors (MESA-calibrated), usable as the "
        "covariates table. Contains the fake PatientID/StudyInstanceUID as linkage keys: it is an "
        "input, never an analysis output."
    ),
    columns=(
        _EXAM,
        Column("study_instance_uid", "str", "StudyInstanceUID written to the DICOM files"),
        Column("patient_id", "str", "fake PatientID written to the DICOM files"),
        Column("group", "str", "ASYMP or MI"),
        Column("age", "float", "age", "years"),
        Column("sex", "str", "F or M"),
        Column("height_cm", "float", "height", "cm"),
        Column("weight_kg", "float", "weight", "kg"),
        Column("bsa_m2", "float", "body surface area (Mosteller)", "m2"),
        Column("sbp", "float", "systolic blood pressure", "mmHg"),
        Column("dbp", "float", "diastolic blood pressure", "mmHg"),
        Column("heart_rate", "float", "heart rate", "bpm"),
        Column("hypertension", "int", "1 = hypertension"),
        Column("diabetes", "int", "1 = diabetes"),
        Column("smoking", "str", "never, former or current"),
        Column("current_smoker", "int", "1 = current smoker"),
        Column("total_cholesterol", "float", "total cholesterol", "mg/dl"),
        Column("high_cholesterol", "int", "1 = total cholesterol >= 240 mg/dl or treated"),
        Column("calcium_score", "float", "Agatston coronary calcium score"),
        Column("calcium_positive", "int", "1 = calcium score > 0"),
        Column("mi", "int", "1 = myocardial-infarction subgroup"),
    ),
))

EXAMS = register(TableSchema(
    name="exams", group="truth", row="exam",
    description="Acquisition parameters, ED/ES frames and true clinical measures of each exam.",
    columns=(
        _EXAM,
        Column("vendor", "str", "SIEMENS or GE"),
        Column("n_frames", "int", "cine frames per slice"),
        Column("rr_ms", "float", "R-R interval", "ms"),
        ED_FRAME,
        ES_FRAME,
        Column("n_sax_slices", "int", "short-axis slices"),
        Column("rows", "int", "pixel rows"),
        Column("cols", "int", "pixel columns"),
        Column("pixel_spacing_mm", "float", "in-plane pixel size", "mm"),
        Column("snr", "float", "blood signal / noise sigma"),
        Column("edv_ml", "float", "true end-diastolic cavity volume (below the mitral plane)", "ml"),
        Column("esv_ml", "float", "true end-systolic cavity volume", "ml"),
        Column("sv_ml", "float", "stroke volume", "ml"),
        Column("ef_pct", "float", "ejection fraction", "%"),
        Column("lv_mass_g", "float", "myocardial volume x 1.05 g/ml at ED", "g"),
        Column("edvi", "float", "EDV / BSA", "ml/m2"),
        Column("esvi", "float", "ESV / BSA", "ml/m2"),
        Column("lvmi", "float", "LV mass / BSA", "g/m2"),
        Column("sphericity_pct", "float", "EDV / volume of sphere of ED long-axis diameter", "%"),
        Column("rwt_pct", "float", "2 x posterior wall thickness / ED diameter", "%"),
        Column("conicity_pct", "float", "ED diameter 1/3 above apex / basal diameter", "%"),
        Column("ls_pct", "float", "longitudinal shortening of base-apex distance", "%"),
    ),
))

SHAPES = register(TableSchema(
    name="shapes", group="truth", row="surface point",
    description=(
        "True LV surfaces at ED and ES in patient coordinates (reference anatomy, no breath-hold "
        "shift), on the generator's fixed grid: `n_long` x `n_circ` points, point_index = "
        "i_long * n_circ + i_circ, i_long 0 at the apex, last at the base (mitral plane)."
    ),
    columns=(
        _EXAM,
        optional(PHASE),
        optional(SURFACE),
        Column("point_index", "int", "grid index"),
        *PATIENT_XYZ_MM,
    ),
))

SLICES = register(TableSchema(
    name="slices", group="truth", row="image plane",
    description="Planned image planes as written to DICOM (the same for every frame).",
    columns=SLICE_PLANE_COLUMNS,
))

SLICE_SHIFTS = register(TableSchema(
    name="slice_shifts", group="truth", row="image plane",
    description="Breath-hold displacement of the heart during each slice's acquisition.",
    columns=(
        _EXAM,
        optional(VIEW),
        optional(SLICE_INDEX),
        *SHIFT_MM,
        Column("in_plane_mm", "float", "length of the in-plane component", "mm"),
        Column("through_plane_mm", "float", "component along the plane normal", "mm"),
    ),
))

# Which image of which series an annotation belongs to, and who made it (contours and landmarks).
_IMAGE_KEY = (_EXAM, _OBSERVER, _SEQUENCE, _CONDITION, optional(VIEW), optional(SLICE_INDEX), optional(FRAME),
              _PHASE_OR_NULL)

CONTOURS = register(TableSchema(
    name="contours", group="truth", row="contour point",
    description=(
        "Endo- and epicardial LV contours (and the RV cavity's on clinical exams) where each image "
        "plane cuts the displaced anatomy: observer `truth` on every frame, simulated observers "
        "`obs1`/`obs2` at ED and ES (clinical exams: also every LGE and T1-map image and the "
        "perfusion slice on its motion-corrected pose, frame -1: the median breathing position of the "
        "dynamic frames, cmr_atlas.core.vocab.CORRECTED_POSE_FRAME). "
        "SAX contours are closed (last point != first), LAX contours run from one mitral hinge "
        "via the apex to the other."
    ),
    columns=(
        *_IMAGE_KEY,
        Column("surface", "str", "endo or epi (LV), rv_endo (RV cavity; clinical exams)"),
        Column("point_index", "int", "order along the contour"),
        *PATIENT_XYZ_MM,
        *_PX,
    ),
))

LANDMARKS = register(TableSchema(
    name="landmarks", group="truth", row="landmark",
    description=(
        "Landmarks (see cmr_atlas.core.vocab.LANDMARKS) on each image plane where they exist: "
        "observer `truth` on every frame, `obs1`/`obs2` where they annotate contours."
    ),
    columns=(
        *_IMAGE_KEY,
        Column("landmark", "str", "landmark name (cmr_atlas.core.vocab.LANDMARKS)"),
        *PATIENT_XYZ_MM,
        *_PX,
    ),
))

VOLUMES = register(TableSchema(
    name="volumes", group="truth", row="exam and cine frame",
    description=(
        "True LV volumes at every cine frame (the generator's cycle, "
        "`cmr_atlas.synth.anatomy.activation_curve`): cavity volume below the mitral plane and "
        "myocardial volume, with the frame's trigger time. The volume-curve truth of "
        "`volume_curves` and `function_indices`."
    ),
    columns=(
        _EXAM,
        FRAME,
        _PHASE_OR_NULL,
        Column("time_ms", "float", "trigger time after the R wave", "ms"),
        Column("activation", "float", "fraction of the ED-to-ES change (0 = ED, 1 = ES)"),
        Column("volume_ml", "float", "cavity volume below the mitral plane", "ml"),
        Column("myo_volume_ml", "float", "myocardial volume", "ml"),
    ),
))

TRUTH_TABLES = (SUBJECTS, EXAMS, SHAPES, SLICES, SLICE_SHIFTS, CONTOURS, LANDMARKS, VOLUMES)


# rows per row group of an annotation table (``observer`` column) sorted by observer: a reader of
# one observer's rows (the manual path, filters pushed into the parquet reader) decodes its row
# groups only, not the every-frame ``truth`` rows that are 85 % of a legacy cohort's contours
# (1.03 -> 0.04 s for a 64-exam shard; the file 9 % larger than in pyarrow's 1M-row groups)
ANNOTATION_ROW_GROUP_ROWS = 262144


def write_truth_table(df: pd.DataFrame, path: str | os.PathLike, schema: TableSchema) -> Path:
    """:func:`~cmr_atlas.core.tables.write_table` for a truth table; an annotation table (with an
    ``observer`` column: ``contours``, ``landmarks``) goes sorted by observer then exam (stable,
    each exam's rows in their order) in :data:`ANNOTATION_ROW_GROUP_ROWS`-row groups."""
    if "observer" in schema.column_names and len(df):
        df = df.sort_values(["observer", "exam_id"], kind="stable", ignore_index=True)
        return write_table(df, path, schema, row_group_rows=ANNOTATION_ROW_GROUP_ROWS)
    return write_table(df, path, schema)
