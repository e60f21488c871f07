"""SAX landmark presence at every depth an image averages (benchmarks only, issue 16).

The truth marks a SAX landmark from the slice's centre plane (:func:`truth_rows.plane_truth`),
while the renderers average the anatomy at three depths across the slice (clinical:
:func:`clinical.render.through_plane_depths_mm`, the centre and +-1/3 of the thickness; legacy:
:data:`mesa.scanner.THROUGH_PLANE_SAMPLES_MM`).  On the slices where a landmark begins or ends
(the RV insertions' apical end, the annulus) the depths can disagree: the image then shows a blend
of the landmark's presence and absence, and the centre plane alone decides the truth.  This module
re-derives, for the clinical bSSFP cine (ED, ES), the clinical LGE or the legacy GRE cine (ED, ES)
of an exam, the truth's landmark set at each of those depths from the exam's own random streams
(the generators' planning functions, so nothing is rendered), and checks that the centre depth
reproduces the truth rows of record (a generator whose draw order changed fails loudly here).
:func:`cine_breathing_mm` re-derives, the same way, which clinical cine series were acquired while
the patient breathed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import LANDMARKS
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import cine, cohort, lge
from cmr_atlas.synth.clinical.render import from_centre_line, phase_cached, through_plane_depths_mm
from cmr_atlas.synth.mesa import cohort as mesa
from cmr_atlas.synth.mesa.scanner import THROUGH_PLANE_SAMPLES_MM

SEQUENCES = ("cine_ssfp", "lge", "cine_gre")
COLUMNS = ["exam_id", "slice_index", "frame", "landmark", "position_x_mm", "position_y_mm", "position_z_mm",
           "depths_present", "n_depths", "present_centre"]


def _sax_plans(sequence: str, seed: int, index: int, mi_fraction: float):
    """Exam label, heart, the SAX (plane, breath-hold shift, slice index, depths) and the truth's
    (frame, activation) of one exam's series of ``sequence``."""
    if sequence == "cine_gre":
        heart, acq = mesa.planned_acquisition(seed, index, mi_fraction)
        depths = np.asarray(THROUGH_PLANE_SAMPLES_MM, float)
        planes = [(p, acq.shifts_mm[("sax", k)], k, depths) for k, p in enumerate(acq.sax_planes)]
        frames = [(f, float(acq.activation[f])) for f in sorted({acq.ed_frame, acq.es_frame})]
        return mesa.exam_label(seed, index), heart, planes, frames
    if sequence not in SEQUENCES:
        raise ValueError(f"sequence {sequence!r}: one of {SEQUENCES}")
    rngs, ctx, heart = _clinical_exam(seed, index, mi_fraction)
    if sequence == "cine_ssfp":
        tm, plans = _cine_plans(rngs, ctx, heart)
        frames = [(f, float(tm.activation[f])) for f in sorted(tm.phases())]
    else:
        plans = lge.plan_planes(rngs["lge"], ctx)
        frames = [(0, lge.readout_activation(ctx))]
    planes = [(p.plane, p.shift_mm, p.sl, through_plane_depths_mm(p.plane.thickness_mm))
              for p in plans if p.view == "sax"]
    return ctx.label, heart, planes, frames


def _clinical_exam(seed: int, index: int, mi_fraction: float):
    """The random streams, context and (phase-cached) heart of exam ``index`` of clinical cohort ``seed``."""
    rngs = cohort.exam_streams(seed, index)
    ctx = cohort.make_context(seed, index, mi_fraction, rngs)
    return rngs, ctx, phase_cached(ctx.heart)


def _cine_plans(rngs: dict, ctx, heart):
    """The clinical bSSFP cine's timing and plane plans, drawn as the renderer draws them."""
    tm, _, _, plans = cine.draw_acquisition(rngs["cine"], dataclasses.replace(ctx, heart=heart))
    return tm, plans


BREATHING_COLUMNS = ["exam_id", "view", "slice_index", "breathing_mm",
                     "mean_shift_x_mm", "mean_shift_y_mm", "mean_shift_z_mm",
                     "lowfreq_shift_x_mm", "lowfreq_shift_y_mm", "lowfreq_shift_z_mm"]
LOWFREQ_HALF_WEIGHT = 0.05  # cycles per pixel along phase-encode at which a line weighs half the centre line


def breathing_shift_mm(motion_mm: np.ndarray, plane: SlicePlane) -> tuple[np.ndarray, np.ndarray]:
    """In-plane parts (patient mm) of the anatomy's displacement while a cine's k-space lines were
    filled (``motion_mm`` (R, 3), ``fftfreq`` order), relative to the centre line's place (the
    truth's): averaged over the lines, and averaged with the low spatial frequencies weighing more
    (1 / (1 + (ky / :data:`LOWFREQ_HALF_WEIGHT`)^2)), which carry most of an image's signal."""
    d = from_centre_line(motion_mm)
    w = 1.0 / (1.0 + (np.fft.fftfreq(len(d)) / LOWFREQ_HALF_WEIGHT) ** 2)
    return plane.in_plane_part(d.mean(axis=0)), plane.in_plane_part((d * w[:, None]).sum(axis=0) / w.sum())


def cine_breathing_mm(seed: int, index: int, mi_fraction: float) -> pd.DataFrame:
    """One row per bSSFP cine series (:data:`BREATHING_COLUMNS`) of exam ``index`` of the clinical
    cohort ``seed``: how far the anatomy moved while the series' k-space was filled (the range of
    :func:`cine.draw_breathing`'s displacement, mm; 0 where the breath was held), which blurs and
    ghosts the cine along phase-encode while the truth keeps the centre line's place, and the
    in-plane shifts of :func:`breathing_shift_mm` (0 where held)."""
    rngs, ctx, heart = _clinical_exam(seed, index, mi_fraction)
    _, plans = _cine_plans(rngs, ctx, heart)
    rows = []
    for p in plans:
        held = p.motion_mm is None
        mean, low = (np.zeros(3), np.zeros(3)) if held else breathing_shift_mm(p.motion_mm, p.plane)
        rows.append([ctx.label, p.view, p.sl, 0.0 if held else
                     float(np.ptp(np.linalg.norm(from_centre_line(p.motion_mm), axis=1))), *mean, *low])
    return pd.DataFrame(rows, columns=BREATHING_COLUMNS)


DEPTH_COLUMNS = ["exam_id", "slice_index", "frame", "landmark", "depth_index", "depth_mm", "n_depths",
                 "x_mm", "y_mm", "z_mm"]


def sax_landmarks_by_depth(sequence: str, seed: int, index: int, mi_fraction: float) -> pd.DataFrame:
    """One row per SAX slice, truth frame, rendered depth and landmark present at that depth
    (:data:`DEPTH_COLUMNS`) of exam ``index`` of the cohort ``seed`` of ``sequence``: where the
    anatomy ``depth_mm`` along the slice normal puts the landmark, as a point in the slice's plane
    (the in-plane place the image shows it at).  ``depth_mm`` 0 is the centre plane, the truth of
    record.  ``attrs``: the ``exam_id``, each slice's ``planes`` and ``n_depths``, the truth ``frames``."""
    label, heart, planes, frames = _sax_plans(sequence, seed, index, mi_fraction)
    rows = []
    for plane, shift_mm, sl, depths in planes:
        for k, d in enumerate(depths):
            _, marks = tr.plane_truth(label, heart, sequence, "sax", sl, plane, shift_mm + d * plane.normal,
                                      [(f, w, None) for f, w in frames], rv_endo=False)
            rows += [{"exam_id": label, "slice_index": sl, "frame": m["frame"], "landmark": m["landmark"],
                      "depth_index": k, "depth_mm": float(d), "n_depths": len(depths),
                      "x_mm": m["x_mm"], "y_mm": m["y_mm"], "z_mm": m["z_mm"]} for m in marks]
    out = pd.DataFrame(rows, columns=DEPTH_COLUMNS)
    out.attrs["exam_id"] = label
    out.attrs["planes"] = {sl: plane for plane, _, sl, _ in planes}
    out.attrs["frames"] = [f for f, _ in frames]
    out.attrs["n_depths"] = {sl: len(depths) for _, _, sl, depths in planes}
    return out


def sax_presence_by_depth(sequence: str, seed: int, index: int, mi_fraction: float,
                          truth_landmarks: pd.DataFrame | None = None) -> pd.DataFrame:
    """One row per SAX slice, truth frame and landmark (:data:`COLUMNS`) of exam ``index`` of the
    cohort ``seed`` of ``sequence`` (:data:`SEQUENCES`; ``cine_gre``: the legacy protocol's
    cohort): the plane's position (to match image slices by geometry), how many of the
    ``n_depths`` rendered depths have the landmark, and whether the centre plane (the truth of
    record) has it.  With ``truth_landmarks`` (the exam's truth table) the centre's presence is
    checked against the truth rows of that sequence and a mismatch raises ``ValueError``."""
    by_depth = sax_landmarks_by_depth(sequence, seed, index, mi_fraction)
    label = by_depth.attrs["exam_id"]
    count = by_depth.groupby(["slice_index", "frame", "landmark"]).size().to_dict()
    centre = set(zip(*(by_depth.loc[by_depth["depth_mm"] == 0.0, c] for c in ("slice_index", "frame", "landmark"))))
    rows = []
    for sl, plane in by_depth.attrs["planes"].items():
        for f in by_depth.attrs["frames"]:
            for name in LANDMARKS["sax"]:
                rows.append({"exam_id": label, "slice_index": sl, "frame": f, "landmark": name,
                             "position_x_mm": plane.position_mm[0], "position_y_mm": plane.position_mm[1],
                             "position_z_mm": plane.position_mm[2],
                             "depths_present": count.get((sl, f, name), 0), "n_depths": by_depth.attrs["n_depths"][sl],
                             "present_centre": (sl, f, name) in centre})
    out = pd.DataFrame(rows, columns=COLUMNS)
    if truth_landmarks is not None:
        _check(out, truth_landmarks, sequence)
    return out


def _check(out: pd.DataFrame, truth_landmarks: pd.DataFrame, sequence: str) -> None:
    t = truth_landmarks[(truth_landmarks["observer"] == "truth") & (truth_landmarks["view"] == "sax")
                        & (truth_landmarks["exam_id"] == out["exam_id"].iloc[0])]
    if "sequence" in t:
        t = t[t["sequence"] == sequence]
    t = t[t["frame"].isin(set(out["frame"]))]  # the cine's truth has every frame, these ED and ES
    have = set(zip(t["slice_index"], t["frame"], t["landmark"]))
    mine = set(zip(out.loc[out["present_centre"], "slice_index"], out.loc[out["present_centre"], "frame"],
                   out.loc[out["present_centre"], "landmark"]))
    if have != mine:
        raise ValueError(f"{out['exam_id'].iloc[0]}: the centre depth's landmarks differ from the truth rows "
                         f"({len(have ^ mine)} differ): has the {sequence} renderer's draw order changed?")
