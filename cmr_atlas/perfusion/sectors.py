"""RV insertion and AHA sectors of one short-axis perfusion slice, from its segmentation.

The RV insertion points are where the RV free wall meets the LV epicardium, the point an observer
clicks (and the generator's truth: where a probe just outside the LV epicardium enters the RV's
outer wall).  The segmentation has the RV cavity, not its wall, so the wall is put back: a probe
ring ``PROBE_MM`` outside the LV epicardium (traced per degree from the LV centre, sub-pixel) lies
in the RV wall where it is within ``RV_WALL_MM`` of the RV cavity; the insertions are the two ends
of the longest such arc, each moved on ``INSERTION_BEYOND_MM`` along the epicardium (the wedge the
probe misses; 2026-12-04, below).  Which end is anterior: the heart's handedness (seen from the apex, the
path anterior insertion -> septum -> inferior insertion runs counter-clockwise), which the slice
plane's orientation relative to the apex (:func:`image_apex_sense`) turns into image terms; the
generator follows the same anatomy (``synth.anatomy``: anterior is ``+e2``).  Naming by the
patient's anterior direction (the previous rules: per slice, then the stack's summed anterior
offset) swapped the ends on slices whose two insertions lie at nearly one height, and on hearts
posed with the anterior insertion the more posterior (2026-12-02/03, docs/perfusion.md).
The ends of the RV-cavity contact arc (the previous definition) sit 8-20 degrees inside
the insertions; with the wall put back, 6 +- 5 degrees remain on the generator's own label maps
(2.5 mm pixels): near an insertion the free wall runs almost tangent to the LV, so the cavity's
tip, cut off by the LV, ends further from the insertion than one wall thickness.  When the slice's
peak enhancement is given (the automated path), the arc is continued along the probe ring while
the ring is muscle (enhancing at least half as much as the LV myocardium, scaled from what the
ring reads away from the RV) with no muscle a wall's thickness further out (the liver or chest
wall against the LV are thick): the free wall's wedge, up to where epicardial fat or lung begin
(2026-12-03: CNN maps, exams 0-12 of seed 880000, 11.9 -> 8.6 degrees without the naming swaps;
docs/perfusion.md).  Two ways to
extend it were tried and dropped (2026-12-02, worse on the same label maps): an ellipse fitted to
the free wall (ill-posed on crescents a few pixels thick) and the wedge of the cavity's tip
(thickness growth along the arc -> wall angle -> wall / sin(angle); 8.8 deg, over-shooting where the
2.5 mm pixels make the tip's rise a step).  2026-12-04: the wall arc's ends moved on a fixed arc
length (6 mm, chosen on validation seed 886000) beat the enhancement rule, whose ends scatter: on
held-out exams 0-12 of seed 880000 3.7 +- 2.6 against 8.6 +- 5.5 degrees (docs/perfusion.md), so
the pipeline no longer passes the enhancement.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cmr_atlas.core.aha import aha16_segment, insertion_angle_deg

RV_WALL_MM = 4.0  # normal RV free wall 3-5 mm (Lang et al., J Am Soc Echocardiogr 2015: > 5 mm hypertrophy)
PROBE_MM = 1.0  # the probe ring's distance outside the LV epicardium
ANGLE_STEP_DEG = 1.0
MUSCLE_FRACTION = 0.5  # a probe sample that enhances at least half as much as the LV myocardium is muscle
BLOOD_FRACTION = 2.0  # blood enhances several times more than muscle
MAX_EXTEND_DEG = 40.0  # how far the free wall may run along the epicardium beyond the cavity's wall
# The wall arc's ends lie inside the true arc (on the generator's own label maps too: the free
# wall's wedge beyond the cavity's tip thins below what the probe sees), so without the slice's
# enhancement each end moves on along the epicardium by this arc length, chosen on 13 validation
# exams (seed 886000: 12.7 -> 3.9 deg on the CNN's maps; 5 mm 4.4, 8 mm 4.9; docs/perfusion.md)
INSERTION_BEYOND_MM = 6.0


@dataclass(frozen=True)
class Insertions:
    """LV centre and the anterior and inferior RV insertion points, (row, col) pixels."""

    centre: np.ndarray
    anterior: np.ndarray
    inferior: np.ndarray

    def anterior_direction(self) -> np.ndarray:
        """Unit vector from the LV centre to the anterior insertion (what the paper scores)."""
        v = self.anterior - self.centre
        return v / max(np.linalg.norm(v), 1e-9)


def _angles_deg(points: np.ndarray, centre: np.ndarray) -> np.ndarray:
    d = points - centre
    return np.degrees(np.arctan2(d[:, 1], d[:, 0]))


def epicardial_radius_px(lv: np.ndarray, centre: np.ndarray, angles_rad: np.ndarray,
                         step_px: float = 0.25) -> np.ndarray:
    """Outermost radius (pixels, sub-pixel) of the LV mask ``lv`` (cavity | myocardium) along rays
    from ``centre`` at ``angles_rad`` (measured like arctan2(col, row))."""
    r = np.arange(0.0, float(np.hypot(*lv.shape)), step_px)
    rows = centre[0] + r[None, :] * np.cos(angles_rad)[:, None]
    cols = centre[1] + r[None, :] * np.sin(angles_rad)[:, None]
    inside = ndimage.map_coordinates(lv.astype(float), [rows, cols], order=1, cval=0.0) >= 0.5
    last = inside.shape[1] - 1 - np.argmax(inside[:, ::-1], axis=1)
    return np.where(inside.any(axis=1), r[last], 0.0)


def _longest_run(flags: np.ndarray) -> tuple[int, int] | None:
    """(first, last) index of the longest circular run of True in ``flags``."""
    if flags.all() or not flags.any():
        return None
    k = int(np.argmin(flags))  # start the scan at a False so that no run wraps
    f = np.roll(flags, -k)
    best, start = (0, 0, 0), None
    for i, v in enumerate(np.r_[f, False]):
        if v and start is None:
            start = i
        elif not v and start is not None:
            best = max(best, (i - start, start, i - 1))
            start = None
    return (best[1] + k) % len(flags), (best[2] + k) % len(flags)


def extend_along_muscle(run: tuple[int, int], muscle: np.ndarray, max_steps: int) -> tuple[int, int]:
    """The arc ``run`` (first, last index into a circular ``muscle`` flag per ray) continued at each
    end over the neighbouring rays that are muscle, at most ``max_steps`` each (and never round
    into the other end)."""
    n = len(muscle)
    room = min(max_steps, (n - (run[1] - run[0]) % n) // 2)

    def walk(i: int, step: int) -> int:
        for _ in range(room):
            if not muscle[(i + step) % n]:
                break
            i = (i + step) % n
        return i

    return walk(run[0], -1), walk(run[1], 1)


def muscle_fraction(ring: np.ndarray, away: np.ndarray) -> np.ndarray:
    """Enhancement along a probe ring (relative to the LV myocardium's) as the fraction of muscle in
    each sample: 0 at what the ring reads away from the RV (``away``: epicardial fat or lung, with
    the share of the LV wall's pixels a ring near the epicardium still takes), 1 at the myocardium."""
    ref = float(np.median(ring[away])) if away.any() else 0.0
    return (ring - ref) / max(1.0 - ref, 1e-9)


def beyond_ends(run: tuple[int, int], r_epi_px: np.ndarray, beyond_px: float) -> tuple[int, int]:
    """The arc ``run`` (indices into rays ``ANGLE_STEP_DEG`` apart) with each end moved ``beyond_px``
    further along the epicardium (radius ``r_epi_px`` per ray), never round into the other end."""
    n = len(r_epi_px)
    if beyond_px <= 0:
        return run
    room = (n - (run[1] - run[0]) % n - 1) // 2
    steps = [min(room, int(round(np.degrees(beyond_px / max(float(r_epi_px[i]), 1e-6)) / ANGLE_STEP_DEG)))
             for i in run]
    return (run[0] - steps[0]) % n, (run[1] + steps[1]) % n


def find_insertions(myo: np.ndarray, rv: np.ndarray, cavity: np.ndarray, apex_sense: float,
                    pixel_mm: float = 1.0, enhancement: np.ndarray | None = None,
                    beyond_mm: float | None = None) -> Insertions | None:
    """RV insertion points of one slice (None when no RV lies beside the myocardium).

    ``myo``, ``rv`` (RV cavity), ``cavity`` (LV): boolean masks of one slice; ``apex_sense``: > 0
    when the image angle arctan2(col, row) grows counter-clockwise seen from the apex (the plane's
    column x row cosine points towards the apex, :func:`image_apex_sense`), < 0 when the image is
    mirrored; ``pixel_mm``: the masks' pixel size; ``enhancement``: the slice's peak signal rise
    (:func:`manual.peak_enhancement`, on the masks' grid), when given the RV free wall beyond the
    cavity is followed in it (:func:`extend_along_muscle`); ``beyond_mm``: how far each end then
    moves on along the epicardium (default: :data:`INSERTION_BEYOND_MM` without ``enhancement``, 0
    with it).  The pipeline uses the wall arc and ``INSERTION_BEYOND_MM`` (closer to the truth on
    validation exams than following the enhancement, whose ends scatter: docs/perfusion.md).
    """
    if not cavity.any() or not myo.any() or not rv.any():
        return None
    lv = cavity | myo
    centre = np.array(ndimage.center_of_mass(lv))
    theta = np.radians(np.arange(0.0, 360.0, ANGLE_STEP_DEG))
    r_epi = epicardial_radius_px(lv, centre, theta)
    probe = r_epi + PROBE_MM / pixel_mm
    pts = centre + probe[:, None] * np.stack([np.cos(theta), np.sin(theta)], axis=1)
    dist = ndimage.map_coordinates(ndimage.distance_transform_edt(~rv), pts.T, order=1, cval=1e6)
    # pixel centres: the cavity's edge is half a pixel beyond its outermost pixel centre
    in_wall = (dist - 0.5) * pixel_mm <= RV_WALL_MM
    run = _longest_run(in_wall)
    if run is None or in_wall.sum() < 3:
        return None
    if enhancement is not None:
        # near an insertion the free wall runs almost tangent to the LV, its tip (a wedge thinning to
        # the epicardium) lies further than a wall's thickness beyond the cavity's; the probe ring
        # stays in enhancing muscle up to it, then meets epicardial fat or lung, which hardly enhance
        rel = np.asarray(enhancement, float) / max(float(np.median(enhancement[myo])), 1e-9)
        unit = np.stack([np.cos(theta), np.sin(theta)], axis=1)
        outside = centre + (probe + (RV_WALL_MM + pixel_mm) / pixel_mm)[:, None] * unit
        ring, beyond = (muscle_fraction(ndimage.map_coordinates(rel, p.T, order=1, cval=0.0), ~in_wall)
                        for p in (pts, outside))
        # a thin wall, not the liver, diaphragm or chest wall that lie against the LV in places
        muscle = (ring >= MUSCLE_FRACTION) & ((beyond < MUSCLE_FRACTION) | (beyond > BLOOD_FRACTION))
        run = extend_along_muscle(run, muscle, int(MAX_EXTEND_DEG / ANGLE_STEP_DEG))
    if beyond_mm is None:
        beyond_mm = INSERTION_BEYOND_MM if enhancement is None else 0.0
    run = beyond_ends(run, r_epi, beyond_mm / pixel_mm)
    # the run's first end to its last is the sense of growing theta: anterior -> septum -> inferior
    # when that is counter-clockwise seen from the apex
    a, b = (centre + r_epi[i] * np.array([np.cos(theta[i]), np.sin(theta[i])]) for i in run)
    return Insertions(centre, a, b) if apex_sense > 0 else Insertions(centre, b, a)


def image_apex_sense(col_cosine: np.ndarray, row_cosine: np.ndarray, apex_direction: np.ndarray) -> float:
    """+1 when growing image angle arctan2(col, row) (from the direction rows advance along,
    ``col_cosine``, towards the one columns advance along, ``row_cosine``; DICOM
    ImageOrientationPatient's names) is counter-clockwise seen from the apex, -1 when clockwise."""
    return 1.0 if np.cross(col_cosine, row_cosine) @ np.asarray(apex_direction, float) > 0 else -1.0


def sector_map(myo: np.ndarray, insertions: Insertions, level: str) -> np.ndarray:
    """AHA segment (1-16) of every myocardial pixel of a ``basal``, ``mid`` or ``apical`` slice,
    0 elsewhere."""
    out = np.zeros(myo.shape, dtype=np.int8)
    pts = np.argwhere(myo).astype(float)
    if len(pts):
        theta = insertion_angle_deg(pts, insertions.centre, insertions.anterior, insertions.inferior)
        out[myo] = aha16_segment(theta, level)
    return out


def sector_means(values: np.ndarray, sectors: np.ndarray) -> dict[int, tuple[float, int]]:
    """Mean of ``values`` and pixel count per segment present in ``sectors`` (NaNs ignored)."""
    out = {}
    for seg in np.unique(sectors[sectors > 0]):
        v = values[(sectors == seg) & np.isfinite(values)]
        out[int(seg)] = (float(v.mean()) if v.size else float("nan"), int(v.size))
    return out


def direction_error_deg(a: np.ndarray, b: np.ndarray) -> float:
    """Angle between two direction vectors (the paper's RV-insertion detection error)."""
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.degrees(np.arctan2(abs(a[0] * b[1] - a[1] * b[0]), a @ b)))
