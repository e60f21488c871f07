"""Tables written by ``cmr-atlas fit`` and their assembly from :class:`ExamFit` results."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.cine.lvmodel.cycle import CycleFit
from cmr_atlas.cine.lvmodel.exam import ExamFit
from cmr_atlas.cine.motion import MOTION_SHAPES, motion_shape_rows, phase_normalised
from cmr_atlas.cine.volume_curves import FUNCTION_INDICES, VOLUME_CURVES, curve_rows, indices_table
from cmr_atlas.cine.lvmodel.measures import MYOCARDIAL_DENSITY_G_PER_ML, N_GRID
from cmr_atlas.core.columns import (EXAM_ID, GUIDE_POINT_SOURCE, LOCAL_XYZ_MM, PHASE, SHIFT_MM, SLICE_INDEX, SURFACE,
                                    VIEW)
from cmr_atlas.core.tables import Column, TableSchema, register

_KEY = (EXAM_ID, GUIDE_POINT_SOURCE)

SHAPES = register(TableSchema(
    name="shapes", row="surface point",
    description=(
        f"Fitted LV surfaces sampled on a fixed {N_GRID} x {N_GRID} grid per surface (ED/ES x "
        "endo/epi) in the model's local frame (origin at the mitral-valve centroid, +z towards "
        "the apex, +x towards the septum; `model_frames` maps back to patient coordinates). "
        f"point_index = i_mu * {N_GRID} + i_theta; i_mu 0 = apex (the whole ring coincides), "
        f"i_mu {N_GRID - 1} = on the mitral-valve plane; theta = 2 pi i_theta / {N_GRID}, 0 at "
        "the septum. Triangles: `cmr_atlas.cine.lvmodel.measures.triangles()`."
    ),
    columns=(
        *_KEY,
        PHASE,
        SURFACE,
        Column("point_index", "int", "grid index", nullable=False),
        *LOCAL_XYZ_MM,
    ),
))

MODEL_FRAMES = register(TableSchema(
    name="model_frames", row="exam, source and phase",
    description=(
        "Local frame of each fitted model: patient = origin + R @ local (R's columns are the "
        "local axes in patient coordinates), the prolate focal length, and the phase's base "
        "(mitral-valve) plane in local coordinates. ED and ES share the ED landmarks' frame so "
        "that motion between them is kept."
    ),
    columns=(
        *_KEY,
        PHASE,
        Column("origin_x_mm", "float", "frame origin, patient x", "mm"),
        Column("origin_y_mm", "float", "frame origin, patient y", "mm"),
        Column("origin_z_mm", "float", "frame origin, patient z", "mm"),
        *(Column(f"r{i}{j}", "float", f"rotation matrix entry row {i} column {j}")
          for i in range(1, 4) for j in range(1, 4)),
        Column("focal_mm", "float", "prolate spheroidal focal length", "mm"),
        Column("base_x_mm", "float", "a point of the base plane, local x", "mm"),
        Column("base_y_mm", "float", "a point of the base plane, local y", "mm"),
        Column("base_z_mm", "float", "a point of the base plane, local z", "mm"),
        Column("base_nx", "float", "base-plane unit normal (towards the apex), local x"),
        Column("base_ny", "float", "base-plane unit normal, local y"),
        Column("base_nz", "float", "base-plane unit normal, local z"),
    ),
))

SLICE_SHIFTS = register(TableSchema(
    name="slice_shifts", row="image plane",
    description=(
        "Estimated breath-hold displacement of each slice with contours, in patient coordinates "
        "(same sign as the synthetic truth: the heart appeared at p + d, corrected contour = "
        "observed - d). In-plane components only, unless config fit.through_plane (then SAX slices also have a component along the plane normal, from the SAX/LAX contour crossings, summing to zero over the stack; sources without LAX contours keep none). Reference (default `sax_mean`): the SAX "
        "shifts sum to zero and the LAX views get their own shifts; with `--shift-reference "
        "lax` the LAX views are fixed (listed with zero). All zero with --no-breath-hold."
    ),
    columns=(
        *_KEY,
        VIEW,
        SLICE_INDEX,
        *SHIFT_MM,
    ),
))

MEASURES = register(TableSchema(
    name="measures", row="exam, source and method",
    description=(
        "Clinical LV measures. method `model`: volumes enclosed by the fitted surfaces below the "
        "mitral-valve plane; method `slices`: slice summation of SAX contour areas x slice "
        "spacing (thickness + gap). Mass = ED myocardial volume x 1.05 g/ml. Indexed values are "
        "null in the per-shard tables and divided by the covariates' BSA in the cohort table. "
        "Failures are rows with status `failed`."
    ),
    columns=(
        *_KEY,
        Column("method", "str", "model or slices", nullable=False),
        Column("edv_ml", "float", "end-diastolic cavity volume", "ml"),
        Column("esv_ml", "float", "end-systolic cavity volume", "ml"),
        Column("sv_ml", "float", "stroke volume", "ml"),
        Column("ef_pct", "float", "ejection fraction", "%"),
        Column("lv_mass_g", "float", "LV myocardial mass at ED", "g"),
        Column("edvi", "float", "EDV / BSA (cohort table only; null where BSA is unknown)", "ml/m2"),
        Column("esvi", "float", "ESV / BSA (cohort table only; null where BSA is unknown)", "ml/m2"),
        Column("lvmi", "float", "LV mass / BSA (cohort table only; null where BSA is unknown)", "g/m2"),
        Column("rms_residual_mm", "float", "RMS data-to-surface distance (model only)", "mm"),
        Column("status", "str", "ok, partial or failed", nullable=False),
        Column("qc_reason", "str", "why not ok (e.g. missing_landmarks: mv), or a warning"),
    ),
))

WALL_THICKNESS = register(TableSchema(
    name="wall_thickness", row="exam, source, phase and AHA segment",
    description=(
        "Mean wall thickness per AHA segment from the fitted model: distance from endocardial "
        "samples to the epicardium; segments by thirds of the base-apex length and sectors from "
        "the septum (RV insertion points), segment 17 = apical cap (docs/lvmodel.md)."
    ),
    columns=(
        *_KEY,
        PHASE,
        Column("aha_segment", "int", "AHA segment 1..17", nullable=False),
        Column("thickness_mm", "float", "mean wall thickness", "mm"),
    ),
))

TABLES = {"shapes": SHAPES, "model_frames": MODEL_FRAMES, "slice_shifts": SLICE_SHIFTS,
          "measures": MEASURES, "wall_thickness": WALL_THICKNESS}
CYCLE_TABLES = {"volume_curves": VOLUME_CURVES, "function_indices": FUNCTION_INDICES, "motion_shapes": MOTION_SHAPES}


def tables_from_cycles(cycles: list[CycleFit]) -> dict[str, pd.DataFrame]:
    """``volume_curves`` (both methods of every per-frame fit), their ``function_indices`` and the
    phase-normalised trajectories ``motion_shapes`` (fits with surfaces and ED/ES anchors)."""
    parts = [curve_rows(c.exam_id, c.source, m, c.frames, c.time_ms, v)
             for c in cycles for m, v in sorted(c.volumes.items()) if len(v)]
    curves = pd.concat(parts, ignore_index=True) if parts else VOLUME_CURVES.empty()
    traj = []
    for c in cycles:
        t = None if c.ed_frame is None or c.es_frame is None else phase_normalised(c, c.ed_frame, c.es_frame)
        if t is not None:
            traj.append(motion_shape_rows(c.exam_id, c.source, t))
    shapes = pd.concat(traj, ignore_index=True) if traj else MOTION_SHAPES.empty()
    return {"volume_curves": curves, "function_indices": indices_table(curves), "motion_shapes": shapes}


def _measure_row(fit: ExamFit, method: str) -> dict:
    v = fit.volumes.get(method, {})
    edv, esv = v.get("ED_cavity_ml"), v.get("ES_cavity_ml")
    myo = v.get("ED_myo_ml")
    ok = lambda a: a is not None and np.isfinite(a)  # noqa: E731
    sv = edv - esv if ok(edv) and ok(esv) else None
    ef = 100.0 * sv / edv if sv is not None and edv > 0 else None
    if method == "model":
        status, reason = fit.status, fit.qc_reason
        rms = fit.rms_residual_mm
    else:
        status = "ok" if ok(edv) else "failed"
        reason = None if ok(edv) else "no_sax_contours"
        rms = None
    return {
        "exam_id": fit.exam_id, "source": fit.source, "method": method,
        "edv_ml": edv if ok(edv) else None, "esv_ml": esv if ok(esv) else None, "sv_ml": sv,
        "ef_pct": ef, "lv_mass_g": MYOCARDIAL_DENSITY_G_PER_ML * myo if ok(myo) else None,
        "edvi": None, "esvi": None, "lvmi": None, "rms_residual_mm": rms,
        "status": status, "qc_reason": reason,
    }


def tables_from_fits(fits: list[ExamFit]) -> dict[str, pd.DataFrame]:
    """The five output tables for a list of exam fits."""
    shapes, frames, shifts, meas, thick = [], [], [], [], []
    for f in fits:
        key = {"exam_id": f.exam_id, "source": f.source}
        for (phase, surf), pts in f.surfaces.items():
            shapes.append(pd.DataFrame({
                **key, "phase": phase, "surface": surf, "point_index": np.arange(len(pts)),
                "x_mm": pts[:, 0], "y_mm": pts[:, 1], "z_mm": pts[:, 2],
            }))
        if f.frame is not None:
            for phase, (bp, bn) in f.planes.items():
                row = {**key, "phase": phase,
                       **dict(zip(("origin_x_mm", "origin_y_mm", "origin_z_mm"), f.frame.origin)),
                       **{f"r{i + 1}{j + 1}": f.frame.rotation[i, j] for i in range(3) for j in range(3)},
                       "focal_mm": f.frame.focal_mm,
                       **dict(zip(("base_x_mm", "base_y_mm", "base_z_mm"), bp)),
                       **dict(zip(("base_nx", "base_ny", "base_nz"), bn))}
                frames.append(row)
        for view, s, d in f.shifts:
            shifts.append({**key, "view": view, "slice_index": int(s),
                           "dx_mm": d[0], "dy_mm": d[1], "dz_mm": d[2]})
        meas.append(_measure_row(f, "model"))
        if "slices" in f.volumes:
            meas.append(_measure_row(f, "slices"))
        for phase, t in f.thickness.items():
            for seg in range(17):
                thick.append({**key, "phase": phase, "aha_segment": seg + 1,
                              "thickness_mm": float(t[seg]) if np.isfinite(t[seg]) else None})

    def frame(rows, schema, concat=False):
        if not rows:
            return schema.empty()
        df = pd.concat(rows, ignore_index=True) if concat else pd.DataFrame(rows)
        return df[schema.column_names]

    return {
        "shapes": frame(shapes, SHAPES, concat=True),
        "model_frames": frame(frames, MODEL_FRAMES),
        "slice_shifts": frame(shifts, SLICE_SHIFTS),
        "measures": frame(meas, MEASURES),
        "wall_thickness": frame(thick, WALL_THICKNESS),
    }

