"""Free-breathing motion of the heart across the heartbeats of a dynamic (perfusion) series.

The heart rides on the diaphragm: its displacement is mostly superior-inferior (patient z) with a
smaller anterior-posterior component (patient y) and a little left-right (x), about 0.6-0.7 of the
diaphragm's excursion.  Figures (sources):
- quiet-breathing diaphragm excursion 10-15 mm, heart 4-10 mm peak to peak, mostly SI with AP
  about 0.3 and LR about 0.15 of it (Wang et al., MRM 1995; McLeish et al., IEEE TMI 2002);
- breathing period 3-6 s, cycle-to-cycle irregularity about 15 % and an end-expiratory pause
  (Lujan et al., Med Phys 1999: cos^4-like waveform); deep breaths (sighs) of 1.5-2 times the tidal
  amplitude, which adenosine makes more frequent (dyspnoea is its commonest side effect);
- the heart deforms a little with breathing (about 1-3 % in-plane, McLeish 2002).
Many patients try to hold their breath for the first pass and then gasp: half the series start
with a breath-hold of 10-25 s (slow drift only) and a deeper first breath after it, the rest
breathe throughout.  Through the SAX plane this gives about 4-12 mm peak to peak over a series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

SI_PEAK_TO_PEAK_MM = (4.0, 10.0)  # tidal heart excursion, uniform range
DIRECTION_SI_AP_LR = np.array([0.15, 0.3, 1.0])  # relative components along patient x, y, z
PERIOD_S = (3.0, 6.0)
DEEP_BREATH_PROB = 0.08  # per breathing cycle
DEFORMATION_PER_MM = 0.0015  # in-plane scale change per mm of SI displacement


@dataclass(frozen=True)
class RespiratoryTrace:
    """Per-heartbeat displacement of the heart (patient mm) and in-plane scale factor."""

    shift_mm: np.ndarray  # (T, 3)
    scale: np.ndarray  # (T,) 1 = no deformation


def breathing_phase(rng: np.random.Generator, t_s: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Phase in cycles (irregular periods) and each time's breath amplitude factor."""
    t_end = float(t_s[-1]) + 10.0
    starts, amps = [-rng.uniform(0, PERIOD_S[1])], []
    base_period = rng.uniform(*PERIOD_S)
    while starts[-1] < t_end:
        starts.append(starts[-1] + base_period * float(np.clip(rng.normal(1.0, 0.15), 0.6, 1.5)))
        amps.append(rng.uniform(1.5, 2.0) if rng.random() < DEEP_BREATH_PROB else rng.normal(1.0, 0.12))
    starts = np.array(starts)
    k = np.clip(np.searchsorted(starts, t_s, side="right") - 1, 0, len(amps) - 1)
    frac = (t_s - starts[k]) / (starts[k + 1] - starts[k])
    return k + frac, np.asarray(amps)[k]


def respiratory_trace(rng: np.random.Generator, t_s: np.ndarray) -> RespiratoryTrace:
    """Heart displacement at the acquisition times ``t_s`` (s from the series start)."""
    t_s = np.asarray(t_s, float)
    phase, amp = breathing_phase(rng, t_s)
    p2p = rng.uniform(*SI_PEAK_TO_PEAK_MM)
    # cos^4-like waveform: 0 at end expiration (long pause), 1 at end inspiration
    wave = 1.0 - np.cos(np.pi * np.mod(phase, 1.0)) ** 4
    si = p2p * amp * wave
    hold_s = rng.uniform(10.0, 25.0) if rng.random() < 0.5 else 0.0
    if hold_s > 0:  # breath-hold at end expiration with a slow drift, then a gasp
        held = t_s < hold_s
        drift = rng.normal(0, 1.0) * t_s / hold_s
        si = np.where(held, drift, si + rng.uniform(0.2, 0.6) * p2p * np.exp(-(t_s - hold_s) / 4.0) * (t_s >= hold_s))
    direction = DIRECTION_SI_AP_LR * rng.uniform(0.7, 1.3, 3) * np.array([rng.choice([-1, 1]), 1.0, 1.0])
    # inspiration moves the heart inferior (+z is superior in DICOM patient coordinates: -z)
    shift = -si[:, None] * direction[None, :] / np.linalg.norm(direction)
    shift = shift + rng.normal(0, 0.3, shift.shape)  # cardiac-gating jitter
    scale = 1.0 + DEFORMATION_PER_MM * si * rng.uniform(0.5, 1.5)
    return RespiratoryTrace(shift, scale)
