"""Fixed-topology sampling of fitted surfaces, volumes, mass and AHA wall thickness.

Sampling grid: ``N_GRID`` x ``N_GRID`` points per surface (29 x 29 = 841 as in the Cardiac Atlas
Project), ``point_index = i_mu * N_GRID + i_theta``; ``i_mu = 0`` is the apex (all 29 points of that
ring coincide), ``i_mu = N_GRID - 1`` lies on the mitral-valve plane; ``theta_j = 2 pi j / N_GRID``
with ``j = 0`` at the septum direction (local +x).  Along mu the rings are evenly spaced between
the apex and where the surface meets the base plane (found per theta by bisection).  Triangles:
``N_GRID - 1`` ring gaps x ``N_GRID`` quads x 2, less the degenerate apex triangles
(1595 for 29 x 29).
"""

from __future__ import annotations

import numpy as np
from scipy.spatial import cKDTree

from cmr_atlas.cine.lvmodel import prolate
from cmr_atlas.cine.lvmodel.hermite import HermiteMesh
from cmr_atlas.core.aha import aha_segment

N_GRID = 29
MYOCARDIAL_DENSITY_G_PER_ML = 1.05


def triangles(n_mu: int = N_GRID, n_theta: int = N_GRID) -> np.ndarray:
    """Triangles (T, 3) of the ring grid, 0-based point indices, outward-consistent orientation."""
    i = np.arange(n_mu - 1)[:, None]
    j = np.arange(n_theta)[None, :]
    j1 = (j + 1) % n_theta
    a = i * n_theta + j
    b = i * n_theta + j1
    c = (i + 1) * n_theta + j
    e = (i + 1) * n_theta + j1
    upper = np.stack([a, c, e], axis=-1)  # (i, j), (i+1, j), (i+1, j+1)
    lower = np.stack([a, e, b], axis=-1)  # degenerate on the apex ring (a and b coincide)
    lower = lower[1:]
    return np.concatenate([upper.reshape(-1, 3), lower.reshape(-1, 3)])


def base_mu(mesh: HermiteMesh, d: float, x: np.ndarray, theta: np.ndarray,
            plane_point: np.ndarray, plane_normal: np.ndarray, n_iter: int = 40,
            field: np.ndarray | None = None) -> np.ndarray:
    """mu where the surface meets the base plane, per theta (bisection; mu_max if it never does).
    ``x`` one field's parameters, or several (rows) with each theta's ``field``."""
    lam_of = mesh.along_mu(x, theta, field)
    ct, st = np.cos(theta), np.sin(theta)

    def height(mu):  # prolate.to_cartesian's arithmetic, theta's sine and cosine computed once
        lam = lam_of(mu)
        sl, cl, sm, cm = np.sinh(lam), np.cosh(lam), np.sin(mu), np.cos(mu)
        return (d * np.stack([sl * sm * ct, sl * sm * st, cl * cm], axis=-1) - plane_point) @ plane_normal

    lo = np.zeros_like(theta)
    hi = np.full_like(theta, mesh.mu_max)
    reaches = height(hi) < 0
    for _ in range(n_iter):
        mid = (lo + hi) / 2
        above = height(mid) < 0  # beyond the plane, on the atrial side
        hi = np.where(above, mid, hi)
        lo = np.where(above, lo, mid)
    return np.where(reaches, (lo + hi) / 2, mesh.mu_max)


def sample_surface(mesh: HermiteMesh, d: float, x: np.ndarray, plane_point: np.ndarray,
                   plane_normal: np.ndarray, n_mu: int = N_GRID, n_theta: int = N_GRID,
                   n_bisect: int = 40) -> np.ndarray:
    """Points (n_mu * n_theta, 3) of the surface, apex to base plane, local coordinates.
    ``n_bisect``: bisection steps of the base ring (20 place it within ~1e-4 mm)."""
    return sample_surfaces(mesh, d, np.asarray(x)[None], plane_point, plane_normal, n_mu, n_theta, n_bisect)[0]


def sample_surfaces(mesh: HermiteMesh, d: float, xs: np.ndarray, plane_point: np.ndarray,
                    plane_normal: np.ndarray, n_mu: int = N_GRID, n_theta: int = N_GRID,
                    n_bisect: int = 40) -> list[np.ndarray]:
    """:func:`sample_surface` of several fields (rows of ``xs``: endo, epi) in one pass."""
    return sample_surface_grids(mesh, d, xs, plane_point, plane_normal, ((n_mu, n_theta),), n_bisect)[0]


def sample_surface_grids(mesh: HermiteMesh, d: float, xs: np.ndarray, plane_point: np.ndarray,
                         plane_normal: np.ndarray, grids: tuple[tuple[int, int], ...],
                         n_bisect: int = 40) -> list[list[np.ndarray]]:
    """:func:`sample_surfaces` on several ``(n_mu, n_theta)`` grids (the 29 x 29 shape and the fine
    sampling of the volumes) with one bisection of the base ring for all their thetas: per grid,
    one ``(n_mu * n_theta, 3)`` array per field (the same points as separate calls)."""
    nf = len(xs)
    thetas = [2 * np.pi * np.arange(nt) / nt for _, nt in grids]
    ring = np.concatenate(thetas)  # every grid's thetas, bisected together (elementwise)
    mu_b = base_mu(mesh, d, xs, np.tile(ring, nf), plane_point, plane_normal, n_bisect,
                   np.repeat(np.arange(nf), ring.size)).reshape(nf, ring.size)
    mus, ths, fields, start = [], [], [], 0
    for (n_mu, n_theta), theta1 in zip(grids, thetas):
        frac = np.linspace(0.0, 1.0, n_mu)
        mus.append((frac[None, :, None] * mu_b[:, None, start:start + n_theta]).ravel())
        ths.append(np.tile(theta1, nf * n_mu))
        fields.append(np.repeat(np.arange(nf), n_mu * n_theta))
        start += n_theta
    mu, th = np.concatenate(mus), np.concatenate(ths)
    (lam,) = mesh.evaluate(xs, mu, th, field=np.concatenate(fields))
    # each grid's points in arrays of their own: a kept 29 x 29 surface must not hold the fine grid
    cut = np.cumsum([0, *(len(m) for m in mus)])
    return [list(prolate.to_cartesian(lam[a:b], mu[a:b], th[a:b], d).reshape(nf, n_mu * n_theta, 3))
            for a, b, (n_mu, n_theta) in zip(cut[:-1], cut[1:], grids)]


def enclosed_volume_ml(points: np.ndarray, tris: np.ndarray, plane_point: np.ndarray) -> float:
    """Volume between a sampled surface and its base plane (the top ring lies on the plane)."""
    q = points - plane_point  # the same differences as per corner, each point's once
    # np.take of whole rows (contiguous indices): the same values as points[tris[:, k]], faster
    a, b, c = (np.take(q, np.ascontiguousarray(tris[:, k]), axis=0) for k in range(3))
    # np.cross(b, c) written out (numpy's arithmetic, without its axis handling)
    bxc = np.stack([b[:, 1] * c[:, 2] - b[:, 2] * c[:, 1], b[:, 2] * c[:, 0] - b[:, 0] * c[:, 2],
                    b[:, 0] * c[:, 1] - b[:, 1] * c[:, 0]], axis=1)
    return float(abs(np.einsum("ij,ij->i", a, bxc).sum()) / 6.0 / 1000.0)


def wall_thickness(endo: np.ndarray, epi: np.ndarray, plane_point: np.ndarray,
                   plane_normal: np.ndarray, anterior_sign: float) -> np.ndarray:
    """Mean wall thickness (mm) per AHA segment 1..17 (NaN where a segment has no points;
    :func:`cmr_atlas.core.aha.aha_segment`, phi from the septum).

    ``endo``/``epi`` are finely sampled surfaces (local coordinates); thickness at an endocardial
    point is its distance to the nearest epicardial sample.  ``anterior_sign`` is +1 when the
    anterior wall lies at positive theta (local +y), -1 otherwise.
    """
    # larger leaves than the default 16: each query's ball (the wall, ~10 mm) holds hundreds of
    # samples, and fewer, fuller leaves find the same nearest one ~30% sooner; sliding-midpoint
    # splits and uncompacted nodes suit the grid's regular sampling (~25% sooner again; the tree
    # only orders the search: the same nearest distances)
    dist, _ = cKDTree(epi, leafsize=64, balanced_tree=False, compact_nodes=False).query(endo)
    depth = (endo - plane_point) @ plane_normal
    depth_frac = depth / max(float(depth.max()), 1e-6)
    phi = np.degrees(np.arctan2(anterior_sign * endo[:, 1], endo[:, 0]))
    seg = aha_segment(depth_frac, phi)
    keep = depth_frac >= 0
    sums = np.bincount(seg[keep], weights=dist[keep], minlength=18)
    counts = np.bincount(seg[keep], minlength=18)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (sums / counts)[1:18]


def polygon_area_mm2(xy: np.ndarray) -> float:
    """Area of a closed polygon (shoelace), vertices in order, (N, 2)."""
    x, y = xy[:, 0], xy[:, 1]
    # np.roll(v, -1) without its axis handling (the same values, so the same sums)
    return float(abs(np.dot(x, np.concatenate((y[1:], y[:1]))) - np.dot(y, np.concatenate((x[1:], x[:1])))) / 2.0)
