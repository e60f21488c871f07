"""Plausibility checks of a quantified perfusion series: blood flow, AIF, fit quality and
segmentation, each failing check a specific ``qc_reason`` (the figures are not hidden: they stay
in the tables, the reason says why not to trust them).

Ranges, deliberately wide (they catch failures, not disease):

* MBF per segment 0.1-6 ml/min/g, global rest 0.3-2.5, global stress 0.3-6: healthy rest MBF is
  about 0.6-1.2 and stress 2-4 ml/min/g by dual-sequence CMR (Brown et al., Eur Heart J CVI 2020,
  normal values of automated pixel-wise perfusion mapping; Kellman et al., JCMR 2017); ischaemic
  stress flow falls to ~0.5, and no myocardium perfuses above ~5-6 ml/min/g even at hyperaemia
  (PET: Murthy et al., JNM 2018 review of 15O-water/13N-ammonia flow).
* Perfusion reserve 0.5-7: reserves below 1 occur (steal), above ~5-6 they are not reported.
* AIF peak 1-25 mmol/l: a 0.05-0.1 mmol/kg first pass peaks at a few mmol/l in the LV blood
  (Kellman et al., JCMR 2017); outside, the AIF series missed the bolus or the blood pool.
* Tissue curve: myocardium holds at most its blood and interstitial share of the arterial
  concentration (blood volume ~0.1 ml/g, ECV ~0.25; Jerosch-Herold, JCMR 2010), so a pixel or
  sector curve peaking above half the AIF peak holds blood (partial volume with a cavity, a
  misregistered frame) or is no signal at all (a pixel whose proton-density frame was dark: its
  ratio runs off the signal model to the R1 grid's end, tens of mmol/l).  Such pixels are left
  out of the sector curves and maps (:func:`valid_pixels`); a sector still peaking there is flagged.
* Fit: flow at the estimator's bound, or a residual above a quarter of the curve's peak.
* Segmentation: mean myocardial wall thickness (area / mid-wall perimeter) outside 3-20 mm
  (normal LV wall 6-11 mm, hypertrophy to ~20; Kawel et al., JCMR 2012 normal values), or a
  cavity the myocardium does not enclose.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SEGMENT_MBF_ML_MIN_G = (0.1, 6.0)
GLOBAL_MBF_ML_MIN_G = {"rest": (0.3, 2.5), "stress": (0.3, 6.0)}
RESERVE = (0.5, 7.0)
AIF_PEAK_MMOL_L = (1.0, 25.0)
TISSUE_TO_AIF_PEAK = 0.5
FIT_RMSE_FRACTION = 0.25
WALL_MM = (3.0, 20.0)
MIN_ENCLOSED_FRACTION = 0.7  # share of the cavity's border that must touch myocardium


def valid_pixels(tissue_mM: np.ndarray, aif_peak_mM: float) -> np.ndarray:
    """Pixels (of a (T, R, C) concentration series) whose curve is finite and never exceeds
    ``TISSUE_TO_AIF_PEAK`` x the AIF peak: the only ones that can be myocardium (module docstring)."""
    peak = np.max(np.where(np.isfinite(tissue_mM), tissue_mM, np.inf), axis=0)
    return peak <= TISSUE_TO_AIF_PEAK * aif_peak_mM


def segment_reason(mbf: float, at_bound: bool, rmse_mM: float, curve_peak_mM: float,
                   aif_peak_mM: float) -> str | None:
    """Why one segment's MBF is implausible, or None."""
    if not np.isfinite(mbf):
        return "MBF not finite"
    if at_bound:
        return f"MBF fit at its bound ({mbf:.2f} ml/min/g)"
    lo, hi = SEGMENT_MBF_ML_MIN_G
    if not lo <= mbf <= hi:
        return f"implausible segment MBF {mbf:.2f} ml/min/g (outside {lo}-{hi})"
    if curve_peak_mM > TISSUE_TO_AIF_PEAK * aif_peak_mM:
        return (f"tissue curve peak {curve_peak_mM:.2f} mmol/l above {TISSUE_TO_AIF_PEAK:g} x the AIF peak "
                f"{aif_peak_mM:.2f}: blood in the sector")
    if rmse_mM > FIT_RMSE_FRACTION * max(curve_peak_mM, 1e-6):
        return f"poor fit: residual {rmse_mM:.3f} mmol/l vs curve peak {curve_peak_mM:.3f}"
    return None


def aif_reason(peak_mM: float) -> str | None:
    lo, hi = AIF_PEAK_MMOL_L
    if np.isfinite(peak_mM) and not lo <= peak_mM <= hi:
        return f"implausible AIF peak {peak_mM:.2f} mmol/l (outside {lo:g}-{hi:g})"
    return None


def segmentation_reason(myo: np.ndarray, cavity: np.ndarray, pixel_mm: float) -> str | None:
    """Why a slice's LV segmentation cannot be an LV short-axis section, or None."""
    if not myo.any() or not cavity.any():
        return "segmentation implausible: no " + ("myocardium" if not myo.any() else "LV cavity")
    border = cavity & ~ndimage.binary_erosion(cavity)
    outside = ndimage.binary_dilation(border) & ~cavity
    enclosed = (outside & myo).sum() / max(outside.sum(), 1)
    if enclosed < MIN_ENCLOSED_FRACTION:
        return f"segmentation implausible: myocardium encloses {enclosed:.0%} of the LV cavity's border"
    # mid-wall perimeter ~ mean of the endo and epi perimeters, 2 pi sqrt(area / pi) each
    r_endo = np.sqrt(cavity.sum() / np.pi)
    r_epi = np.sqrt((cavity | myo).sum() / np.pi)
    wall = (r_epi - r_endo) * pixel_mm
    lo, hi = WALL_MM
    if not lo <= wall <= hi:
        return f"segmentation implausible: mean wall thickness {wall:.1f} mm (outside {lo:g}-{hi:g})"
    return None


def global_reason(condition: str, mbf: float | None) -> str | None:
    lo, hi = GLOBAL_MBF_ML_MIN_G[condition]
    if mbf is not None and np.isfinite(mbf) and not lo <= mbf <= hi:
        return f"implausible global {condition} MBF {mbf:.2f} ml/min/g (outside {lo}-{hi})"
    return None


def reserve_reason(reserve: float | None) -> str | None:
    lo, hi = RESERVE
    if reserve is not None and np.isfinite(reserve) and not lo <= reserve <= hi:
        return f"implausible perfusion reserve {reserve:.2f} (outside {lo}-{hi})"
    return None
