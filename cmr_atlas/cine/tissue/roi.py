"""Myocardial and blood-pool regions of one short-axis T1 map from its SAX landmarks, and their AHA
sectors.

Why not the cine segmentation mapped into the map's plane: the maps are separate breath-holds (the
generator shifts each by several mm, as patients do), the cine is in another cardiac phase than the
map's diastasis, and on bSSFP cines the shipped segmentation is the weak link (EDV bias -33 ml,
docs/models.md); a mask carried over would sit partly in blood or fat, which is what a T1 ROI must
avoid.  So the region comes from the map itself and its landmarks, as a core lab draws it:

* the RV insertion points lie on the LV epicardium, so their mean distance from the LV centre is
  the epicardial radius ``R`` (one per slice: the LV is close to round in short axis);
* along rays from the LV centre (every :data:`ANGLE_STEP_DEG`), the endocardium is where the map
  first crosses half-way from the blood pool's T1 (median inside ``BLOOD_CORE`` x R) to the outer
  wall's (median in the ``OUTER_WALL_MM`` band under R), either direction (native: blood is longer,
  post-contrast: shorter), kept within a wall of :data:`WALL_MM` and median-filtered round the ring
  (one noisy ray or a papillary muscle does not move it);
* the myocardial ROI is the middle of the wall (:data:`MID_WALL`, fractions from endocardium to
  epicardium): conservative, clear of blood and epicardial fat by a quarter wall each side, as the
  SCMR/EACVI T1 mapping consensus asks of ROIs (Messroghli et al., J Cardiovasc Magn Reson 2017);
* the blood ROI is a disc of :data:`BLOOD_CORE` of the smallest endocardial radius (clear of
  papillary muscles and trabeculation).

Sectors: :func:`cmr_atlas.core.aha.insertion_angle_deg` from the anterior RV insertion about the LV
centre (the same code as the perfusion sectors), :func:`cmr_atlas.core.aha.aha16_segment`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cmr_atlas.core.aha import aha16_segment, insertion_angle_deg

ANGLE_STEP_DEG = 2.0
RADIAL_STEP_MM = 0.5
WALL_MM = (4.0, 16.0)  # plausible LV wall thickness (normal 6-11 mm, hypertrophy to ~15 mm)
MID_WALL = (0.25, 0.75)  # the ROI: from a quarter to three quarters of the wall, endo -> epi
BLOOD_CORE = 0.5  # blood ROI radius as a fraction of the smallest endocardial radius
OUTER_WALL_MM = (3.5, 1.5)  # the outer-wall reference band: R - 3.5 mm .. R - 1.5 mm
MIN_CONTRAST_MS = 60.0  # blood - myocardium T1 below this: no endocardium to find
MIN_EPI_MM = 12.0  # an epicardial radius below this is not a LV slice
SMOOTH_RAYS = 9  # circular median filter over rays (18 degrees)


class RoiError(ValueError):
    """No ROI on this slice; the message is the qc_reason (a stable code)."""


@dataclass(frozen=True)
class SliceRoi:
    """ROIs of one slice: boolean masks on the map's pixels and each pixel's sector angle."""

    myo: np.ndarray  # (R, C) bool, mid-wall ring
    blood: np.ndarray  # (R, C) bool
    theta_deg: np.ndarray  # (R, C) angle about the LV centre from the anterior RV insertion
    epi_radius_mm: float
    endo_radius_mm: np.ndarray  # (rays,)

    def segments(self, level: str) -> np.ndarray:
        """(R, C) AHA 16-segment number of the myocardial ROI's pixels (0 elsewhere)."""
        return np.where(self.myo, aha16_segment(self.theta_deg, level), 0)


def _polar(shape: tuple[int, int], spacing_mm: tuple[float, float], centre_rc: np.ndarray):
    """(R, C) radius (mm) and angle (rad, arctan2 of the mm offsets) of every pixel about ``centre_rc``."""
    r, c = np.indices(shape, dtype=float)
    dr = (r - centre_rc[0]) * spacing_mm[0]
    dc = (c - centre_rc[1]) * spacing_mm[1]
    return np.hypot(dr, dc), np.arctan2(dc, dr), np.stack([dr, dc], axis=-1)


def _profiles(t1_ms: np.ndarray, spacing_mm: tuple[float, float], centre_rc: np.ndarray, angles: np.ndarray,
              radii_mm: np.ndarray) -> np.ndarray:
    """(rays, radii) map values along rays from the centre (bilinear; NaN outside the image)."""
    rows = centre_rc[0] + radii_mm[None, :] * np.cos(angles)[:, None] / spacing_mm[0]
    cols = centre_rc[1] + radii_mm[None, :] * np.sin(angles)[:, None] / spacing_mm[1]
    return ndimage.map_coordinates(np.asarray(t1_ms, float), [rows, cols], order=1, cval=np.nan)


def endocardial_radii(t1_ms: np.ndarray, spacing_mm: tuple[float, float], centre_rc: np.ndarray,
                      epi_mm: float) -> np.ndarray:
    """Endocardial radius (mm) per ray (:data:`ANGLE_STEP_DEG`) of a map whose epicardial radius is ``epi_mm``."""
    angles = np.radians(np.arange(0.0, 360.0, ANGLE_STEP_DEG))
    radii = np.arange(0.0, epi_mm + RADIAL_STEP_MM, RADIAL_STEP_MM)
    prof = ndimage.uniform_filter1d(_profiles(t1_ms, spacing_mm, centre_rc, angles, radii), 3, axis=1)
    blood = np.nanmedian(prof[:, radii <= BLOOD_CORE * (epi_mm - WALL_MM[0])])
    outer = np.nanmedian(prof[:, (radii >= epi_mm - OUTER_WALL_MM[0]) & (radii <= epi_mm - OUTER_WALL_MM[1])])
    if not np.isfinite(blood) or not np.isfinite(outer) or abs(blood - outer) < MIN_CONTRAST_MS:
        raise RoiError("no_blood_myocardium_contrast")
    lo, hi = max(epi_mm - WALL_MM[1], 0.3 * epi_mm), epi_mm - WALL_MM[0]
    crossed = (np.sign(outer - blood) * (prof - 0.5 * (blood + outer)) > 0) & (radii >= lo)[None, :]
    first = np.where(crossed.any(axis=1), radii[np.argmax(crossed, axis=1)], hi)
    endo = np.clip(first, lo, hi)
    return ndimage.median_filter(endo, size=SMOOTH_RAYS, mode="wrap")


def slice_roi(t1_ms: np.ndarray, spacing_mm: tuple[float, float], centre_rc: np.ndarray, anterior_rc: np.ndarray,
              inferior_rc: np.ndarray) -> SliceRoi:
    """ROIs of one map from its LV centre and RV insertion points (pixels, (row, col)); raises
    :class:`RoiError` (``implausible_landmarks``, ``no_blood_myocardium_contrast``)."""
    sp = np.asarray(spacing_mm, float)
    c, a, b = (np.asarray(p, float) for p in (centre_rc, anterior_rc, inferior_rc))
    epi = float(np.mean([np.linalg.norm((a - c) * sp), np.linalg.norm((b - c) * sp)]))
    return _roi(t1_ms, sp, c, epi, a, b)


def slice_roi_without_insertions(t1_ms: np.ndarray, spacing_mm: tuple[float, float], centre_rc: np.ndarray,
                                 anterior_rc: np.ndarray, inferior_rc: np.ndarray, wall_ms: float) -> SliceRoi:
    """ROIs of a slice whose RV insertions are absent (apical slices: the RV does not reach them).
    ``anterior_rc``/``inferior_rc``: the directions of a neighbouring slice's insertions carried into
    this plane (parallel planes of one series: a core lab's reference for the apical sectors);
    ``wall_ms``: the myocardial T1 of that slice's ROI.  The epicardial radius comes from the map:
    per ray, where the wall's band (within half the blood-wall contrast of ``wall_ms``) that starts at
    the endocardium ends; the median over rays."""
    sp = np.asarray(spacing_mm, float)
    c = np.asarray(centre_rc, float)
    angles = np.radians(np.arange(0.0, 360.0, ANGLE_STEP_DEG))
    radii = np.arange(0.0, 2 * WALL_MM[1] + MIN_EPI_MM, RADIAL_STEP_MM)
    prof = ndimage.uniform_filter1d(_profiles(t1_ms, tuple(sp), c, angles, radii), 3, axis=1)
    blood = np.nanmedian(prof[:, radii <= 0.5 * MIN_EPI_MM - WALL_MM[0]])
    if not np.isfinite(blood) or abs(blood - wall_ms) < MIN_CONTRAST_MS:
        raise RoiError("no_blood_myocardium_contrast")
    band = np.abs(prof - wall_ms) < 0.5 * abs(blood - wall_ms)
    start = np.argmax(band, axis=1)
    after = band & (np.arange(len(radii))[None, :] >= start[:, None])
    ends = np.argmax(~after & (np.arange(len(radii))[None, :] > start[:, None]), axis=1)
    found = band.any(axis=1) & (ends > start)
    if found.mean() < 0.5:
        raise RoiError("no_epicardium")
    epi = float(np.median(radii[ends[found]]))
    return _roi(t1_ms, sp, c, epi, np.asarray(anterior_rc, float), np.asarray(inferior_rc, float))


def _roi(t1_ms: np.ndarray, sp: np.ndarray, c: np.ndarray, epi: float, a: np.ndarray, b: np.ndarray) -> SliceRoi:
    if not np.isfinite(epi) or epi < MIN_EPI_MM:
        raise RoiError("implausible_landmarks")
    endo = endocardial_radii(t1_ms, tuple(sp), c, epi)
    radius, angle, offsets_mm = _polar(np.shape(t1_ms), tuple(sp), c)
    ray = np.rint(np.mod(np.degrees(angle), 360.0) / ANGLE_STEP_DEG).astype(int) % len(endo)
    wall = epi - endo[ray]
    myo = (radius >= endo[ray] + MID_WALL[0] * wall) & (radius <= endo[ray] + MID_WALL[1] * wall)
    blood = radius <= BLOOD_CORE * float(endo.min())
    theta = insertion_angle_deg(offsets_mm, np.zeros(2), (a - c) * sp, (b - c) * sp)
    return SliceRoi(myo, blood, theta, epi, endo)


def slice_levels(positions_mm: np.ndarray, epi_radii_mm: np.ndarray) -> list[str]:
    """AHA level of each of a map series' slices: one slice is mid, two basal and mid, three basal,
    mid and apical (the protocol's planning: SCMR 2020 standardised protocols), ordered along the
    slice normal (``positions_mm``) with the basal end the one of larger epicardial radius (NaN:
    unknown; the outermost slices with a radius decide; none: the order as given).  More slices: thirds of the span."""
    n = len(positions_mm)
    order = np.argsort(positions_mm)
    radii = np.asarray(epi_radii_mm, float)[order]
    known = radii[np.isfinite(radii)]  # the outermost slices with a radius decide the direction
    if len(known) > 1 and known[-1] > known[0]:
        order = order[::-1]
    names = {1: ("mid",), 2: ("basal", "mid"), 3: ("basal", "mid", "apical")}.get(n)
    if names is None:
        names = [("basal", "mid", "apical")[min(2, 3 * k // n)] for k in range(n)]
    out = [""] * n
    for k, i in enumerate(order):
        out[int(i)] = names[k]
    return out
