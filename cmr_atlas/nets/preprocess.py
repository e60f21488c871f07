"""The network grid: every image is resampled to a fixed pixel spacing and a fixed field of view
centred on the image centre (the heart sits near the FOV centre in these exams), then whitened.

The mapping between original pixels and network pixels is an exact affine map, and the network
grid is itself a :class:`~cmr_atlas.core.geometry.SlicePlane` (same centre and direction cosines as the
original plane), so network-pixel positions map straight to patient millimetres.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

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
    """Zero mean, unit standard deviation per image (a flat image becomes zeros)."""
    x = np.asarray(image, dtype=np.float32)
    sd = float(x.std())
    return (x - float(x.mean())) / (sd if sd > 1e-6 else 1.0)


def resample_to_net(image: np.ndarray, plane: SlicePlane, grid: Grid, order: int = 1) -> np.ndarray:
    """Sample an original image ``(R, C)`` on the network grid (zero outside the image)."""
    if image.shape != tuple(plane.shape):
        raise ValueError(f"image shape {image.shape} does not match its plane {plane.shape}")
    n = grid.size
    r, c = np.meshgrid(np.arange(n, dtype=float), np.arange(n, dtype=float), indexing="ij")
    src = from_net_px(np.stack([r, c], axis=-1), plane, grid)
    return ndimage.map_coordinates(
        np.asarray(image, dtype=np.float32), [src[..., 0], src[..., 1]],
        order=order, mode="constant", cval=0.0, prefilter=False,
    ).astype(np.float32)


def resample_from_net(values: np.ndarray, plane: SlicePlane, grid: Grid, order: int = 1,
                      cval: float = 0.0) -> np.ndarray:
    """Sample network-grid maps ``(..., n, n)`` back on the original pixel grid ``(..., R, C)``."""
    rows, cols = plane.shape
    r, c = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    dst = to_net_px(np.stack([r, c], axis=-1), plane, grid)
    flat = np.asarray(values, dtype=np.float32).reshape(-1, grid.size, grid.size)
    out = np.stack([
        ndimage.map_coordinates(v, [dst[..., 0], dst[..., 1]], order=order, mode="constant",
                                cval=cval, prefilter=False)
        for v in flat
    ])
    return out.reshape(*np.shape(values)[:-2], rows, cols)


def prepare(images: np.ndarray, plane: SlicePlane, grid: Grid) -> np.ndarray:
    """Whiten each image ``(..., R, C)`` then resample it to the grid: ``(..., n, n)`` float32.

    Whitening uses the original pixels (as in the paper: whiten, then zero-pad/crop), so zero
    padding outside the original FOV equals the image mean.
    """
    arr = np.asarray(images, dtype=np.float32)
    flat = arr.reshape(-1, *arr.shape[-2:])
    out = np.stack([resample_to_net(whiten(im), plane, grid) for im in flat])
    return out.reshape(*arr.shape[:-2], grid.size, grid.size)
