"""Contrast concentration of every tissue compartment during a first-pass perfusion series, and the
saturation-recovery signal it gives.

Figures (sources):
- AIF first-pass peak of whole blood for 0.05 mmol/kg: 3.5 +- 1.2 mmol/l at stress, 4.4 +- 1.2 at
  rest (Kellman et al., JCMR 2017, dual-sequence AIF); gamma-variate shape alpha 2.5-3.5, beta
  0.9-1.3 s at stress (higher cardiac output) and 1.1-1.6 s at rest, arrival 5-9 s after the
  injection (:mod:`cmr_atlas.synth.kinetics`); a subject's stress and rest peaks correlate
  (r about 0.36: body size and cardiac output are shared).
- The RV sees the bolus 2-4 s earlier (pulmonary transit), sharper (beta x 0.6-0.8) and higher
  (x 1.2-1.6: less dispersion), as in every dual-bolus/first-pass study's RV and LV curves.
- Myocardium: by default the distributed-parameter model (capillary plug flow with an axial
  gradient exchanging with the interstitium beside it; Sangren & Sheppard 1953, Larson et al. 1987;
  :func:`cmr_atlas.synth.kinetics.distributed_parameter_curve`), neither the Fermi model nor the
  2CXM that the estimators fit; ``tissue_model="2cxm"`` selects the two-compartment exchange model
  (Sourbron & Buckley 2011) instead, with the same draws.  Parameters: the segment's MBF, PS
  1.0-1.4 ml/min/g at rest and x 1.2-1.5 under
  adenosine (capillary recruitment), plasma volume 0.045 rest / 0.06 stress (blood volume 0.08-0.12
  ml/g, Jerosch-Herold, JCMR 2010), interstitium ECV - vp.  The MBF truth is whole-blood flow per
  gram; the models take plasma flow ``Fp = MBF x 1.05 g/ml x (1 - Hct)`` (the subject's
  hematocrit) and the plasma input ``Cb / (1 - Hct)``.  The input reaches the myocardium
  0.5-1.5 s after the LV cavity, 0.5-1.5 s later still in a territory fed by collaterals.
- Transmural gradient: the inner half of the wall gets ``endo/epi`` times the outer half's flow
  (segment MBF = their mean): 1.05-1.2 at rest and 0.95-1.1 at stress in health (Bache & Schwartz,
  Circulation 1982; Chiribiri et al., JACC CVI 2013), 0.5-0.8 at stress in an ischaemic territory
  (a stenosis first starves the subendocardium) and 0.75-0.9 with microvascular disease.
- Residual gadolinium of earlier injections (the rest series follows the stress one by 12-20 min)
  raises every baseline: blood from :meth:`Timeline.blood_concentration_mmol_l`, tissues at their
  equilibrium share ``(vp + ve) Cp``.
- Skeletal muscle, fat, marrow, liver enhance slowly with low-flow exchange parameters.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import kinetics as kin
from cmr_atlas.synth.clinical.dynamic import N_COMPARTMENTS, N_LAYERS, SEGMENT_BASE, compartment_of_segment
from cmr_atlas.synth.clinical.physiology import N_SEGMENTS
from cmr_atlas.synth.clinical.protocol import ClinicalExamContext
from cmr_atlas.synth.clinical.render import TISSUE_OF_CLASS
from cmr_atlas.synth.physics import R1_RELAXIVITY, R2STAR_RELAXIVITY_BLOOD, relaxation, saturation_recovery_signal

AIF_PEAK_MMOL_L = {"stress": (3.5, 1.2), "rest": (4.4, 1.2)}  # Kellman 2017, 0.05 mmol/kg
FINE_DT_S = 0.05
BLOOD_CLASSES = (an.LV_BLOOD, an.RV_BLOOD, an.OTHER_BLOOD)
# Slow-enhancing background tissues: (MBF ml/min/g, PS ml/min/g, vp, ve, delay s)
BACKGROUND_EXCHANGE = {
    an.MUSCLE: (0.06, 0.15, 0.02, 0.12, 2.0), an.SOFT: (0.06, 0.15, 0.02, 0.12, 2.0),
    an.FAT: (0.03, 0.05, 0.01, 0.05, 2.0), an.EPI_FAT: (0.03, 0.05, 0.01, 0.05, 1.0),
    an.BONE: (0.10, 0.2, 0.03, 0.10, 2.0), an.LIVER: (0.9, 5.0, 0.10, 0.22, 6.0),  # portal inflow: late
}


AIF_PEAK_CORRELATION = 0.6  # a subject's stress and rest peaks go together (body size, cardiac output)


def draw_aif_shape(rng: np.random.Generator, state: str, injection_s: float,
                   subject_z: float = 0.0) -> tuple[float, kin.AifShape]:
    """First-pass peak (mmol/l whole blood) and gamma-variate shape of one subject's LV input;
    ``subject_z`` (standard normal, shared by both states) correlates the stress and rest peaks
    without changing their marginal distributions."""
    mean, sd = AIF_PEAK_MMOL_L[state]
    z = AIF_PEAK_CORRELATION * subject_z + np.sqrt(1 - AIF_PEAK_CORRELATION**2) * rng.standard_normal()
    peak = float(np.clip(mean + sd * z, 0.8, mean + 4 * sd))
    stress = state == "stress"
    shape = kin.AifShape(
        arrival_s=injection_s + rng.uniform(5.0, 7.5) if stress else injection_s + rng.uniform(6.0, 9.0),
        alpha=rng.uniform(2.5, 3.5), beta_s=rng.uniform(0.9, 1.3) if stress else rng.uniform(1.1, 1.6),
        recirculation_delay_s=rng.uniform(7.0, 11.0), recirculation_fraction=rng.uniform(0.15, 0.35),
        recirculation_width=rng.uniform(1.6, 2.4), plateau_fraction=rng.uniform(0.04, 0.09))
    return peak, shape


@dataclass
class StateCurves:
    """Concentration (mmol/l) of every compartment on the frame times of one perfusion state (the
    mid slice's, which stand for the heartbeats), and on the fine grid they were computed on, so
    that every image can be given the concentrations of its own acquisition time (:meth:`at`)."""

    times_s: np.ndarray  # (T,) from the series start
    aif_peak_mmol_l: float
    blood_lv: np.ndarray  # (T,) whole blood, including any residual gadolinium
    plasma_lv: np.ndarray
    compartments: np.ndarray  # (T, N_COMPARTMENTS)
    layer_mbf: np.ndarray  # (17, N_LAYERS) ml/min/g of each segment's inner and outer half
    fine_s: np.ndarray | None = None  # (F,) the fine grid (FINE_DT_S)
    fine_compartments: np.ndarray | None = None  # (F, N_COMPARTMENTS)

    def segment(self, s: int) -> np.ndarray:
        """Tissue curve of AHA segment ``s`` (mean of its wall layers)."""
        return self.compartments[:, compartment_of_segment(s, np.arange(N_LAYERS))].mean(axis=1)

    def at(self, times_s: np.ndarray) -> np.ndarray:
        """(T, N_COMPARTMENTS) concentrations at ``times_s`` (s from the series start): the AIF image
        and each slice are read at their own time in the heartbeat (their TriggerTime), a few
        hundred ms apart, while the first pass changes the blood concentration by up to 1 mmol/l
        per 100 ms."""
        if self.fine_s is None:
            return self.compartments
        return np.stack([np.interp(times_s, self.fine_s, self.fine_compartments[:, k])
                         for k in range(self.fine_compartments.shape[1])], axis=1)


def _fine_grid(times_s: np.ndarray) -> np.ndarray:
    return np.arange(0.0, float(times_s[-1]) + 1.0, FINE_DT_S)


def state_curves(ctx: ClinicalExamContext, rng: np.random.Generator, state: str, times_s: np.ndarray,
                 injection_s: float, start_min: float, subject_z: float = 0.0,
                 tissue_model: str = "distributed") -> StateCurves:
    """Draw the inputs and compute every compartment's concentration at ``times_s``; the myocardium
    (LV segments and RV wall) with ``tissue_model`` (a key of ``kin.TISSUE_MODELS``; the slow
    background tissues always with the 2CXM).  The model draws nothing: both give the same exam."""
    myocardium = kin.TISSUE_MODELS[tissue_model]
    ph = ctx.physiology
    hct = ph.hematocrit
    t = _fine_grid(times_s)
    peak, shape = draw_aif_shape(rng, state, injection_s, subject_z)
    lv = kin.aif_blood(t, peak, shape)
    rv_shape = replace(shape, arrival_s=shape.arrival_s - rng.uniform(2.0, 4.0), beta_s=shape.beta_s * rng.uniform(0.6, 0.8))
    rv = kin.aif_blood(t, peak * rng.uniform(1.2, 1.6), rv_shape)
    base_blood = float(ctx.blood_gd_mmol_l(start_min))
    base_plasma = base_blood / (1.0 - hct)
    cp = kin.plasma_from_blood(lv, hct)
    comp = np.zeros((len(t), N_COMPARTMENTS))
    comp[:, an.LV_BLOOD], comp[:, an.RV_BLOOD] = lv, rv
    comp[:, an.OTHER_BLOOD] = 0.5 * (lv + rv)  # atria and aortic root: left and right inputs
    comp[:, an.LUNG] = 0.2 * rv  # pulmonary capillary blood
    for c in BLOOD_CLASSES + (an.LUNG,):
        comp[:, c] += base_blood * (0.2 if c == an.LUNG else 1.0)
    stress = state == "stress"
    ps_scale = rng.uniform(1.2, 1.5) if stress else 1.0
    vp = 0.06 if stress else 0.045
    delay = rng.uniform(0.5, 1.5)
    collateral = rng.uniform(0.5, 1.5)
    layer_mbf = layer_flows(ctx, rng, state)
    territory = set(_territory_segments(ph.ischaemic_territory)) if ph.perfusion_group == "ischaemic" else set()
    for s in range(1, N_SEGMENTS + 1):
        ve = max(float(ph.ecv[s - 1]) - vp, 0.08)
        ps = rng.uniform(1.0, 1.4) * ps_scale
        inp = kin.delayed(t, cp, delay + (collateral if s in territory else 0.0))
        for layer in range(N_LAYERS):
            params = kin.ExchangeParams(float(layer_mbf[s - 1, layer]), ps, vp, ve)
            comp[:, compartment_of_segment(s, layer)] = myocardium(t, inp, params, hct) + (vp + ve) * base_plasma
    apical = compartment_of_segment(np.arange(13, 17)[:, None], np.arange(N_LAYERS)[None, :])
    for layer in range(N_LAYERS):  # apical cap: the mean of the apical segments
        comp[:, compartment_of_segment(17, layer)] = comp[:, apical[:, layer]].mean(axis=1)
    comp[:, an.LV_MYO] = comp[:, SEGMENT_BASE:].mean(axis=1)
    mbf = ph.mbf_stress if stress else ph.mbf_rest
    rv_params = kin.ExchangeParams(float(np.mean(mbf)) * 0.7, 1.2 * ps_scale, vp, 0.2)
    comp[:, an.RV_MYO] = myocardium(t, kin.delayed(t, cp, delay), rv_params, hct) + (vp + 0.2) * base_plasma
    for c, (f, ps, v_p, v_e, lag) in BACKGROUND_EXCHANGE.items():
        params = kin.ExchangeParams(f * (1.6 if stress else 1.0), ps, v_p, v_e)
        comp[:, c] = kin.tissue_curve(t, kin.delayed(t, cp, lag), params, hct) + (v_p + v_e) * base_plasma
    sample = lambda y: np.interp(times_s, t, y)  # noqa: E731
    comp_t = np.stack([sample(comp[:, k]) for k in range(N_COMPARTMENTS)], axis=1)
    return StateCurves(np.asarray(times_s, float), peak, sample(lv + base_blood), sample(cp + base_plasma), comp_t,
                       layer_mbf, t, comp)


def layer_flows(ctx: ClinicalExamContext, rng: np.random.Generator, state: str) -> np.ndarray:
    """(17, 2) MBF of the inner and outer half of each segment's wall (segment 17: the apical mean);
    their mean is the segment's MBF (see the module docstring for the endo/epi ratios)."""
    ph = ctx.physiology
    stress = state == "stress"
    mbf = ph.mbf_stress if stress else ph.mbf_rest
    ratio = np.full(N_SEGMENTS, rng.uniform(0.95, 1.1) if stress else rng.uniform(1.05, 1.2))
    if stress and ph.perfusion_group == "microvascular":
        ratio[:] = rng.uniform(0.75, 0.9)
    if stress and ph.perfusion_group == "ischaemic":
        seg = np.array(_territory_segments(ph.ischaemic_territory)) - 1
        ratio[seg] = rng.uniform(0.5, 0.8)
    out = np.empty((17, N_LAYERS))
    out[:16, 0] = 2 * mbf * ratio / (1 + ratio)
    out[:16, 1] = 2 * mbf / (1 + ratio)
    out[16] = out[12:16].mean(axis=0)
    return out


def _territory_segments(territory: str | None) -> tuple[int, ...]:
    from cmr_atlas.synth.clinical.physiology import CORONARY_TERRITORIES

    return CORONARY_TERRITORIES.get(territory, ()) if territory else ()


@dataclass(frozen=True)
class NativeProperties:
    """Pre-contrast relaxation and proton density of every compartment at one field strength."""

    r1_per_s: np.ndarray  # (N_COMPARTMENTS,)
    r2star_per_s: np.ndarray
    pd: np.ndarray


def native_properties(ctx: ClinicalExamContext) -> NativeProperties:
    r1, r2s, pd = (np.zeros(N_COMPARTMENTS) for _ in range(3))
    for k in range(N_COMPARTMENTS):
        tissue = TISSUE_OF_CLASS[k] if k < an.N_TISSUES else "myocardium"
        rel = relaxation(ctx.field_t, tissue)
        r1[k], r2s[k], pd[k] = 1000.0 / rel.t1_ms, 1000.0 / rel.t2star_ms, rel.pd
    r1[SEGMENT_BASE:] = r1[an.LV_MYO] = r1[an.RV_MYO] = 1000.0 / ctx.physiology.native_t1_myo_ms
    return NativeProperties(r1, r2s, pd)


@dataclass(frozen=True)
class Readout:
    """Saturation-recovery (or proton-density) FLASH readout of one image."""

    saturation_delay_ms: float  # from the saturation pulse to the first readout pulse (TS - n TR)
    flip_deg: float
    tr_ms: float
    te_ms: float
    n_before_centre: int
    proton_density: bool = False  # no saturation pulse (the first 2-3 frames)


def signal_tables(ctx: ClinicalExamContext, native: NativeProperties, conc: np.ndarray, readout: Readout,
                  norm_flip_deg: float) -> np.ndarray:
    """(T, N_COMPARTMENTS) signal for concentrations ``conc`` (T, N_COMPARTMENTS), relative to a
    fully relaxed spin system read with ``norm_flip_deg`` (PD frames come out at sin(5)/sin(12)...).

    Nonlinear in concentration: R1 = R1_native + r1 [Gd] through the saturation-recovery
    equation, and blood loses signal to T2* at the bolus peak."""
    r1 = native.r1_per_s[None, :] + R1_RELAXIVITY[ctx.field_t] * conc
    blood = np.zeros(N_COMPARTMENTS)
    blood[list(BLOOD_CLASSES)] = 1.0
    r2s = native.r2star_per_s[None, :] + R2STAR_RELAXIVITY_BLOOD * conc * blood[None, :]
    delay = 1e7 if readout.proton_density else readout.saturation_delay_ms
    s = saturation_recovery_signal(r1, native.pd[None, :], delay, readout.flip_deg, readout.tr_ms,
                                   readout.n_before_centre, r2s, readout.te_ms)
    return s / np.sin(np.radians(norm_flip_deg))
