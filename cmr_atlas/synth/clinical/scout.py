"""Inversion-time scout (cine IR / "TI scout") of a clinical exam, about 10 minutes after contrast.

Acquisition (Bahrami et al., MRM 2019, the STEMI-Net paper): one mid SAX slice (sometimes also a
4-chamber one, its own series), 30 frames, 128 x 128, 8 mm, TR 4.5 ms, TE 2 ms, flip 10 degrees,
inversion times from about 90 to 1,300 ms, temporal resolution 24-36 ms.  An ECG-triggered
non-selective inversion is followed by a segmented FLASH readout: frame k's segment of k-space
lines is read around TI_k; segments of the same frame are collected over successive inversions,
one every ``inversion_rr`` (2-3) heartbeats, so frames span one and a half cardiac cycles (each
frame at its own cardiac phase) and the breath-hold lasts 10-20 s (:func:`breath_hold_s`).

Signal (derivation; :func:`look_locker_model`).  During the readout Mz relaxes with the apparent
rate ``1/T1* = 1/T1 - d ln(cos a_eff) / TR`` towards ``A = T1*/T1`` (Deichmann & Haase, JMR 1992),
where ``d`` is the readout duty cycle (a segment of 6-8 lines x 4.5 ms = 27-36 ms every 41 ms
frame interval, plus the dead time after the R wave: d = 0.6-0.8) and ``a_eff`` the flip angle the
myocardium really sees (B1 0.85-1.0 at 1.5 T, 0.7-0.95 at 3 T; a 2D slice profile averages to
about 0.85 of nominal).  Each inversion starts from ``m0``, the magnetisation left by the previous
cycle (readout to the last frame, then free recovery until the next inversion), found as the
fixed point ``m0 = [1 - (1 - A (1 - E*)) Er] / (1 + e E* Er)`` (``E* = exp(-T_read/T1*)``,
``Er = exp(-T_rec/T1)``, ``e`` the inversion efficiency); then ``S(TI) = |A - (A + e m0)
exp(-TI/T1*)|`` and the null is at ``T1* ln((A + e m0)/A)``.  The continuous-readout textbook case
(d = 1, a = 10 deg, m0 = 1) nulls myocardium of T1 450 ms at about 220 ms; the duty cycle and the
lower effective flip lengthen, the incomplete recovery shortens it.  Post-contrast T1 comes from
the plasma clearance of every earlier injection (:meth:`Timeline.blood_concentration_mmol_l`,
Weinmann bi-exponential) and the ECV two-space model (:func:`physiology.post_contrast_t1_ms`).
Calibrated over subjects to a myocardial null of typically 250-350 ms (the clinical issue; the
median of the test cohort is printed by ``tests/synth/clinical/test_scout.py``).

Artefacts: imperfect, spatially varying inversion (B1); in early frames Mz changes within a
segment, which modulates k-space across the lines of the segment (ringing/ghosting along the phase
encoding, the "inversion artefact" readers wait to resolve); inflowing blood has seen fewer readout
pulses (brighter, nulls later) and pulsatile blood ghosts along the phase encoding; cardiac motion
from frame to frame.  Amyloid-like hearts: ECV 0.54-0.66 with a subendocardial excess and a high
native T1, so myocardium nulls before blood and not everywhere at once.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import lge
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.clinical.physiology import post_contrast_t1_ms
from cmr_atlas.synth.clinical.protocol import (CONTRAST_AGENT, ClinicalExamContext, RenderedSeries, RenderResult,
                                               acquisition_time)
from cmr_atlas.synth.clinical.render import TISSUE_OF_CLASS, PlaneSampler, quantise
from cmr_atlas.synth.imaging import breath_hold_shift, coil_sensitivity, kspace_window
from cmr_atlas.synth.physics import R1_RELAXIVITY, relaxation

SEQUENCE = "ti_scout"
N_FRAMES = 30
MATRIX = (128, 128)
THICKNESS_MM = 8.0
TR_MS, TE_MS, FLIP_DEG = 4.5, 2.0, 10.0
SEQUENCE_NAME = {"SIEMENS": "*tfl2d1", "GE MEDICAL SYSTEMS": "fgre_ir", "Philips": "T1-TFE-IR"}
# extracellular volume of the thorax tissues (gadolinium distributes in plasma + interstitium)
BACKGROUND_ECV = {"muscle": 0.13, "soft": 0.20, "liver": 0.30, "bone": 0.15, "lung": 0.30, "fat": 0.05}
B1_RANGE = {1.5: (0.85, 1.0), 3.0: (0.70, 0.95)}
SLICE_PROFILE_FLIP = 0.85
# amyloid: the expanded interstitium takes up gadolinium and the blood pool clears faster (Maceira
# et al., Circulation 2005: "abnormal gadolinium kinetics", blood-myocardium T1 difference reversed)


@dataclass
class ScoutAcquisition:
    """How one scout was acquired."""

    view: str
    plane: SlicePlane
    slice_index: int
    ti_ms: np.ndarray  # (30,) InversionTime per frame
    rr_ms: float
    trigger_delay_ms: float  # inversion after the R wave
    duty: float  # fraction of the time the readout pulses run
    flip_eff_deg: float
    inversion_efficiency: float
    inversion_rr: int  # heartbeats between inversions
    lines_per_segment: int

    def read_ms(self) -> float:
        """Inversion to the end of the last segment."""
        return float(self.ti_ms[-1] + self.lines_per_segment * TR_MS / 2)

    def recovery_ms(self) -> float:
        return max(self.inversion_rr * self.rr_ms - self.read_ms(), 50.0)


def look_locker_model(t1_ms, acq: ScoutAcquisition, efficiency=None, duty=None):
    """(A, B, T1*) of the scout's signal ``|A - B exp(-TI/T1*)|`` for tissue T1 (see the module)."""
    t1 = np.asarray(t1_ms, float)
    eff = acq.inversion_efficiency if efficiency is None else efficiency
    d = acq.duty if duty is None else duty
    t1s = 1.0 / (1.0 / t1 - d * np.log(np.cos(np.radians(acq.flip_eff_deg))) / TR_MS)
    a = t1s / t1
    e_star = np.exp(-acq.read_ms() / t1s)
    e_rec = np.exp(-acq.recovery_ms() / t1)
    m0 = (1.0 - (1.0 - a * (1.0 - e_star)) * e_rec) / (1.0 + eff * e_star * e_rec)
    return a, a + eff * m0, t1s


def null_ti_ms(t1_ms, acq: ScoutAcquisition):
    a, b, t1s = look_locker_model(t1_ms, acq)
    return t1s * np.log(b / a)


def scout_mz(ti_ms, t1_ms, acq: ScoutAcquisition, efficiency=None, duty=None):
    """Signed longitudinal magnetisation (relative to M0) at ``ti_ms`` for tissue T1."""
    a, b, t1s = look_locker_model(t1_ms, acq, efficiency, duty)
    return a - b * np.exp(-np.asarray(ti_ms, float) / t1s)


def draw_acquisition(ctx: ClinicalExamContext, rng: np.random.Generator, view: str) -> ScoutAcquisition:
    geo = ctx.geometry
    if view == "sax":
        idx = geo.sax_level("mid")
        base = geo.sax_planes[idx]
    else:
        idx, base = 0, geo.lax_planes[view]
    spacing = float(rng.uniform(2.3, 2.8))
    plane = SlicePlane.centred(base.centre_mm, base.row_cosine, base.col_cosine, (spacing, spacing), MATRIX,
                               THICKNESS_MM)
    ti0, ti_last = float(rng.uniform(85.0, 110.0)), float(rng.uniform(1250.0, 1320.0))
    ti = np.round(np.linspace(ti0, ti_last, N_FRAMES))
    lines = int(rng.integers(6, 9))
    dead = float(rng.uniform(0.0, 0.15))  # fraction of each frame interval without pulses
    duty = float(np.clip(lines * TR_MS / np.diff(ti).mean() * (1 - dead), 0.4, 1.0))
    b1 = float(rng.uniform(*B1_RANGE[ctx.field_t]))
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    every = int(rng.choice([2, 3], p=[0.6, 0.4])) if rr < 850.0 else 2  # slow hearts: 2 beats suffice
    return ScoutAcquisition(
        view=view, plane=plane, slice_index=idx, ti_ms=ti, rr_ms=rr,
        trigger_delay_ms=float(rng.uniform(5.0, 20.0)), duty=duty, flip_eff_deg=FLIP_DEG * b1 * SLICE_PROFILE_FLIP,
        inversion_efficiency=float(rng.uniform(0.90, 0.98)), inversion_rr=every,
        lines_per_segment=lines)


@dataclass
class TissueT1:
    """Post-contrast T1 (ms) of everything the scout sees at one time."""

    blood: float
    remote: np.ndarray  # (16,) per AHA segment, healthy part of the segment
    lesion: np.ndarray  # (16,) scar or fibrosis part (= remote where none)
    classes: np.ndarray  # (N_TISSUES,) thorax tissues; myocardium classes hold the remote median
    amyloid_ecv: np.ndarray | None  # (16,) subendocardial-to-epicardial mean ECV when amyloid-like
    native_myo_ms: float
    d_r1_blood: float  # 1/s


def tissue_t1(ctx: ClinicalExamContext, t_min: float) -> TissueT1:
    ph = ctx.physiology
    hct = ph.hematocrit
    amy = ph.ecv if ph.amyloid_like else None  # physiology.make_amyloid_like
    cb = float(ctx.blood_gd_mmol_l(t_min))
    d_r1 = R1_RELAXIVITY[ctx.field_t] * cb
    blood = 1000.0 / (1000.0 / relaxation(ctx.field_t, "blood").t1_ms + d_r1)
    native = ph.native_t1_myo_ms
    lesion_segs = np.array(list(ph.scar_segments) + list(ph.fibrosis_segments), int)
    healthy = np.setdiff1d(np.arange(1, 17), lesion_segs)
    ecv = ph.ecv.copy()
    ecv_remote = ecv.copy()
    ecv_remote[lesion_segs - 1] = np.median(ecv[healthy - 1])
    if amy is not None:
        ecv_remote = ecv = amy
    t1 = lambda n, e: post_contrast_t1_ms(n, e, hct, cb, ctx.field_t)  # noqa: E731
    classes = np.zeros(an.N_TISSUES)
    for c in range(an.N_TISSUES):
        tissue = TISSUE_OF_CLASS[c]
        if tissue == "blood":
            classes[c] = blood
        elif tissue == "myocardium":
            classes[c] = float(np.median(t1(native, ecv_remote)))
        elif tissue == "air":
            classes[c] = 1000.0
        else:
            classes[c] = float(t1(relaxation(ctx.field_t, tissue).t1_ms, BACKGROUND_ECV[tissue]))
    return TissueT1(blood, t1(native, ecv_remote), t1(native, ecv), classes, amy, native, d_r1)


def myocardial_null_ti_ms(ctx: ClinicalExamContext, acq: ScoutAcquisition) -> float:
    """Physical null of remote myocardium on this scout (median over healthy segments)."""
    return float(np.median(null_ti_ms(tissue_t1(ctx, ctx.timeline.scout_min).remote, acq)))


@dataclass
class ScoutImageParams:
    """Image formation of one scout series."""

    snr0: float  # fully relaxed blood signal / noise SD
    scale: float  # stored value of a fully relaxed signal
    inflow: float  # fraction of LV/RV blood that flowed in without the readout's saturation
    ghost: float  # amplitude of the pulsatile-blood ghost along the phase encoding
    b1_tilt: np.ndarray  # (2,) inversion-efficiency gradient across the FOV (per 100 mm)
    m0_jitter: float  # SD of the relative magnetisation at inversion between heartbeats
    echo_ghost: float  # amplitude of the early-frame ghost of unspoiled inversion-pulse coherence
    echo_tau_ms: float  # its decay with TI


def _sample_t1_pd(ctx: ClinicalExamContext, sampler: PlaneSampler, w: float, t1s: TissueT1):
    """Per-sample post-contrast T1 (ms), proton density and blood mask at activation ``w``."""
    lab = sampler.labels(w)
    t1 = t1s.classes[lab]
    pd = np.array([relaxation(ctx.field_t, TISSUE_OF_CLASS[c]).pd for c in range(an.N_TISSUES)])[lab]
    myo = lab == an.LV_MYO
    if myo.any():
        seg = np.clip(sampler.myocardial_regions(w), 1, 16)
        depth = np.nan_to_num(sampler.wall_depth(w), nan=0.5)
        t1 = np.where(myo, t1s.remote[seg - 1], t1)
        ph = ctx.physiology
        lesion = np.zeros(lab.shape, bool)
        if ph.scar_segments:
            lesion |= np.isin(seg, ph.scar_segments) & (depth <= ph.scar_transmurality)
        if ph.fibrosis_segments:
            lesion |= np.isin(seg, ph.fibrosis_segments) & (np.abs(depth - 0.5) < 0.2)
        t1 = np.where(myo & lesion, t1s.lesion[seg - 1], t1)
        if t1s.amyloid_ecv is not None:
            t1 = np.where(myo, amyloid_t1_ms(t1s, seg, depth, ph.hematocrit), t1)
    blood = np.isin(lab, (an.LV_BLOOD, an.RV_BLOOD))
    return t1, pd, blood


def amyloid_t1_ms(t1s: TissueT1, segment, depth, hematocrit: float):
    """T1 of amyloid-like myocardium by segment and wall depth (0 endo .. 1 epi): the deposits are
    densest subendocardially (ECV x 1.2 there, x 0.8 at the epicardium), so the wall nulls from the
    outside in over several frames, the "no clean null" of the scout paper."""
    ecv = t1s.amyloid_ecv[np.asarray(segment) - 1] * (1.2 - 0.4 * np.asarray(depth, float))
    return 1000.0 / (1000.0 / t1s.native_myo_ms + ecv / (1 - hematocrit) * t1s.d_r1_blood)


def _frame_signal(ti: float, t1, pd, blood, acq: ScoutAcquisition, img: ScoutImageParams, eff_map, dt_ms: float):
    """Signed transverse signal (R, C) at ``ti`` (partial volume averaged), its rate of change per
    ms within a segment, and its change when the inversion starts from 10 % less magnetisation (the
    heartbeat-to-heartbeat recovery differences between the inversions that fill one frame)."""
    def mz(t, eff):
        lo = scout_mz(t, t1, acq, efficiency=eff[..., None])
        fresh = scout_mz(t, t1, acq, efficiency=eff[..., None], duty=0.1)  # inflow: few pulses seen
        return (np.where(blood, (1 - img.inflow) * lo + img.inflow * fresh, lo) * pd).mean(axis=2)
    s0 = mz(ti, eff_map)
    return s0, (mz(ti + dt_ms, eff_map) - s0) / dt_ms, mz(ti, 0.9 * eff_map) - s0


def _acquire(maps: tuple, ti_ms: float, acq: ScoutAcquisition, ctx, img: ScoutImageParams, rng,
             blood_img) -> np.ndarray:
    """k-space of one frame, filled by segments of ``lines_per_segment`` contiguous lines, one
    segment per inversion: within a segment each line is read at its own time (a fast-changing Mz
    modulates k-space with the segment period), and each segment starts from a slightly different
    magnetisation (R-R variation), which ghosts along the phase encoding while Mz is far from its
    steady state: the inversion artefact of early frames.  Pulsatile blood ghosts too; noise;
    magnitude."""
    sig, dsig, dm = maps
    rows = acq.plane.shape[0]
    lines = acq.lines_per_segment
    n = np.arange(rows)  # centred line order; segment = n // lines
    t_off = np.fft.ifftshift(((n % lines) - (lines - 1) / 2) * TR_MS)
    jitter = np.fft.ifftshift(rng.normal(0, img.m0_jitter / 0.1, rows // lines + 1)[n // lines])
    coil = coil_sensitivity(acq.plane.pixel_grid_mm(), ctx.coil)
    k = np.fft.fft2(sig * coil) + np.fft.fft2(dsig * coil) * t_off[:, None] + np.fft.fft2(dm * coil) * jitter[:, None]
    ky = np.fft.fftfreq(rows)[:, None]
    if img.ghost > 0:  # a copy displaced by a third of the FOV along the phase encoding
        k = k + img.ghost * np.fft.fft2(blood_img * coil) * np.exp(-2j * np.pi * ky * rows / 3)
    # coherence left by the inversion pulse (imperfect spoiling) alternates between segments: an
    # N/2 ghost that fades over the first frames
    echo = img.echo_ghost * np.exp(-ti_ms / img.echo_tau_ms)
    k = k + echo * np.fft.fft2(np.abs(sig) * coil) * np.exp(-2j * np.pi * ky * rows / 2) * 1j
    cplx = np.fft.ifft2(k * kspace_window(acq.plane.shape, 0.85))
    cplx = cplx + (rng.normal(0, 1, cplx.shape) + 1j * rng.normal(0, 1, cplx.shape)) / img.snr0
    return np.abs(cplx) * img.scale


def render_scout_series(ctx: ClinicalExamContext, rng: np.random.Generator, acq: ScoutAcquisition):
    """Images (30, 128, 128) of one scout and the breath-hold displacement of its heart."""
    shift = breath_hold_shift(rng, acq.plane)
    sampler = PlaneSampler(ctx.heart, acq.plane, shift)
    t1s = tissue_t1(ctx, ctx.timeline.scout_min)
    img = ScoutImageParams(snr0=float(rng.uniform(35, 60) * (1.6 if ctx.field_t == 3.0 else 1.0)),
                           scale=float(rng.uniform(1800, 2600)), inflow=float(rng.uniform(0.1, 0.4)),
                           ghost=float(rng.uniform(0.03, 0.1)) if rng.random() < 0.5 else 0.0,
                           b1_tilt=rng.normal(0, 0.02, 2), m0_jitter=float(rng.uniform(0.02, 0.06)),
                           echo_ghost=float(rng.uniform(0.4, 0.9)), echo_tau_ms=float(rng.uniform(60.0, 100.0)))
    grid = acq.plane.in_plane_mm(acq.plane.pixel_grid_mm())  # (R, C, 2) mm
    centred = (grid - grid.mean(axis=(0, 1))) / 100.0
    eff_map = np.clip(acq.inversion_efficiency + centred @ img.b1_tilt, 0.7, 1.0)
    out = np.empty((N_FRAMES,) + acq.plane.shape, dtype=np.uint16)
    w = _frame_activation(ctx, acq)
    sin_ratio = np.sin(np.radians(acq.flip_eff_deg)) / np.sin(np.radians(FLIP_DEG))
    for f in range(N_FRAMES):
        t1, pd, blood = _sample_t1_pd(ctx, sampler, float(w[f]), t1s)
        maps = _frame_signal(float(acq.ti_ms[f]), t1, pd, blood, acq, img, eff_map, 2.0)
        blood_img = (maps[0] * blood.mean(axis=2)) * (0.5 + np.cos(np.pi * w[f]))
        out[f] = quantise(_acquire(tuple(m * sin_ratio for m in maps), float(acq.ti_ms[f]), acq, ctx, img, rng,
                                   blood_img))
    return out, shift, w


def _frame_activation(ctx: ClinicalExamContext, acq: ScoutAcquisition) -> np.ndarray:
    t = (acq.trigger_delay_ms + acq.ti_ms) / acq.rr_ms
    return an.activation_curve(t, ctx.heart.es_frac)


# ---- truth ---------------------------------------------------------------------------------------
OBSERVER_HABIT_MS = {"obs1": (0.0, 15.0), "obs2": (25.0, 15.0)}  # (bias, SD) of the perceived null
ARTEFACT_RESOLVED_MS = (140.0, 200.0)  # readers skip frames before the inversion artefact resolves
# operators: (share, correction added to the scout frame's TI for LGE (mean, SD) ms)
OPERATOR_HABITS = {"careful": (0.72, None, 20.0), "uncorrected": (0.14, 0.0, 15.0), "generous": (0.14, 70.0, 25.0)}
RIGHT_TOLERANCE = (30.0, 0.10)  # |operator - null| within max(30 ms, 10 %) is "right"


def observer_frame(rng: np.random.Generator, acq: ScoutAcquisition, null_ms: float, observer: str,
                   amyloid: bool) -> int:
    """The frame a reader calls the myocardial null: the first frame at or after their perceived
    null (own bias and scatter), never one before the inversion artefact has resolved.  Amyloid:
    no clean null, so readers scatter more."""
    bias, sd = OBSERVER_HABIT_MS[observer]
    perceived = null_ms + bias + rng.normal(0, sd * (3.0 if amyloid else 1.0))
    perceived = max(perceived, rng.uniform(*ARTEFACT_RESOLVED_MS))
    step = float(np.diff(acq.ti_ms).mean())
    return int(np.clip(np.searchsorted(acq.ti_ms, perceived - 0.4 * step), 0, N_FRAMES - 1))


def operator_choice(rng: np.random.Generator, acq: ScoutAcquisition, null_ms: float, lge_null_ms: float,
                    amyloid: bool) -> tuple[float, str]:
    """TI the operator sets for LGE and whether it is right, short or long.  The operator picks a
    scout frame as a reader does, then adds a habitual correction for the Look-Locker bias and the
    washout until LGE: careful operators add what their site's rule of thumb says (the mean
    scout-to-LGE difference), some forget, some add too much."""
    frame = observer_frame(rng, acq, null_ms, "obs1", amyloid)
    names = list(OPERATOR_HABITS)
    habit = names[int(rng.choice(len(names), p=[OPERATOR_HABITS[n][0] for n in names]))]
    _, mean, sd = OPERATOR_HABITS[habit]
    rule_of_thumb = 90.0  # site rule: LGE TI = scout null + 90 ms (the cohort's median difference)
    correction = rng.normal(rule_of_thumb if mean is None else mean, sd)
    ti = float(np.round((acq.ti_ms[frame] + correction) / 5.0) * 5.0)
    err = ti - lge_null_ms
    tol = max(RIGHT_TOLERANCE[0], RIGHT_TOLERANCE[1] * lge_null_ms)
    return ti, "right" if abs(err) <= tol else ("short" if err < 0 else "long")


def scout_truth_row(ctx: ClinicalExamContext, rng: np.random.Generator, acq: ScoutAcquisition) -> dict:
    t1s = tissue_t1(ctx, ctx.timeline.scout_min)
    null = float(np.median(null_ti_ms(t1s.remote, acq)))
    lge_null = lge.remote_null_ti_ms(ctx, ctx.timeline.lge_min)  # the LGE images' own physics
    amyloid = ctx.physiology.amyloid_like
    op_ti, op_err = operator_choice(rng, acq, null, lge_null, amyloid)
    return {"exam_id": ctx.label, "view": acq.view, "null_ti_ms": null,
            "null_frame": int(np.argmin(np.abs(acq.ti_ms - null))),
            "blood_null_ti_ms": float(null_ti_ms(t1s.blood, acq)),
            "obs1_frame": observer_frame(rng, acq, null, "obs1", amyloid),
            "obs2_frame": observer_frame(rng, acq, null, "obs2", amyloid),
            "operator_ti_ms": op_ti, "operator_error": op_err, "lge_null_ti_ms": lge_null}


def plane_truth(ctx: ClinicalExamContext, acq: ScoutAcquisition, shift: np.ndarray, w: np.ndarray):
    """Contours (LV endo/epi, RV endo) and landmarks of every scout frame (the heart moves with the
    cycle)."""
    frames = ((f, float(w[f]), None) for f in range(N_FRAMES))
    return tr.plane_truth(ctx.label, ctx.heart, SEQUENCE, acq.view, acq.slice_index, acq.plane, shift, frames)


def breath_hold_s(acq: ScoutAcquisition) -> float:
    """Duration of the scout: 128 x 6/8 partial Fourier / GRAPPA 2 = 48 lines per frame, one
    segment of ``lines_per_segment`` per inversion, an inversion every ``inversion_rr`` beats."""
    lines = int(np.ceil(MATRIX[0] * 0.75 / 2))
    return float(np.ceil(lines / acq.lines_per_segment) * acq.inversion_rr * acq.rr_ms / 1000.0)


def _headers(ctx: ClinicalExamContext, acq: ScoutAcquisition, start_min: float) -> tuple[dict, list[dict]]:
    series = {"ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP", "MP"],
              "SequenceName": SEQUENCE_NAME[ctx.vendor], "MRAcquisitionType": "2D", "RepetitionTime": TR_MS,
              "EchoTime": TE_MS, "FlipAngle": FLIP_DEG, "ContrastBolusAgent": CONTRAST_AGENT,
              "NominalInterval": int(round(acq.rr_ms)), "HeartRate": int(round(60000.0 / acq.rr_ms)),
              "CardiacNumberOfImages": N_FRAMES}
    # segmented cine: every image of the series carries the acquisition start
    frames = [{"InversionTime": float(acq.ti_ms[f]),
               "TriggerTime": round(float((acq.trigger_delay_ms + acq.ti_ms[f]) % acq.rr_ms), 1),
               "AcquisitionTime": acquisition_time(start_min)} for f in range(N_FRAMES)]
    return series, frames


def render(ctx: ClinicalExamContext, rng: np.random.Generator, observers: int) -> RenderResult:
    """The TI scout series (mid SAX; a 4-chamber one as well in 30 % of exams) with truth.  Truth
    observers are the table's obs1/obs2 frames (contours are traced on LGE, not on the scout)."""
    views = ["sax"] + (["lax_4ch"] if rng.random() < 0.3 else [])
    out = RenderResult()
    rows, contours, marks = [], [], []
    for k, view in enumerate(views):
        acq = draw_acquisition(ctx, rng, view)
        images, shift, w = render_scout_series(ctx, rng, acq)
        start = ctx.timeline.scout_min + k * (breath_hold_s(acq) + 20.0) / 60.0
        series_h, frame_h = _headers(ctx, acq, start)
        desc = {"SIEMENS": "TI_Scout", "GE MEDICAL SYSTEMS": "CINE IR", "Philips": "LookLocker_TI"}[ctx.vendor]
        out.series.append(RenderedSeries(
            kind="ti_scout", sequence=SEQUENCE, view=view, description=desc if rng.random() > 0.15 else "",
            start_min=start, planes=[acq.plane], slice_indices=[acq.slice_index],
            images=[images], series_headers=series_h, frame_headers=[frame_h]))
        rows.append(scout_truth_row(ctx, rng, acq))
        c, m = plane_truth(ctx, acq, shift, w)
        contours += c
        marks += m
    out.truth = {CT.TI_SCOUT.name: pd.DataFrame(rows), "contours": tr.frame_from_contours(contours),
                 "landmarks": pd.DataFrame(marks)}
    return out
