"""Classical null point: fit the magnitude inversion-recovery curve ``|A - B exp(-TI/T1*)|`` of
the myocardium, located without ground truth, and take the frame nearest ``T1* ln(B/A)``.

Locating the myocardium (no truth, no network): the scout is planned through the LV, so the LV
cavity is the bright blood blob nearest the image centre on the late frames (post-contrast blood has
the shortest T1 of the heart, plus inflow); the myocardium is the ring 2-9 mm outside it, minus
pixels as bright as blood (RV cavity, partial volume).  The fit is made on the ring's median
curve, less the magnitude-noise floor measured in the image corners (in quadrature), by a grid over T1* and over the sign flip (magnitude data: the signal is negative before
the null), with a closed-form linear least-squares fit of A and B per grid point.  Expected failure
modes (reported by ``benchmarks/tiscout.py``): the inversion artefact of early frames distorts the
fit, and amyloid-like myocardium (nulls before blood, unevenly across the wall) has no single
curve.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

T1STAR_GRID_MS = np.geomspace(60.0, 2500.0, 240)
RING_MM = (2.0, 9.0)
SEARCH_RADIUS_MM = 45.0
CAVITY_AREA_MM2 = (150.0, 6000.0)
LATE_FRAMES = 6


@dataclass(frozen=True)
class ClassicalFit:
    null_frame: int | None  # frame nearest the fitted null, in increasing-TI order
    null_ti_ms: float | None
    a: float
    b: float
    t1star_ms: float
    rel_rmse: float  # fit residual / mean signal of the curve
    n_pixels: int
    qc_reason: str | None


def myocardium_mask(frames: np.ndarray, spacing_mm: tuple[float, float]) -> np.ndarray | None:
    """Boolean (R, C) mask of the myocardial ring around the central blood pool; None when no
    plausible cavity is found near the centre."""
    late = np.asarray(frames[-LATE_FRAMES:], float).mean(axis=0)
    rows, cols = late.shape
    rr, cc = np.mgrid[:rows, :cols]
    dist_c = np.hypot((rr - (rows - 1) / 2) * spacing_mm[0], (cc - (cols - 1) / 2) * spacing_mm[1])
    central = dist_c < SEARCH_RADIUS_MM
    vals = late[central]
    thr = _otsu(vals)
    blob, n = ndimage.label((late > thr) & central)
    px_area = spacing_mm[0] * spacing_mm[1]
    best, best_d = None, np.inf
    for k in range(1, n + 1):
        comp = blob == k
        area = comp.sum() * px_area
        if not CAVITY_AREA_MM2[0] <= area <= CAVITY_AREA_MM2[1]:
            continue
        d = dist_c[comp].min()
        if d < best_d:
            best, best_d = comp, d
    if best is None:
        return None
    cavity = ndimage.binary_fill_holes(best)
    outside = ndimage.distance_transform_edt(~cavity, sampling=spacing_mm)
    ring = (outside >= RING_MM[0]) & (outside <= RING_MM[1])
    return ring & (late < 0.6 * np.median(late[cavity]))


def noise_floor(frames: np.ndarray, corner: int = 8) -> float:
    """Median magnitude of pure noise: the quietest image corner over all frames (air outside the
    chest).  Magnitude noise does not average out: near the null the myocardium's median is this
    floor, not zero, so the fitted curve is corrected for it in quadrature."""
    f = np.asarray(frames, float)
    c = corner
    corners = [f[:, :c, :c], f[:, :c, -c:], f[:, -c:, :c], f[:, -c:, -c:]]
    return float(min(np.median(x) for x in corners))


def _otsu(values: np.ndarray, bins: int = 128) -> float:
    hist, edges = np.histogram(values, bins)
    mids = (edges[:-1] + edges[1:]) / 2
    w0 = np.cumsum(hist)
    w1 = w0[-1] - w0
    m0 = np.cumsum(hist * mids)
    mu0 = m0 / np.maximum(w0, 1)
    mu1 = (m0[-1] - m0) / np.maximum(w1, 1)
    return float(mids[np.argmax(w0 * w1 * (mu0 - mu1) ** 2)])


def fit_magnitude_ir(ti_ms: np.ndarray, signal: np.ndarray) -> tuple[float, float, float, float]:
    """``(A, B, T1*, rmse)`` of ``|A - B exp(-TI/T1*)|`` by grid search over T1* and the sign flip
    (frames before the flip are negated), linear least squares for A, B."""
    ti = np.asarray(ti_ms, float)
    y = np.asarray(signal, float)
    n = len(ti)
    e = np.exp(-ti[None, :] / T1STAR_GRID_MS[:, None])  # (G, T)
    best = (np.inf, 0.0, 0.0, T1STAR_GRID_MS[0])
    for k in range(n):  # frames < k have negative signed signal
        ys = np.where(np.arange(n) < k, -y, y)
        # model ys = A - B e: normal equations per grid row
        s_e, s_ee = e.sum(1), (e * e).sum(1)
        s_y, s_ey = ys.sum(), (e * ys).sum(1)
        det = n * s_ee - s_e ** 2
        a = (s_ee * s_y - s_e * s_ey) / det
        b = (s_e * s_y - n * s_ey) / det
        sse = ((a[:, None] - b[:, None] * e - ys) ** 2).sum(1)
        g = int(np.argmin(sse))
        if sse[g] < best[0]:
            best = (float(sse[g]), float(a[g]), float(b[g]), float(T1STAR_GRID_MS[g]))
    sse, a, b, t1s = best
    return a, b, t1s, float(np.sqrt(sse / n))


def classical_null(frames: np.ndarray, ti_ms: np.ndarray, spacing_mm: tuple[float, float]) -> ClassicalFit:
    """The classical null of a scout ordered by inversion time (see the module)."""
    mask = myocardium_mask(frames, spacing_mm)
    if mask is None or mask.sum() < 10:
        return ClassicalFit(None, None, np.nan, np.nan, np.nan, np.nan, 0, "no LV blood pool found near the centre")
    curve = np.median(np.asarray(frames, float)[:, mask], axis=1)
    floor = noise_floor(frames)
    curve = np.sqrt(np.maximum(curve ** 2 - floor ** 2, 0.0))
    a, b, t1s, rmse = fit_magnitude_ir(ti_ms, curve)
    rel = rmse / max(float(curve.mean()), 1e-9)
    if not (a > 0 and b > a):
        return ClassicalFit(None, None, a, b, t1s, rel, int(mask.sum()), "fitted curve has no null (B <= A)")
    null = t1s * np.log(b / a)
    if not ti_ms[0] <= null <= ti_ms[-1]:
        return ClassicalFit(None, float(null), a, b, t1s, rel, int(mask.sum()),
                            f"fitted null {null:.0f} ms outside the scout's inversion times")
    frame = int(np.argmin(np.abs(np.asarray(ti_ms) - null)))
    return ClassicalFit(frame, float(null), a, b, t1s, rel, int(mask.sum()), None)
