"""Was the LGE acquired with myocardium nulled?  The null inversion time expected at the LGE's
acquisition time, from the scout's null point and the minutes between the two, and a verdict on
the LGE series' actual ``InversionTime``.

Two corrections take the scout's null to the LGE's:

1. Readout (``scout_to_lge``): the scout is a Look-Locker (cine IR) experiment, whose readout
   pulses shorten the apparent T1 (``1/T1* = 1/T1 - ln(cos a)/TR``), so its null comes earlier than
   that of a segmented LGE readout, which lets the magnetisation recover between inversions:
   "cine-based scouts underestimate the TI a segmented LGE needs" (readers add a few tens of ms).
   The factor depends on both sequences (flip, lines per segment, heartbeats per inversion), so it
   is a site/protocol setting (config ``tiscout.audit.scout_to_lge``); its default is the median
   of the synthetic clinical protocol, measured on a calibration cohort disjoint from the
   benchmark (seed 154000, docs/tiscout.md): the equivalent LGE null at the scout's time is
   ``scout_to_lge x scout null``.
2. Washout drift (deliberately simpler than the generator's): after a gadolinium bolus the
   myocardial relaxation rate is ``R1(t) = R1_native + dR1(t)`` with ``dR1`` proportional to the
   blood concentration, which in the late phase falls roughly exponentially (Weinmann et al.
   1984: slow phase 0.011 /min; 8-20 minutes after an injection the fading fast phase adds to it,
   hence an effective rate of about 0.015 /min).  With ``TI_null ~ T1 ln 2``:

    TI_expected = ln 2 / (R1_native + (ln 2 / TI_0 - R1_native) exp(-rate (t_lge - t_scout)))

   ``TI_0`` the equivalent LGE null at the scout's time; native T1 is the population value at the
   field strength (the scout alone cannot tell it).  The null TI grows by a few ms per minute.
"""

from __future__ import annotations

import numpy as np

NATIVE_T1_MS = {1.5: 1000.0, 3.0: 1200.0}  # remote myocardium, MOLLI-like reference values
VERDICTS = ("ok", "too_short", "too_long", "no_reliable_null")


def _r1_native(field_t: float) -> float:
    if field_t not in NATIVE_T1_MS:
        raise ValueError(f"field strength {field_t} T: expected one of {sorted(NATIVE_T1_MS)}")
    return 1000.0 / NATIVE_T1_MS[field_t]


def expected_lge_null_ms(scout_null_ms, minutes_after_scout, field_t: float, washout_per_min: float,
                         scout_to_lge: float):
    """Myocardial null TI (ms) of the LGE readout ``minutes_after_scout`` after a scout whose
    (Look-Locker) null was ``scout_null_ms`` (options: config ``tiscout.audit``)."""
    r1_native = _r1_native(field_t)
    ti = scout_to_lge * np.asarray(scout_null_ms, dtype=float)
    r1_scout = np.log(2.0) * 1000.0 / ti
    r1 = r1_native + (r1_scout - r1_native) * np.exp(-washout_per_min * np.asarray(minutes_after_scout, float))
    return np.log(2.0) * 1000.0 / r1


def scout_to_lge_factor(scout_null_ms, lge_null_ms, minutes_after_scout, field_t, washout_per_min: float):
    """The readout factor that makes :func:`expected_lge_null_ms` exact for known nulls (per scout;
    the calibration takes the median): the drift is undone from the LGE's null back to the
    scout's time, then divided by the scout's null."""
    r1_native = np.array([_r1_native(float(f)) for f in np.atleast_1d(field_t)])
    r1_lge = np.log(2.0) * 1000.0 / np.asarray(lge_null_ms, float)
    r1_0 = r1_native + (r1_lge - r1_native) * np.exp(washout_per_min * np.asarray(minutes_after_scout, float))
    return np.log(2.0) * 1000.0 / r1_0 / np.asarray(scout_null_ms, float)


def ti_verdict(lge_ti_ms: float | None, expected_null_ms: float | None, tolerance_ms: float,
               tolerance_fraction: float) -> str:
    """``ok`` within max(tolerance_ms, tolerance_fraction x expected) of the expected null, else
    ``too_short`` / ``too_long``; ``no_reliable_null`` when either value is missing."""
    if lge_ti_ms is None or expected_null_ms is None or not np.isfinite([lge_ti_ms, expected_null_ms]).all():
        return "no_reliable_null"
    tol = max(tolerance_ms, tolerance_fraction * expected_null_ms)
    if lge_ti_ms < expected_null_ms - tol:
        return "too_short"
    if lge_ti_ms > expected_null_ms + tol:
        return "too_long"
    return "ok"
