"""RV insertion and AHA sectors of one short-axis perfusion slice, from its segmentation.

The RV insertion points are the two ends of the arc where the RV cavity touches the LV myocardium
(seen from the LV centre); the anterior one is the end nearer the patient's anterior direction in
the image.  Sectors then come from :func:`cmr_atlas.core.aha.aha16_segment` with angles measured by
:func:`cmr_atlas.core.aha.insertion_angle_deg` (the same code the cine pipeline uses): basal and
mid slices six sectors, apical four.  All coordinates are (row, col) pixels of the slice.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cmr_atlas.core.aha import aha16_segment, insertion_angle_deg

CONTACT_PX = 2  # RV pixels within this distance of the myocardium touch it


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


def find_insertions(myo: np.ndarray, rv: np.ndarray, cavity: np.ndarray,
                    anterior_rc: np.ndarray) -> Insertions | None:
    """RV insertion points of one slice (None when the RV does not touch the myocardium).

    ``myo``, ``rv``, ``cavity``: boolean masks; ``anterior_rc``: the patient's anterior direction
    projected into the image, as a (row, col) vector (from the plane's orientation).
    """
    if not cavity.any() or not myo.any():
        return None
    centre = np.array(ndimage.center_of_mass(cavity | myo))
    contact = myo & ndimage.binary_dilation(rv, iterations=CONTACT_PX)
    pts = np.argwhere(contact).astype(float)
    if len(pts) < 3:
        return None
    ang = np.sort(np.mod(_angles_deg(pts, centre), 360.0))
    gaps = np.diff(np.r_[ang, ang[0] + 360.0])
    k = int(np.argmax(gaps))  # the arc's ends border the largest empty gap
    ends = np.radians([ang[(k + 1) % len(ang)], ang[k]])
    radius = np.median(np.linalg.norm(pts - centre, axis=1))
    a, b = (centre + radius * np.array([np.cos(e), np.sin(e)]) for e in ends)
    ant = np.asarray(anterior_rc, float)
    if (a - centre) @ ant < (b - centre) @ ant:
        a, b = b, a
    return Insertions(centre, a, b)


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
