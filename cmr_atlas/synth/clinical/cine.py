"""bSSFP cine of the clinical exam (SAX stack, 2-, 3- and 4-chamber) and its 3-plane localizer.

Acquisition order (documented choice): as in the NIH protocol Kellman et al. run (JCMR 2017) and
most stress services, localizers, the long-axis cines and the SAX cine stack come first, before the
stress bolus (minutes -32 to -14), so the cine is native (no gadolinium) and the native T1 map
follows it.  Each plane is one breath-hold: its own displacement of the heart
(:func:`cmr_atlas.synth.imaging.breath_hold_shift`), one AcquisitionTime for all its frames.

Contrast is bSSFP physics (:func:`cmr_atlas.synth.physics.bssfp_signal` from T1/T2/PD at the
exam's field): bright blood and fat, dark myocardium, flow-independent blood signal (no inflow
enhancement), and off-resonance banding where a smooth B0 field map pushes tissue to
+-1/(2 TR) (3 T; at 1.5 T the same field in Hz is halved and TR shorter, so bands stay outside).

The trabecular layer: a thin band (1.5-2.5 mm, thicker laterally than septally) of slow blood
between trabeculae just inside the compact myocardium.  It is cavity in the truth.  On bSSFP its
blood is as bright as any blood, so the band is nearly blood-bright; on the legacy spoiled gradient
echo the slow blood is saturated (no fresh spins), so the band looks like muscle.  Readers who
threshold half-way between blood and myocardium therefore find larger cavities and smaller mass on
bSSFP for the same heart, as published (Moon et al., Radiology 2002; Malayeri et al. 2008,
the MESA substudy): the difference comes out of the images, the truth is shared.
:func:`gre_contrast` is that legacy contrast for the calibration test.
"""

from __future__ import annotations

import dataclasses

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth as T
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import planetruth as pt
from cmr_atlas.synth.clinical.protocol import (SAX_GAP_MM, SAX_THICKNESS_MM, ClinicalExamContext, RenderedSeries,
                                               RenderResult, acquisition_time)
from cmr_atlas.synth.clinical.render import (TISSUE_OF_CLASS, PlaneSampler, box_labels, cavity_depth_mm, form_image,
                                             form_images, phase_cached, quantise, sample_angle)
from cmr_atlas.synth.imaging import breath_hold_shift, unit
from cmr_atlas.synth.physics import bssfp_signal, relaxation, spoiled_gre_signal

SEQUENCE = "cine_ssfp"
SEQUENCE_NAME = {"SIEMENS": "*tfi2d1_25", "GE MEDICAL SYSTEMS": "fiesta2d", "Philips": "B-TFE"}
DESCRIPTIONS = {
    "SIEMENS": {"localizer": "localizer", "sax": "cine_sax_{k}", "lax_2ch": "cine_2ch", "lax_3ch": "cine_3ch",
                "lax_4ch": "cine_4ch"},
    "GE MEDICAL SYSTEMS": {"localizer": "3-pl loc SSFP", "sax": "FIESTA CINE SAX", "lax_2ch": "FIESTA 2CH",
                           "lax_3ch": "FIESTA LVOT", "lax_4ch": "FIESTA 4CH"},
    "Philips": {"localizer": "SURVEY", "sax": "BTFE_SA_CINE", "lax_2ch": "BTFE_2CH", "lax_3ch": "BTFE_3CH",
                "lax_4ch": "BTFE_4CH"},
}
BLANK_DESCRIPTION_P = 0.15  # some sites leave descriptions uninformative: ingest types by physics
# bSSFP timing per field (typical clinical ranges; 3 T flips are SAR-limited).
TR_MS = {1.5: (2.8, 3.3), 3.0: (3.2, 3.8)}
FLIP_DEG = {1.5: (60.0, 80.0), 3.0: (40.0, 55.0)}
# Blood SNR (blood / noise SD at unit coil sensitivity) of a breath-hold bSSFP cine with parallel
# imaging; 3 T gains less than 2x (lower flip, longer TR).
SNR = {1.5: (22.0, 40.0), 3.0: (32.0, 60.0)}
# Off-resonance after shimming: a global frequency error, a term growing away from the shimmed
# heart region and levelling off (tanh over B0_RAMP_MM) and a susceptibility bump at the
# inferolateral heart-lung interface near the cardiac veins, scaled so that its largest value
# within B0_BOX_MM of the heart is a drawn peak: 110-240 Hz at 3 T (typical 3 T cardiac field maps;
# the bSSFP band at +-1/(2 TR) is 132-156 Hz there, so most 3 T exams show bands), the same field
# in Hz halved at 1.5 T (55-120 Hz, inside the +-152-179 Hz passband: no bands).
B0_PEAK_3T_HZ = (110.0, 240.0)
B0_SHAPE = {"offset": 0.25, "ramp": (0.4, 1.0), "bump": (0.6, 1.2)}  # relative weights before scaling
B0_RAMP_MM = 100.0
B0_BUMP_SD_MM = (25.0, 40.0)
B0_BOX_MM = 200.0
TRABECULAR_BAND_MM = (1.5, 2.5)
TRABECULAR_MUSCLE = (0.25, 0.40)  # muscle fraction of the band at the compact wall (falls to 0 inwards)
LOCALIZER_PIXEL_MM, LOCALIZER_SHAPE = 1.8, (256, 256)
SAX_BREATH_HOLD_MIN = 0.45  # one breath-hold plus recovery per plane
# A breath-hold not kept: the patient breathes shallowly through the acquisition, the heart moving
# head-foot with the diaphragm, which ghosts and blurs along phase-encode.  Assumed in about one
# plane in eight (respiratory artefacts are a common reason for repeating a clinical cine).
BREATHING_P = 0.12
BREATHING_MM = (2.0, 7.0)  # amplitude of the head-foot excursion
BREATHING_PERIOD_S = (3.0, 5.0)
HEARTBEATS_PER_BREATH_HOLD = (8, 14)  # segmented acquisition: k-space lines spread over these


@dataclass(frozen=True)
class CineTiming:
    """Retrospectively gated frames over one R-R and the readout of one exam."""

    rr_ms: float
    trigger_ms: np.ndarray
    activation: np.ndarray  # per frame, 0 = ED ... 1 = ES
    tr_ms: float
    flip_deg: float
    snr: float
    scale: float  # stored value of unit signal
    kspace_fraction: float

    @property
    def ed_frame(self) -> int:
        return int(np.argmin(self.activation))

    @property
    def es_frame(self) -> int:
        return int(np.argmax(self.activation))

    def phases(self) -> dict[int, str]:
        return {self.ed_frame: "ED", self.es_frame: "ES"}


def draw_timing(rng: np.random.Generator, ctx: ClinicalExamContext) -> CineTiming:
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    n = int(rng.integers(25, 31))
    trig = np.round(np.arange(n) * rr / n, 1)  # retrospective gating reconstructs the whole R-R
    return CineTiming(rr, trig, an.activation_curve(trig / rr, ctx.heart.es_frac),
                      float(np.round(rng.uniform(*TR_MS[ctx.field_t]), 2)),
                      float(np.round(rng.uniform(*FLIP_DEG[ctx.field_t]))),
                      float(rng.uniform(*SNR[ctx.field_t])), float(rng.uniform(650.0, 1000.0)),
                      float(rng.uniform(0.7, 0.9)))


@dataclass(frozen=True)
class Trabeculae:
    """The trabecular layer of one heart (see the module docstring)."""

    band_mm: float  # mean thickness
    muscle: float  # muscle fraction at the compact wall

    def thickness_mm(self, phi: np.ndarray) -> np.ndarray:
        """Thinner on the septum (``phi`` = 0), thicker on the lateral wall (at most 1.3x)."""
        return self.band_mm * (1.0 - 0.3 * np.cos(phi))


def draw_trabeculae(rng: np.random.Generator) -> Trabeculae:
    return Trabeculae(float(rng.uniform(*TRABECULAR_BAND_MM)), float(rng.uniform(*TRABECULAR_MUSCLE)))


@dataclass(frozen=True)
class Contrast:
    """Signal of every anatomy class per pixel (``table[class, pixel]``; one column where the signal
    does not vary across the plane) and of the blood between trabeculae at relative depth ``t``
    (0 at the compact wall, 1 at the band's inner edge), ``band_blood(t, pixel)``."""

    table: np.ndarray
    band_blood: Callable[[np.ndarray, np.ndarray], np.ndarray]


def _column(table: np.ndarray, pix: np.ndarray) -> np.ndarray:
    return pix if table.shape[1] > 1 else np.zeros_like(pix)


def ssfp_contrast(field_t: float, tr_ms: float, flip_deg: float, off_resonance_hz: np.ndarray | None = None,
                  n_lut: int = 256) -> Contrast:
    """bSSFP signal per class at every pixel's off-resonance (flat array; None: on resonance),
    normalised to on-resonance blood.  Blood is flow-independent: the band's blood is blood."""
    t1, t2, pd = (np.array([getattr(relaxation(field_t, TISSUE_OF_CLASS[c]), k) for c in range(an.N_TISSUES)])
                  for k in ("t1_ms", "t2_ms", "pd"))
    ref = float(bssfp_signal(relaxation(field_t, "blood").t1_ms, relaxation(field_t, "blood").t2_ms, 1.0,
                             flip_deg, tr_ms))
    if off_resonance_hz is None:
        table = bssfp_signal(t1, t2, pd, flip_deg, tr_ms)[:, None] / ref
    else:
        period = 1000.0 / tr_ms  # the bSSFP profile repeats every 1/TR
        df = np.arange(n_lut) * period / n_lut
        lut = bssfp_signal(t1[:, None], t2[:, None], pd[:, None], flip_deg, tr_ms, df[None, :]) / ref
        idx = np.rint(np.mod(off_resonance_hz, period) / period * n_lut).astype(int) % n_lut
        table = lut[:, idx]
    blood = table[an.LV_BLOOD]
    return Contrast(table, lambda t, pix: blood[_column(table, pix)])


def gre_contrast(field_t: float = 1.5, tr_ms: float = 9.0, te_ms: float = 4.0, flip_deg: float = 20.0,
                 inflow_pulses: float = 18.0) -> Contrast:
    """Legacy (2000-era) spoiled gradient-echo cine contrast for the same anatomy.

    Stationary tissue is at the FLASH steady state (:func:`physics.spoiled_gre_signal`).  Blood
    owes its brightness to inflow: spins entering the slice have seen only ``inflow_pulses`` RF
    pulses, ``S_n = S_ss + (S_fresh - S_ss) (E1 cos a)^n``.  Between trabeculae the flow slows
    towards the wall (velocity ~ relative depth ``t``), so the pulses seen grow as ``n / t`` and
    the slow blood saturates to the steady state: the band looks like muscle.  18 pulses give a
    blood/myocardium ratio of about 3.5, mid-range of the legacy GRE table (myocardium 0.22-0.40
    of blood in :mod:`cmr_atlas.synth.mesa.scanner`).
    """
    tis = [relaxation(field_t, TISSUE_OF_CLASS[c]) for c in range(an.N_TISSUES)]
    table = np.array([spoiled_gre_signal(r.t1_ms, r.t2star_ms, r.pd, flip_deg, tr_ms, te_ms) for r in tis])
    b = relaxation(field_t, "blood")
    s_ss = float(spoiled_gre_signal(b.t1_ms, b.t2star_ms, b.pd, flip_deg, tr_ms, te_ms))
    s_fresh = b.pd * np.sin(np.radians(flip_deg)) * np.exp(-te_ms / b.t2star_ms)
    q = np.exp(-tr_ms / b.t1_ms) * np.cos(np.radians(flip_deg))

    def inflow(n):
        return s_ss + (s_fresh - s_ss) * q ** n

    fast = inflow(inflow_pulses)
    for c in (an.LV_BLOOD, an.RV_BLOOD, an.OTHER_BLOOD):
        table[c] = fast
    table = table[:, None] / fast
    return Contrast(table, lambda t, pix: inflow(inflow_pulses / np.maximum(t, 1e-3)) / fast)


def off_resonance_hz(rng: np.random.Generator, ctx: ClinicalExamContext) -> Callable[[np.ndarray], np.ndarray]:
    """Smooth B0 field map of the exam (Hz) as a function of patient coordinates (mm)."""
    heart = ctx.heart
    centre = heart.to_patient(np.array([0.0, 0.0, 0.5 * heart.ed.length_mm]))
    g = unit(rng.normal(size=3))
    ramp = rng.uniform(*B0_SHAPE["ramp"])
    # inferolateral: opposite the septum (-e1) and towards the patient's back
    post = heart.frame[:, :2] @ heart.posterior_local
    bump = centre + (heart.ed.epi_radius_mm + 8.0) * unit(post - heart.frame[:, 0])
    amp, sd = rng.uniform(*B0_SHAPE["bump"]), rng.uniform(*B0_BUMP_SD_MM)
    offset = rng.uniform(-B0_SHAPE["offset"], B0_SHAPE["offset"])
    peak = rng.uniform(*B0_PEAK_3T_HZ) * ctx.field_t / 3.0

    def shape(xyz: np.ndarray) -> np.ndarray:
        xyz = np.asarray(xyz)
        d2 = ((xyz - bump) ** 2).sum(-1)
        return offset + ramp * np.tanh(((xyz - centre) @ g) / B0_RAMP_MM) + amp * np.exp(-d2 / (2 * sd ** 2))

    box = np.linspace(-B0_BOX_MM, B0_BOX_MM, 13)
    norm = np.abs(shape(centre + np.stack(np.meshgrid(box, box, box), -1).reshape(-1, 3))).max()
    return lambda xyz: np.clip(shape(xyz) * (peak / norm), -peak, peak)


def plane_signal(sampler: PlaneSampler, w: float, contrast: Contrast, trab: Trabeculae,
                 static: np.ndarray | None = None) -> np.ndarray:
    """(R, C) true signal of one plane at activation ``w``: class signals with the trabecular band,
    averaged over the through-plane samples (partial volume).  ``static``: :func:`static_signal`
    of the sampler, reused across frames (only the heart box changes)."""
    rows, cols, depth_n = sampler.background.shape
    pix = np.arange(rows * cols).reshape(rows, cols, 1)
    out = static_signal(sampler, contrast) if static is None else static.copy()
    lab = box_labels(sampler, w)
    if lab is None:
        return out
    r0, r1, c0, c1 = sampler.box
    pix = np.broadcast_to(pix[r0:r1, c0:c1], lab.shape)
    val = contrast.table[lab, _column(contrast.table, pix)]
    depth = cavity_depth_mm(sampler, w)
    if trab.band_mm > 0:
        phi = sample_angle(sampler)
        band = (lab == an.LV_BLOOD) & (depth < trab.band_mm * 1.3)  # the thickest band (lateral)
        band[band] = depth[band] < trab.thickness_mm(phi[band])
        if band.any():
            tb = np.clip(depth[band] / trab.thickness_mm(phi[band]), 0.0, 1.0)
            pb = pix[band]
            muscle = trab.muscle * (1.0 - tb)
            myo = contrast.table[an.LV_MYO, _column(contrast.table, pb)]
            val[band] = muscle * myo + (1.0 - muscle) * contrast.band_blood(tb, pb)
    out[r0:r1, c0:c1] = val.mean(axis=-1)
    return out


def static_signal(sampler: PlaneSampler, contrast: Contrast) -> np.ndarray:
    """(R, C) signal of the static thorax (the heart box is overwritten per frame)."""
    rows, cols, depth_n = sampler.background.shape
    pix = np.broadcast_to(np.arange(rows * cols).reshape(rows, cols, 1), sampler.background.shape)
    return contrast.table[sampler.background, _column(contrast.table, pix)].mean(axis=-1)


@dataclass
class PlanePlan:
    view: str
    sl: int
    plane: SlicePlane
    shift_mm: np.ndarray  # displacement of the breath-hold (the truth's)
    start_min: float
    motion_mm: np.ndarray | None = None  # (rows, 3) breathing per k-space line (None: held)


def draw_breathing(rng: np.random.Generator, plane: SlicePlane, rr_ms: float,
                   breathing_p: float = BREATHING_P) -> np.ndarray | None:
    """Per phase-encode line (``fftfreq`` order, acquired from -ky_max to +ky_max over the
    heartbeats of the breath-hold) the displacement of a patient breathing through it, or None (a
    held breath, probability 1 - ``breathing_p``)."""
    if rng.random() >= breathing_p:
        return None
    direction = unit(np.array([0.0, rng.normal(0.0, 0.3), 1.0]))  # head-foot, a little antero-posterior
    beats = int(rng.integers(*HEARTBEATS_PER_BREATH_HOLD))
    t_s = np.floor((np.fft.fftfreq(plane.shape[0]) + 0.5) * beats) * rr_ms / 1000.0
    phase = 2 * np.pi * t_s / rng.uniform(*BREATHING_PERIOD_S) + rng.uniform(0, 2 * np.pi)
    return rng.uniform(*BREATHING_MM) * np.sin(phase)[:, None] * direction


def plan_planes(rng: np.random.Generator, ctx: ClinicalExamContext,
                breathing_p: float = BREATHING_P) -> list[PlanePlan]:
    """Long-axis cines first (2CH, 3CH, 4CH), then the SAX stack base to apex; one breath-hold each,
    a share ``breathing_p`` of them not kept (:func:`draw_breathing`)."""
    t = -30.0 + rng.uniform(0.0, 2.0)
    rr = 60000.0 / ctx.physiology.heart_rate_rest_bpm
    out = []
    for view in ("lax_2ch", "lax_3ch", "lax_4ch"):
        plane = ctx.geometry.lax_planes[view]
        out.append(PlanePlan(view, 0, plane, breath_hold_shift(rng, plane), t,
                             draw_breathing(rng, plane, rr, breathing_p)))
        t += SAX_BREATH_HOLD_MIN
    for k, plane in enumerate(ctx.geometry.sax_planes):
        out.append(PlanePlan("sax", k, plane, breath_hold_shift(rng, plane), t,
                             draw_breathing(rng, plane, rr, breathing_p)))
        t += SAX_BREATH_HOLD_MIN
    return out


def series_headers(ctx: ClinicalExamContext, tm: CineTiming, spacing_mm: float | None) -> dict:
    h = {"ScanningSequence": "GR", "SequenceVariant": ["SK", "SS"], "SequenceName": SEQUENCE_NAME[ctx.vendor],
         "MRAcquisitionType": "2D", "RepetitionTime": tm.tr_ms, "EchoTime": round(tm.tr_ms / 2.0, 2),
         "FlipAngle": tm.flip_deg, "ImageType": ["ORIGINAL", "PRIMARY", "M", "NORM"],
         "CardiacNumberOfImages": len(tm.trigger_ms), "NominalInterval": int(round(tm.rr_ms)),
         "HeartRate": int(round(60000.0 / tm.rr_ms))}
    if spacing_mm is not None:
        h["SpacingBetweenSlices"] = spacing_mm
    return h


def _description(rng: np.random.Generator, vendor: str, key: str, k: int = 0) -> str:
    return "" if rng.random() < BLANK_DESCRIPTION_P else DESCRIPTIONS[vendor][key].format(k=k)


def render_plane_frames(ctx: ClinicalExamContext, pp: PlanePlan, tm: CineTiming, contrast: Contrast,
                        trab: Trabeculae, rng: np.random.Generator) -> np.ndarray:
    """(T, R, C) stored cine images of one plane."""
    sampler = PlaneSampler(ctx.heart, pp.plane, pp.shift_mm)
    static = static_signal(sampler, contrast)
    signals = np.stack([plane_signal(sampler, float(w), contrast, trab, static) for w in tm.activation])
    images = form_images(signals, pp.plane, ctx.coil, 1.0 / tm.snr, rng, tm.kspace_fraction, motion_mm=pp.motion_mm)
    return quantise(images * tm.scale)


def localizer(ctx: ClinicalExamContext, rng: np.random.Generator, field_fn, tm: CineTiming) -> RenderedSeries:
    """Single-shot bSSFP axial, coronal and sagittal planes through the heart (free breathing, ED)."""
    centre = ctx.heart.to_patient(np.array([0.0, 0.0, 0.5 * ctx.heart.ed.length_mm]))
    planes, images = [], []
    for row, col in (([1, 0, 0], [0, 1, 0]), ([1, 0, 0], [0, 0, -1]), ([0, 1, 0], [0, 0, -1])):
        pl = SlicePlane.centred(centre, np.array(row, float), np.array(col, float),
                                (LOCALIZER_PIXEL_MM, LOCALIZER_PIXEL_MM), LOCALIZER_SHAPE, 8.0)
        contrast = ssfp_contrast(ctx.field_t, tm.tr_ms, tm.flip_deg, field_fn(pl.pixel_grid_mm()).ravel())
        sig = plane_signal(PlaneSampler(ctx.heart, pl, np.zeros(3)), 0.0, contrast, Trabeculae(0.0, 0.0))
        planes.append(pl)
        images.append(quantise(form_image(sig, pl, ctx.coil, 2.0 / tm.snr, rng, 0.6)[None] * tm.scale))
    start = -32.0
    return RenderedSeries("localizer", None, None, _description(rng, ctx.vendor, "localizer"), start, planes,
                          [0, 1, 2], images, localizer_headers(ctx, tm),
                          [[{"AcquisitionTime": acquisition_time(start)}] for _ in planes])


def localizer_headers(ctx: ClinicalExamContext, tm: CineTiming) -> dict:
    """Single-shot bSSFP readout without cardiac phases; the LOCALIZER ImageType tells it apart."""
    h = {k: v for k, v in series_headers(ctx, tm, None).items()
         if k not in ("CardiacNumberOfImages", "NominalInterval", "HeartRate")}
    return {**h, "ImageType": ["ORIGINAL", "PRIMARY", "LOCALIZER"]}


def draw_acquisition(rng: np.random.Generator, ctx: ClinicalExamContext, breathing_p: float = BREATHING_P) -> tuple[
        CineTiming, Trabeculae, Callable[[np.ndarray], np.ndarray], list[PlanePlan]]:
    """The cine's draws before its first image, in :func:`render`'s order: timing, trabeculae,
    off-resonance field and the planes with their breath-hold shifts (what a benchmark needs to
    re-derive the truth's geometry of an exam without rendering it)."""
    tm = draw_timing(rng, ctx)
    trab = draw_trabeculae(rng)
    field_fn = off_resonance_hz(rng, ctx)
    return tm, trab, field_fn, plan_planes(rng, ctx, breathing_p)


def render(ctx: ClinicalExamContext, rng: np.random.Generator, observers: int = 0,
           breathing_p: float = BREATHING_P) -> RenderResult:
    """Localizer and bSSFP cine series of one exam, with contour and landmark truth; ``breathing_p``:
    the share of cines acquired while the patient breathes (the protocol's; training data may ask
    for more)."""
    ctx = dataclasses.replace(ctx, heart=phase_cached(ctx.heart))  # same heart, phases memoised
    tm, trab, field_fn, plans = draw_acquisition(rng, ctx, breathing_p)
    series = [localizer(ctx, rng, field_fn, tm)]
    images, contours, marks = {}, [], []
    phases = tm.phases()
    frames = [(f, float(w), phases.get(f)) for f, w in enumerate(tm.activation)]
    for pp in plans:
        contrast = ssfp_contrast(ctx.field_t, tm.tr_ms, tm.flip_deg, field_fn(pp.plane.pixel_grid_mm()).ravel())
        images[(pp.view, pp.sl)] = render_plane_frames(ctx, pp, tm, contrast, trab, rng)
        c, m = tr.plane_truth(ctx.label, ctx.heart, SEQUENCE, pp.view, pp.sl, pp.plane, pp.shift_mm, frames)
        contours += c
        marks += m
    series += _cine_series(ctx, rng, tm, plans, images)
    planes = {(pp.view, pp.sl): pp.plane for pp in plans}
    truth = pt.truth_frames(contours, marks, planes, rng, observers)
    truth[T.VOLUMES.name] = tr.frame_volumes(ctx.label, ctx.heart, tm.activation, tm.trigger_ms, phases)
    return RenderResult(series, truth)


def _cine_series(ctx: ClinicalExamContext, rng: np.random.Generator, tm: CineTiming, plans: list[PlanePlan],
                 images: dict) -> list[RenderedSeries]:
    """Series as the vendor groups them: Siemens one per SAX slice, GE/Philips one SAX series."""
    def frame_headers(pp: PlanePlan) -> list[dict]:
        at = acquisition_time(pp.start_min)
        return [{"TriggerTime": float(t), "AcquisitionTime": at} for t in tm.trigger_ms]

    def series(group: list[PlanePlan], view: str, desc: str) -> RenderedSeries:
        spacing = SAX_THICKNESS_MM + SAX_GAP_MM if view == "sax" else None
        return RenderedSeries("cine", SEQUENCE, view, desc, group[0].start_min, [p.plane for p in group],
                              [p.sl for p in group], [images[(p.view, p.sl)] for p in group],
                              series_headers(ctx, tm, spacing), [frame_headers(p) for p in group])

    out = [series([pp], pp.view, _description(rng, ctx.vendor, pp.view)) for pp in plans if pp.view != "sax"]
    sax = [pp for pp in plans if pp.view == "sax"]
    if ctx.vendor == "SIEMENS":
        out += [series([pp], "sax", _description(rng, ctx.vendor, "sax", pp.sl + 1)) for pp in sax]
    else:
        out.append(series(sax, "sax", _description(rng, ctx.vendor, "sax")))
    return out
