"""Respiratory motion correction of a free-breathing perfusion series, across heartbeats.

Contrast changes through the bolus, so registering every frame to one frame fails (the bright
bolus in the blood pool drags the match).  As in the low-rank approach of Xue et al. (2009, the
motion correction behind the perfusion paper's inline pipeline): the series' leading singular
components follow the contrast dynamics but not the breathing (motion spreads over many
components), so each frame is registered to its own low-rank *synthetic* version, which has the
frame's contrast without its motion; the series is then corrected and the reference rebuilt, a few
times with a growing rank (early iterations: few components, which cannot carry the motion; later
ones: enough components to follow each tissue's enhancement).

Registration is an in-plane translation (breathing moves the heart mostly rigidly in plane over a
perfusion slice) found by sum-of-squared-differences over a window around the heart (the chest
wall and liver move differently): an exhaustive search over whole-pixel shifts within the
breathing range, then a parabola through the cost's neighbours for the sub-pixel part.  The
window is found from the data: the pixels whose signal changes most over the series are the
blood pools and myocardium the bolus passes through.  Proton-density frames (a different contrast
altogether) are registered to the mean of the other PD frames' and the first baseline frames'
corrected positions by the same search on gradient magnitudes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


FAINT_FRACTION = 0.15  # reference contrast below this share of the series' highest: left unregistered


@dataclass(frozen=True)
class MotionCorrection:
    """Corrected frames and the in-plane displacement (rows, cols; pixels) removed from each."""

    frames: np.ndarray  # (T, R, C)
    shifts_px: np.ndarray  # (T, 2): frame t was displaced by this from the series' mean position
    centre_rc: np.ndarray  # (2,) centre of the registration window (the heart), pixels
    radius_px: float
    residual_px: float  # mean update of the last iteration over the registered frames (convergence)


def low_rank(frames: np.ndarray, rank: int) -> np.ndarray:
    """Rank-``rank`` approximation of a (T, R, C) series (truncated SVD of the T x pixels matrix)."""
    t = frames.shape[0]
    x = frames.reshape(t, -1)
    u, s, vt = np.linalg.svd(x, full_matrices=False)
    return ((u[:, :rank] * s[:rank]) @ vt[:rank]).reshape(frames.shape)


def synthetic_reference(frames: np.ndarray, rank: int, width: int = 5) -> np.ndarray:
    """Each frame's motion-free stand-in: the rank-``rank`` approximation of the series smoothed over
    ``width`` heartbeats (the smoothing averages the breathing out, most of all before the bolus,
    where a low-rank fit alone gives the faint frames a ghost of the enhanced ones)."""
    smooth = ndimage.uniform_filter1d(frames, width, axis=0, mode="nearest")
    return low_rank(smooth, rank)


def enhancement_map(frames: np.ndarray, n_pd: int, pixel_mm: float) -> np.ndarray:
    """Temporal SD of the dynamic frames smoothed over about 10 mm: high where the bolus passes
    (blood pools, myocardium) and where breathing moves edges, low in static tissue."""
    return ndimage.gaussian_filter(np.asarray(frames[n_pd:], float).std(axis=0), 10.0 / pixel_mm)


def heart_centre(frames: np.ndarray, n_pd: int, pixel_mm: float, near_rc: np.ndarray | None = None,
                 within_mm: float = 40.0) -> np.ndarray:
    """(row, col) of the heart in a perfusion slice (T, R, C): the peak of its
    :func:`enhancement_map`, within ``within_mm`` of ``near_rc`` when given (the series' heart
    centre from all its slices: an apical slice's small LV can lose to the descending aorta)."""
    sd = enhancement_map(frames, n_pd, pixel_mm)
    if near_rc is not None:
        rr, cc = np.mgrid[: sd.shape[0], : sd.shape[1]]
        sd = np.where(np.hypot(rr - near_rc[0], cc - near_rc[1]) * pixel_mm <= within_mm, sd, -np.inf)
    return np.array(np.unravel_index(np.argmax(sd), sd.shape), dtype=float)


def series_heart_centre(stack: list[np.ndarray], n_pd: int, pixel_mm: float) -> np.ndarray:
    """Heart centre of a multi-slice series (slices on the same pixel grid): the peak of the summed
    enhancement maps, where the basal and mid slices' large blood pools dominate."""
    total = sum(enhancement_map(f, n_pd, pixel_mm) for f in stack)
    return np.array(np.unravel_index(np.argmax(total), total.shape), dtype=float)


def _window(shape: tuple[int, int], centre_rc: np.ndarray, radius_px: float) -> np.ndarray:
    """Raised-cosine disc weight around the heart."""
    rr, cc = np.mgrid[: shape[0], : shape[1]]
    d = np.hypot(rr - centre_rc[0], cc - centre_rc[1]) / radius_px
    return np.where(d < 1.0, 0.5 * (1 + np.cos(np.pi * np.clip(d, 0, 1))), 0.0)


def _parabola(c0: float, c1: float, c2: float) -> float:
    denom = c0 - 2 * c1 + c2
    return float(np.clip(0.5 * (c0 - c2) / denom, -0.5, 0.5)) if denom > 0 else 0.0


def subpixel_argmin(cost: np.ndarray) -> np.ndarray:
    """(row, col) index of the minimum of a 2-D cost, refined by a parabola through each axis'
    neighbours (within half a step; none at the border)."""
    i, j = np.unravel_index(int(np.argmin(cost)), cost.shape)
    sub = [0.0, 0.0]
    if 0 < i < cost.shape[0] - 1:
        sub[0] = _parabola(cost[i - 1, j], cost[i, j], cost[i + 1, j])
    if 0 < j < cost.shape[1] - 1:
        sub[1] = _parabola(cost[i, j - 1], cost[i, j], cost[i, j + 1])
    return np.array([i + sub[0], j + sub[1]])


def match_shift(moving: np.ndarray, fixed: np.ndarray, window: np.ndarray, max_shift_px: int) -> np.ndarray:
    """Translation (rows, cols) such that ``moving(x + d) ~ fixed(x)`` under ``window``: the
    whole-pixel shift within ``max_shift_px`` of the highest windowed normalised cross-correlation
    (insensitive to a brightness scale between a frame and its synthetic reference), refined by a
    parabola per axis (sub-pixel).  ``moving`` must extend ``max_shift_px`` beyond ``fixed`` on
    every side (``moving`` is ``fixed``'s region padded by the search range)."""
    m = max_shift_px
    h, w_ = fixed.shape
    wsum = window.sum()
    f = fixed - (window * fixed).sum() / wsum
    f = f * window / np.sqrt((window * f * f).sum() + 1e-12)
    views = np.lib.stride_tricks.sliding_window_view(moving, (h, w_))  # (2m+1, 2m+1, h, w)
    mean = np.einsum("ijhw,hw->ij", views, window) / wsum
    cross = np.einsum("ijhw,hw->ij", views, f)  # f has zero weighted mean: the mean term drops
    energy = np.einsum("ijhw,hw->ij", views * views, window) - wsum * mean * mean
    score = cross / np.sqrt(np.maximum(energy, 1e-12))
    return subpixel_argmin(-score) - m


def _apply(frames: np.ndarray, shifts: np.ndarray) -> np.ndarray:
    """Frame t resampled at x + shifts[t] (removes a displacement of shifts[t])."""
    return np.stack([ndimage.shift(f, -s, order=1, mode="nearest") for f, s in zip(frames, shifts)])


def _search_region(shape: tuple[int, int], centre_rc: np.ndarray, radius_px: float) -> tuple[slice, slice]:
    lo = np.maximum(np.floor(centre_rc - radius_px).astype(int), 0)
    hi = np.minimum(np.ceil(centre_rc + radius_px).astype(int) + 1, shape)
    return slice(lo[0], hi[0]), slice(lo[1], hi[1])


def _register_all(frames: np.ndarray, reference: np.ndarray, region: tuple[slice, slice], window: np.ndarray,
                  m: int, sigma_px: float) -> np.ndarray:
    """Shift of every frame against its reference, matched on lightly smoothed images (noise)."""
    rs, cs = region
    out = np.empty((len(frames), 2))
    for t, (f, r) in enumerate(zip(frames, reference)):
        pad = np.pad(ndimage.gaussian_filter(f, sigma_px), m, mode="edge")
        moving = pad[rs.start:rs.stop + 2 * m, cs.start:cs.stop + 2 * m]
        out[t] = match_shift(moving, ndimage.gaussian_filter(r, sigma_px)[rs, cs], window, m)
    return out


MAX_SHIFT_MM = 8.0  # the breathing range searched (the manual path's contour alignment too)


def correct_series(frames: np.ndarray, n_pd: int, pixel_mm: float, radius_mm: float = 40.0,
                   max_shift_mm: float = MAX_SHIFT_MM, ranks: tuple[int, ...] = (3, 4, 5, 6),
                   smooth_mm: float = 2.0, near_rc: np.ndarray | None = None) -> MotionCorrection:
    """Register every frame of one perfusion slice (T, R, C; the first ``n_pd`` proton-density) to
    its low-rank synthetic reference, iterating once per entry of ``ranks``.

    ``radius_mm``: the registration window around the heart; ``max_shift_mm``: the largest
    displacement searched; ``smooth_mm``: Gaussian SD applied before matching; ``near_rc``: the
    series' heart centre (:func:`series_heart_centre`), near which this slice's is sought.  Returns the
    corrected series and the per-frame shifts removed (relative to the median position of the
    dynamic frames)."""
    frames = np.asarray(frames, dtype=float)
    if frames.ndim != 3 or frames.shape[0] < n_pd + max(ranks) + 2:
        raise ValueError(f"need a (T, rows, cols) series with more than {n_pd + max(ranks) + 1} frames, "
                         f"got shape {frames.shape}")
    centre = heart_centre(frames, n_pd, pixel_mm, near_rc)
    radius = radius_mm / pixel_mm
    region = _search_region(frames.shape[1:], centre, radius)
    window = _window(frames.shape[1:], centre, radius)[region]
    m = max(1, int(np.ceil(max_shift_mm / pixel_mm)))
    sigma = smooth_mm / pixel_mm
    dyn = frames[n_pd:]
    total = np.zeros((len(dyn), 2))
    current = dyn
    for rank in ranks:
        reference = synthetic_reference(current[(slice(None),) + region], rank)
        full = np.zeros_like(current)
        full[(slice(None),) + region] = reference
        step = _register_all(current, full, region, window, m, sigma)
        # frames whose synthetic reference has little structure (before the bolus, when the
        # low-rank fit gives them a faint ghost of the enhanced frames) cannot be registered
        # reliably (registering them to their own mean did worse on the generator's series):
        # they stay where they are (many patients hold their breath for the first beats)
        contrast = np.array([np.sqrt(np.average((r - np.average(r, weights=window)) ** 2, weights=window))
                             for r in reference])
        faint = contrast < FAINT_FRACTION * contrast.max()
        step[faint] = 0.0
        residual = float(np.linalg.norm(step[~faint], axis=1).mean())
        total = total + step
        total -= np.median(total, axis=0)  # the series' own median position stays put
        total = np.clip(total, -m, m)  # iterations refine within the breathing range, never beyond
        current = _apply(dyn, total)
    # PD frames (another contrast altogether, 2-3 beats before the first dynamic frames, while the
    # patient usually still holds the breath): the first dynamic frames' position
    pd_shifts = np.repeat(np.median(total[:3], axis=0)[None], n_pd, axis=0)
    shifts = np.concatenate([pd_shifts, total])
    corrected = np.concatenate([_apply(frames[:n_pd], pd_shifts), current]) if n_pd else current
    return MotionCorrection(corrected, shifts, centre, radius, residual)
