"""Label masks: rasterised from contours (training), cleaned, checked, turned back into contours,
and used to choose the ED and ES frames (and the matching long-axis frames).

Labels follow :data:`cmr_atlas.core.vocab.LABELS`: 0 background, 1 LV myocardium, 2 LV cavity,
3 RV cavity.  Pixel coordinates are (row, col) pixel centres as in :mod:`cmr_atlas.core.geometry`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cmr_atlas.core.geometry import rasterise_polygon
from cmr_atlas.core.vocab import CAVITY, MYO, RV


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


# 4-connectivity within each image of an (N, R, C) stack and none across images: one scipy call
# over the whole stack gives each image's 2-D result (labels, dilation, hole filling)
_IN_PLANE = np.zeros((3, 3, 3), dtype=bool)
_IN_PLANE[1] = ndimage.generate_binary_structure(2, 1)


def _foreground_box(masks: np.ndarray) -> tuple[slice, slice, slice]:
    """The stack ``(N, R, C)`` cropped to the labelled pixels of all its images plus one pixel of
    background (clipped at the image edge).  Components, borders and holes of the labels are the
    same in the crop: outside it there is only background, connected to the crop's edge exactly
    when it is connected to the image's edge.  Cuts the work to the heart's neighbourhood."""
    rows, cols = np.flatnonzero(masks.any(axis=(0, 2))), np.flatnonzero(masks.any(axis=(0, 1)))
    if not len(rows):
        return slice(None), slice(0, 1), slice(0, 1)  # all background: one pixel stands for all
    return (slice(None), slice(max(rows[0] - 1, 0), rows[-1] + 2), slice(max(cols[0] - 1, 0), cols[-1] + 2))


@dataclass(frozen=True)
class _Components:
    """Connected components of every image of a binary stack ``(N, R, C)``."""

    labels: np.ndarray     # (N, R, C) int, 0 = background, unique over the stack
    count: np.ndarray      # (N,) components per image
    total: np.ndarray      # (N,) pixels in all of them
    largest: np.ndarray    # (N,) label of the largest (the first in scan order among equals), 0 if none
    size_1: np.ndarray     # (N,) size of the largest
    size_2: np.ndarray     # (N,) size of the second largest (0 if fewer than two)


def _components(binary: np.ndarray) -> _Components:
    n_images = binary.shape[0]
    lab, n = ndimage.label(binary, _IN_PLANE)
    sizes = np.bincount(lab.ravel(), minlength=n + 1)[1:]
    image = np.array([sl[0].start for sl in ndimage.find_objects(lab)], dtype=np.intp)
    count = np.bincount(image, minlength=n_images)
    total = np.bincount(image, weights=sizes, minlength=n_images).astype(int)
    # by image, then size (largest first), then label (scan order)
    order = np.lexsort((np.arange(n), -sizes, image))
    img_sorted = image[order]
    first = np.flatnonzero(np.r_[True, img_sorted[1:] != img_sorted[:-1]]) if n else np.zeros(0, np.intp)
    largest, size_1, size_2 = (np.zeros(n_images, dtype=int) for _ in range(3))
    largest[img_sorted[first]] = order[first] + 1
    size_1[img_sorted[first]] = sizes[order[first]]
    nxt = first + 1
    has_2 = nxt < n
    has_2[has_2] = img_sorted[nxt[has_2]] == img_sorted[first[has_2]]
    size_2[img_sorted[first[has_2]]] = sizes[order[nxt[has_2]]]
    return _Components(lab, count, total, largest, size_1, size_2)


# masks_qc's default plausibility thresholds
MIN_CAVITY_PX, MIN_MYO_PX, FRAGMENT_FRACTION = 10, 10, 0.1


@dataclass(frozen=True)
class MaskQC:
    cavity_px: int
    myo_px: int
    n_components_cavity: int
    n_components_myo: int
    flag: str  # "" when plausible


def masks_qc(masks: np.ndarray, min_cavity_px: int = MIN_CAVITY_PX, min_myo_px: int = MIN_MYO_PX,
             fragment_fraction: float = FRAGMENT_FRACTION) -> list[MaskQC]:
    """Plausibility of each slice's mask of a stack ``(N, R, C)``.  Flags: ``empty`` (no LV),
    ``small_cavity``, ``no_myocardium``, ``fragmented_cavity`` / ``fragmented_myocardium`` (a
    second component larger than ``fragment_fraction`` of the largest), ``cavity_outside_myocardium``
    (less than half of the cavity's border touches myocardium)."""
    masks = np.asarray(masks)
    masks = masks[_foreground_box(masks)]
    return _qc(masks, _components(masks == CAVITY), _components(masks == MYO), min_cavity_px, min_myo_px,
               fragment_fraction)


def _qc(masks: np.ndarray, c: _Components, m: _Components, min_cavity_px: int, min_myo_px: int,
        fragment_fraction: float) -> list[MaskQC]:
    """:func:`masks_qc` of cropped masks with their cavity and myocardium components."""
    cavity = masks == CAVITY
    border = ndimage.binary_dilation(cavity, _IN_PLANE) & ~cavity
    n_border = border.sum(axis=(1, 2))
    n_border_myo = (border & (masks == MYO)).sum(axis=(1, 2))
    out = []
    for i in range(masks.shape[0]):
        cav, myo = int(c.total[i]), int(m.total[i])
        flags = []
        if cav == 0 and myo == 0:
            flags.append("empty")
        else:
            if cav < min_cavity_px:
                flags.append("small_cavity")
            if myo < min_myo_px:
                flags.append("no_myocardium")
            for name, comp in (("cavity", c), ("myocardium", m)):
                if comp.count[i] > 1 and comp.size_2[i] > fragment_fraction * comp.size_1[i]:
                    flags.append(f"fragmented_{name}")
            if cav >= min_cavity_px and myo >= min_myo_px and n_border[i] and n_border_myo[i] / n_border[i] < 0.5:
                flags.append("cavity_outside_myocardium")
        out.append(MaskQC(cav, myo, int(c.count[i]), int(m.count[i]), ";".join(flags)))
    return out


def mask_qc(mask: np.ndarray, min_cavity_px: int = MIN_CAVITY_PX, min_myo_px: int = MIN_MYO_PX,
            fragment_fraction: float = FRAGMENT_FRACTION) -> MaskQC:
    """:func:`masks_qc` of one slice's mask ``(R, C)``."""
    return masks_qc(np.asarray(mask)[None], min_cavity_px, min_myo_px, fragment_fraction)[0]


def clean_masks(masks: np.ndarray) -> np.ndarray:
    """Per image of a stack ``(N, R, C)``: keep the largest connected component of each label
    (others become background), fill holes in the cavity."""
    masks = np.asarray(masks)
    box = _foreground_box(masks)
    return _cleaned(masks, box, {label: _components(masks[box] == label) for label in (RV, MYO, CAVITY)})


def clean_masks_and_qc(masks: np.ndarray) -> tuple[np.ndarray, list[MaskQC]]:
    """:func:`clean_masks` and :func:`masks_qc` (default thresholds) of a stack ``(N, R, C)``, the
    connected components of each label found once for both."""
    masks = np.asarray(masks)
    box = _foreground_box(masks)
    comps = {label: _components(masks[box] == label) for label in (RV, MYO, CAVITY)}
    return _cleaned(masks, box, comps), _qc(masks[box], comps[CAVITY], comps[MYO], MIN_CAVITY_PX, MIN_MYO_PX, FRAGMENT_FRACTION)


def _cleaned(masks: np.ndarray, box: tuple[slice, slice, slice], comps: dict[int, _Components]) -> np.ndarray:
    """:func:`clean_masks` from the components of each label within the foreground ``box``."""
    out = np.zeros_like(masks)
    out_crop = out[box]
    for label in (RV, MYO, CAVITY):
        comp = comps[label]
        keep_label = np.zeros(int(comp.labels.max(initial=0)) + 1, dtype=bool)
        keep_label[comp.largest[comp.largest > 0]] = True
        keep = keep_label[comp.labels]
        if label == CAVITY:
            keep = ndimage.binary_fill_holes(keep, _IN_PLANE)
        out_crop[keep] = label
    return out


def clean_mask(mask: np.ndarray) -> np.ndarray:
    """:func:`clean_masks` of one mask ``(R, C)``."""
    return clean_masks(np.asarray(mask)[None])[0]


def cavity_volumes_ml(masks: np.ndarray, pixel_area_mm2: np.ndarray, spacing_mm: float,
                      include: np.ndarray | None = None) -> np.ndarray:
    """Cavity volume per frame by slice summation: ``masks (S, T, R, C)``, pixel areas ``(S,)``."""
    return counted_volumes_ml((masks == CAVITY).sum(axis=(2, 3)), pixel_area_mm2, spacing_mm, include)


def counted_volumes_ml(cavity_px: np.ndarray, pixel_area_mm2: np.ndarray, spacing_mm: float,
                       include: np.ndarray | None = None) -> np.ndarray:
    """:func:`cavity_volumes_ml` from the cavity's pixel count per image ``(S, T)`` (the same
    arithmetic, for a caller that keeps the counts as it segments)."""
    area = np.asarray(cavity_px) * np.asarray(pixel_area_mm2, dtype=float)[:, None]
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


def _contour_lines(z: np.ndarray, level: float) -> list[np.ndarray]:
    """``contourpy.contour_generator(z=z).lines(level)`` (the same generator, class and options),
    built directly: the wrapper's argument checks and masked-array pass over ``z`` cost more than
    tracing a cropped mask (``z`` is finite here: no mask)."""
    import contourpy

    ny, nx = z.shape
    x, y = np.meshgrid(np.arange(nx, dtype=np.float64), np.arange(ny, dtype=np.float64))
    gen = contourpy.SerialContourGenerator(
        x, y, z, None, x_chunk_size=0, y_chunk_size=0, line_type=contourpy.LineType.Separate,
        fill_type=contourpy.FillType.OuterOffset, corner_mask=True, quad_as_tri=False,
        z_interp=contourpy.ZInterp.Linear)
    return gen.lines(level)


def _signed_area(p: np.ndarray) -> float:
    """Shoelace area of a closed polyline (x, y), counter-clockwise positive."""
    x, y = p[:, 0], p[:, 1]
    # np.roll(v, -1) without its axis handling: the same values, so the same dot products
    return 0.5 * float(np.dot(x, np.concatenate((y[1:], y[:1]))) - np.dot(y, np.concatenate((x[1:], x[:1]))))


def mask_contours(binary: np.ndarray, n_points: int = 48, smooth_px: float = 0.7) -> np.ndarray | None:
    """Outline of the largest region of ``binary``: ``(n_points, 2)`` (row, col), closed (last point
    != first), equally spaced along its length, counter-clockwise in (col, row).  None if empty.

    Marching squares (matplotlib's contour generator) on the lightly smoothed mask at level 0.5.
    """
    if not binary.any():
        return None
    padded = np.zeros((binary.shape[0] + 4, binary.shape[1] + 4))  # np.pad(binary, 2), as floats
    padded[2:-2, 2:-2] = binary
    f = ndimage.gaussian_filter(padded, smooth_px)
    lines = _contour_lines(f, 0.5)
    if not lines:
        return None
    # the largest; among equal areas (rounded: the shoelace sum is not exactly translation-invariant)
    # the topmost, then leftmost, so that a crop of the mask gives the same outline as the whole
    best = lines[0] if len(lines) == 1 else max(
        lines, key=lambda p: (round(abs(_signed_area(p)), 6), -p[:, 1].min(), -p[:, 0].min()))
    (a0, a1), (b0, b1) = best[0], best[-1]
    if abs(a0 - b0) <= 1e-8 + 1e-5 * abs(b0) and abs(a1 - b1) <= 1e-8 + 1e-5 * abs(b1):  # np.allclose
        best = best[:-1]
    if _signed_area(best) < 0:
        best = best[::-1]
    closed = np.vstack([best, best[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    s = np.concatenate([[0], np.cumsum(seg)])
    t = np.linspace(0, s[-1], n_points, endpoint=False)
    x = np.interp(t, s, closed[:, 0]) - 2  # undo padding
    y = np.interp(t, s, closed[:, 1]) - 2
    return np.stack([y, x], axis=1)
