"""Was the LGE acquired with myocardium nulled?  The null inversion time expected at the LGE's
acquisition time, from the scout's null point and the minutes between the two, and a verdict on
the LGE series' actual ``InversionTime``.

Drift model (deliberately simpler than the generator's): after a gadolinium bolus the myocardial
relaxation rate is ``R1(t) = R1_native + dR1(t)`` with ``dR1`` proportional to the blood
concentration, which in the late phase falls roughly exponentially (Weinmann et al. 1984: slow
phase 0.011 /min; 8-20 minutes after an injection the fading fast phase adds to it, hence an
effective rate of 0.015 /min by default).  The null of an inversion-recovery readout is
``TI_null ~ T1 ln 2``, so from the scout's null ``R1(t_scout) = ln 2 / TI_scout`` and

    TI_expected = ln 2 / (R1_native + (ln 2 / TI_scout - R1_native) exp(-rate (t_lge - t_scout)))

Native T1 is the population value at the field strength (the scout alone cannot tell it).
The null TI thus grows by a few ms per minute: an LGE 5 minutes after the scout at the scout's TI
is already a little short.
"""

from __future__ import annotations

import numpy as np

NATIVE_T1_MS = {1.5: 1000.0, 3.0: 1200.0}  # remote myocardium, MOLLI-like reference values
WASHOUT_PER_MIN = 0.015
VERDICTS = ("ok", "too_short", "too_long", "no_reliable_null")


def expected_lge_null_ms(scout_null_ms, minutes_after_scout, field_t: float = 1.5,
                         washout_per_min: float = WASHOUT_PER_MIN):
    """Myocardial null TI (ms) ``minutes_after_scout`` after a scout whose null was ``scout_null_ms``."""
    if field_t not in NATIVE_T1_MS:
        raise ValueError(f"field strength {field_t} T: expected one of {sorted(NATIVE_T1_MS)}")
    ti = np.asarray(scout_null_ms, dtype=float)
    r1_native = 1000.0 / NATIVE_T1_MS[field_t]
    r1_scout = np.log(2.0) * 1000.0 / ti
    r1 = r1_native + (r1_scout - r1_native) * np.exp(-washout_per_min * np.asarray(minutes_after_scout, float))
    return np.log(2.0) * 1000.0 / r1


def ti_verdict(lge_ti_ms: float | None, expected_null_ms: float | None, tolerance_ms: float = 25.0,
               tolerance_fraction: float = 0.08) -> str:
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
