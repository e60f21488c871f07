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

from cmr_atlas.cine.guidepoints import SLICE_PLANE_COLUMNS
from cmr_atlas.core.tables import Column, TableSchema, register

_EXAM = Column("exam_id", "str", "synthetic exam label = folder name under dicom/", nullable=False)
_XYZ = (
    Column("x_mm", "float", "patient x (left)", "mm"),
    Column("y_mm", "float", "patient y (posterior)", "mm"),
    Column("z_mm", "float", "patient z (superior)", "mm"),
)
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
        Column("ed_frame", "int", "end-diastolic frame index"),
        Column("es_frame", "int", "end-systolic frame index (minimal cavity volume)"),
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
        Column("phase", "str", "ED or ES"),
        Column("surface", "str", "endo or epi"),
        Column("point_index", "int", "grid index"),
        *_XYZ,
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
        Column("view", "str", "sax, lax_2ch or lax_4ch"),
        Column("slice_index", "int", "slice index (0 = most basal SAX)"),
        Column("dx_mm", "float", "displacement, patient x", "mm"),
        Column("dy_mm", "float", "displacement, patient y", "mm"),
        Column("dz_mm", "float", "displacement, patient z", "mm"),
        Column("in_plane_mm", "float", "length of the in-plane component", "mm"),
        Column("through_plane_mm", "float", "component along the plane normal", "mm"),
    ),
))

CONTOURS = register(TableSchema(
    name="contours", group="truth", row="contour point",
    description=(
        "Endo- and epicardial LV contours where each image plane cuts the displaced anatomy: "
        "observer `truth` on every frame, simulated observers `obs1`/`obs2` at ED and ES. "
        "SAX contours are closed (last point != first), LAX contours run from one mitral hinge "
        "via the apex to the other."
    ),
    columns=(
        _EXAM,
        Column("observer", "str", "truth, obs1 or obs2"),
        Column("view", "str", "sax, lax_2ch or lax_4ch"),
        Column("slice_index", "int", "slice index"),
        Column("frame", "int", "frame index"),
        Column("phase", "str", "ED, ES or null for other frames"),
        Column("surface", "str", "endo or epi"),
        Column("point_index", "int", "order along the contour"),
        *_XYZ,
        *_PX,
    ),
))

LANDMARKS = register(TableSchema(
    name="landmarks", group="truth", row="landmark",
    description=(
        "Landmarks (see cmr_atlas.cine.guidepoints.LANDMARKS) on each image plane where they exist: "
        "observer `truth` on every frame, `obs1`/`obs2` at ED and ES."
    ),
    columns=(
        _EXAM,
        Column("observer", "str", "truth, obs1 or obs2"),
        Column("view", "str", "sax, lax_2ch or lax_4ch"),
        Column("slice_index", "int", "slice index"),
        Column("frame", "int", "frame index"),
        Column("phase", "str", "ED, ES or null"),
        Column("landmark", "str", "landmark name"),
        *_XYZ,
        *_PX,
    ),
))

TRUTH_TABLES = (SUBJECTS, EXAMS, SHAPES, SLICES, SLICE_SHIFTS, CONTOURS, LANDMARKS)
