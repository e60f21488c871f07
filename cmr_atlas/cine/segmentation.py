"""Label masks: rasterised from contours (training), cleaned, checked, turned back into contours,
and used to choose the ED and ES frames (and the matching long-axis frames).

Labels follow :data:`cmr_atlas.core.vocab.LABELS`: 0 background, 1 LV myocardium, 2 LV cavity,
3 RV cavity.  Pixel coordinates are (row, col) pixel centres as in :mod:`cmr_atlas.core.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from matplotlib.path import Path as MplPath
from scipy import ndimage

from cmr_atlas.core.vocab import CAVITY, MYO, RV


def rasterise_polygon(rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of pixel centres inside the closed polygon ``rc (N, 2)`` (row, col)."""
    rc = np.asarray(rc, dtype=float)
    if len(rc) < 3 or not np.isfinite(rc).all():
        return np.zeros(shape, dtype=bool)
    rows, cols = shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    path = MplPath(rc[:, ::-1])  # matplotlib wants (x, y) = (col, row)
    return path.contains_points(np.stack([c.ravel(), r.ravel()], 1)).reshape(shape)


def label_mask(shape: tuple[int, int], endo: np.ndarray | None, epi: np.ndarray | None,
               rv: np.ndarray | None = None) -> np.ndarray:
    """Label mask from closed contours (each ``(N, 2)`` row, col or None)."""
    mask = np.zeros(shape, dtype=np.uint8)
    if rv is not None:
        mask[rasterise_polygon(rv, shape)] = RV
    if epi is not None:
        mask[rasterise_polygon(epi, shape)] = MYO
    if endo is not None:
        mask[rasterise_polygon(endo, shape)] = CAVITY
    return mask


def _components(binary: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    lab, n = ndimage.label(binary)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    return lab, sizes


@dataclass(frozen=True)
class MaskQC:
    cavity_px: int
    myo_px: int
    n_components_cavity: int
    n_components_myo: int
    flag: str  # "" when plausible


def mask_qc(mask: np.ndarray, min_cavity_px: int = 10, min_myo_px: int = 10,
            fragment_fraction: float = 0.1) -> MaskQC:
    """Plausibility of one slice's mask.  Flags: ``empty`` (no LV), ``small_cavity``,
    ``no_myocardium``, ``fragmented_cavity`` / ``fragmented_myocardium`` (a second component
    larger than ``fragment_fraction`` of the largest), ``cavity_outside_myocardium`` (less than
    half of the cavity's border touches myocardium)."""
    _, cs = _components(mask == CAVITY)
    _, ms = _components(mask == MYO)
    cav, myo = int(cs.sum()), int(ms.sum())
    flags = []
    if cav == 0 and myo == 0:
        flags.append("empty")
    else:
        if cav < min_cavity_px:
            flags.append("small_cavity")
        if myo < min_myo_px:
            flags.append("no_myocardium")
        for name, s in (("cavity", cs), ("myocardium", ms)):
            if len(s) > 1 and np.sort(s)[-2] > fragment_fraction * s.max():
                flags.append(f"fragmented_{name}")
        if cav >= min_cavity_px and myo >= min_myo_px:
            cavity = mask == CAVITY
            border = ndimage.binary_dilation(cavity) & ~cavity
            if (mask[border] == MYO).mean() < 0.5:
                flags.append("cavity_outside_myocardium")
    return MaskQC(cav, myo, len(cs), len(ms), ";".join(flags))


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """Keep the largest connected component of each label (others become background), fill holes
    in the cavity."""
    out = np.zeros_like(mask)
    for label in (RV, MYO, CAVITY):
        lab, sizes = _components(mask == label)
        if len(sizes):
            keep = lab == (int(np.argmax(sizes)) + 1)
            if label == CAVITY:
                keep = ndimage.binary_fill_holes(keep)
            out[keep] = label
    return out


def cavity_volumes_ml(masks: np.ndarray, pixel_area_mm2: np.ndarray, spacing_mm: float,
                      include: np.ndarray | None = None) -> np.ndarray:
    """Cavity volume per frame by slice summation: ``masks (S, T, R, C)``, pixel areas ``(S,)``."""
    area = (masks == CAVITY).sum(axis=(2, 3)) * np.asarray(pixel_area_mm2, dtype=float)[:, None]
    if include is not None:
        area = area * np.asarray(include, dtype=float)
    return area.sum(0) * spacing_mm / 1000.0


def choose_phases(volumes_ml: np.ndarray, ed_method: str) -> tuple[int, int]:
    """``(ed_frame, es_frame)``: ES = minimal cavity volume; ED = maximal volume or frame 0."""
    v = np.asarray(volumes_ml, dtype=float)
    if v.size == 0:
        raise ValueError("no frames to choose ED/ES from")
    if ed_method == "max_volume":
        ed = int(np.argmax(v))
    elif ed_method == "first":
        ed = 0
    else:
        raise ValueError(f"segmentation.ed_frame must be max_volume or first, not {ed_method!r}")
    return ed, int(np.argmin(v))


def lax_frame(sax_frame: int, n_sax: int, n_lax: int) -> int:
    """The LAX frame at the same fraction of the cycle as a SAX frame."""
    if n_lax == n_sax:
        return int(sax_frame)
    return int(round(sax_frame * n_lax / max(n_sax, 1))) % n_lax


def mask_contours(binary: np.ndarray, n_points: int = 48, smooth_px: float = 0.7) -> np.ndarray | None:
    """Outline of the largest region of ``binary``: ``(n_points, 2)`` (row, col), closed (last point
    != first), equally spaced along its length, counter-clockwise in (col, row).  None if empty.

    Marching squares (matplotlib's contour generator) on the lightly smoothed mask at level 0.5.
    """
    if binary.sum() == 0:
        return None
    import contourpy

    f = ndimage.gaussian_filter(np.pad(binary.astype(float), 2), smooth_px)
    lines = contourpy.contour_generator(z=f).lines(0.5)
    if not lines:
        return None

    def area(p: np.ndarray) -> float:
        x, y = p[:, 0], p[:, 1]
        return 0.5 * float(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1)))

    best = max(lines, key=lambda p: abs(area(p)))
    if np.allclose(best[0], best[-1]):
        best = best[:-1]
    if area(best) < 0:
        best = best[::-1]
    closed = np.vstack([best, best[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n_points, endpoint=False)
    x = np.interp(t, s, closed[:, 0]) - 2  # undo padding
    y = np.interp(t, s, closed[:, 1]) - 2
    return np.stack([y, x], axis=1)
