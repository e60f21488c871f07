"""Late gadolinium enhancement: segmented inversion-recovery FLASH at the operator's TI, magnitude and
phase-sensitive (PSIR) reconstructions of the same data, SAX stack and 2-, 3- and 4-chamber.

Physics: a non-selective inversion every other heartbeat, readout in mid-diastole at ``TI``;
``Mz(TI) = 1 - (1 + eff (1 - exp(-(2 RR - TI)/T1))) exp(-TI/T1)``
(:func:`cmr_atlas.synth.physics.inversion_recovery_mz`: incomplete recovery over two R-R) with
post-contrast T1 per tissue from the blood gadolinium when each plane is acquired (washout goes on
during the minutes of the stack, so a TI set on the scout drifts away from the null) and the ECV
of every myocardial sample (:func:`cmr_atlas.synth.clinical.render.myocardial_ecv`): scar with
ECV 0.5-0.7 has a short T1 and is bright, remote myocardium near its null at the right TI, blood
in between.  The magnitude image is ``|Mz|`` (a TI too short makes myocardium bright again, with
inverted contrast); the PSIR image keeps the sign (signed int16).
"""

from __future__ import annotations

import dataclasses

from dataclasses import dataclass

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import planetruth as pt
from cmr_atlas.synth.clinical.protocol import (CONTRAST_AGENT, ClinicalExamContext, RenderedSeries, RenderResult,
                                               acquisition_time)
from cmr_atlas.synth.clinical.render import (DIASTASIS_FRAC, TISSUE_OF_CLASS, PlaneSampler, acquire, mostly,
                                             myocardial_ecv, myocardial_t1_post_ms, phase_cached,
                                             post_contrast_class_t1, quantise, remote_ecv)
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.imaging import breath_hold_shift
from cmr_atlas.synth.physics import inversion_recovery_mz, r1_with_contrast, relaxation

SEQUENCE = "lge"
SEQUENCE_NAME = {"SIEMENS": "*tfl2d1", "GE MEDICAL SYSTEMS": "fgre_ir", "Philips": "T1-TFE-IR"}
DESCRIPTIONS = {"SIEMENS": ("de_psir_{view}_MAG", "de_psir_{view}_PSIR"),
                "GE MEDICAL SYSTEMS": ("MDE {view}", "MDE PSIR {view}"), "Philips": ("LGE_{view}", "LGE_PSIR_{view}")}
VIEW_WORD = {"sax": "SA", "lax_2ch": "2CH", "lax_3ch": "3CH", "lax_4ch": "4CH"}
BLANK_DESCRIPTION_P = 0.15
INVERSION_EFFICIENCY = 0.95
TR_MS, TE_MS, FLIP_DEG = 8.6, 3.3, 25.0  # segmented FLASH readout (echo spacing)
SNR = {1.5: (22.0, 40.0), 3.0: (32.0, 60.0)}  # fully recovered PD 1 / noise SD at unit coil
PLANE_MIN = 0.35  # one breath-hold plus recovery per plane


@dataclass
class LGEPlane:
    view: str
    sl: int
    plane: SlicePlane
    shift_mm: np.ndarray
    start_min: float


def plan_planes(rng: np.random.Generator, ctx: ClinicalExamContext) -> list[LGEPlane]:
    """SAX stack base to apex, then 2CH, 3CH and 4CH, one breath-hold each from ``lge_min``."""
    todo = [("sax", k, p) for k, p in enumerate(ctx.geometry.sax_planes)]
    todo += [(v, 0, ctx.geometry.lax_planes[v]) for v in ("lax_2ch", "lax_3ch", "lax_4ch")]
    t0 = ctx.timeline.lge_min
    return [LGEPlane(v, sl, p, breath_hold_shift(rng, p), t0 + k * PLANE_MIN) for k, (v, sl, p) in enumerate(todo)]


def recovery_ms(ctx: ClinicalExamContext, ti_ms):
    """Time from the previous readout to the inversion (inversion every other heartbeat)."""
    return 2.0 * 60000.0 / ctx.physiology.heart_rate_rest_bpm - np.asarray(ti_ms, float)


def null_ti_ms(ctx: ClinicalExamContext, t1_ms: float) -> float:
    """TI that nulls a tissue of post-contrast ``t1_ms`` in this sequence (bisection on Mz)."""
    lo, hi = 20.0, 0.95 * 2.0 * 60000.0 / ctx.physiology.heart_rate_rest_bpm
    for _ in range(50):
        mid = 0.5 * (lo + hi)
        mz = inversion_recovery_mz(mid, t1_ms, INVERSION_EFFICIENCY, recovery_ms(ctx, mid))
        lo, hi = (mid, hi) if mz < 0 else (lo, mid)
    return 0.5 * (lo + hi)


def remote_null_ti_ms(ctx: ClinicalExamContext, t_min: float) -> float:
    """TI that nulls remote myocardium at ``t_min`` after the stress bolus (the right LGE TI)."""
    c = float(ctx.blood_gd_mmol_l(t_min))
    return null_ti_ms(ctx, float(myocardial_t1_post_ms(ctx.physiology, ctx.field_t, remote_ecv(ctx.physiology), c)))


def blood_null_ti_ms(ctx: ClinicalExamContext, t_min: float) -> float:
    """TI that nulls blood at ``t_min`` after the stress bolus."""
    c = float(ctx.blood_gd_mmol_l(t_min))
    return null_ti_ms(ctx, 1000.0 / float(r1_with_contrast(relaxation(ctx.field_t, "blood").t1_ms, c, ctx.field_t)))


def plane_mz(ctx: ClinicalExamContext, sampler: PlaneSampler, w: float, ti_ms: float, t_min: float):
    """(R, C) signed signal ``pd Mz(TI)`` averaged through the slice, and the samples' tissue map."""
    ph = ctx.physiology
    c = float(ctx.blood_gd_mmol_l(t_min))
    lab = sampler.labels(w)
    t1 = post_contrast_class_t1(ctx.field_t, c, ph.hematocrit, remote_ecv(ph), ph.native_t1_myo_ms)[lab]
    ecv, tissue = myocardial_ecv(sampler, w, ph, lab)
    t1 = np.where(tissue >= 0, myocardial_t1_post_ms(ctx.physiology, ctx.field_t, np.nan_to_num(ecv, nan=0.25), c), t1)
    pd = np.array([relaxation(ctx.field_t, TISSUE_OF_CLASS[k]).pd for k in range(an.N_TISSUES)])[lab]
    mz = inversion_recovery_mz(ti_ms, t1, INVERSION_EFFICIENCY, recovery_ms(ctx, ti_ms))
    return (pd * mz).mean(axis=-1), tissue


def series_headers(ctx: ClinicalExamContext, ti_ms: float, psir: bool) -> dict:
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    h = {"ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP", "MP"],
         "SequenceName": SEQUENCE_NAME[ctx.vendor], "MRAcquisitionType": "2D", "RepetitionTime": TR_MS,
         "EchoTime": TE_MS, "FlipAngle": FLIP_DEG, "InversionTime": round(float(ti_ms), 1),
         "ContrastBolusAgent": CONTRAST_AGENT, "NominalInterval": int(round(rr)), "HeartRate": int(round(60000.0 / rr)),
         "ImageType": ["ORIGINAL", "PRIMARY", "M", "NORM"]}
    if psir:
        h.update({"ImageType": ["DERIVED", "PRIMARY", "R", "PSIR"], "PixelRepresentation": 1,
                  "RescaleIntercept": 0, "RescaleSlope": 1})
    return h


def readout_activation(ctx: ClinicalExamContext) -> float:
    """Contraction state of the heart at the LGE readout (diastasis)."""
    return float(an.activation_curve(np.array([DIASTASIS_FRAC]), ctx.heart.es_frac)[0])


def render(ctx: ClinicalExamContext, rng: np.random.Generator, ti_ms: float, observers: int = 0) -> RenderResult:
    """Magnitude and PSIR LGE of one exam at the operator's ``ti_ms``, with contour, landmark and
    scar/fibrosis pixel truth (sequence ``lge``); ``observers`` simulated observers trace every image."""
    ctx = dataclasses.replace(ctx, heart=phase_cached(ctx.heart))  # same heart, phases memoised
    plans = plan_planes(rng, ctx)
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    trigger = round(DIASTASIS_FRAC * rr, 1)
    w = readout_activation(ctx)
    snr = float(rng.uniform(*SNR[ctx.field_t]))
    scale = float(rng.uniform(1500.0, 2500.0))
    kfrac = float(rng.uniform(0.65, 0.85))
    mag, psir, contours, marks, tissue_rows = {}, {}, [], [], []
    for p in plans:
        sampler = PlaneSampler(ctx.heart, p.plane, p.shift_mm)
        signal, tissue = plane_mz(ctx, sampler, w, ti_ms, p.start_min)
        cplx = acquire(signal[None], p.plane, ctx.coil, 1.0 / snr, rng, kfrac)
        mag[(p.view, p.sl)] = quantise(np.abs(cplx) * scale)
        psir[(p.view, p.sl)] = quantise(cplx.real * scale, signed=True)
        c, m = tr.plane_truth(ctx.label, ctx.heart, SEQUENCE, p.view, p.sl, p.plane, p.shift_mm, [(0, w, None)])
        contours += c
        marks += m
        for kind, code in (("scar", 1), ("fibrosis", 2)):
            tissue_rows.append(pt.tissue_pixel_rows(ctx.label, SEQUENCE, kind, p.view, p.sl, mostly(tissue, code)))
    series = _series(ctx, rng, plans, mag, psir, ti_ms, trigger)
    truth = pt.truth_frames(contours, marks, {(p.view, p.sl): p.plane for p in plans}, rng, observers,
                            all_frames=True)
    truth[CT.TISSUE_PIXELS.name] = pt.tissue_frame(tissue_rows)
    return RenderResult(series, truth)


def _series(ctx: ClinicalExamContext, rng: np.random.Generator, plans: list[LGEPlane], mag: dict, psir: dict,
            ti_ms: float, trigger_ms: float) -> list[RenderedSeries]:
    """Siemens one series per plane, GE/Philips one SAX series and one per long-axis view; each a
    magnitude and a PSIR series of the same acquisition."""
    groups = ([[p] for p in plans] if ctx.vendor == "SIEMENS"
              else [[p for p in plans if p.view == "sax"]] + [[p] for p in plans if p.view != "sax"])
    out = []
    for g in groups:
        view = g[0].view
        frame_headers = [[{"TriggerTime": trigger_ms, "AcquisitionTime": acquisition_time(p.start_min)}] for p in g]
        for kind, images, psir_flag, fmt in (("lge", mag, False, DESCRIPTIONS[ctx.vendor][0]),
                                              ("lge_psir", psir, True, DESCRIPTIONS[ctx.vendor][1])):
            desc = "" if rng.random() < BLANK_DESCRIPTION_P else fmt.format(view=VIEW_WORD[view])
            out.append(RenderedSeries(kind, SEQUENCE, view, desc, g[0].start_min, [p.plane for p in g],
                                      [p.sl for p in g], [images[(p.view, p.sl)] for p in g],
                                      series_headers(ctx, ti_ms, psir_flag), frame_headers))
    return out
