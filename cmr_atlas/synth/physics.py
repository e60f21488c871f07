"""MR signal physics for the synthetic clinical protocol: relaxation, sequences, contrast agent.

Every sequence's contrast comes from here, so that differences between sequences (bSSFP vs
spoiled gradient echo, saturation recovery, inversion recovery) come out of the physics rather than
out of per-sequence intensity tables.  Conventions: times in ms unless the name says ``_s``,
relaxation rates in 1/s, concentrations in mmol/l, angles in degrees at the interface.

Sources of the figures (approximate literature means; subjects vary around them in the generator):
- Relaxation at 1.5 T and 3 T: Stanisz et al., MRM 2005 (myocardium, liver, skeletal muscle, blood
  T2), Lu et al., MRM 2004 (blood T1 at 3 T), de Bazelaire et al., Radiology 2004 (fat, liver).
  Native myocardial T1 is set to the MOLLI reference ranges the clinical issue asks for
  (about 1,000 ms at 1.5 T, 1,200 ms at 3 T).
- Gadolinium relaxivity in plasma at 37 C: Rohrer et al., Invest Radiol 2005 (r1 about 4-5 l/mmol/s
  at 1.5 T, a little lower at 3 T).
- Blood R2* with concentration: LV blood T2* about 10 ms at the first-pass AIF peak (Kellman et al.,
  JCMR 2017), i.e. a slope of about 20 /s per mmol/l above a 40 ms baseline.
- Look-Locker apparent T1: 1/T1* = 1/T1 - ln(cos(flip)) / TR (Deichmann & Haase, JMR 1992).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

FIELD_STRENGTHS_T = (1.5, 3.0)


@dataclass(frozen=True)
class Relaxation:
    """Native relaxation of one tissue at one field strength."""

    t1_ms: float
    t2_ms: float
    pd: float  # proton density relative to blood water (1.0)
    t2star_ms: float


# Tissue names shared by the clinical renderers (the legacy GRE renderer keeps its intensity table).
RELAXATION: dict[float, dict[str, Relaxation]] = {
    1.5: {
        "blood": Relaxation(1550.0, 250.0, 1.00, 40.0),
        "myocardium": Relaxation(1000.0, 50.0, 0.80, 30.0),
        "fat": Relaxation(290.0, 165.0, 0.90, 60.0),
        "liver": Relaxation(580.0, 45.0, 0.75, 25.0),
        "muscle": Relaxation(1000.0, 35.0, 0.75, 28.0),
        "lung": Relaxation(1200.0, 40.0, 0.15, 2.0),
        "soft": Relaxation(1100.0, 60.0, 0.75, 30.0),
        "bone": Relaxation(550.0, 50.0, 0.45, 8.0),  # marrow-rich vertebrae
        "air": Relaxation(1000.0, 1.0, 0.0, 1.0),
    },
    3.0: {
        "blood": Relaxation(1930.0, 220.0, 1.00, 25.0),
        "myocardium": Relaxation(1200.0, 45.0, 0.80, 25.0),
        "fat": Relaxation(380.0, 130.0, 0.90, 40.0),
        "liver": Relaxation(810.0, 35.0, 0.75, 15.0),
        "muscle": Relaxation(1420.0, 32.0, 0.75, 20.0),
        "lung": Relaxation(1350.0, 35.0, 0.15, 1.0),
        "soft": Relaxation(1400.0, 50.0, 0.75, 20.0),
        "bone": Relaxation(700.0, 40.0, 0.45, 5.0),
        "air": Relaxation(1000.0, 1.0, 0.0, 1.0),
    },
}

R1_RELAXIVITY = {1.5: 4.5, 3.0: 4.0}  # l/mmol/s, gadolinium chelate in plasma at 37 C
R2STAR_RELAXIVITY_BLOOD = 20.0  # 1/s per mmol/l in whole blood (first-pass susceptibility)


def relaxation(field_t: float, tissue: str) -> Relaxation:
    """Native relaxation of ``tissue`` at ``field_t`` (1.5 or 3.0); ValueError names bad input."""
    if field_t not in RELAXATION:
        raise ValueError(f"field strength {field_t} T not modelled (use one of {FIELD_STRENGTHS_T})")
    table = RELAXATION[field_t]
    if tissue not in table:
        raise ValueError(f"unknown tissue {tissue!r} (known: {', '.join(sorted(table))})")
    return table[tissue]


def r1_with_contrast(t1_ms, concentration_mmol_l, field_t: float):
    """Longitudinal rate in 1/s with gadolinium: R1 = 1/T1 + r1 [Gd] (fast water exchange)."""
    return 1000.0 / np.asarray(t1_ms, float) + R1_RELAXIVITY[field_t] * np.asarray(concentration_mmol_l, float)


def _rot_x(alpha: np.ndarray) -> np.ndarray:
    c, s = np.cos(alpha), np.sin(alpha)
    z, o = np.zeros_like(alpha), np.ones_like(alpha)
    return np.stack([np.stack([o, z, z], -1), np.stack([z, c, s], -1), np.stack([z, -s, c], -1)], -2)


def _rot_z(phi: np.ndarray) -> np.ndarray:
    c, s = np.cos(phi), np.sin(phi)
    z, o = np.zeros_like(phi), np.ones_like(phi)
    return np.stack([np.stack([c, s, z], -1), np.stack([-s, c, z], -1), np.stack([z, z, o], -1)], -2)


def bssfp_signal(t1_ms, t2_ms, pd, flip_deg: float, tr_ms: float, off_resonance_hz=0.0):
    """Steady-state bSSFP magnitude at TE = TR/2 (alternating RF phase), any off-resonance.

    Solved exactly as the fixed point of one TR (excitation, free precession and relaxation)
    rather than from a closed form, so banding at ``off_resonance_hz`` near +-1/(2 TR) comes out
    of the same code as the on-resonance T2/T1 contrast.  Broadcasts over all array arguments.
    """
    t1, t2, pd, df = np.broadcast_arrays(*(np.asarray(v, float) for v in (t1_ms, t2_ms, pd, off_resonance_hz)))
    e1, e2 = np.exp(-tr_ms / t1), np.exp(-tr_ms / t2)
    beta = 2 * np.pi * df * tr_ms / 1000.0 + np.pi  # the alternating RF phase moves the band centre
    relax = np.zeros(t1.shape + (3, 3))
    relax[..., 0, 0], relax[..., 1, 1], relax[..., 2, 2] = e2, e2, e1
    a = relax @ _rot_z(beta) @ _rot_x(np.full(t1.shape, np.radians(flip_deg)))
    b = np.zeros(t1.shape + (3,))
    b[..., 2] = 1.0 - e1
    m_after_rf = np.linalg.solve(np.eye(3) - a, b[..., None])  # magnetisation just before the RF
    m_after_rf = _rot_x(np.full(t1.shape, np.radians(flip_deg))) @ m_after_rf
    half = np.zeros(t1.shape + (3, 3))
    half[..., 0, 0] = half[..., 1, 1] = np.sqrt(e2)
    half[..., 2, 2] = np.sqrt(e1)
    m_te = half @ _rot_z(beta / 2) @ m_after_rf
    return pd * np.hypot(m_te[..., 0, 0], m_te[..., 1, 0])


def bssfp_signal_on_resonance(t1_ms, t2_ms, pd, flip_deg: float, tr_ms: float):
    """Closed form of :func:`bssfp_signal` on resonance (Scheffler & Lehnhardt 2003), for checks."""
    t1, t2 = np.asarray(t1_ms, float), np.asarray(t2_ms, float)
    e1, e2 = np.exp(-tr_ms / t1), np.exp(-tr_ms / t2)
    a = np.radians(flip_deg)
    return pd * np.sin(a) * (1 - e1) * np.sqrt(e2) / (1 - (e1 - e2) * np.cos(a) - e1 * e2)


def spoiled_gre_signal(t1_ms, t2star_ms, pd, flip_deg: float, tr_ms: float, te_ms: float):
    """Steady-state spoiled gradient echo (FLASH): ``pd sin a (1-E1)/(1-E1 cos a) exp(-TE/T2*)``."""
    e1 = np.exp(-tr_ms / np.asarray(t1_ms, float))
    a = np.radians(flip_deg)
    return (np.asarray(pd, float) * np.sin(a) * (1 - e1) / (1 - e1 * np.cos(a))
            * np.exp(-te_ms / np.asarray(t2star_ms, float)))


def saturation_recovery_signal(r1_per_s, pd, saturation_delay_ms: float, flip_deg: float,
                               tr_ms: float, n_before_centre: int = 0, r2star_per_s=0.0,
                               te_ms: float = 0.0):
    """Signal of a saturation-recovery FLASH readout at the k-space centre line.

    After a perfect saturation, Mz recovers for ``saturation_delay_ms`` (the delay to the first
    readout pulse), then ``n_before_centre`` readout pulses drive it towards the FLASH steady state:
    ``Mz_n = Mss + (Mz_0 - Mss) (E1 cos a)^n``.  This is the non-linearity with concentration that
    the perfusion pipeline must invert (signal is not proportional to [Gd] at high concentrations).
    """
    r1 = np.asarray(r1_per_s, float)
    a = np.radians(flip_deg)
    e1 = np.exp(-r1 * tr_ms / 1000.0)
    mz0 = 1.0 - np.exp(-r1 * saturation_delay_ms / 1000.0)
    mss = (1 - e1) / (1 - e1 * np.cos(a))
    mz = mss + (mz0 - mss) * (e1 * np.cos(a)) ** n_before_centre
    return np.asarray(pd, float) * mz * np.sin(a) * np.exp(-np.asarray(r2star_per_s, float) * te_ms / 1000.0)


def look_locker_t1star_ms(t1_ms, flip_deg: float, tr_ms: float):
    """Apparent T1 under continuous Look-Locker readout: 1/T1* = 1/T1 - ln(cos a)/TR."""
    return 1.0 / (1.0 / np.asarray(t1_ms, float) - np.log(np.cos(np.radians(flip_deg))) / tr_ms)


def look_locker_signal(ti_ms, t1_ms, pd, flip_deg: float, tr_ms: float, inversion_efficiency: float = 0.95):
    """Magnitude inversion-recovery Look-Locker signal ``pd |A - B exp(-TI/T1*)|``.

    ``A = T1*/T1`` (the apparent steady state) and ``B = A + efficiency`` (an imperfect
    inversion starts from ``-efficiency``); the null falls at ``TI = T1* ln(B/A)``.
    """
    t1 = np.asarray(t1_ms, float)
    t1s = look_locker_t1star_ms(t1, flip_deg, tr_ms)
    a = t1s / t1
    b = a + inversion_efficiency
    return np.asarray(pd, float) * np.abs(a - b * np.exp(-np.asarray(ti_ms, float) / t1s))


def look_locker_null_ms(t1_ms, flip_deg: float, tr_ms: float, inversion_efficiency: float = 0.95):
    """Inversion time at which :func:`look_locker_signal` is zero."""
    t1 = np.asarray(t1_ms, float)
    t1s = look_locker_t1star_ms(t1, flip_deg, tr_ms)
    a = t1s / t1
    return t1s * np.log((a + inversion_efficiency) / a)


def inversion_recovery_mz(ti_ms, t1_ms, inversion_efficiency: float = 0.95, recovery_ms: float = np.inf):
    """Signed Mz at ``ti_ms`` after an inversion, with incomplete recovery before it
    (``recovery_ms`` since the previous readout, as in segmented LGE every other heartbeat)."""
    t1 = np.asarray(t1_ms, float)
    m_start = 1.0 - np.exp(-recovery_ms / t1)
    return 1.0 - (1.0 + inversion_efficiency * m_start) * np.exp(-np.asarray(ti_ms, float) / t1)
