"""AHA segment maps of the left ventricle (Cerqueira et al., Circulation 2002).

Segments 1-6 are basal, 7-12 mid, 13-16 apical, 17 the apical cap (the 16-segment model is
1-16).  Basal and mid levels have six 60-degree sectors, the apical level four 90-degree sectors.

Two angle conventions are in use, each with its own function:

* :func:`aha_segment` (LV model wall thickness): ``phi`` measured from the centre of the septum
  towards the anterior wall.  Basal/mid sectors start at the septal centre, apical sectors are
  centred on it.
* :func:`aha16_segment` (perfusion slices): ``theta`` measured about the LV centre from the
  anterior RV insertion point, positive through the septum towards the inferior RV insertion
  point (:func:`insertion_angle_deg` computes it for image points).  Basal/mid sectors start at
  the anterior insertion (anteroseptal first); the septum spans theta 0..120, so the apical
  septal sector is centred on theta = 60.

With the septum 120 degrees wide the two agree: ``theta = 60 - phi`` (up to which sector owns a
boundary angle).  Sectors are half-open, ``[start, start + width)``.
"""

from __future__ import annotations

import numpy as np

SEGMENT_NAMES: dict[int, str] = {
    1: "basal anterior", 2: "basal anteroseptal", 3: "basal inferoseptal",
    4: "basal inferior", 5: "basal inferolateral", 6: "basal anterolateral",
    7: "mid anterior", 8: "mid anteroseptal", 9: "mid inferoseptal",
    10: "mid inferior", 11: "mid inferolateral", 12: "mid anterolateral",
    13: "apical anterior", 14: "apical septal", 15: "apical inferior", 16: "apical lateral",
    17: "apex",
}

LEVELS = ("basal", "mid", "apical")
MID_OFFSET = 6  # mid segment = basal segment of the same wall + 6

# Basal (or apical) segment of each sector, in sector order, per convention.
_PHI_BASAL = np.array([2, 1, 6, 5, 4, 3])  # from the septal centre towards anterior
_PHI_APICAL = np.array([14, 13, 16, 15])  # from phi = -45
_THETA_BASAL = np.array([2, 3, 4, 5, 6, 1])  # from the anterior insertion through the septum
_THETA_APICAL = np.array([14, 15, 16, 13])  # from theta = 15
_THETA_APICAL_START = 15.0


def sector_index(angle_deg: np.ndarray, n_sectors: int, start_deg: float = 0.0) -> np.ndarray:
    """Index 0..n-1 of ``n_sectors`` equal sectors, sector 0 = ``[start, start + 360/n)``."""
    a = np.mod(np.asarray(angle_deg, dtype=float), 360.0)
    if start_deg:
        a = np.mod(a - start_deg, 360.0)
    # np.mod may round a tiny negative angle up to exactly 360: that is the last sector
    return np.minimum((a // (360.0 / n_sectors)).astype(int), n_sectors - 1)


def aha_segment(depth_frac: np.ndarray, phi_deg: np.ndarray) -> np.ndarray:
    """AHA segment (1..17) of points by depth fraction (0 base plane, 1 endocardial apex) and phi.

    Thirds of the base-apex length: basal [0, 1/3), mid [1/3, 2/3), apical [2/3, 0.9); the apical
    cap (17) is depth >= 0.9.  Basal/mid: six 60-degree sectors starting at the septal centre
    (phi = 0) going anterior: 2 anteroseptal, 1 anterior, 6 anterolateral, 5 inferolateral,
    4 inferior, 3 inferoseptal (7..12 likewise).  Apical: four 90-degree sectors centred on the
    septum (14), anterior (13), lateral (16), inferior (15) walls.
    """
    depth_frac = np.asarray(depth_frac, dtype=float)
    phi = np.asarray(phi_deg, dtype=float)
    bm = _PHI_BASAL[sector_index(phi, 6)]
    ap = _PHI_APICAL[sector_index(phi, 4, -45.0)]
    seg = np.where(depth_frac < 1 / 3, bm, np.where(depth_frac < 2 / 3, bm + MID_OFFSET, ap)).astype(int)
    seg[depth_frac >= 0.9] = 17
    return seg


def aha16_segment(theta_deg: np.ndarray, level: str) -> np.ndarray:
    """AHA 16-segment number of points on a ``basal``, ``mid`` or ``apical`` short-axis slice.

    ``theta_deg``: angle about the LV centre from the anterior RV insertion point, positive
    through the septum (:func:`insertion_angle_deg`).  Basal (mid): theta [0, 60) anteroseptal 2
    (8), [60, 120) inferoseptal 3 (9), [120, 180) inferior 4 (10), [180, 240) inferolateral 5
    (11), [240, 300) anterolateral 6 (12), [300, 360) anterior 1 (7).  Apical: [15, 105) septal
    14, [105, 195) inferior 15, [195, 285) lateral 16, [285, 375) anterior 13.
    """
    if level == "apical":
        return _THETA_APICAL[sector_index(theta_deg, 4, _THETA_APICAL_START)]
    if level not in LEVELS:
        raise ValueError(f"AHA level must be one of {LEVELS}, not {level!r}")
    return _THETA_BASAL[sector_index(theta_deg, 6)] + (MID_OFFSET if level == "mid" else 0)


def insertion_angle_deg(points: np.ndarray, centre: np.ndarray, anterior_insertion: np.ndarray,
                        inferior_insertion: np.ndarray) -> np.ndarray:
    """Angle ``theta`` (degrees, [0, 360)) of in-plane points ``(..., 2)`` about the LV ``centre``
    from the anterior RV insertion point, positive in the sense that reaches the inferior
    insertion point the short way round (through the septum).

    All positions are 2D in-plane coordinates of one slice (e.g. ``SlicePlane.in_plane_mm``), so
    the result does not depend on how the image is oriented or mirrored.
    """
    c = np.asarray(centre, dtype=float)
    ref = _angle(np.asarray(anterior_insertion, dtype=float) - c)
    sense = 1.0 if np.mod(_angle(np.asarray(inferior_insertion, dtype=float) - c) - ref, 360.0) < 180.0 else -1.0
    return np.mod(sense * (_angle(np.asarray(points, dtype=float) - c) - ref), 360.0)


def _angle(v: np.ndarray) -> np.ndarray:
    return np.degrees(np.arctan2(v[..., 1], v[..., 0]))
