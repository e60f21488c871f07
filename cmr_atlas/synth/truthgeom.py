"""Ground-truth contours and landmarks: where each image plane cuts the displaced anatomy.

Everything is computed from the same geometry the images are rendered from, including the
slice's breath-hold displacement, so a truth point mapped through the DICOM geometry lands on the
pixel where the generator drew that boundary.
"""

from __future__ import annotations

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an

N_RAYS = 64


def _ray_boundary(fn, centre: np.ndarray, dirs: np.ndarray, t_max: float, iters: int = 26) -> np.ndarray:
    """Distance along each ray from an inside ``centre`` to where ``fn`` changes sign (bisection)."""
    lo = np.zeros(len(dirs))
    hi = np.full(len(dirs), t_max)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        inside = fn(centre + mid[:, None] * dirs) < 0
        lo = np.where(inside, mid, lo)
        hi = np.where(inside, hi, mid)
    return 0.5 * (lo + hi)


def plane_contour(
    heart: an.Heart, w: float, plane: SlicePlane, shift_mm: np.ndarray, surface: str, centre_mm: np.ndarray,
) -> np.ndarray | None:
    """Closed boundary (N_RAYS, 3) in patient mm of the endo/epi solid in the plane, or None.

    ``centre_mm`` is a point of the plane inside the displaced solid (rays are cast from it).
    The solid is closed by the mitral plane, as a core lab closes a basal contour.
    """
    ph = heart.phase(w)

    def fn(p: np.ndarray) -> np.ndarray:
        return ph.implicit(heart.to_local(p - shift_mm), surface)

    if fn(centre_mm[None])[0] >= 0:
        return None
    ang = np.linspace(0, 2 * np.pi, N_RAYS, endpoint=False)
    dirs = np.cos(ang)[:, None] * plane.row_cosine + np.sin(ang)[:, None] * plane.col_cosine
    t = _ray_boundary(fn, centre_mm, dirs, t_max=150.0)
    return centre_mm + t[:, None] * dirs


def axis_point_in_plane(heart: an.Heart, plane: SlicePlane, shift_mm: np.ndarray, w: float) -> np.ndarray:
    """Where the displaced LV long axis meets a (SAX) plane; the mid-axis point for LAX planes."""
    ph = heart.phase(w)
    p0 = heart.origin_mm + shift_mm
    e3 = heart.frame[:, 2]
    denom = e3 @ plane.normal
    if abs(denom) < 0.3:  # long-axis plane: take the mid-cavity point, projected onto the plane
        p = p0 + 0.45 * ph.length_mm * e3
        return plane.project(p)
    t = ((plane.position_mm - p0) @ plane.normal) / denom
    return p0 + t * e3


def lax_open_contour(heart: an.Heart, w: float, points: np.ndarray, shift_mm: np.ndarray) -> np.ndarray:
    """Drop the mitral-plane segment of a closed LAX contour: hinge -> apex -> hinge."""
    ph = heart.phase(w)
    z = heart.to_local(points - shift_mm)[:, 2]
    on_cap = z > ph.length_mm - 0.25
    if not on_cap.any():
        return points
    keep = ~on_cap
    # rotate so that the kept run is contiguous and starts right after the cap
    idx = np.arange(len(points))
    last_cap = idx[on_cap][-1]
    order = np.roll(idx, -(last_cap + 1))
    order = order[keep[order]]
    return points[order]


def mitral_hinges(heart: an.Heart, w: float, plane: SlicePlane, shift_mm: np.ndarray) -> list[np.ndarray]:
    """Points where the endocardial base ring crosses a LAX plane (two, normally)."""
    ph = heart.phase(w)
    phi = np.linspace(0, 2 * np.pi, 1440, endpoint=False)
    z = np.full_like(phi, ph.length_mm)
    r = ph.r_endo(z, phi)
    ring = heart.to_patient(np.stack([r * np.cos(phi), r * np.sin(phi), z], axis=1)) + shift_mm
    d = (ring - plane.position_mm) @ plane.normal
    s = np.sign(d)
    cross = np.nonzero(s != np.roll(s, -1))[0]
    pts = []
    for i in cross:
        j = (i + 1) % len(phi)
        f = d[i] / (d[i] - d[j])
        pts.append(ring[i] + f * (ring[j] - ring[i]))
    return pts


def apex_point(heart: an.Heart, w: float, plane: SlicePlane, shift_mm: np.ndarray) -> np.ndarray:
    """Epicardial apex projected onto a LAX plane (where an observer clicks it)."""
    ph = heart.phase(w)
    p = heart.to_patient(np.array([0.0, 0.0, -ph.epi_apex_mm])) + shift_mm
    return plane.project(p)


def rv_insertions(heart: an.Heart, w: float, epi_contour: np.ndarray, shift_mm: np.ndarray,
                  tol_mm: float = 0.02) -> list[np.ndarray]:
    """Points of a SAX epicardial contour where the RV free wall meets the LV (0 or 2 points).

    The contour's rays are 2-3 mm apart on the epicardium; each meeting point is found to
    ``tol_mm`` along the segment where the RV wall starts or ends (bisection), not at the
    segment's middle, which put the truth up to half a segment off, tangentially, at random."""
    ph = heart.phase(w)
    loc = heart.to_local(epi_contour - shift_mm)

    def rv_wall_outside(local: np.ndarray) -> np.ndarray:
        # test a hair outside the LV epicardium, where the RV wall starts
        rho = np.hypot(local[:, 0], local[:, 1])
        probe = local.copy()
        probe[:, :2] *= ((rho + 1.0) / np.maximum(rho, 1e-6))[:, None]
        return heart.rv_inside(probe, w, ph, inner=False)

    inside = rv_wall_outside(loc)
    if inside.all() or not inside.any():
        return []
    change = np.nonzero(inside != np.roll(inside, -1))[0]
    if len(change) != 2:
        return []
    a, b = loc[change], loc[(change + 1) % len(loc)]
    lo, hi = np.zeros(2), np.ones(2)
    steps = int(np.ceil(np.log2(max(float(np.linalg.norm(b - a, axis=1).max()), tol_mm) / tol_mm)))
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        same = rv_wall_outside(a + mid[:, None] * (b - a)) == inside[change]
        lo, hi = np.where(same, mid, lo), np.where(same, hi, mid)
    t = 0.5 * (lo + hi)[:, None]
    p, q = epi_contour[change], epi_contour[(change + 1) % len(epi_contour)]
    return list(p + t * (q - p))


def polygon_centroid(points_2d: np.ndarray) -> np.ndarray:
    """Area centroid of a closed polygon (N, 2)."""
    x, y = points_2d[:, 0], points_2d[:, 1]
    xn, yn = np.roll(x, -1), np.roll(y, -1)
    cross = x * yn - xn * y
    a = cross.sum() / 2.0
    if abs(a) < 1e-9:
        return points_2d.mean(axis=0)
    return np.array([((x + xn) * cross).sum(), ((y + yn) * cross).sum()]) / (6.0 * a)



def rv_cavity_level(heart: an.Heart, local: np.ndarray, w: float, polar: tuple | None = None) -> np.ndarray:
    """Negative inside the RV cavity (the region :meth:`Heart.heart_labels_local` labels RV_BLOOD),
    positive outside, roughly in mm: the inner RV ellipse, septal side cut, LV epicardium excluded.
    ``polar``: :func:`anatomy.polar_terms` of ``local`` (reused across frames)."""
    ph = heart.phase(w)
    x, y, z = local[..., 0], local[..., 1], local[..., 2]
    c, a, b, depth = heart.rv_ellipse(z, w, ph, inner=True)
    ok = (depth > 0.5) & (a > 0) & (b > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        ell = (np.sqrt(((x - c) / a) ** 2 + (y / b) ** 2) - 1.0) * np.minimum(a, b)
    level = np.maximum(np.maximum(ell, c - x), -ph.implicit(local, "epi", polar))
    return np.where(ok & np.isfinite(level), level, 5.0)


class RVGrid:
    """Fine in-plane grid around the displaced heart on which :func:`rv_endo_contour` traces the RV
    cavity; heart-local coordinates computed once per plane and reused for every frame."""

    def __init__(self, heart: an.Heart, plane: SlicePlane, shift_mm: np.ndarray, step_mm: float = 1.0,
                 half_width_mm: float = 80.0) -> None:
        centre = heart.to_patient(np.array([0.0, 0.0, 0.55 * heart.ed.length_mm])) + shift_mm
        self.centre = plane.project(centre)
        self.u = np.arange(-half_width_mm, half_width_mm + step_mm / 2, step_mm)
        self.plane = plane
        grid = self.centre + self.u[:, None, None] * plane.row_cosine + self.u[None, :, None] * plane.col_cosine
        self.local = heart.to_local(grid - shift_mm)
        self.polar = an.polar_terms(self.local, heart.ed.harmonics)


def rv_endo_contour(heart: an.Heart, w: float, plane: SlicePlane, shift_mm: np.ndarray, grid: RVGrid | None = None,
                    min_length_mm: float = 20.0) -> np.ndarray | None:
    """Closed RV endocardial boundary (N_RAYS, 3) in patient mm where a plane cuts the displaced RV
    cavity (the longest closed piece), or None where the plane misses it.

    The RV crescent is not star-shaped, so unlike :func:`plane_contour` the boundary is the zero
    level of :func:`rv_cavity_level` traced by marching squares on a fine in-plane grid.
    """
    import contourpy  # a matplotlib dependency

    grid = grid or RVGrid(heart, plane, shift_mm)
    level = rv_cavity_level(heart, grid.local, w, grid.polar)
    if not (level < 0).any():
        return None
    lines = contourpy.contour_generator(grid.u, grid.u, level).lines(0.0)
    closed = [ln for ln in lines if len(ln) > 3 and np.allclose(ln[0], ln[-1])]
    if not closed:
        return None
    line = max(closed, key=lambda ln: np.linalg.norm(np.diff(ln, axis=0), axis=1).sum())
    arc = np.concatenate([[0.0], np.cumsum(np.linalg.norm(np.diff(line, axis=0), axis=1))])
    if arc[-1] < min_length_mm:
        return None
    s = np.linspace(0.0, arc[-1], N_RAYS, endpoint=False)
    xy = np.stack([np.interp(s, arc, line[:, 0]), np.interp(s, arc, line[:, 1])], axis=1)
    # contourpy's x runs along the grid's second axis (col_cosine), y along the first (row_cosine)
    return grid.centre + xy[:, 1:2] * plane.row_cosine + xy[:, 0:1] * plane.col_cosine
