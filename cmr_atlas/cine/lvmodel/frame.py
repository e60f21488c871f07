"""The model's local frame from the landmarks, and the base (mitral-valve) plane.

Local frame (right-handed, mm): origin at the centroid of the mitral-valve hinge points, +z along
the long axis towards the apex landmark, +x towards the septum (from the LV centre to the midpoint
of the RV insertion points, made orthogonal to z), +y = z x x.  ``rotation`` holds the local axes
as columns in patient coordinates: ``patient = origin + rotation @ local``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ModelFrame:
    origin: np.ndarray  # (3,) patient mm
    rotation: np.ndarray  # (3, 3) columns: local x (septum), y, z (apex) in patient coordinates
    focal_mm: float

    def to_local(self, p: np.ndarray) -> np.ndarray:
        return (np.asarray(p, dtype=float) - self.origin) @ self.rotation

    def to_patient(self, q: np.ndarray) -> np.ndarray:
        return self.origin + np.asarray(q, dtype=float) @ self.rotation.T

    def vec_to_local(self, v: np.ndarray) -> np.ndarray:
        return np.asarray(v, dtype=float) @ self.rotation


class FrameError(ValueError):
    """Landmarks do not define a frame (degenerate geometry)."""


def build_frame(mv_points: np.ndarray, apex: np.ndarray, septum_dir: np.ndarray,
                epi_radius_mm: float) -> ModelFrame:
    """Frame from the mitral hinge points, the apex and a septum direction hint.

    Focal length: the confocal spheroid through the apex with the LV's epicardial radius at the
    base has ``d = sqrt(L^2 - r^2)`` (L = base-apex length); capped at 0.75 L so that the
    endocardial apex (about a wall thickness short of L) stays beyond the focus, and floored at
    0.4 L for very round ventricles.
    """
    origin = np.asarray(mv_points, dtype=float).mean(axis=0)
    axis = np.asarray(apex, dtype=float) - origin
    length = float(np.linalg.norm(axis))
    if length < 20.0:
        raise FrameError(f"base-apex distance {length:.1f} mm is implausible")
    ez = axis / length
    sx = np.asarray(septum_dir, dtype=float)
    sx = sx - (sx @ ez) * ez
    if np.linalg.norm(sx) < 1e-6:
        raise FrameError("septum direction is parallel to the long axis")
    ex = sx / np.linalg.norm(sx)
    ey = np.cross(ez, ex)
    r = float(np.clip(epi_radius_mm, 5.0, length))
    d = float(np.clip(np.sqrt(max(length**2 - r**2, 0.0)), 0.4 * length, 0.75 * length))
    return ModelFrame(origin, np.stack([ex, ey, ez], axis=1), d)


def base_plane(mv_local: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mitral-valve plane in local coordinates: (point, unit normal pointing towards the apex).

    Least-squares plane through >= 3 hinge points when they span one; otherwise the plane through
    their centroid perpendicular to the long axis.
    """
    mv_local = np.asarray(mv_local, dtype=float)
    c = mv_local.mean(axis=0)
    n = np.array([0.0, 0.0, 1.0])
    if len(mv_local) >= 3:
        u, sv, vt = np.linalg.svd(mv_local - c)
        if sv[1] > 5.0:  # the points span a plane, not a line
            cand = vt[2]
            if cand[2] < 0:
                cand = -cand
            if cand[2] > np.cos(np.radians(45)):  # refuse a plane tilted beyond reason
                n = cand
    return c, n
