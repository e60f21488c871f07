"""The network grid: every image is resampled to a fixed pixel spacing and a fixed field of view
centred on the image centre (the heart sits near the FOV centre in these exams), then whitened.

The mapping between original pixels and network pixels is an exact affine map, and the network
grid is itself a :class:`~cmr_atlas.core.geometry.SlicePlane` (same centre and direction cosines as the
original plane), so network-pixel positions map straight to patient millimetres.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from cmr_atlas.core.geometry import SlicePlane


@dataclass(frozen=True)
class Grid:
    """Network input grid: square ``size`` x ``size`` pixels of ``spacing_mm``."""

    spacing_mm: float = 1.5
    size: int = 128

    @property
    def fov_mm(self) -> float:
        return self.spacing_mm * self.size

    def to_dict(self) -> dict:
        return {"spacing_mm": self.spacing_mm, "size": self.size}

    @classmethod
    def from_dict(cls, d: dict) -> Grid:
        """The grid of a model card's ``input`` or a data folder's ``*_grid`` entry."""
        return cls(spacing_mm=float(d["spacing_mm"]), size=int(d["size"]))


def _centre(shape: tuple[int, int]) -> np.ndarray:
    return (np.asarray(shape, dtype=float) - 1.0) / 2.0


def net_plane(plane: SlicePlane, grid: Grid) -> SlicePlane:
    """The network grid as a plane: same centre and orientation as ``plane``."""
    return SlicePlane.centred(
        plane.centre_mm, plane.row_cosine, plane.col_cosine,
        (grid.spacing_mm, grid.spacing_mm), (grid.size, grid.size), plane.thickness_mm,
    )


def to_net_px(rc: np.ndarray, plane: SlicePlane, grid: Grid) -> np.ndarray:
    """Original pixel (row, col) ``(..., 2)`` -> network pixel (row, col)."""
    scale = np.asarray(plane.pixel_spacing_mm, dtype=float) / grid.spacing_mm
    return (np.asarray(rc, dtype=float) - _centre(plane.shape)) * scale + _centre((grid.size,) * 2)


def from_net_px(rc: np.ndarray, plane: SlicePlane, grid: Grid) -> np.ndarray:
    """Network pixel (row, col) ``(..., 2)`` -> original pixel (row, col); inverse of :func:`to_net_px`."""
    scale = grid.spacing_mm / np.asarray(plane.pixel_spacing_mm, dtype=float)
    return (np.asarray(rc, dtype=float) - _centre((grid.size,) * 2)) * scale + _centre(plane.shape)


def whiten(image: np.ndarray) -> np.ndarray:
    """Zero mean, unit standard deviation per image ``(..., R, C)`` (a flat image becomes zeros)."""
    x = np.asarray(image, dtype=np.float32)
    mean = x.mean(axis=(-2, -1), keepdims=True)
    sd = x.std(axis=(-2, -1), keepdims=True)
    return (x - mean) / np.where(sd > 1e-6, sd, np.float32(1.0))


def _interp_axis(x: np.ndarray, src: np.ndarray, axis: int, cval: float) -> np.ndarray:
    """Linear interpolation of ``x`` along ``axis`` at positions ``src`` (sample indices); ``cval``
    where a position lies off the samples (as ``map_coordinates(order=1, mode="constant")``)."""
    length = x.shape[axis]
    src = np.asarray(src, dtype=float)
    inside = (src >= 0) & (src <= length - 1)
    lo = np.clip(np.floor(src), 0, max(length - 2, 0)).astype(np.intp)
    hi = np.minimum(lo + 1, length - 1)
    shape = [1] * x.ndim
    shape[axis] = len(src)
    w = np.where(inside, src - lo, 0.0).astype(np.float32).reshape(shape)
    out = np.take(x, lo, axis=axis) * (1 - w) + np.take(x, hi, axis=axis) * w
    if not inside.all():
        index = [slice(None)] * x.ndim
        index[axis] = ~inside
        out[tuple(index)] = cval
    return out


def resample_linear(values: np.ndarray, src_rows: np.ndarray, src_cols: np.ndarray, cval: float = 0.0) -> np.ndarray:
    """Bilinear samples of ``values (..., R, C)`` (float32) at rows ``src_rows (m,)`` x columns
    ``src_cols (k,)`` (source pixel indices): ``(..., m, k)``, ``cval`` off the source grid.

    The map between original and network pixels is axis-aligned (:func:`to_net_px`), so one 2-D
    bilinear resampling is two 1-D linear ones, vectorised over every image at once (no BLAS, so
    no thread pool of its own): the values of ``map_coordinates(order=1, mode="constant",
    prefilter=False)`` image by image, computed in float32 instead of float64.
    """
    x = np.asarray(values, dtype=np.float32)
    return _interp_axis(_interp_axis(x, src_rows, x.ndim - 2, cval), src_cols, x.ndim - 1, cval)


def _check_shape(images: np.ndarray, plane: SlicePlane) -> None:
    if np.shape(images)[-2:] != tuple(plane.shape):
        raise ValueError(f"image shape {np.shape(images)[-2:]} does not match its plane {plane.shape}")


def resample_to_net(images: np.ndarray, plane: SlicePlane, grid: Grid) -> np.ndarray:
    """Sample original images ``(..., R, C)`` on the network grid ``(..., n, n)`` (zero outside the image)."""
    _check_shape(images, plane)
    ax = np.arange(grid.size, dtype=float)
    src_r = from_net_px(np.stack([ax, np.zeros_like(ax)], -1), plane, grid)[:, 0]
    src_c = from_net_px(np.stack([np.zeros_like(ax), ax], -1), plane, grid)[:, 1]
    return resample_linear(images, src_r, src_c)


def resample_from_net(values: np.ndarray, plane: SlicePlane, grid: Grid, cval: float = 0.0) -> np.ndarray:
    """Sample network-grid maps ``(..., n, n)`` back on the original pixel grid ``(..., R, C)``,
    ``cval`` outside the network field of view."""
    rows, cols = plane.shape
    dst_r = to_net_px(np.stack([np.arange(rows, dtype=float), np.zeros(rows)], -1), plane, grid)[:, 0]
    dst_c = to_net_px(np.stack([np.zeros(cols), np.arange(cols, dtype=float)], -1), plane, grid)[:, 1]
    return resample_linear(values, dst_r, dst_c, cval)


def prepare(images: np.ndarray, plane: SlicePlane, grid: Grid) -> np.ndarray:
    """Whiten each image ``(..., R, C)`` then resample it to the grid: ``(..., n, n)`` float32.

    Whitening uses the original pixels (as in the paper: whiten, then zero-pad/crop), so zero
    padding outside the original FOV equals the image mean.
    """
    _check_shape(images, plane)
    return resample_to_net(whiten(images), plane, grid)


def crop_box(fg: np.ndarray, margin_px: int, multiple: int, min_px: int = 0) -> tuple[slice, slice] | None:
    """The rows and columns of the network grid that hold every True pixel of ``fg (..., n, n)``
    with ``margin_px`` around them, widened to start and end on multiples of ``multiple`` (a
    U-Net's downsampling factor: its pooling cells stay those of the whole grid), each side at
    least ``min_px`` long (widened about its centre) and clipped to the grid; None when ``fg`` has
    no True pixel."""
    fg = np.asarray(fg, bool)
    n_r, n_c = fg.shape[-2:]
    rows = np.nonzero(fg.any(axis=tuple(range(fg.ndim - 2)) + (fg.ndim - 1,)))[0]
    cols = np.nonzero(fg.any(axis=tuple(range(fg.ndim - 1))))[0]
    if not len(rows):
        return None

    def span(idx: np.ndarray, n: int) -> slice:
        lo = max(0, (int(idx[0]) - margin_px) // multiple * multiple)
        hi = min(n, -(-(int(idx[-1]) + 1 + margin_px) // multiple) * multiple)
        if hi - lo < min_px:  # widened about its centre, inside the grid, aligned again
            lo = max(0, min(lo - (min_px - (hi - lo)) // 2, n - min_px))
            hi = min(n, max(hi, lo + min_px))
            lo, hi = lo // multiple * multiple, min(n, -(-hi // multiple) * multiple)
        return slice(lo, hi)

    return span(rows, n_r), span(cols, n_c)


def near_crop_edge(fg: np.ndarray, box: tuple[slice, slice], grid_shape: tuple[int, int], width_px: int) -> np.ndarray:
    """Per image of ``fg (N, h, w)`` (True pixels inside the crop ``box`` of a grid of
    ``grid_shape``): whether a True pixel lies within ``width_px`` of a crop side that is not a
    side of the grid, i.e. where the crop may have cut something off."""
    fg = np.asarray(fg, bool)
    near = np.zeros(len(fg), bool)
    for axis, (sl, n) in enumerate(zip(box, grid_shape)):
        ax = axis + 1
        length = fg.shape[ax]
        w = min(width_px, length)
        if sl.start > 0:
            near |= np.take(fg, np.arange(w), axis=ax).any(axis=(1, 2))
        if sl.stop < n:
            near |= np.take(fg, np.arange(length - w, length), axis=ax).any(axis=(1, 2))
    return near


def prepare_on(images: np.ndarray, plane: SlicePlane, target: SlicePlane, grid: Grid) -> np.ndarray:
    """Whiten images ``(..., R, C)`` of ``plane`` and sample them on ``target``'s network grid
    ``(..., n, n)``: each grid point is projected along ``plane``'s normal onto ``plane`` (zero off
    the image).  A neighbouring slice of a stack so lines up pixel for pixel with ``target``'s
    :func:`prepare` even where the slice centres are not on one line."""
    from scipy.ndimage import map_coordinates

    _check_shape(images, plane)
    x = whiten(images)
    rc, _ = plane.patient_to_pixel(net_plane(target, grid).pixel_grid_mm())  # (n, n, 2)
    flat = x.reshape(-1, *x.shape[-2:])
    out = np.stack([map_coordinates(im, [rc[..., 0], rc[..., 1]], order=1, mode="constant", cval=0.0,
                                    prefilter=False) for im in flat])
    return out.reshape(*x.shape[:-2], grid.size, grid.size).astype(np.float32)


def slice_with_neighbours(stack: np.ndarray | Sequence[np.ndarray], planes: Sequence[SlicePlane], s: int,
                          n_neighbours: int, grid: Grid) -> np.ndarray:
    """Slice ``s`` of a stack ``stack (S, F, R, C)`` (or a list of ``(F, R, C)``: slices may
    differ in matrix; planes ``planes``, ordered base to apex) with
    ``n_neighbours`` slices either side as channels, each on slice ``s``'s network grid:
    ``(F, 2k+1, n, n)``, channel ``k`` being :func:`prepare` of the slice itself, the others
    :func:`prepare_on` it, zeros past either end of the stack (which itself says "end of the
    stack")."""
    k = int(n_neighbours)
    target = planes[s]
    channels = []
    for t in range(s - k, s + k + 1):
        if t == s:
            channels.append(prepare(stack[s], target, grid))
        elif 0 <= t < len(planes):
            channels.append(prepare_on(stack[t], planes[t], target, grid))
        else:
            channels.append(np.zeros((len(stack[s]), grid.size, grid.size), np.float32))
    return np.stack(channels, axis=1)
