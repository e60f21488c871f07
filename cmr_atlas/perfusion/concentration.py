"""Perfusion signal to gadolinium concentration, and the arterial input from the AIF series.

Kellman et al. (JCMR 2017) dual-sequence quantification: every perfusion series starts with
proton-density (PD) frames (no saturation, small flip), so ``S(t) / S_PD`` cancels the receive-coil
field and the proton density pixel by pixel (this is the surface-coil correction), leaving a known
function of R1 through the saturation-recovery FLASH signal equation.  That function is inverted
on a fine R1 grid, and ``[Gd] = (R1(t) - R1_baseline) / r1`` with the baseline from the pre-bolus
frames.  Blood and tissue both go through the same conversion; the AIF series uses a short
saturation delay so that blood stays on the near-linear part of the curve at the bolus peak.

The signal model here is the textbook one (ideal saturation, FLASH readout towards the centre
line); the generator adds what it leaves out (T2* at the bolus peak, imperfect readouts), as a real
scanner would.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

R1_GRID_PER_S = np.geomspace(0.2, 300.0, 4000)
# Where the signal's slope with R1 has fallen below this fraction of its pre-contrast slope, noise
# is amplified more than 5-fold in the concentration: the signal is saturated.
SATURATION_SLOPE_FRACTION = 0.2
# The PD frames are read with a 5 degree flip: a few times the noise at most where the coil is far
# (the apical slice, the lateral wall).  Dividing by a noisy PD pixel by pixel turns its noise into
# huge concentrations (a PD pixel at a fifth of its neighbours' gives a ratio above the signal
# model's maximum: R1 at the grid's end, ~60 mmol/l; the cause of the demo's 28.6 ml/min/g
# segments).  The coil field the PD normalisation removes is smooth over centimetres, so the PD
# image is smoothed first (Gaussian, this SD); proton density differs little between blood and
# myocardium, so the blur across the endocardium costs little.
PD_SMOOTH_MM = 2.5


@dataclass(frozen=True)
class SaturationRecovery:
    """Saturation-recovery FLASH readout of one series (values from its headers or the config)."""

    saturation_delay_ms: float  # saturation pulse to the first readout pulse
    flip_deg: float
    tr_ms: float
    n_to_centre: int  # readout pulses before the k-space centre line
    pd_flip_deg: float

    def ratio(self, r1_per_s) -> np.ndarray:
        """``S / S_PD`` for relaxation rate ``r1_per_s`` (PD frames fully relaxed)."""
        r1 = np.asarray(r1_per_s, float)
        a = np.radians(self.flip_deg)
        e1 = np.exp(-r1 * self.tr_ms / 1000.0)
        mz0 = 1.0 - np.exp(-r1 * self.saturation_delay_ms / 1000.0)
        mss = (1.0 - e1) / (1.0 - e1 * np.cos(a))
        mz = mss + (mz0 - mss) * (e1 * np.cos(a)) ** self.n_to_centre
        return mz * np.sin(a) / np.sin(np.radians(self.pd_flip_deg))

    def r1_from_ratio(self, ratio: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`ratio` on the R1 grid (clipped to the grid's ends)."""
        return np.interp(np.asarray(ratio, float), self.ratio(R1_GRID_PER_S), R1_GRID_PER_S)

    def sensitivity(self, r1_per_s) -> np.ndarray:
        """d ratio / d R1 at ``r1_per_s``: how much signal one more mmol/l still gives."""
        curve = self.ratio(R1_GRID_PER_S)
        return np.interp(np.asarray(r1_per_s, float), R1_GRID_PER_S, np.gradient(curve, R1_GRID_PER_S))


def concentration_mM(frames: np.ndarray, n_pd: int, seq: SaturationRecovery, relaxivity_per_mM_s: float,
                     n_baseline: int = 3, t2star_loss_per_mM: float = 0.0,
                     pixel_mm: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Gd concentration (mmol/l) of every pixel of a perfusion series ``frames`` (T, ...) whose first
    ``n_pd`` frames are PD images; the ``n_baseline`` frames after them (before the bolus arrives)
    give the native R1.  ``t2star_loss_per_mM``: TE x r2* (blood at the bolus peak loses signal
    as exp(-TE r2* [Gd]); undone by a few fixed-point iterations).  ``pixel_mm``: pixel size of
    (T, R, C) images, whose PD image is then smoothed (:data:`PD_SMOOTH_MM`); None = no smoothing
    (curves).  Returns (concentration (T - n_pd, ...), saturated mask of the same shape).
    """
    frames = np.asarray(frames, float)
    if n_pd < 1:
        raise ValueError("no proton-density frames: the signal cannot be normalised")
    if frames.shape[0] < n_pd + n_baseline + 8:
        raise ValueError(f"only {frames.shape[0]} frames: too few heartbeats for a first pass")
    pd = frames[:n_pd].mean(axis=0)
    if pixel_mm is not None and pd.ndim == 2:
        pd = ndimage.gaussian_filter(pd, PD_SMOOTH_MM / pixel_mm)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(pd > 0, frames[n_pd:] / pd, 0.0)
    r1 = seq.r1_from_ratio(ratio)
    r1_native = np.median(r1[:n_baseline], axis=0)
    for _ in range(4 if t2star_loss_per_mM > 0 else 0):
        c = np.clip((r1 - r1_native) / relaxivity_per_mM_s, 0.0, None)
        r1 = seq.r1_from_ratio(ratio * np.exp(t2star_loss_per_mM * c))
    with np.errstate(divide="ignore", invalid="ignore"):
        saturated = seq.sensitivity(r1) < SATURATION_SLOPE_FRACTION * seq.sensitivity(r1_native)
    return (r1 - r1_native) / relaxivity_per_mM_s, saturated


def noise_sd(frames: np.ndarray, n_pd: int, n_baseline: int = 3) -> float:
    """Thermal noise SD of a magnitude series (T, R, C), by the difference method (NEMA MS 1;
    Dietrich et al., JMRI 2007): consecutive frames of one contrast (the PD frames, else the
    pre-bolus dynamic frames) differ by noise alone, SD sqrt(2) sigma where the signal is well
    above the noise floor (the brighter half of the pixels, where magnitude noise is Gaussian);
    a robust SD (median absolute deviation), so that pixels at moving edges do not count."""
    frames = np.asarray(frames, float)
    same = frames[:n_pd] if n_pd >= 2 else frames[n_pd:n_pd + n_baseline]
    if len(same) < 2:
        return 0.0
    mean = same.mean(axis=0)
    diff = np.diff(same, axis=0)[:, mean >= np.median(mean)]
    return float(1.4826 * np.median(np.abs(diff - np.median(diff))) / np.sqrt(2.0))


def unbiased_magnitude(frames: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Mean signal (T,) of the pixels ``mask`` of magnitude frames (T, R, C) without the noise
    floor: a magnitude pixel's second moment is ``A^2 + 2 sigma^2`` (Gudbjartsson & Patz, MRM 1995),
    so ``sqrt(mean(M^2) - 2 sigma^2)`` estimates the true signal where the mean of M reads high.
    The AIF image's pre-contrast blood (saturation delay of a few ms) lies at 1-3 sigma: its
    magnitude mean reads the baseline high and every concentration after it low (by 40 % in the
    recirculation tail at the generator's SNR)."""
    sq = (np.asarray(frames, float)[:, mask] ** 2).mean(axis=1)
    return np.sqrt(np.clip(sq - 2.0 * sigma**2, 0.0, None))


def pre_bolus_frames(signal: np.ndarray, n_min: int, onset_fraction: float = 0.1) -> int:
    """Dynamic frames of a blood-pool curve (T,) before its bolus: up to the frame before the first
    that has risen ``onset_fraction`` of its peak enhancement (at least ``n_min``).  The AIF's
    pre-contrast blood signal is near the noise floor, so its baseline wants every frame it can get
    (3 frames leave an offset of ~0.05 mmol/l, a sixth of the recirculation tail)."""
    rise = np.asarray(signal, float) - np.median(signal[:n_min])
    above = np.nonzero(rise >= onset_fraction * rise.max())[0]
    return max(n_min, int(above[0]) - 1 if len(above) else n_min)


@dataclass(frozen=True)
class ArterialInput:
    """The AIF found in an AIF series: curve, the blood-pool mask and what to check."""

    blood_mM: np.ndarray  # (T,) whole-blood concentration
    mask: np.ndarray  # (R, C) pixels averaged
    peak_frame: int
    saturated_frames: int  # frames where the mask's mean signal was at the curve's top
    qc_reason: str | None


def find_lv_blood_pool(conc: np.ndarray, min_pixels: int = 4) -> np.ndarray:
    """Mask of the LV blood pool in an AIF series' enhancement ``conc`` (T, R, C: concentration or
    baseline-subtracted signal), from the
    bolus passage alone: pixels enhancing to >= 40 % of the brightest split into an early-peaking
    (RV) and a later-peaking (LV) group; the LV is the largest connected region of the later group,
    eroded once so partial-volume border pixels stay out."""
    # a bolus is coherent over neighbouring pixels and heartbeats, noise is not: detect on a
    # smoothed copy (3 beats, 1 pixel)
    smooth = ndimage.gaussian_filter(ndimage.uniform_filter1d(conc, 3, axis=0), (0, 1, 1))
    peak = smooth.max(axis=0)
    ttp = smooth.argmax(axis=0)
    blood = peak >= 0.4 * peak.max()  # both ventricles' blood pools at the bolus passage
    times = ttp[blood]
    if times.size == 0:
        return np.zeros(peak.shape, dtype=bool)
    if times.max() - times.min() >= 2:  # the RV peaks beats before the LV: keep the later pool
        blood &= ttp >= 0.5 * (times.min() + times.max())
    labels, n = ndimage.label(blood)
    if n == 0:
        return np.zeros(peak.shape, dtype=bool)
    sizes = ndimage.sum(blood, labels, index=np.arange(1, n + 1))
    region = labels == (1 + int(np.argmax(sizes)))
    eroded = ndimage.binary_erosion(region)
    return eroded if eroded.sum() >= min_pixels else region


def arterial_input(frames: np.ndarray, n_pd: int, seq: SaturationRecovery, relaxivity_per_mM_s: float,
                   n_baseline: int = 3, t2star_loss_per_mM: float = 0.0, pixel_mm: float | None = None,
                   noise_floor: bool = True) -> ArterialInput:
    """The AIF of an AIF series (T, R, C), with a QC reason when it cannot be trusted;
    ``t2star_loss_per_mM``: see :func:`concentration_mM`.  The LV blood pool's mean signal is
    converted as one curve, with the magnitude noise floor removed (:func:`unbiased_magnitude`;
    ``noise_floor=False``: the plain mean); the blood pool is small against the coil field, so
    one PD normalisation serves it (``pixel_mm`` is accepted for the callers' symmetry)."""
    frames = np.asarray(frames, float)
    if n_pd < 1:
        raise ValueError("no proton-density frames: the signal cannot be normalised")
    # found on the signal enhancement, not the concentration: pixels with little proton-density
    # signal (lung, air) turn noise into large concentrations that would outshine the blood pool
    dyn = frames[n_pd:]
    mask = find_lv_blood_pool(dyn - np.median(dyn[:n_baseline], axis=0))
    if mask.sum() == 0:
        return ArterialInput(np.zeros(len(dyn)), mask, 0, 0, "no blood pool found in the AIF series")
    sigma = noise_sd(frames, n_pd, n_baseline) if noise_floor else 0.0
    signal = unbiased_magnitude(frames, mask, sigma) if noise_floor else frames[:, mask].mean(axis=1)
    n_base = pre_bolus_frames(signal[n_pd:], n_baseline)
    curve, saturated = concentration_mM(signal, n_pd, seq, relaxivity_per_mM_s, n_base, t2star_loss_per_mM)
    sat = int(saturated.sum())
    peak = int(np.argmax(curve))
    reason = None
    if sat:
        reason = f"AIF saturated on {sat} frames"
    elif curve[peak] < 5 * max(np.std(curve[:n_baseline]), 1e-3):
        reason = "no bolus in the AIF series"
    elif peak >= len(curve) - 3:
        reason = "AIF peaks at the end of the series: truncated bolus"
    return ArterialInput(curve, mask, peak, sat, reason)
