"""Image formation shared by every synthetic protocol: plane orientation, breath-hold
displacement, surface-coil receive field and the acquired k-space support.

Moved here from the legacy scanner so that the clinical sequences form their images the same way.
"""

from __future__ import annotations

import numpy as np
from scipy.spatial.transform import Rotation

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import calibration as cal


def small_rotation(rng: np.random.Generator, sd_deg: float) -> np.ndarray:
    axis = rng.normal(size=3)
    axis /= np.linalg.norm(axis)
    return Rotation.from_rotvec(axis * np.radians(rng.normal(0, sd_deg))).as_matrix()


def in_plane_axes(normal: np.ndarray, rng: np.random.Generator, jitter_deg: float) -> tuple[np.ndarray, np.ndarray]:
    """Row and column cosines for a plane: rows run roughly towards patient left, like scanners do."""
    ref = np.array([1.0, 0.0, 0.0])
    row = ref - (ref @ normal) * normal
    if np.linalg.norm(row) < 0.3:
        ref = np.array([0.0, 1.0, 0.0])
        row = ref - (ref @ normal) * normal
    row /= np.linalg.norm(row)
    ang = np.radians(rng.uniform(-jitter_deg, jitter_deg))
    col = np.cross(normal, row)
    row, col = np.cos(ang) * row + np.sin(ang) * col, -np.sin(ang) * row + np.cos(ang) * col
    return row, col


def breath_hold_shift(rng: np.random.Generator, plane: SlicePlane, scale: float = 1.0) -> np.ndarray:
    """Displacement of the heart in one breath-hold: heavy-tailed in-plane, small through-plane."""
    df = 4.0
    t = rng.standard_t(df, size=2) / np.sqrt(df / (df - 2.0))  # unit variance, heavy tails
    ip = scale * cal.BREATH_HOLD_INPLANE_SD_MM * t
    n = np.linalg.norm(ip)
    if n > cal.BREATH_HOLD_MAX_MM:
        ip *= cal.BREATH_HOLD_MAX_MM / n
    tp = scale * rng.normal(0, cal.BREATH_HOLD_THROUGH_SD_MM)
    return ip[0] * plane.row_cosine + ip[1] * plane.col_cosine + tp * plane.normal


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v)


def coil_sensitivity(xyz: np.ndarray, coil: dict) -> np.ndarray:
    """Smooth receive field of an anterior and a posterior surface-coil array."""
    dx = (xyz[..., 0] - coil["x_centre"]) / 220.0
    lateral = np.exp(-dx**2)
    ant = 1.0 / (1.0 + ((xyz[..., 1] - coil["anterior_y"]) / coil["depth_mm"]) ** 2)
    post = coil["posterior_weight"] / (1.0 + ((coil["posterior_y"] - xyz[..., 1]) / coil["depth_mm"]) ** 2)
    return (0.35 + 0.65 * lateral) * (ant + post)


def kspace_window(shape: tuple[int, int], fraction: float) -> np.ndarray:
    """Acquired k-space support: fraction of phase-encode lines (rows) with a Tukey edge."""
    rows, cols = shape
    ky = np.fft.fftfreq(rows) * 2.0  # -1..1
    kx = np.fft.fftfreq(cols) * 2.0
    def tukey(k: np.ndarray, cutoff: float) -> np.ndarray:
        a = np.abs(k) / cutoff
        w = np.where(a <= 0.8, 1.0, 0.5 * (1 + np.cos(np.pi * (a - 0.8) / 0.2)))
        return np.where(a <= 1.0, w, 0.0)
    return tukey(ky, fraction)[:, None] * tukey(kx, 0.95)[None, :]
