"""MOLLI-like T1 maps, native (before contrast) and post-contrast, on 1-3 SAX slices, stored as T1 in ms.

A map is what the scanner's motion-corrected three-parameter fit returns, not a simulated fit:
the true T1 of each sample (native from the physiology's myocardial T1 and the relaxation table;
post-contrast from the blood gadolinium at that minute and each myocardial sample's ECV,
:func:`cmr_atlas.synth.clinical.render.myocardial_ecv`), averaged through the slice weighted by
proton density (a mixed voxel's recovery is dominated by the water it holds), seen through the
acquired k-space support (in-plane partial volume), plus fit noise whose SD grows as the signal
falls: ``SD = rel T1 / (PD coil)`` relative to the coil at the heart, with ``rel`` about 4-5 %
(native myocardial pixel SD about 40-50 ms at 1.5 T, within-ROI figures of MOLLI reference
studies), so air and lung give the noisy backgrounds maps have.

Native and post maps share the breath-hold position (``slice_index`` and frame 0 key the truth
rows, which therefore serve both maps; the operator repeats the same breath-hold instruction).
"""

from __future__ import annotations

import dataclasses

import numpy as np
from pydicom.dataset import Dataset

from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import planetruth as pt
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.clinical.protocol import (CONTRAST_AGENT, ClinicalExamContext, RenderedSeries, RenderResult,
                                               acquisition_time)
from cmr_atlas.synth.clinical.render import (DIASTASIS_FRAC, TISSUE_OF_CLASS, PlaneSampler, kspace_blur, mostly,
                                             myocardial_ecv, myocardial_t1_post_ms, phase_cached,
                                             post_contrast_class_t1, remote_ecv)
from cmr_atlas.synth.imaging import breath_hold_shift, coil_sensitivity
from cmr_atlas.synth.physics import relaxation

SEQUENCE = "t1map"
SEQUENCE_NAME = {"SIEMENS": "*MOLLI", "GE MEDICAL SYSTEMS": "MOLLI", "Philips": "MOLLI"}
LEVELS = {1: ("mid",), 2: ("basal", "mid"), 3: ("basal", "mid", "apical")}
REL_SD = {1.5: (0.028, 0.042), 3.0: (0.024, 0.036)}  # fit SD / T1 at PD 1 and the heart's coil gain
NATIVE_MIN = (-14.0, -10.0)  # after the cine, before the stress bolus
MIN_PD = 0.05  # below: no signal to fit (air)
DESCRIPTIONS = {"native": "MOLLI_T1MAP_native", "post": "MOLLI_T1MAP_post"}
BLANK_DESCRIPTION_P = 0.15


def sample_t1(ctx: ClinicalExamContext, sampler: PlaneSampler, w: float, blood_mmol_l: float | None):
    """(R, C, D) true T1 (native when ``blood_mmol_l`` is None), proton density and tissue map."""
    ph = ctx.physiology
    lab = sampler.labels(w)
    pd = np.array([relaxation(ctx.field_t, TISSUE_OF_CLASS[k]).pd for k in range(an.N_TISSUES)])[lab]
    ecv, tissue = myocardial_ecv(sampler, w, ph, lab)
    if blood_mmol_l is None:
        table = np.array([relaxation(ctx.field_t, TISSUE_OF_CLASS[k]).t1_ms for k in range(an.N_TISSUES)])
        table[[an.LV_MYO, an.RV_MYO]] = ph.native_t1_myo_ms
        return table[lab], pd, tissue
    table = post_contrast_class_t1(ctx.field_t, blood_mmol_l, ph.hematocrit, remote_ecv(ph), ph.native_t1_myo_ms)
    myo = myocardial_t1_post_ms(ph, ctx.field_t, np.nan_to_num(ecv, nan=0.25), blood_mmol_l)
    t1 = np.where(tissue >= 0, myo, table[lab])
    return t1, pd, tissue


def t1_map(ctx: ClinicalExamContext, sampler: PlaneSampler, w: float, blood_mmol_l: float | None, rel_sd: float,
           kspace_fraction: float, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """(R, C) stored map (uint16 ms) and the (R, C, D) tissue map."""
    t1, pd, tissue = sample_t1(ctx, sampler, w, blood_mmol_l)
    pd_px = pd.mean(axis=-1)
    true = (t1 * pd).sum(axis=-1) / np.maximum(pd.sum(axis=-1), 1e-9)
    seen = kspace_blur(true, sampler.plane, kspace_fraction)
    coil = coil_sensitivity(sampler.plane.pixel_grid_mm(), ctx.coil)
    mid_axis = ctx.heart.to_patient(np.array([0.0, 0.0, 0.5 * ctx.heart.ed.length_mm]))
    heart_px, _ = sampler.plane.patient_to_pixel(mid_axis)
    r, c = np.clip(np.rint(heart_px).astype(int), 0, np.array(coil.shape) - 1)
    gain = pd_px * coil / coil[r, c]
    sd = rel_sd * np.abs(seen) / np.maximum(gain, MIN_PD)
    out = seen + sd * rng.standard_normal(seen.shape)
    out = np.where(pd_px < MIN_PD, rng.uniform(0.0, 3000.0, seen.shape), out)  # fit on noise
    return np.clip(np.rint(out), 0, 4095).astype(np.uint16), tissue


def real_world_value_mapping() -> list[Dataset]:
    """RealWorldValueMappingSequence: stored values are T1 in milliseconds (UCUM ``ms``)."""
    unit = Dataset()
    unit.CodeValue, unit.CodingSchemeDesignator, unit.CodeMeaning = "ms", "UCUM", "millisecond"
    item = Dataset()
    item.LUTLabel = "T1"
    item.MeasurementUnitsCodeSequence = [unit]
    item.RealWorldValueSlope = 1.0
    item.RealWorldValueIntercept = 0.0
    item.RealWorldValueFirstValueMapped = 0
    item.RealWorldValueLastValueMapped = 4095
    return [item]


def series_headers(ctx: ClinicalExamContext, post: bool) -> dict:
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    h = {"ScanningSequence": ["GR", "IR"], "SequenceVariant": ["SK", "SP"], "SequenceName": SEQUENCE_NAME[ctx.vendor],
         "MRAcquisitionType": "2D", "RepetitionTime": 2.7, "EchoTime": 1.1, "FlipAngle": 35.0,
         "ImageType": ["DERIVED", "PRIMARY", "T1 MAP", "MOCO"], "NominalInterval": int(round(rr)),
         "HeartRate": int(round(60000.0 / rr)), "RealWorldValueMappingSequence": real_world_value_mapping()}
    if post:
        h["ContrastBolusAgent"] = CONTRAST_AGENT
    return h


def render(ctx: ClinicalExamContext, rng: np.random.Generator, observers: int = 0) -> RenderResult:
    """Native and post-contrast T1 maps with contour, SAX landmark and scar/fibrosis pixel truth."""
    ctx = dataclasses.replace(ctx, heart=phase_cached(ctx.heart))  # same heart, phases memoised
    levels = LEVELS[int(rng.integers(1, 4))]
    slices = sorted({ctx.geometry.sax_level(lv) for lv in levels})
    planes = [ctx.geometry.sax_planes[k] for k in slices]
    shifts = [breath_hold_shift(rng, p) for p in planes]
    samplers = [PlaneSampler(ctx.heart, p, s) for p, s in zip(planes, shifts)]
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    w = float(an.activation_curve(np.array([DIASTASIS_FRAC]), ctx.heart.es_frac)[0])
    rel_sd = float(rng.uniform(*REL_SD[ctx.field_t]))
    kfrac = float(rng.uniform(0.7, 0.85))
    series, tissue_rows, contours, marks = [], [], [], []
    for state, start in (("native", float(rng.uniform(*NATIVE_MIN))), ("post", ctx.timeline.t1_post_min)):
        conc = None if state == "native" else float(
            ctx.blood_gd_mmol_l(start))
        images, headers = [], []
        for k, (sl, sampler) in enumerate(zip(slices, samplers)):
            img, tissue = t1_map(ctx, sampler, w, conc, rel_sd, kfrac, rng)
            images.append(img[None])
            headers.append([{"TriggerTime": round(DIASTASIS_FRAC * rr, 1),
                             "AcquisitionTime": acquisition_time(start + 0.3 * k)}])
            if state == "native":
                for kind, code in (("scar", 1), ("fibrosis", 2)):
                    tissue_rows.append(pt.tissue_pixel_rows(ctx.label, SEQUENCE, kind, "sax", sl, mostly(tissue, code)))
                c, m = tr.plane_truth(ctx.label, ctx.heart, SEQUENCE, "sax", sl, sampler.plane, sampler.shift_mm,
                                      [(0, w, None)])
                contours += c
                marks += m
        desc = "" if rng.random() < BLANK_DESCRIPTION_P else DESCRIPTIONS[state]
        series.append(RenderedSeries(f"t1map_{state}", SEQUENCE, "sax", desc, start, planes, slices, images,
                                     series_headers(ctx, state == "post"), headers))
    truth = pt.truth_frames(contours, marks, {("sax", sl): p for sl, p in zip(slices, planes)}, rng, observers,
                            all_frames=True)
    truth[CT.TISSUE_PIXELS.name] = pt.tissue_frame(tissue_rows)
    return RenderResult(series, truth)
