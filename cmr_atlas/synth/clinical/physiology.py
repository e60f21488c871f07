"""Physiology of a synthetic clinical subject: myocardial blood flow, hematocrit, tissue relaxation
after contrast, scar and fibrosis.  One draw per subject, shared by every series of the exam.

Calibration targets (sources in brackets; the calibration test checks them on 2,000 subjects):
- MBF in subjects without ischaemia or microvascular disease: stress 2.25 +- 0.59, rest
  1.08 +- 0.23 ml/min/g (Kellman et al., JCMR 2017; the figures the perfusion paper quotes).
- Adenosine stress raises the heart rate by 10-25 bpm (the clinical-protocol issue).
- Hematocrit about 0.40 in women and 0.44 in men (population reference ranges).
- Native myocardial T1 about 950-1,050 ms at 1.5 T and 1,150-1,250 ms at 3 T (MOLLI reference
  ranges); ECV 0.25 +- 0.03 in health, women about 0.02 higher (Haaf et al., JCMR 2016);
  infarct scar ECV 0.5-0.7, diffuse or mid-wall fibrosis 0.30-0.40.

Risk-factor effects on MBF, documented here and nowhere else (per subject, before segment noise):
- age: stress MBF -0.10 ml/min/g per decade above 60, rest unchanged;
- diabetes: stress -0.30 (microvascular dysfunction), rest +0.05;
- hypertension: stress -0.15, rest +0.08 (higher rate-pressure product at rest);
- female sex: rest +0.10, stress +0.10;
- microvascular disease (more likely with diabetes and hypertension): stress MBF of every
  segment x 0.55-0.75;
- ischaemia in one coronary territory (more likely with coronary calcium and after MI): stress MBF
  of that territory's segments 35-70 % of the remote stress flow (about 0.8-1.6 ml/min/g), never
  below 90 % of rest; rest unchanged unless infarcted.
The means of these effects over the reference population are removed from the intercepts, so that
the marginal MBF of unaffected subjects keeps the published mean and SD.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from functools import lru_cache

import numpy as np
import pandas as pd

from cmr_atlas.synth import physics

N_SEGMENTS = 16  # AHA segments 1-16 (the apical cap, 17, is not seen on perfusion slices)

# Standard coronary territories on the AHA 16 segments (Cerqueira et al., Circulation 2002).
CORONARY_TERRITORIES: dict[str, tuple[int, ...]] = {
    "LAD": (1, 2, 7, 8, 13, 14),
    "RCA": (3, 4, 9, 10, 15),
    "LCX": (5, 6, 11, 12, 16),
}

MBF_STRESS_NORMAL = (2.25, 0.59)  # ml/min/g, mean and SD in unaffected subjects
MBF_REST_NORMAL = (1.08, 0.23)
SEGMENT_HETEROGENEITY = 0.08  # relative SD of segment MBF around the subject's global value
STRESS_EFFECTS = {"age_per_10y_over_60": -0.10, "diabetes": -0.30, "hypertension": -0.15, "female": 0.10}
REST_EFFECTS = {"age_per_10y_over_60": 0.0, "diabetes": 0.05, "hypertension": 0.08, "female": 0.10}
HEMATOCRIT = {"F": (0.40, 0.03), "M": (0.44, 0.03)}
NATIVE_T1_MYO_MS = {1.5: (1000.0, 30.0), 3.0: (1200.0, 35.0)}  # female +15 ms (population studies)
ECV_HEALTHY = (0.25, 0.03)


@dataclass
class Physiology:
    """One subject's physiology; segment arrays are indexed by AHA segment - 1."""

    hematocrit: float
    heart_rate_rest_bpm: float
    heart_rate_stress_bpm: float
    mbf_rest: np.ndarray  # (16,) ml/min/g
    mbf_stress: np.ndarray  # (16,)
    perfusion_group: str  # normal, ischaemic or microvascular
    ischaemic_territory: str | None
    native_t1_myo_ms: float
    ecv: np.ndarray  # (16,) extracellular volume fraction per segment
    scar_segments: tuple[int, ...] = ()  # AHA numbers with scar (MI subjects)
    scar_transmurality: float = 0.0  # 0 subendocardial rim ... 1 transmural
    fibrosis_segments: tuple[int, ...] = ()  # mid-wall fibrosis (non-ischaemic)
    amyloid_like: bool = False  # myocardium nulls before blood on the TI scout
    blood_gd_scale: float = 1.0  # plasma Gd relative to the washout model (amyloid: a larger space)
    extra: dict = field(default_factory=dict)

    @property
    def mbf_reserve(self) -> np.ndarray:
        return self.mbf_stress / self.mbf_rest


def _subject_effects(subject: pd.Series | pd.DataFrame | dict, table: dict[str, float]):
    """Summed MBF effect of a subject (a row) or of every row of a frame (vectorised)."""
    age_dec = np.maximum(np.asarray(subject["age"], float) - 60.0, 0.0) / 10.0
    return (table["age_per_10y_over_60"] * age_dec
            + table["diabetes"] * np.asarray(subject["diabetes"], float)
            + table["hypertension"] * np.asarray(subject["hypertension"], float)
            + table["female"] * (np.asarray(subject["sex"]) == "F"))


@lru_cache(maxsize=1)
def _effect_moments() -> dict[str, tuple[float, float]]:
    """Mean and SD of the risk-factor effects on stress and rest MBF over a large MESA-like
    reference population, so the intercept and residual SD keep the published marginals."""
    from cmr_atlas.synth.subjects import sample_subjects

    ref = sample_subjects(np.random.default_rng(8675309), 5000)
    out = {}
    for name, table in (("stress", STRESS_EFFECTS), ("rest", REST_EFFECTS)):
        e = _subject_effects(ref, table)
        out[name] = (float(e.mean()), float(e.std()))
    return out


def _perfusion_group(rng: np.random.Generator, subject) -> tuple[str, str | None]:
    """normal / ischaemic (one territory) / microvascular, with risk-factor-dependent odds."""
    p_isch = 0.06 + 0.08 * int(subject.get("calcium_positive", 0)) + 0.6 * int(subject.get("mi", 0))
    p_mvd = 0.04 + 0.08 * int(subject["diabetes"]) + 0.05 * int(subject["hypertension"])
    u = rng.random()
    if u < p_isch:
        return "ischaemic", str(rng.choice(list(CORONARY_TERRITORIES)))
    if u < p_isch + p_mvd:
        return "microvascular", None
    return "normal", None


def draw_mbf(rng: np.random.Generator, subject) -> tuple[np.ndarray, np.ndarray, str, str | None]:
    """Rest and stress MBF per AHA segment, the perfusion group and the ischaemic territory."""
    mom = _effect_moments()
    (mean_s, sd_s), (mean_r, sd_r) = mom["stress"], mom["rest"]
    stress_sd = np.sqrt(MBF_STRESS_NORMAL[1] ** 2 - sd_s ** 2)  # the effects carry part of the SD  # part of the SD is the effects'
    rest_sd = np.sqrt(MBF_REST_NORMAL[1] ** 2 - sd_r ** 2)
    g_stress = MBF_STRESS_NORMAL[0] - mean_s + float(_subject_effects(subject, STRESS_EFFECTS)) + rng.normal(0, stress_sd)
    g_rest = MBF_REST_NORMAL[0] - mean_r + float(_subject_effects(subject, REST_EFFECTS)) + rng.normal(0, rest_sd)
    g_rest = float(np.clip(g_rest, 0.45, 2.2))
    g_stress = float(np.clip(g_stress, g_rest * 1.1, 5.0))  # adenosine raises flow in health
    stress = g_stress * (1 + SEGMENT_HETEROGENEITY * rng.standard_normal(N_SEGMENTS))
    rest = g_rest * (1 + SEGMENT_HETEROGENEITY * rng.standard_normal(N_SEGMENTS))
    group, territory = _perfusion_group(rng, subject)
    if group == "microvascular":
        stress *= rng.uniform(0.55, 0.75)
    elif group == "ischaemic":
        seg = np.array(CORONARY_TERRITORIES[territory]) - 1
        # a flow-limiting stenosis: the territory reaches 35-70 % of the remote stress flow
        stress[seg] *= rng.uniform(0.35, 0.7) * (1 + 0.1 * rng.standard_normal(len(seg)))
    stress = np.maximum(stress, rest * 0.9)  # ischaemic stress flow stays near rest flow
    return rest, stress, group, territory


def draw_physiology(rng: np.random.Generator, subject, field_t: float) -> Physiology:
    """One subject's physiology at ``field_t`` (1.5 or 3.0 T); ``subject`` is a row of
    :func:`cmr_atlas.synth.subjects.sample_subjects` (age, sex, diabetes, hypertension, mi, ...)."""
    if field_t not in NATIVE_T1_MYO_MS:
        raise ValueError(f"field strength {field_t} T not modelled")
    sex = subject["sex"]
    hct = float(np.clip(rng.normal(*HEMATOCRIT[sex]), 0.30, 0.52))
    hr = float(subject["heart_rate"])
    rest, stress, group, territory = draw_mbf(rng, subject)
    t1_mean, t1_sd = NATIVE_T1_MYO_MS[field_t]
    t1 = float(rng.normal(t1_mean + (15.0 if sex == "F" else 0.0), t1_sd))
    ecv = np.clip(rng.normal(ECV_HEALTHY[0] + (0.02 if sex == "F" else 0.0), ECV_HEALTHY[1])
                  + 0.01 * rng.standard_normal(N_SEGMENTS), 0.18, 0.34)
    scar, transmural, fibrosis = (), 0.0, ()
    if int(subject.get("mi", 0)):
        terr = territory or str(rng.choice(list(CORONARY_TERRITORIES)))
        segs = CORONARY_TERRITORIES[terr]
        k = int(rng.integers(2, len(segs) + 1))
        scar = tuple(sorted(int(s) for s in rng.choice(segs, size=k, replace=False)))
        transmural = float(rng.uniform(0.2, 1.0))
        ecv[np.array(scar) - 1] = rng.uniform(0.5, 0.7, len(scar))
        rest[np.array(scar) - 1] *= 1.0 - 0.5 * transmural
        stress[np.array(scar) - 1] = np.minimum(stress[np.array(scar) - 1], rest[np.array(scar) - 1] * 1.1)
    elif rng.random() < 0.06:  # non-ischaemic mid-wall fibrosis, typically septal
        fibrosis = tuple(sorted(int(s) for s in rng.choice((2, 3, 8, 9, 14), size=int(rng.integers(1, 4)),
                                                            replace=False)))
        ecv[np.array(fibrosis) - 1] = rng.uniform(0.30, 0.40, len(fibrosis))
    hr_stress = hr + float(rng.uniform(10.0, 25.0))
    amyloid = bool(rng.random() < 0.02)
    ph = Physiology(
        hematocrit=hct, heart_rate_rest_bpm=hr, heart_rate_stress_bpm=hr_stress,
        mbf_rest=rest, mbf_stress=stress, perfusion_group=group, ischaemic_territory=territory,
        native_t1_myo_ms=t1, ecv=ecv, scar_segments=scar, scar_transmurality=transmural,
        fibrosis_segments=fibrosis,
    )
    return make_amyloid_like(ph, rng) if amyloid else ph


def make_amyloid_like(ph: Physiology, rng: np.random.Generator) -> Physiology:
    """The same subject with amyloid-like myocardium: ECV 0.54-0.66 with 0.03 patchiness outside
    any scar (amyloid ECV is 0.45-0.65 in AL and ATTR series, Martinez-Naharro et al., JACC 2017),
    native T1 +100 ms, and plasma gadolinium x 0.75 (the agent spreads into the expanded
    interstitium).  Myocardium then nulls before blood on the TI scout: its partition coefficient
    ``ECV / (1 - Hct)`` nears 1 while its native T1 is high."""
    ecv = ph.ecv.copy()
    keep = np.isin(np.arange(1, N_SEGMENTS + 1), ph.scar_segments)
    amyloid = np.clip(rng.uniform(0.54, 0.66) + 0.03 * rng.standard_normal(N_SEGMENTS), 0.48, 0.75)
    ecv[~keep] = amyloid[~keep]
    return replace(ph, ecv=ecv, native_t1_myo_ms=ph.native_t1_myo_ms + 100.0, amyloid_like=True, blood_gd_scale=0.75)


def post_contrast_t1_ms(native_t1_ms, ecv, hematocrit: float, blood_concentration_mmol_l: float,
                        field_t: float):
    """Tissue T1 after contrast from the two-space water model behind ECV.

    The agent stays in plasma and interstitium, so the tissue's R1 rises by
    ``ECV / (1 - Hct) * (R1_blood_post - R1_blood_native)`` (the ECV equation solved for the
    tissue): with ECV 0.25 and blood at 0.5 mmol/l (about 10 minutes after 0.1-0.15 mmol/kg),
    myocardium goes from about 1,000 ms to about 500 ms at 1.5 T.
    """
    if field_t not in physics.R1_RELAXIVITY:
        raise ValueError(f"field strength {field_t} T not modelled")
    d_r1_blood = physics.R1_RELAXIVITY[field_t] * blood_concentration_mmol_l  # R1_post - R1_native of blood
    r1 = 1000.0 / np.asarray(native_t1_ms, float) + np.asarray(ecv, float) / (1.0 - hematocrit) * d_r1_blood
    return 1000.0 / r1


def ecv_from_t1(t1_myo_pre_ms, t1_myo_post_ms, t1_blood_pre_ms, t1_blood_post_ms, hematocrit: float):
    """ECV = (1 - Hct) * dR1_myocardium / dR1_blood: the formula the T1 pipeline applies."""
    d_myo = 1000.0 / np.asarray(t1_myo_post_ms, float) - 1000.0 / np.asarray(t1_myo_pre_ms, float)
    d_blood = 1000.0 / np.asarray(t1_blood_post_ms, float) - 1000.0 / np.asarray(t1_blood_pre_ms, float)
    return (1.0 - hematocrit) * d_myo / d_blood
