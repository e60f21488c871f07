"""Synthetic perfusion exams in memory, as the perfusion stage sees them, with what it must find.

For training the segmentation network, the tests and the benchmarks: the clinical generator's
perfusion renderer (:mod:`cmr_atlas.synth.clinical.perfusion`) is run on its own, its series turned
into :class:`~cmr_atlas.core.seriescache.SeriesImages` exactly as ingest would cache them (pixels,
per-frame FlipAngle and AcquisitionTime, planes), which skips the DICOM round trip (seconds per
exam).  Beside the generator's truth tables it gives label maps (background, LV cavity, LV
myocardium, RV cavity) of every slice at the heart's median breathing position over the dynamic
frames, the position a motion-corrected series is aligned to; they come from the renderer's own
moving slices, recorded while it runs.  No pipeline stage imports this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth.clinical import cohort as C
from cmr_atlas.synth.clinical import perfusion as P
from cmr_atlas.synth.clinical.dynamic import SEGMENT_BASE, contour_atlas

BACKGROUND, CAVITY, MYOCARDIUM, RV = 0, 1, 2, 3
CLASS_NAMES = ("background", "lv_cavity", "myocardium", "rv_cavity")


@dataclass
class SyntheticPerfusion:
    """One exam's perfusion series (stress, stress AIF, rest, rest AIF) and what is true of them."""

    exam_id: str
    series: list[SeriesImages]
    truth: dict[str, pd.DataFrame]
    labels: dict[tuple[str, int], np.ndarray]  # (condition, slice_index) -> (R, C) class map
    shifts_mm: dict[str, np.ndarray]  # condition -> (T, 3) true heart displacement per frame
    hematocrit: float
    segment_mbf: dict[str, np.ndarray]  # condition -> (16,) true MBF of AHA segments 1-16, ml/min/g
    # (condition, slice_index) -> {"endo", "epi"}: (N, 2) true contours at the label maps' pose
    contours: dict[tuple[str, int], dict[str, np.ndarray]] = field(default_factory=dict)
    # (condition, slice_index) -> (3, R, C) float32 :func:`class_fractions` the label maps come from
    fractions: dict[tuple[str, int], np.ndarray] = field(default_factory=dict)


def _seconds(hhmmss: str) -> float:
    return int(hhmmss[:2]) * 3600 + int(hhmmss[2:4]) * 60 + float(hhmmss[4:])


def series_images(exam_id: str, index: int, rs, condition: str, field_t: float) -> SeriesImages:
    """A rendered perfusion or AIF series as the series cache holds it."""
    pixels = np.stack(rs.images).astype(np.float32)
    n_p, n_f = pixels.shape[:2]
    main_flip = float(rs.series_headers["FlipAngle"])
    acq = np.array([[_seconds(h["AcquisitionTime"]) for h in plane] for plane in rs.frame_headers])
    trig = np.array([[float(h["TriggerTime"]) for h in plane] for plane in rs.frame_headers])
    flip = np.array([[float(h.get("FlipAngle", main_flip)) for h in plane] for plane in rs.frame_headers])
    hr = float(np.median([h["HeartRate"] for h in rs.frame_headers[0]]))
    return SeriesImages(exam_id=exam_id, series_index=index, series_number=index + 1, kind=rs.kind,
                        sequence="perfusion", stress_rest=condition, post_contrast=True, pixels=pixels,
                        n_frames=np.full(n_p, n_f), planes=list(rs.planes), acquisition_time_s=acq,
                        trigger_time_ms=trig, inversion_time_ms=np.full((n_p, n_f), np.nan),
                        flip_angle_deg=flip, field_strength_t=field_t, heart_rate_bpm=hr)


def _recording_render(ctx, rng, observers: int, tissue_model: str = "distributed"):
    """Run the renderer, keeping its moving slices and state plans (label maps need them)."""
    plans, movings = [], []
    plan_state, moving_slice = P.plan_state, P.MovingSlice

    def recording_plan(*args, **kwargs):
        plans.append(plan_state(*args, **kwargs))
        return plans[-1]

    class RecordingSlice(moving_slice):
        def __post_init__(self) -> None:
            super().__post_init__()
            self._layers_memo = {}
            movings.append(self)

        def layers(self, w: float):  # the label maps reuse the renderer's (costly) phase layers
            if w not in self._layers_memo:
                self._layers_memo[w] = super().layers(w)
            return self._layers_memo[w]

    P.plan_state, P.MovingSlice = recording_plan, RecordingSlice
    try:
        out = P.render(ctx, rng, observers, tissue_model)
    finally:
        P.plan_state, P.MovingSlice = plan_state, moving_slice
    return out, plans, movings


def _label_pose(ctx, plan, trigger_ms: float) -> tuple[float, np.ndarray, float]:
    """(activation, heart shift (3,) mm, in-plane scale) of a slice's label map: its trigger
    time's phase at the median heart position of the dynamic frames."""
    w = float(an.activation_curve(np.array([trigger_ms / np.mean(plan.rr_ms)]), ctx.heart.es_frac)[0])
    shift, scale = plan.corrected_pose()
    return w, shift, scale


def class_fractions(ctx, moving, plan, trigger_ms: float) -> np.ndarray:
    """(3, R, C) fraction of each pixel that is LV cavity, LV myocardium, RV cavity (through-plane
    partial volume over the slice profile) at the label map's pose."""
    w, shift, scale = _label_pose(ctx, plan, trigger_ms)
    layers = moving.layers(w)
    zero = np.zeros(moving.plane.shape)
    fractions = []
    for classes in ([an.LV_BLOOD], [an.LV_MYO] + list(range(SEGMENT_BASE, P.N_COMPARTMENTS)), [an.RV_BLOOD]):
        table = np.zeros(P.N_COMPARTMENTS)
        table[classes] = 1.0
        fractions.append(moving.frame(layers, table, shift, scale, background=zero))
    return np.stack(fractions)


def label_map(fractions: np.ndarray) -> np.ndarray:
    """Class map of one slice from its :func:`class_fractions`: the class covering at least half
    of a pixel, background elsewhere."""
    return np.where(fractions.max(axis=0) >= 0.5, np.argmax(fractions, axis=0) + 1, BACKGROUND).astype(np.int8)


def label_contours(ctx, moving, plan, trigger_ms: float) -> dict[str, np.ndarray]:
    """True endocardial and epicardial contours ({"endo", "epi"}: (N, 2) row, col pixels, closed)
    in the slice's mid plane at the label map's pose (a surface the plane misses is left out)."""
    w, shift, scale = _label_pose(ctx, plan, trigger_ms)
    plane = moving.plane
    offset = float(shift @ plane.normal)
    contours, _ = contour_atlas(ctx.heart, plane, w, offset, offset).at(offset)
    return {surface: plane.patient_to_pixel(moving.move_points(pts, shift, scale))[0]
            for surface, pts in contours.items()}


def generate(seed: int, index: int, observers: int = 2, with_labels: bool = True,
             tissue_model: str = "distributed", with_contours: bool = True) -> SyntheticPerfusion:
    """Perfusion series, truth and label maps of clinical exam ``index`` of cohort ``seed`` (the
    same exam ``cmr-atlas synth --protocol clinical`` writes; only its perfusion series);
    ``tissue_model="2cxm"``: the same exam with the generator's former myocardial kinetics."""
    rngs = C.exam_streams(seed, index)
    ctx = C.make_context(seed, index, rngs=rngs)
    out, plans, movings = _recording_render(ctx, rngs["perfusion"], observers, tissue_model)
    conditions = [plan.state for plan in plans for _ in range(2)]  # perfusion then AIF per state
    series = [series_images(ctx.label, k, rs, cond, ctx.field_t) for k, (rs, cond) in
              enumerate(zip(out.series, conditions))]
    labels, contours, fractions = {}, {}, {}
    if with_labels:
        for plan in plans:
            for k, (moving, si) in enumerate(zip(movings[:3], out.series[0].slice_indices)):
                fractions[(plan.state, si)] = class_fractions(ctx, moving, plan, float(plan.trigger_ms[k])).astype(np.float32)
                labels[(plan.state, si)] = label_map(fractions[(plan.state, si)])
                if with_contours:
                    contours[(plan.state, si)] = label_contours(ctx, moving, plan, float(plan.trigger_ms[k]))
    return SyntheticPerfusion(ctx.label, series, out.truth, labels,
                              {plan.state: plan.breathing.shift_mm for plan in plans}, ctx.physiology.hematocrit,
                              {"stress": np.asarray(ctx.physiology.mbf_stress, float),
                               "rest": np.asarray(ctx.physiology.mbf_rest, float)}, contours, fractions)
