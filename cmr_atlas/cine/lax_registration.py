"""Breath-hold misregistration of the LAX views against the SAX stack, from the images.

The automated path has SAX contours but only landmarks in the LAX views, so the model fit cannot
estimate a LAX view's breath-hold shift (docs/lvmodel.md: a view with landmarks only is not
shifted).  Its mitral hinge points then carry the view's displacement along the long axis
straight into the base plane: about 2 mm RMS, i.e. 2-4 ml of cavity volume at end-diastole, the
largest error of the automated volume curves (docs/motion.md).

Where a SAX plane and a LAX plane meet, both images show the same line of the heart.  The SAX
image of slice ``k`` shows the heart displaced by that slice's shift ``d_k``, the LAX image by the
view's ``d_v``; the LAX image at ``q + d_v - d_k`` shows what the SAX image shows at ``q``.  So the
view's in-plane shift relative to the stack is the displacement that best matches the LAX image's
intensities along each intersection line (sampled at ``q + d``) to the SAX image's (at ``q``), over
every SAX slice and a subset of frames (normalised cross-correlation, summed).  The SAX slices' own
shifts average out over the stack (the fit's ``sax_mean`` gauge holds their sum at zero).  Along
the line the match is sharp (the walls cut it); across it, along the long axis, it rests on how the
section changes with level (base, apex), so the estimate comes from all slices together.  This is
the intersection-profile registration of Lötjönen et al. (2004, IEEE TMI 23:720-728), applied to
the LAX views only.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cmr_atlas.core.geometry import SlicePlane, plane_intersection_line
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.cine.segmentation import lax_frame

HALF_WINDOW_MM = 45.0  # profile half-length around the LV centre (the heart, not the chest wall)
STEP_MM = 0.5  # profile sampling
# (half-width, step) of the grid searches of each in-plane component, coarse to fine: +-8 mm covers
# the breath-hold shifts (a few mm, t-distributed tails)
SEARCH_STEPS_MM = ((8.0, 2.0), (1.0, 0.5), (0.25, 0.25))
# frames used (evenly spread over the cycle): 8 to 15 frames register the LAX views of 64 legacy
# exams equally well against the truth (benchmarks/lax_registration.py; the differences are noise),
# and the clinical motion benchmark (seed 70001, 10 exams) reads 1.93 ml curve RMS with 10 against
# 2.01 with 15; 10 costs two thirds of 15's time (about 50 ms per exam)
N_FRAMES = 10
CANDIDATE_BATCH = 16  # candidate shifts scored together (vectorised; bounds the arrays' memory)


def _profiles(images: ExamImages, view: str, centres: dict[int, np.ndarray], frames: np.ndarray,
              sax_shifts: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every (SAX slice, frame)'s line points (M, P, 3) moved by the slice's shift into the
    stack's frame, its SAX profile (M, P; NaN outside the image) and its LAX frame (M,)."""
    lax_plane = images.lax_planes[view]
    n_lax = images.lax[view].shape[0]
    s = np.arange(-HALF_WINDOW_MM, HALF_WINDOW_MM + 1e-9, STEP_MM)
    pts, prof, fl = [], [], []
    for k, centre in centres.items():
        plane = images.sax_planes[k]
        line = plane_intersection_line(plane, lax_plane)
        if line is None:
            continue
        p0, u = line
        mid = p0 + ((centre - p0) @ u) * u  # the LV centre's foot on the line
        q = mid + s[:, None] * u
        rc, _ = plane.patient_to_pixel(q)  # the same pixels in every frame
        for f in frames:
            a = ndimage.map_coordinates(images.sax[k, f].astype(np.float32, copy=False), [rc[:, 0], rc[:, 1]],
                                        order=1, mode="constant", cval=np.nan)
            if np.isfinite(a).sum() < len(s) // 2:
                continue
            pts.append(q - sax_shifts.get(k, np.zeros(3)))
            prof.append(a)
            fl.append(lax_frame(int(f), images.n_frames, n_lax))
    return np.array(pts).reshape(-1, len(s), 3), np.array(prof).reshape(-1, len(s)), np.array(fl, dtype=int)


def _pixels(plane: SlicePlane, xyz: np.ndarray) -> np.ndarray:
    """``plane.patient_to_pixel(xyz)[0]`` (the same arithmetic) without the distance to the plane."""
    d = xyz - plane.position_mm
    return np.stack([d @ plane.col_cosine / plane.pixel_spacing_mm[0], d @ plane.row_cosine / plane.pixel_spacing_mm[1]],
                    axis=-1)


def _bilinear(stack: np.ndarray, frame: np.ndarray, r: np.ndarray, c: np.ndarray) -> np.ndarray:
    """Bilinear samples of the images ``stack`` (T, R, C) at (``r``, ``c``) in each point's own
    ``frame``, NaN outside ``[0, R-1] x [0, C-1]``: ``ndimage.map_coordinates(stack[f], [r, c],
    order=1, mode="constant", cval=nan)`` frame by frame (to ~1e-16 relative), in one pass."""
    _, n_r, n_c = stack.shape
    inside = (r >= 0) & (r <= n_r - 1) & (c >= 0) & (c <= n_c - 1)
    r0 = np.clip(np.floor(r), 0, n_r - 2).astype(np.intp)  # the last row/column: weight 1 on it
    c0 = np.clip(np.floor(c), 0, n_c - 2).astype(np.intp)
    wr, wc = r - r0, c - c0
    flat = stack.reshape(-1)
    i = (frame * n_r + r0) * n_c + c0
    v = (flat[i] * (1 - wc) + flat[i + 1] * wc) * (1 - wr) + (flat[i + n_c] * (1 - wc) + flat[i + n_c + 1] * wc) * wr
    return np.where(inside, v, np.nan)


def _lax_samples(lax: np.ndarray, plane: SlicePlane, pts: np.ndarray, fl: np.ndarray,
                 shifts: np.ndarray) -> np.ndarray:
    """The LAX images (T, R, C) sampled at ``pts + d`` for each shift ``d`` of ``shifts`` (D, 3):
    (D, M, P), bilinear, NaN outside; each profile in its own LAX frame ``fl`` (M,)."""
    # a shift moves every point by the same pixel offset: (D, M, P, 2) as the points' pixels plus
    # each shift's (the same positions to ~1e-14 px)
    step = np.stack([shifts @ plane.col_cosine / plane.pixel_spacing_mm[0],
                     shifts @ plane.row_cosine / plane.pixel_spacing_mm[1]], axis=-1)
    rc = _pixels(plane, pts)[None] + step[:, None, None, :]
    frame = np.broadcast_to(fl[None, :, None], rc.shape[:-1])
    return _bilinear(lax, frame, rc[..., 0], rc[..., 1])


def _scores(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per candidate (rows of ``b`` (D, M, P)): normalised cross-correlation of the SAX profiles
    ``a`` (M, P) with the LAX samples (NaN samples left out of each pair), averaged with the SAX
    profiles' standard deviations as weights: a line with no structure (beyond the apex) has no
    say.  -inf where no profile pair has 20 common samples or any contrast."""
    ok = np.isfinite(a) & np.isfinite(b)
    n = ok.sum(axis=2)
    use = n >= 20
    n = np.maximum(n, 1)
    x, y = np.where(ok, a, 0.0), np.where(ok, b, 0.0)
    x = np.where(ok, x - (x.sum(2) / n)[..., None], 0.0)
    y = np.where(ok, y - (y.sum(2) / n)[..., None], 0.0)
    xx = (x * x).sum(2)
    sx = np.sqrt(xx / n)  # the SAX profile's contrast: its weight
    den = np.sqrt(xx * (y * y).sum(2))
    good = use & (den > 0)
    num = np.where(good, sx * (x * y).sum(2) / np.where(good, den, 1.0), 0.0).sum(1)
    out = num / np.where(use, sx, 0.0).sum(1)
    return np.where(good.any(1), out, -np.inf)


def lax_view_shifts(images: ExamImages, centres: dict[int, np.ndarray],
                    sax_shifts: dict[int, np.ndarray] | None = None,
                    views: set[str] | None = None, n_frames: int = N_FRAMES) -> dict[str, np.ndarray]:
    """In-plane breath-hold shift (patient mm) of each LAX view relative to the SAX stack.

    ``centres``: the LV centre (patient mm) of each SAX slice with an LV (e.g. the mean of its
    ED endocardial contour); ``sax_shifts``: the SAX slices' estimated breath-hold shifts (patient
    mm, e.g. the ED/ES fit's), whose differences the profiles are corrected for; ``views``: those
    to register (default all); ``n_frames``: the cine frames used (evenly spread over the cycle).
    Views without a plane or without usable intersections are left out."""
    frames = np.unique(np.linspace(0, images.n_frames - 1, min(n_frames, images.n_frames)).round().astype(int))
    out = {}
    for view, plane in images.lax_planes.items():
        if view not in images.lax or (views is not None and view not in views):
            continue
        pts, a, fl = _profiles(images, view, centres, frames, sax_shifts or {})
        if not len(a):
            continue
        # only the LAX frames the profiles use, as float (the images may be kept as stored: uint16)
        used, fl = np.unique(fl, return_inverse=True)
        lax = np.asarray(images.lax[view][used], dtype=float)
        basis = np.stack([plane.row_cosine, plane.col_cosine])

        def best(grid: np.ndarray, centre: np.ndarray, sub: slice) -> np.ndarray:
            cand = np.array([centre + np.array([x, y]) for x in grid for y in grid])
            # CANDIDATE_BATCH at a time: the job's memory stays that of the profiles (~10 MB more)
            scores = np.concatenate([_scores(a[sub], _lax_samples(lax, plane, pts[sub], fl[sub], c @ basis))
                                     for c in np.array_split(cand, -(-len(cand) // CANDIDATE_BATCH))])
            return cand[int(np.argmax(scores))]

        c = np.zeros(2)
        for i, (half, step) in enumerate(SEARCH_STEPS_MM):  # coarse to fine around the best so far
            # the coarse grid finds the basin on every third profile, the finer ones use them all
            c = best(np.arange(-half, half + 1e-9, step), c, slice(None, None, 3 if i == 0 else 1))
        out[view] = c @ basis
    return out
