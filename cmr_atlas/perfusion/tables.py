"""Output tables of the perfusion pipeline (per shard under ``shards/<shard>/``, aggregated at the
top of the results folder).  No identifiers: exams by their keyed ``exam_id``, series by
``series_index`` (the exam's ``series`` table row)."""

from __future__ import annotations

from cmr_atlas.core.columns import EXAM_ID
from cmr_atlas.core.tables import Column, TableSchema, register

_CONDITION = Column("condition", "str", "stress or rest", nullable=False)
_SOURCE = Column("source", "str", "auto (CNN segmentation) or manual (the annotations' contours)", nullable=False)
_SERIES = Column("series_index", "int", "the perfusion series' row in the exam's series table")

PERFUSION_SERIES = register(TableSchema(
    name="perfusion_series", row="exam, condition and slice (one row per series when it is not quantified)",
    description="Quality of each perfusion slice: frames, motion correction, AIF, segmentation, and why a "
                "slice or series was not quantified.",
    columns=(
        EXAM_ID, _CONDITION, _SERIES,
        Column("slice", "int", "slice position basal -> apical (0 = most basal); null for a series-level reason"),
        Column("level", "str", "basal, mid or apical"),
        Column("n_frames", "int", "frames of the slice (heartbeats), proton-density frames included"),
        Column("n_pd", "int", "proton-density frames (lower per-frame flip angle)"),
        Column("rr_s", "float", "median heartbeat interval of the frames", "s"),
        Column("motion_mean_mm", "float", "mean in-plane displacement removed by the motion correction", "mm"),
        Column("motion_max_mm", "float", "largest in-plane displacement removed", "mm"),
        Column("residual_motion_mm", "float", "mean update of the last registration pass (convergence; "
               "true residual motion is measured against the generator by benchmarks/perfusion.py)", "mm"),
        Column("aif_peak_mmol_l", "float", "peak of the whole-blood AIF", "mmol/l"),
        Column("myocardium_pixels", "int", "pixels segmented as LV myocardium (auto)"),
        Column("rv_insertion", "str", "network (the insertion network on this slice, config perfusion.insertions; averaged with "
               "the same slice's other condition where it found both there too, perfusion.fuse_insertions), "
               "found (this slice's RV contact, the wall rule), borrowed (a neighbour slice's) or none"),
        Column("qc_reason", "str", "why the slice or series is not quantified, or a caveat (e.g. no reserve); "
               "null = fine"),
    ),
))

PERFUSION_SEGMENTS = register(TableSchema(
    name="perfusion_segments", row="exam, condition, AHA segment and source",
    description="Myocardial blood flow per AHA segment (1-16) from the sector's mean tissue curve.",
    columns=(
        EXAM_ID, _CONDITION,
        Column("aha_segment", "int", "AHA segment 1-16", nullable=False),
        Column("mbf_ml_min_g", "float", "MBF by the configured estimator (perfusion.model)", "ml/min/g"),
        Column("mbf_fermi_ml_min_g", "float", "MBF by Fermi-constrained deconvolution", "ml/min/g"),
        Column("mbf_2cxm_ml_min_g", "float", "MBF by the two-compartment exchange fit", "ml/min/g"),
        Column("n_pixels", "int", "myocardial pixels of the sector"),
        _SOURCE,
        Column("qc_reason", "str", "why the segment is left out of perfusion_global: the configured estimator's "
               "MBF implausible (range, fit at its bound, poor fit, blood in the sector; cmr_atlas.perfusion.qc), "
               "else the other estimator's (prefixed with its name); null = plausible"),
        Column("qc_reason_fermi", "str", "the same check of mbf_fermi_ml_min_g"),
        Column("qc_reason_2cxm", "str", "the same check of mbf_2cxm_ml_min_g"),
    ),
))

PERFUSION_GLOBAL = register(TableSchema(
    name="perfusion_global", row="exam and source",
    description="Global MBF (mean of the plausible segments) at stress and rest and the myocardial perfusion reserve.",
    columns=(
        EXAM_ID, _SOURCE,
        Column("mbf_stress_ml_min_g", "float", "global stress MBF", "ml/min/g"),
        Column("mbf_rest_ml_min_g", "float", "global rest MBF", "ml/min/g"),
        Column("reserve", "float", "stress / rest global MBF (null when the two series do not image the same slices)"),
        Column("n_segments_stress", "int", "plausible segments averaged at stress"),
        Column("n_segments_rest", "int", "plausible segments averaged at rest"),
        Column("qc_reason", "str", "segments left out as implausible, or a global MBF or reserve outside its "
               "plausible range (cmr_atlas.perfusion.qc); null = plausible"),
    ),
))

AIF_CURVES = register(TableSchema(
    name="aif_curves", row="exam, condition and frame",
    description="Arterial input function (whole-blood Gd) from the AIF series, on its own frame times.",
    columns=(
        EXAM_ID, _CONDITION,
        Column("frame", "int", "dynamic frame (proton-density frames not counted)", nullable=False),
        Column("time_s", "float", "from the perfusion series' first frame", "s"),
        Column("concentration_mmol_l", "float", "whole-blood gadolinium", "mmol/l"),
    ),
))

PERFUSION_TABLES = (PERFUSION_SERIES, PERFUSION_SEGMENTS, PERFUSION_GLOBAL, AIF_CURVES)
