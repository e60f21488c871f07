"""Stress and rest first-pass perfusion (dual sequence, Kellman et al., JCMR 2017) of a clinical exam.

Per state one series of 3 SAX slices (basal, mid, apical stack positions, 8-10 mm) x 60 heartbeats
and one low-resolution AIF series (one slice, short saturation delay) acquired in the same
heartbeats.  Each heartbeat: the AIF image right after the R wave, then the three slices one after
the other, each after its own saturation pulse, so each slice sits at its own cardiac phase.  The
first 2-3 frames are proton-density images (no saturation, 5 degree flip) for surface-coil and
signal normalisation.  Readout: saturation-recovery FLASH (TR 2.2-2.6 ms, TE 1.0-1.2 ms, flip
12-15 degrees, 10-20 pulses to the k-space centre, saturation delay 100-150 ms; AIF 5-20 ms and
2-4 pulses).  Contrast, kinetics and signal: :mod:`.perfusion_curves`; free breathing:
:mod:`.respiration`; fast moving-slice rendering: :mod:`.dynamic`.

Every image is given the concentrations of its own acquisition time (the AIF image's and each
slice's TriggerTime in each heartbeat; the truth curves are on the mid slice's times).

Noise: SNR0, the ratio of a fully relaxed signal (unit coil) to the noise SD of a myocardial
image's pixel (the AIF image's pixels: scaled by voxel volume and samples, :func:`relative_noise`),
is 75-130 at 1.5 T
and 1.4-1.8 times that at 3 T; with the coil field over the heart (0.5-1) pre-contrast myocardium
has an SNR of about 4-12 and peak myocardial enhancement 15-35 at 1.5 T (the order Kellman 2017
report; Cheng et al., JACC 2007 find roughly 1.5-2x the SNR/CNR at 3 T for the same protocol, of
which B1 inhomogeneity and the lower r1 give part back).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import CORRECTED_POSE_FRAME
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.anatomy import activation_curve
from cmr_atlas.synth.clinical import perfusion_curves as pc
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.clinical.dynamic import (N_COMPARTMENTS, N_LAYERS, MovingSlice, PhaseLayers,
                                               compartment_of_segment, contour_atlas)
from cmr_atlas.synth.clinical.protocol import (CONTRAST_AGENT, ClinicalExamContext, RenderedSeries, RenderResult,
                                               acquisition_time)
from cmr_atlas.synth.clinical.render import form_image, quantise
from cmr_atlas.synth.clinical.respiration import RespiratoryTrace, respiratory_trace
from cmr_atlas.synth.imaging import coil_sensitivity

SEQUENCE = "perfusion"
N_FRAMES = 60
LEVELS = ("basal", "mid", "apical")
# The "3 of 5" placement at 1/4, 1/2 and 3/4 of the stack: the basal slice stays below the base
# through systole (at 1/6 the base plane left it in up to 40 % of the frames).
STACK_FRACTIONS = {"basal": 0.25, "mid": 0.5, "apical": 0.75}
PD_FLIP_DEG = 5.0
SEQUENCE_NAME = {"SIEMENS": "*tfl2d1", "GE MEDICAL SYSTEMS": "fgre_sr", "Philips": "T1-TFE-SR"}
SNR0 = {1.5: (75.0, 130.0), 3.0: (75.0 * 1.4, 130.0 * 1.8)}
READOUT_MS = 60.0  # readout of one slice after its saturation delay (lines x TR)


@dataclass
class StatePlan:
    """Timing and readout of one perfusion state (stress or rest)."""

    state: str
    start_min: float  # series start, minutes after the stress bolus
    injection_s: float  # bolus injection, seconds after the series start
    rr_ms: np.ndarray  # (T,) R-R interval of each heartbeat
    beat_s: np.ndarray  # (T,) R wave of each heartbeat from the series start
    trigger_ms: np.ndarray  # (3,) k-space centre of each slice (basal, mid, apical) after the R wave
    aif_trigger_ms: float
    readouts: list[pc.Readout]  # per slice
    aif_readout: pc.Readout
    n_pd: int
    breathing: RespiratoryTrace

    @property
    def heart_rate_bpm(self) -> float:
        return float(60000.0 / np.mean(self.rr_ms))

    def corrected_pose(self) -> tuple[np.ndarray, float]:
        """(heart shift (3,) mm, in-plane scale) of the motion-corrected series: the median breathing
        position over the dynamic frames, the pose a motion correction aligns to."""
        return (np.median(self.breathing.shift_mm[self.n_pd:], axis=0),
                float(np.median(self.breathing.scale[self.n_pd:])))

    def frame_readout(self, readout: pc.Readout, f: int) -> pc.Readout:
        if f < self.n_pd:
            return pc.Readout(0.0, PD_FLIP_DEG, readout.tr_ms, readout.te_ms, readout.n_before_centre, True)
        return readout


def plan_state(ctx: ClinicalExamContext, rng: np.random.Generator, state: str) -> StatePlan:
    """Heart rate variability, slice timing in the R-R, readouts, breathing of one state."""
    ph = ctx.physiology
    hr = ph.heart_rate_stress_bpm if state == "stress" else ph.heart_rate_rest_bpm
    t0_min = ctx.timeline.injections[0 if state == "stress" else 1][0]
    pre_s = float(rng.uniform(2.0, 5.0))  # PD frames and a few baseline beats before the injection
    rr = 60000.0 / hr * np.clip(1.0 + rng.normal(0, 0.03 if state == "stress" else 0.05, N_FRAMES), 0.8, 1.2)
    beat_s = np.concatenate([[0.0], np.cumsum(rr[:-1])]) / 1000.0
    tr_ms, te_ms = float(rng.uniform(2.2, 2.6)), float(rng.uniform(1.0, 1.2))
    flip = float(rng.choice([12.0, 14.0, 15.0]))
    n_centre = int(rng.integers(10, 21))
    n_aif = int(rng.integers(2, 5))
    aif_first = float(rng.uniform(3.0, 12.0))  # AIF saturation delay to the k-space centre about 5-20 ms
    aif_trigger = 20.0 + aif_first + n_aif * tr_ms
    start = aif_trigger + 25.0  # the AIF image's remaining lines, then the first slice's saturation
    # saturation delay TS (saturation to the k-space centre) 100-150 ms, shortened when three slices
    # would not fit in 92 % of the R-R at a fast stress heart rate
    fit = (0.92 * rr.min() - start) / 3 - READOUT_MS + n_centre * tr_ms
    ts = float(np.clip(rng.uniform(100.0, 150.0), 70.0, max(fit, 70.0)))
    first = ts - n_centre * tr_ms  # to the first readout pulse
    slot = first + READOUT_MS  # each slice: saturation, delay, readout
    # acquisition order in the R-R: most sites read the basal slice last (in diastole, when the base
    # has come back up), some base first (then the basal slice may catch the outflow tract at ES)
    order = np.array([2, 1, 0]) if rng.random() < 0.6 else np.array([0, 1, 2])  # position of each level
    trigger = start + order * slot + ts
    readouts = [pc.Readout(first, flip, tr_ms, te_ms, n_centre) for _ in range(3)]
    aif_readout = pc.Readout(aif_first, flip, tr_ms, 0.8, n_aif)
    times = beat_s + trigger[1] / 1000.0  # the mid slice's time stands for the heartbeat
    return StatePlan(state, t0_min - pre_s / 60.0, pre_s, rr, beat_s, trigger, aif_trigger, readouts, aif_readout,
                     int(rng.choice([2, 3])), respiratory_trace(rng, times))


def perfusion_matrix(rng: np.random.Generator, low_res: bool) -> tuple[float, tuple[int, int], float]:
    """Pixel spacing (mm), (rows, cols) and thickness (mm) of a perfusion or AIF series."""
    if low_res:
        rows = int(rng.choice([48, 56, 64]))
        return float(rng.uniform(3.8, 5.5)), (rows, int(round(rows * 4 / 3))), 10.0
    cols = int(rng.choice([160, 176, 192]))
    rows = int(round(cols * rng.uniform(0.68, 0.75) / 4) * 4)
    return float(rng.uniform(2.0, 2.6)), (rows, cols), float(rng.choice([8.0, 10.0]))


def perfusion_plane(sax: SlicePlane, matrix: tuple[float, tuple[int, int], float]) -> SlicePlane:
    """The perfusion (or AIF) matrix at a SAX stack position: same place and orientation."""
    spacing, shape, thick = matrix
    return SlicePlane.centred(sax.centre_mm, sax.row_cosine, sax.col_cosine, (spacing, spacing), shape, thick)


@dataclass
class SliceTask:
    """One plane of one state: where it is, when in the R-R, how it is read."""

    level: str
    slice_index: int
    moving: MovingSlice
    trigger_ms: float
    readout: pc.Readout


def render(ctx: ClinicalExamContext, rng: np.random.Generator, observers: int,
           tissue_model: str = "distributed") -> RenderResult:
    """Stress and rest perfusion series and their AIF series, with truth; ``tissue_model``: the
    myocardium's kinetics (:func:`.perfusion_curves.state_curves`)."""
    geo = ctx.geometry
    idx = [geo.sax_level(lv, STACK_FRACTIONS) for lv in LEVELS]
    matrix = perfusion_matrix(rng, False)
    planes = [perfusion_plane(geo.sax_planes[i], matrix) for i in idx]
    aif_plane = perfusion_plane(geo.sax_planes[idx[1]], perfusion_matrix(rng, True))
    plans = [plan_state(ctx, rng, s) for s in ("stress", "rest")]
    reach = max(float(np.abs(p.breathing.shift_mm @ pl.normal).max()) for p in plans for pl in planes + [aif_plane])
    moving = [MovingSlice(ctx.heart, pl, reach) for pl in planes]
    aif_moving = MovingSlice(ctx.heart, aif_plane, reach)
    out = RenderResult()
    truth: dict[str, list] = {"contours": [], "landmarks": [], CT.PERFUSION_PIXELS.name: [],
                              CT.PERFUSION_CURVES.name: []}
    snr0 = float(rng.uniform(*SNR0[ctx.field_t]))
    subject_z = float(rng.standard_normal())  # shared by the stress and rest AIF peaks
    for plan in plans:
        curves = pc.state_curves(ctx, rng, plan.state, plan.beat_s + plan.trigger_ms[1] / 1000.0,
                                 plan.injection_s, plan.start_min, subject_z, tissue_model)
        tasks = [SliceTask(lv, i, m, t, r) for lv, i, m, t, r in zip(LEVELS, idx, moving, plan.trigger_ms, plan.readouts)]
        aif_task = SliceTask("mid", idx[1], aif_moving, plan.aif_trigger_ms, plan.aif_readout)
        for kind, group in (("perfusion", tasks), ("perfusion_aif", [aif_task])):
            series, parts = _render_series(ctx, rng, plan, curves, group, kind, snr0, planes[0])
            out.series.append(series)
            if kind == "perfusion":
                truth["contours"].append(tr.frame_from_contours(parts["contours"]).assign(condition=plan.state))
                truth["landmarks"].append(pd.DataFrame(parts["landmarks"]).assign(condition=plan.state))
                truth[CT.PERFUSION_PIXELS.name] += parts[CT.PERFUSION_PIXELS.name]
        truth[CT.PERFUSION_CURVES.name].append(_curve_rows(ctx, plan, curves))
    out.truth = _assemble_truth(ctx, rng, truth, planes, idx, observers)
    return out


def relative_noise(plane: SlicePlane, reference: SlicePlane) -> float:
    """Noise SD of one pixel of ``plane`` relative to one of ``reference`` (the myocardial series,
    whose pixels SNR0 describes), for the same signal per unit volume and readout bandwidth per
    pixel: SNR is proportional to the voxel volume and to the square root of the number of samples
    (Haacke et al., Magnetic Resonance Imaging: Physical Principles and Sequence Design, 1999,
    ch. 15).  The low-resolution AIF image (3.8-5.5 mm pixels, 10 mm, a quarter of the samples)
    has about twice the myocardial images' SNR per pixel."""
    def volume(p: SlicePlane) -> float:
        return float(np.prod(p.pixel_spacing_mm)) * p.thickness_mm

    return volume(reference) / volume(plane) * float(np.sqrt(np.prod(reference.shape) / np.prod(plane.shape)))


def _render_series(ctx, rng, plan: StatePlan, curves: pc.StateCurves, tasks: list[SliceTask], kind: str,
                   snr0: float, reference: SlicePlane) -> tuple[RenderedSeries, dict]:
    native = pc.native_properties(ctx)
    images, headers = [], []
    parts: dict[str, list] = {"contours": [], "landmarks": [], CT.PERFUSION_PIXELS.name: []}
    main_flip = tasks[0].readout.flip_deg
    for task in tasks:
        w = float(activation_curve(np.array([task.trigger_ms / np.mean(plan.rr_ms)]), ctx.heart.es_frac)[0])
        layers = task.moving.layers(w)
        plane = task.moving.plane
        centre = tg.axis_point_in_plane(ctx.heart, plane, np.zeros(3), w)
        scale = float(rng.uniform(1200.0, 1800.0)) / float(coil_sensitivity(centre[None], ctx.coil)[0])
        conc = curves.at(plan.beat_s + task.trigger_ms / 1000.0)  # this image's own time in each heartbeat
        pd_tables = pc.signal_tables(ctx, native, conc, plan.frame_readout(task.readout, 0), main_flip)
        sr_tables = pc.signal_tables(ctx, native, conc, task.readout, main_flip)
        noise_sd = relative_noise(plane, reference) / snr0
        stack = np.empty((N_FRAMES,) + plane.shape, dtype=np.uint16)
        for f in range(N_FRAMES):
            table = pd_tables[f] if f < plan.n_pd else sr_tables[f]
            sig = task.moving.frame(layers, table, plan.breathing.shift_mm[f], float(plan.breathing.scale[f]))
            img = form_image(sig, plane, ctx.coil, noise_sd, rng, kspace_fraction=0.75)
            stack[f] = quantise(img * scale)
        images.append(stack)
        headers.append(_frame_headers(plan, task))
        if kind == "perfusion":
            _slice_truth(ctx, plan, task, w, parts)
            parts[CT.PERFUSION_PIXELS.name].append(_pixel_truth(ctx, plan, task, layers, curves.layer_mbf))
    series = RenderedSeries(
        kind=kind, sequence=SEQUENCE, view="sax", description=_description(ctx, plan.state, kind, rng.random() < 0.15),
        start_min=plan.start_min + (0.0 if kind == "perfusion" else 1e-4), planes=[t.moving.plane for t in tasks],
        slice_indices=[t.slice_index for t in tasks], images=images,
        series_headers=_series_headers(ctx, tasks[0].readout), frame_headers=headers)
    return series, parts


def _description(ctx: ClinicalExamContext, state: str, kind: str, blank: bool) -> str:
    """SeriesDescription as sites write it; blank in some exams (ingest must not rely on it)."""
    if blank:
        return ""
    aif = "_AIF" if kind == "perfusion_aif" else ""
    names = {"SIEMENS": f"{state}_perf_dual{aif}", "GE MEDICAL SYSTEMS": f"{state.upper()} PERFUSION{aif}",
             "Philips": f"sBTFE_{state}_perf{aif}"}
    return names[ctx.vendor]


def _series_headers(ctx: ClinicalExamContext, readout: pc.Readout) -> dict:
    return {"ScanningSequence": "GR", "SequenceVariant": ["SK", "SP"], "SequenceName": SEQUENCE_NAME[ctx.vendor],
            "RepetitionTime": round(readout.tr_ms, 2), "EchoTime": round(readout.te_ms, 2),
            "FlipAngle": readout.flip_deg, "ContrastBolusAgent": CONTRAST_AGENT, "MRAcquisitionType": "2D"}


def _frame_headers(plan: StatePlan, task: SliceTask) -> list[dict]:
    out = []
    for f in range(N_FRAMES):
        t_s = plan.start_min * 60.0 + plan.beat_s[f] + task.trigger_ms / 1000.0
        h = {"TriggerTime": round(task.trigger_ms, 1), "AcquisitionTime": acquisition_time(t_s / 60.0),
             "NominalInterval": int(round(plan.rr_ms[f])), "HeartRate": int(round(60000.0 / plan.rr_ms[f]))}
        if f < plan.n_pd:
            h["FlipAngle"] = PD_FLIP_DEG
        out.append(h)
    return out


def _slice_truth(ctx, plan: StatePlan, task: SliceTask, w: float, parts: dict) -> None:
    """Contours and SAX landmarks of every frame (following the breathing), and of the series'
    motion-corrected pose (frame :data:`CORRECTED_POSE_FRAME`: the median breathing position over
    the dynamic frames), which the observers trace as the paper's readers traced the corrected
    series (:func:`_assemble_truth` keeps that pose for them only)."""
    plane = task.moving.plane
    offsets = plan.breathing.shift_mm @ plane.normal
    atlas = contour_atlas(ctx.heart, plane, w, float(offsets.min()), float(offsets.max()))
    poses = [(f, plan.breathing.shift_mm[f], float(plan.breathing.scale[f])) for f in range(N_FRAMES)]
    poses.append((CORRECTED_POSE_FRAME, *plan.corrected_pose()))
    for f, shift, scale in poses:
        contours, ins = atlas.at(float(shift @ plane.normal))
        for surface, pts in contours.items():
            moved = task.moving.move_points(pts, shift, scale)
            parts["contours"].append(tr.contour_rows(ctx.label, "truth", SEQUENCE, "sax", task.slice_index, f, None,
                                                     surface, moved, plane))
            if surface == "endo":
                c2 = tg.polygon_centroid(plane.in_plane_mm(moved))
                c3 = plane.position_mm + c2[0] * plane.row_cosine + c2[1] * plane.col_cosine
                parts["landmarks"].append(tr.landmark_row(ctx.label, "truth", SEQUENCE, "sax", task.slice_index, f,
                                                          None, "lv_centre", c3, plane))
        moved_ins = [task.moving.move_points(p[None], shift, scale)[0] for p in ins]
        for name, p in tr.name_pair(ctx.heart, "sax", moved_ins, shift).items():
            parts["landmarks"].append(tr.landmark_row(ctx.label, "truth", SEQUENCE, "sax", task.slice_index, f, None,
                                                      name, p, plane))


def _pixel_truth(ctx, plan: StatePlan, task: SliceTask, layers: PhaseLayers, layer_mbf: np.ndarray) -> pd.DataFrame:
    """Myocardial pixels (LV myocardium fraction >= 0.5) of the reference frame, their AHA segment
    and wall layer (the compartment covering most of the pixel) and that layer's MBF."""
    shift, scale = plan.breathing.shift_mm[0], float(plan.breathing.scale[0])
    zero = np.zeros(task.moving.plane.shape)
    fractions = []
    for s in range(1, 18):
        for layer in range(N_LAYERS):
            table = np.zeros(N_COMPARTMENTS)
            table[compartment_of_segment(s, layer)] = 1.0
            fractions.append(task.moving.frame(layers, table, shift, scale, background=zero))
    fr = np.stack(fractions)
    best = np.argmax(fr, axis=0)
    seg, layer = best // N_LAYERS + 1, best % N_LAYERS
    keep = (fr.sum(axis=0) >= 0.5) & (seg <= 16)
    rows, cols = np.nonzero(keep)
    return pd.DataFrame({"exam_id": ctx.label, "condition": plan.state, "slice_index": task.slice_index,
                         "level": task.level, "row_px": rows.astype("int64"), "col_px": cols.astype("int64"),
                         "segment": seg[keep].astype("int64"), "mbf_ml_min_g": layer_mbf[seg[keep] - 1, layer[keep]]})


def _curve_rows(ctx: ClinicalExamContext, plan: StatePlan, curves: pc.StateCurves) -> pd.DataFrame:
    t = curves.times_s - curves.times_s[0]
    named = {"aif_blood": curves.blood_lv, "aif_plasma": curves.plasma_lv}
    named.update({f"segment_{s}": curves.segment(s) for s in range(1, 17)})
    return pd.concat([pd.DataFrame({"exam_id": ctx.label, "condition": plan.state, "curve": name,
                                    "frame": np.arange(N_FRAMES, dtype="int64"), "time_s": t,
                                    "concentration_mmol_l": y}) for name, y in named.items()], ignore_index=True)


def _assemble_truth(ctx, rng, truth: dict, planes: list[SlicePlane], idx: list[int], observers: int) -> dict:
    """Truth tables of both states.  Contour and landmark rows carry the ``condition`` (stress and
    rest share sequence, slice and frame numbers)."""
    contours, marks = list(truth["contours"]), list(truth["landmarks"])
    plane_of = {("sax", i): p for i, p in zip(idx, planes)}
    for c, m in zip(truth["contours"], truth["landmarks"]):
        if observers <= 0:
            break
        # observers trace each slice on the motion-corrected series, as the paper's readers did
        oc, om = tr.observer_truth(rng, c[c.frame == CORRECTED_POSE_FRAME], m[m.frame == CORRECTED_POSE_FRAME],
                                   plane_of, observers, all_frames=True)
        contours.append(oc)
        marks.append(om)
    # the truth stays per acquired frame (its consumers follow the frames); the pose was the observers'
    contours, marks = pd.concat(contours, ignore_index=True), pd.concat(marks, ignore_index=True)
    contours = contours[(contours.observer != "truth") | (contours.frame != CORRECTED_POSE_FRAME)]
    marks = marks[(marks.observer != "truth") | (marks.frame != CORRECTED_POSE_FRAME)]
    return {"contours": contours.reset_index(drop=True), "landmarks": marks.reset_index(drop=True),
            CT.PERFUSION_PIXELS.name: pd.concat(truth[CT.PERFUSION_PIXELS.name], ignore_index=True),
            CT.PERFUSION_CURVES.name: pd.concat(truth[CT.PERFUSION_CURVES.name], ignore_index=True)}
