"""Ground truth of the synthetic clinical protocol, written under ``DIR/truth/`` beside the shared
tables (``subjects``, ``contours``, ``landmarks`` of :mod:`cmr_atlas.synth.truth`, whose
``sequence`` column tells cine_ssfp, perfusion, lge and t1map rows apart).

Conventions: ``slice_index`` of any short-axis series is the index of the SAX-stack position it was
planned on (0 = most basal), so a perfusion, T1-map or LGE slice and the cine slice at the same
place share it; ``frame`` is the image's index within its series (cine phase, perfusion heartbeat,
scout inversion time).  As for the legacy tables, no pipeline stage may read these except to
evaluate itself or as manual annotations (observers).
"""

from __future__ import annotations

from cmr_atlas.core.columns import FRAME, SLICE_INDEX, VIEW, optional
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import SEQUENCES, one_of

GROUP = "truth_clinical"
_EXAM = Column("exam_id", "str", "synthetic exam label = folder name under dicom/", nullable=False)
_CONDITION = Column("condition", "str", "stress or rest", nullable=False)
SERIES_KINDS = ("localizer", "cine", "perfusion", "perfusion_aif", "ti_scout", "lge", "lge_psir",
                "t1map_native", "t1map_post")
_KIND = Column("kind", "str", f"what the series is: {one_of(SERIES_KINDS)}", nullable=False)
_ROW_COL = (Column("row_px", "int", "pixel row", "px", nullable=False),
            Column("col_px", "int", "pixel column", "px", nullable=False))

CLINICAL_EXAMS = register(TableSchema(
    name="clinical_exams", group=GROUP, row="exam",
    description="Scanner, physiology and timing of each synthetic clinical exam.",
    columns=(
        _EXAM,
        Column("field_strength_t", "float", "main field", "T"),
        Column("vendor", "str", "Manufacturer as written in the files"),
        Column("model", "str", "ManufacturerModelName as written"),
        Column("hematocrit", "float", "blood hematocrit (fraction)"),
        Column("heart_rate_rest_bpm", "float", "heart rate at rest (cine, rest perfusion, late images)", "1/min"),
        Column("heart_rate_stress_bpm", "float", "heart rate under adenosine stress", "1/min"),
        Column("perfusion_group", "str", "normal, ischaemic or microvascular"),
        Column("ischaemic_territory", "str", "LAD, RCA or LCX (null: none)"),
        Column("native_t1_myo_ms", "float", "native T1 of remote myocardium", "ms"),
        Column("native_t1_blood_ms", "float", "native T1 of blood", "ms"),
        Column("post_t1_blood_ms", "float", "blood T1 when the post-contrast T1 map was acquired", "ms"),
        Column("amyloid_like", "bool", "myocardium nulls before blood on the TI scout"),
        Column("scar_segments", "str", "AHA segments with infarct scar, comma-separated (empty: none)"),
        Column("scar_transmurality", "float", "scar depth from the endocardium as a fraction of the wall"),
        Column("fibrosis_segments", "str", "AHA segments with mid-wall fibrosis, comma-separated"),
        Column("total_dose_mmol_kg", "float", "gadolinium given in the exam", "mmol/kg"),
        Column("scout_min", "float", "TI scout, minutes after the stress bolus", "min"),
        Column("lge_min", "float", "LGE, minutes after the stress bolus", "min"),
        Column("t1_post_min", "float", "post-contrast T1 map, minutes after the stress bolus", "min"),
        Column("n_sax_slices", "int", "slices of the bSSFP SAX stack"),
        Column("edv_ml", "float", "true LV end-diastolic volume", "ml"),
        Column("esv_ml", "float", "true LV end-systolic volume", "ml"),
        Column("lv_mass_g", "float", "true LV myocardial mass", "g"),
    ),
))

SERIES = register(TableSchema(
    name="series", group=GROUP, row="written series",
    description=(
        "Every series written for a clinical exam with what it really is, so that ingest's series "
        "typing can be scored (descriptions may be blank or misleading; this is the truth)."
    ),
    columns=(
        _EXAM,
        Column("series_number", "int", "SeriesNumber as written", nullable=False),
        _KIND,
        Column("sequence", "str", f"{one_of(SEQUENCES)} (null for the localizer)"),
        optional(VIEW),
        Column("n_planes", "int", "distinct image positions"),
        Column("n_frames", "int", "images per position"),
        Column("description", "str", "SeriesDescription as written (may be blank)"),
        Column("start_min", "float", "acquisition start, minutes after the stress bolus (negative: before)", "min"),
    ),
))

SEGMENTS = register(TableSchema(
    name="segments", group=GROUP, row="exam and AHA segment (1-16)",
    description="True myocardial blood flow, relaxation, ECV and tissue state per AHA segment.",
    columns=(
        _EXAM,
        Column("segment", "int", "AHA segment 1-16", nullable=False),
        Column("territory", "str", "coronary territory of the segment (LAD, RCA, LCX)"),
        Column("mbf_stress_ml_min_g", "float", "stress myocardial blood flow", "ml/min/g"),
        Column("mbf_rest_ml_min_g", "float", "rest myocardial blood flow", "ml/min/g"),
        Column("native_t1_ms", "float", "native T1", "ms"),
        Column("post_t1_ms", "float", "T1 when the post-contrast T1 map was acquired", "ms"),
        Column("ecv", "float", "extracellular volume fraction"),
        Column("scar", "bool", "infarct scar in the segment"),
        Column("fibrosis", "bool", "mid-wall fibrosis in the segment"),
    ),
))

PERFUSION_PIXELS = register(TableSchema(
    name="perfusion_pixels", group=GROUP, row="myocardial pixel of a perfusion slice (reference frame)",
    description=(
        "Per-pixel truth of the perfusion slices at the reference (first proton-density) frame: "
        "AHA segment and blood flow."
    ),
    columns=(
        _EXAM, _CONDITION, SLICE_INDEX,
        Column("level", "str", "basal, mid or apical"),
        *_ROW_COL,
        Column("segment", "int", "AHA segment 1-16"),
        Column("mbf_ml_min_g", "float", "blood flow of the pixel's wall layer (subendocardial or "
               "subepicardial half; their mean is the segment's; apical cap excluded)", "ml/min/g"),
    ),
))

PERFUSION_CURVES = register(TableSchema(
    name="perfusion_curves", group=GROUP, row="exam, state, curve and heartbeat",
    description=(
        "True concentration-time curves behind the perfusion images: the arterial input (curve "
        "`aif_blood`, `aif_plasma`) and each AHA segment's tissue curve (curve `segment_<n>`)."
    ),
    columns=(
        _EXAM, _CONDITION,
        Column("curve", "str", "aif_blood, aif_plasma or segment_<n>", nullable=False),
        FRAME,
        Column("time_s", "float", "acquisition time from the first frame", "s"),
        Column("concentration_mmol_l", "float", "gadolinium concentration", "mmol/l"),
    ),
))

TI_SCOUT = register(TableSchema(
    name="ti_scout", group=GROUP, row="TI scout series",
    description=(
        "Physical null points of each inversion-time scout, the frames two simulated observers "
        "chose ('after the inversion artefact has resolved'), the operator's TI for LGE and the "
        "TI that would have nulled myocardium when LGE was acquired (contrast washes out meanwhile)."
    ),
    columns=(
        _EXAM, optional(VIEW),
        Column("null_ti_ms", "float", "inversion time at which remote myocardium nulls", "ms"),
        Column("null_frame", "int", "scout frame whose TI is nearest null_ti_ms"),
        Column("blood_null_ti_ms", "float", "inversion time at which blood nulls", "ms"),
        Column("obs1_frame", "int", "frame observer 1 chose"),
        Column("obs2_frame", "int", "frame observer 2 chose"),
        Column("operator_ti_ms", "float", "TI the operator set for LGE", "ms"),
        Column("operator_error", "str", "right, short or long (operator's choice vs the null)"),
        Column("lge_null_ti_ms", "float", "myocardial null TI at the time of LGE", "ms"),
    ),
))

TISSUE_PIXELS = register(TableSchema(
    name="tissue_pixels", group=GROUP, row="pixel of scar or fibrosis in an LGE or T1-map image",
    description="Scar and fibrosis masks of the LGE and T1-map images, as pixel lists.",
    columns=(
        _EXAM,
        Column("sequence", "str", "lge or t1map", nullable=False),
        Column("kind", "str", "scar or fibrosis", nullable=False),
        optional(VIEW), SLICE_INDEX, *_ROW_COL,
    ),
))

CLINICAL_TRUTH_TABLES = (CLINICAL_EXAMS, SERIES, SEGMENTS, PERFUSION_PIXELS, PERFUSION_CURVES, TI_SCOUT,
                         TISSUE_PIXELS)
