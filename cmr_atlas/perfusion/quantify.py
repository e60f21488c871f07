"""One perfusion series from pixels to blood flow: motion correction, concentration, AIF,
segmentation (automated, or given masks for the manual path), RV insertion, AHA sectors, MBF per
pixel and per sector.

Frame times: every frame's AcquisitionTime; the AIF (acquired in the same heartbeats, a few
hundred ms earlier in each) is interpolated to each slice's own frame times, and both curves are
resampled to a uniform grid of the median heartbeat before the fit (the estimator takes one
``dt_s``).  The sector MBF is the fit of the sector's mean tissue curve (the per-pixel curves are
noisy); the pixel maps use the same model with the bolus delay fixed to the slice's median
sector delay (a per-pixel delay is poorly determined).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy import ndimage
from scipy.interpolate import PchipInterpolator

from cmr_atlas.perfusion import concentration as conc
from cmr_atlas.perfusion import mbf as M
from cmr_atlas.perfusion import motion, prepare, qc, segment
from cmr_atlas.perfusion import sectors as S


@dataclass(frozen=True)
class QuantConfig:
    """What quantification needs besides the pixels (the config's ``perfusion`` section)."""

    hematocrit: float
    model: str  # primary estimator: fermi | 2cxm
    relaxivity_per_mM_s: dict  # field strength (T) -> r1
    saturation_delay_ms: float  # saturation to the k-space centre, myocardial slices
    n_to_centre: int
    aif_saturation_delay_ms: float
    aif_n_to_centre: int
    n_baseline: int
    min_frames: int
    trigger_to_saturation_ms: float
    slice_readout_ms: float
    tr_ms: float
    aif_te_ms: float
    blood_r2star_per_mM_s: float
    pixel_maps: bool = True
    insertions: str = "network"  # network: the landmark network (insertion_net), the wall rule where it finds none; wall: the rule
    insertion_absent_threshold: float = 0.1
    fuse_insertions: bool = True  # the network's insertions of a slice averaged over its stress and rest acquisitions

    @classmethod
    def from_config(cls, section: dict) -> "QuantConfig":
        rel = {float(k): float(v) for k, v in section["relaxivity_l_per_mmol_s"].items()}
        keys = ("hematocrit", "model", "saturation_delay_ms", "n_to_centre", "aif_saturation_delay_ms",
                "aif_n_to_centre", "n_baseline", "min_frames", "pixel_maps", "trigger_to_saturation_ms",
                "slice_readout_ms", "tr_ms", "aif_te_ms", "blood_r2star_per_mM_s", "insertions",
                "insertion_absent_threshold", "fuse_insertions")
        return cls(relaxivity_per_mM_s=rel, **{k: section[k] for k in keys})

    def relaxivity(self, field_t: float | None) -> float:
        f = 1.5 if field_t is None else min(self.relaxivity_per_mM_s, key=lambda k: abs(k - field_t))
        return self.relaxivity_per_mM_s[f]

    def readout(self, s, aif: bool, first_ms: float | None = None) -> conc.SaturationRecovery:
        """The series' saturation-recovery readout: flip from its per-frame FlipAngle (main and PD),
        ``first_ms`` (saturation to the first readout pulse, :func:`first_pulse_delays_ms`) or else
        the config's saturation delay; pulses before the centre and TR from the config."""
        flips = s.flip_angle_deg[0]
        n_pd = prepare.pd_frame_count(flips)
        n = self.aif_n_to_centre if aif else self.n_to_centre
        if first_ms is None or not np.isfinite(first_ms):
            first_ms = (self.aif_saturation_delay_ms if aif else self.saturation_delay_ms) - n * self.tr_ms
        return conc.SaturationRecovery(float(max(first_ms, 1.0)), float(np.nanmedian(flips[n_pd:])), self.tr_ms, n,
                                       float(np.nanmedian(flips[:n_pd])))


def first_pulse_delays_ms(p: prepare.PreparedSeries, cfg: QuantConfig) -> tuple[float, float]:
    """Saturation to first readout pulse of the AIF image and of the myocardial slices, from the
    TriggerTimes (NaN where they do not tell).  The AIF image is saturated right after the R wave
    (``trigger_to_saturation_ms``) and read at its TriggerTime (k-space centre); the slices follow
    one another, each saturation, delay, readout of ``slice_readout_ms``, so consecutive slices'
    TriggerTimes differ by delay + readout."""
    aif_first = np.nan
    if p.aif is not None and np.isfinite(p.aif.trigger_time_ms).any():
        ts = float(np.nanmedian(p.aif.trigger_time_ms)) - cfg.trigger_to_saturation_ms
        aif_first = ts - cfg.aif_n_to_centre * cfg.tr_ms
    trig = np.sort([np.nanmedian(t) if np.isfinite(t).any() else np.nan for t in p.series.trigger_time_ms])
    slot = np.nanmin(np.diff(trig)) if len(trig) > 1 and np.isfinite(trig).all() else np.nan
    return aif_first, slot - cfg.slice_readout_ms


@dataclass
class SliceResult:
    """Everything one slice gives (on the motion-corrected pixel grid)."""

    level: str
    labels: np.ndarray  # (R, C) class map
    sectors: np.ndarray  # (R, C) AHA segment, 0 outside the myocardium
    insertions: S.Insertions | None
    shifts_px: np.ndarray  # (T, 2) motion removed
    residual_px: float
    centre_rc: np.ndarray
    aif_mM: np.ndarray  # (T_u,) on the uniform grid
    times_s: np.ndarray  # (T_u,)
    segment_curves: dict[int, np.ndarray] = field(default_factory=dict)
    segment_mbf: dict[str, dict[int, float]] = field(default_factory=dict)  # model -> segment -> MBF
    segment_pixels: dict[int, int] = field(default_factory=dict)
    segment_qc: dict[str, dict[int, str | None]] = field(default_factory=dict)  # model or "segment" -> segment -> reason
    valid: np.ndarray | None = None  # (R, C) pixels whose curve can be tissue (qc.valid_pixels)
    mbf_map: np.ndarray | None = None
    qc_reason: str | None = None
    # automated path: sub-pixel endo/epi contours of the network's probabilities (segment.contours)
    contours: dict[str, np.ndarray] = field(default_factory=dict)


@dataclass
class AifResult:
    blood_mM: np.ndarray  # dynamic frames of the AIF series
    times_s: np.ndarray
    peak_mM: float
    qc_reason: str | None


def arterial_input(p: prepare.PreparedSeries, cfg: QuantConfig, noise_floor: bool = True) -> AifResult:
    """The AIF of a prepared series, on its own frame times (s from the perfusion series' start);
    ``noise_floor``: remove the magnitude noise floor (:func:`concentration.unbiased_magnitude`)."""
    a = p.aif
    frames = np.asarray(a.plane_frames(0), float)
    n_pd = prepare.pd_frame_count(a.flip_angle_deg[0])
    try:
        first = first_pulse_delays_ms(p, cfg)[0]
        loss = cfg.aif_te_ms / 1000.0 * cfg.blood_r2star_per_mM_s
        res = conc.arterial_input(frames, n_pd, cfg.readout(a, True, first), cfg.relaxivity(a.field_strength_t),
                                  cfg.n_baseline, loss, float(np.mean(a.planes[0].pixel_spacing_mm)), noise_floor)
    except ValueError as exc:
        return AifResult(np.zeros(0), np.zeros(0), float("nan"), f"AIF: {exc}")
    t = a.acquisition_time_s[0, n_pd: int(a.n_frames[0])] - np.nanmin(p.series.acquisition_time_s)
    peak = float(res.blood_mM.max())
    return AifResult(res.blood_mM, t, peak, res.qc_reason or qc.aif_reason(peak))


def uniform_curves(times_s: np.ndarray, tissue: np.ndarray, aif_t: np.ndarray, aif: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Tissue (N, T) and AIF resampled to a uniform grid from the slice's first dynamic frame.
    The AIF, read a few hundred ms before the slice in each heartbeat, is moved to the slice's
    times by a monotone cubic: linear interpolation between two heartbeats would cut its peak
    (the reason :mod:`.mbf` interpolates it so too)."""
    dt = prepare.dt_s(times_s)
    grid = times_s[0] + dt * np.arange(len(times_s))
    t_u = np.stack([np.interp(grid, times_s, c) for c in np.atleast_2d(tissue)])
    if np.all(np.diff(aif_t) > 0):
        a_u = PchipInterpolator(aif_t, aif)(np.clip(grid, aif_t[0], aif_t[-1]))
    else:  # AcquisitionTimes out of order (a header fault): no cubic through them
        a_u = np.interp(grid, aif_t, aif)
    return grid, t_u, a_u, dt


def correct_slices(p: prepare.PreparedSeries) -> list[motion.MotionCorrection]:
    """Motion correction of every slice of a series (the heart sought near the series' centre)."""
    px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
    stack = [p.frames(k) for k in range(len(p.order))]
    near = motion.series_heart_centre(stack, p.n_pd, px)
    return [motion.correct_series(f, p.n_pd, px, near_rc=near) for f in stack]


def auto_probabilities(model, card: dict, p: prepare.PreparedSeries, mcs: list[motion.MotionCorrection],
                       precision=None) -> list[np.ndarray]:
    """CNN class probabilities (K, R, C) of every slice of a series, on its motion-corrected pixel grid."""
    sp = tuple(float(v) for v in p.series.planes[0].pixel_spacing_mm)
    x = np.stack([segment.net_input(mc.frames[p.n_pd:], mc.centre_rc, sp, card) for mc in mcs])
    probs = segment.predict(model, x, precision)
    return [segment.to_slice(pr, mc.centre_rc, sp, float(card["input"]["spacing_mm"]), mc.frames.shape[1:])
            for mc, pr in zip(mcs, probs)]


def class_map(probs: np.ndarray) -> np.ndarray:
    """The most probable class of every pixel, specks removed (:func:`segment.clean_labels`)."""
    return segment.clean_labels(np.argmax(probs, axis=0).astype(np.int8))


def auto_labels(model, card: dict, p: prepare.PreparedSeries, mcs: list[motion.MotionCorrection],
                precision=None) -> list[np.ndarray]:
    """CNN class maps of every slice of a series, on its motion-corrected pixel grid."""
    return [class_map(pr) for pr in auto_probabilities(model, card, p, mcs, precision)]


def stack_insertions(labels: list[np.ndarray], plane, enhancement: list[np.ndarray] | None = None,
                     beyond_mm: float | None = None) -> list[S.Insertions | None]:
    """RV insertions of every slice of a stack (:func:`slice_insertions`); ``enhancement``: each
    slice's peak signal rise, when known."""
    enh = enhancement if enhancement is not None else [None] * len(labels)
    return [slice_insertions(lab, plane, e, beyond_mm) for lab, e in zip(labels, enh)]


def slice_insertions(labels: np.ndarray, plane, enhancement: np.ndarray | None = None,
                     beyond_mm: float | None = None) -> S.Insertions | None:
    """RV insertions of one slice, named anterior/inferior by the heart's handedness
    (:func:`sectors.find_insertions`), which the slice plane's orientation relative to the apex
    gives; no patient direction enters."""
    return S.find_insertions(labels == segment.MYOCARDIUM, labels == segment.RV, labels == segment.CAVITY,
                             S.image_apex_sense(plane.col_cosine, plane.row_cosine, prepare.APEX_DIRECTION),
                             float(np.mean(plane.pixel_spacing_mm)), enhancement, beyond_mm)


def segmentation_qc(labels: np.ndarray, pixel_mm: float) -> str | None:
    """Why a slice's class map cannot be an LV short-axis section (:func:`qc.segmentation_reason`), or None."""
    return qc.segmentation_reason(labels == segment.MYOCARDIUM, labels == segment.CAVITY, pixel_mm)


def trusted_insertions(ins: list[S.Insertions | None], labels: list[np.ndarray],
                       pixel_mm: float) -> list[S.Insertions | None]:
    """``ins`` without those of slices whose segmentation is implausible (:func:`segmentation_qc`):
    a failed segmentation's RV contact says nothing about the heart (one such basal slice of 42
    held-out exams put its insertions 166 degrees off), so such a slice borrows its neighbour's
    directions (:func:`borrow_insertions`) like a slice without RV contact, and lends none."""
    return [None if segmentation_qc(lab, pixel_mm) else i for i, lab in zip(ins, labels)]


def lv_centre(labels: np.ndarray) -> np.ndarray | None:
    """LV centre (row, col) of a class map: the centroid of cavity and myocardium, None without either."""
    lv = np.isin(labels, (segment.CAVITY, segment.MYOCARDIUM))
    return np.argwhere(lv).mean(axis=0) if lv.any() else None


def borrow_insertions(ins: list[S.Insertions | None], labels: list[np.ndarray]) -> list[S.Insertions | None]:
    """A slice without an RV contact (often the apical one) takes the insertion directions of the
    nearest slice that has one (stack slices share the in-plane orientation)."""
    out = list(ins)
    for k, v in enumerate(ins):
        if v is not None or not (labels[k] == segment.MYOCARDIUM).any():
            continue
        donors = sorted((abs(j - k), j) for j, w in enumerate(ins) if w is not None)
        if donors:
            d = ins[donors[0][1]]
            c = lv_centre(labels[k])
            out[k] = S.Insertions(c, c + d.anterior - d.centre, c + d.inferior - d.centre)
    return out


def despike(curves: np.ndarray, width: int = 5, k: float = 4.0) -> np.ndarray:
    """Outlier-frame rejection: samples further than ``k`` robust SDs from the curve's running
    median (``width`` beats) are replaced by it.  A frame the motion correction got wrong puts blood
    or liver into a sector for one beat; a single such spike before the bolus reads as a huge flow."""
    med = ndimage.median_filter(curves, size=(1, width), mode="nearest")
    resid = curves - med
    mad = 1.4826 * np.median(np.abs(resid), axis=1, keepdims=True)
    return np.where(np.abs(resid) > k * np.maximum(mad, 1e-9), med, curves)


def sector_core(res: SliceResult, seg: int, min_pixels: int = 5) -> np.ndarray:
    """Pixels of sector ``seg`` inside the myocardium (not on its border): a pixel beside the LV or
    RV cavity mixes in blood that enhances ten times more, one on the epicardial border the tissue
    the heart slides over while breathing (the liver enhances strongly late), by partial volume
    and residual motion, and a few such pixels dominate a sector's mean curve."""
    sector = res.sectors == seg
    if res.valid is not None:
        sector &= res.valid
    core = sector & ndimage.binary_erosion(res.labels == segment.MYOCARDIUM)
    return core if core.sum() >= min_pixels else sector


def segment_qc(fits: dict[str, M.MbfFit], j: int, primary: str, curve_peak_mM: float,
               aif_peak_mM: float) -> dict[str, str | None]:
    """Plausibility of curve ``j``: each estimator's own verdict (:func:`qc.segment_reason`) and,
    under ``"segment"``, the one that leaves the segment out of the global mean: the configured
    estimator's, else the other's (prefixed with its name): a curve one of the two models can only
    fit with an implausible flow is suspect for both.  That costs stress segments where the 2CXM
    reads high (140 clinical exams, 2026-12-03: up to 7 of 16 in an exam), but letting them in
    (tried: only the other's fit failures counted) moved auto - manual at rest from -0.015 (p 0.23)
    to -0.059 (p 0.01) on the 42-exam benchmark: those curves carry blood."""
    out = {model: qc.segment_reason(float(f.mbf_ml_min_g[j]), bool(f.at_bound[j]), float(f.rmse_mM[j]),
                                    curve_peak_mM, aif_peak_mM) for model, f in fits.items()}
    others = [f"{m}: {r}" for m, r in out.items() if m != primary and r]
    out["segment"] = out[primary] or (others[0] if others else None)
    return out


def slice_mbf(res: SliceResult, tissue_conc: np.ndarray, times_s: np.ndarray, aif: AifResult,
              cfg: QuantConfig) -> None:
    """Sector curves and their MBF by both estimators (pixels that cannot be tissue left out,
    :func:`qc.valid_pixels`), each segment's plausibility (primary estimator), and the pixel map."""
    res.valid = qc.valid_pixels(tissue_conc, aif.peak_mM)
    myo = res.sectors > 0
    segs = [int(s) for s in np.unique(res.sectors[myo]) if (sector_core(res, int(s))).any()]
    if not segs:
        res.qc_reason = res.qc_reason or "no myocardium segmented"
        return
    curves = despike(np.stack([tissue_conc[:, sector_core(res, s)].mean(axis=1) for s in segs]))
    grid, cu, au, dt = uniform_curves(times_s, curves, aif.times_s, aif.blood_mM)
    res.times_s, res.aif_mM = grid - grid[0], au
    fits = {model: M.fit_curves(au, cu, dt, cfg.hematocrit, model) for model in M.MODELS}
    for model, fit in fits.items():
        res.segment_mbf[model] = dict(zip(segs, map(float, fit.mbf_ml_min_g)))
    delays = fits[cfg.model].delay_s
    verdicts = [segment_qc(fits, j, cfg.model, float(cu[j].max()), aif.peak_mM) for j in range(len(segs))]
    res.segment_qc = {k: {s: v[k] for s, v in zip(segs, verdicts)} for k in (*fits, "segment")}
    res.segment_curves = dict(zip(segs, cu))
    res.segment_pixels = {s: int((res.sectors == s).sum()) for s in segs}
    if cfg.pixel_maps:
        pix = myo & res.valid
        _, pu, _, _ = uniform_curves(times_s, despike(tissue_conc[:, pix].T), aif.times_s, aif.blood_mM)
        m = M.fit_curves(au, pu, dt, cfg.hematocrit, cfg.model, delay_s=float(np.median(delays)))
        res.mbf_map = np.full(res.sectors.shape, np.nan)
        res.mbf_map[pix] = m.mbf_ml_min_g


def quantify_series(p: prepare.PreparedSeries, mcs: list[motion.MotionCorrection], labels: list[np.ndarray],
                    insertions: list[S.Insertions | None], aif: AifResult, cfg: QuantConfig) -> list[SliceResult]:
    """Every slice of a prepared series, given its motion correction, class maps and insertions."""
    out = []
    r1 = cfg.relaxivity(p.series.field_strength_t)
    seq = cfg.readout(p.series, False, first_pulse_delays_ms(p, cfg)[1])
    for k, (mc, lab, ins) in enumerate(zip(mcs, labels, insertions)):
        res = SliceResult(p.levels[k], lab, np.zeros(lab.shape, np.int8), ins, mc.shifts_px, mc.residual_px,
                          mc.centre_rc, np.zeros(0), np.zeros(0))
        px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
        res.qc_reason = segmentation_qc(lab, px)
        if ins is None:
            res.qc_reason = res.qc_reason or "no RV insertion found (no RV contact in any slice)"
        elif res.qc_reason is None:
            res.sectors = S.sector_map(lab == segment.MYOCARDIUM, ins, p.levels[k])
        if aif.qc_reason is None and res.qc_reason is None:
            tissue, _ = conc.concentration_mM(mc.frames, p.n_pd, seq, r1, cfg.n_baseline, pixel_mm=px)
            slice_mbf(res, tissue, p.times_s(k)[p.n_pd:], aif, cfg)
        res.qc_reason = res.qc_reason or aif.qc_reason
        out.append(res)
    return out
