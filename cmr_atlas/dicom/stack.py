"""Pixels of the chosen views: consistency checks and the per-exam image cache (ExamImages).

Pixels are read only for the planes :mod:`views` selected.  Compressed transfer syntaxes (JPEG
lossless/baseline, JPEG 2000, RLE) decode through pydicom's pixel-data plugins (pylibjpeg,
libjpeg, openjpeg); enhanced multi-frame files are decoded once and sliced per frame.
"""

from __future__ import annotations

import numpy as np
import pydicom
from pydicom.pixels import pixel_array

from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.dicom.scan import ImageHeader
from cmr_atlas.dicom.views import CinePlane, ViewSelection


class PixelError(Exception):
    """Pixel data that cannot be decoded; the message is the QC reason (file index, not name)."""


_RESCALE_TAGS = [0x00281053, 0x00281052, 0x52009229, 0x52009230]  # slope, intercept, shared/per-frame groups


def _rescale(ds: pydicom.Dataset, frame: int | None) -> tuple[float, float]:
    slope, intercept = ds.get("RescaleSlope"), ds.get("RescaleIntercept")
    if frame is not None and (slope is None or intercept is None):
        for groups in (ds.get("PerFrameFunctionalGroupsSequence"), ds.get("SharedFunctionalGroupsSequence")):
            try:
                item = (groups[frame] if len(groups) > frame else groups[0]).PixelValueTransformationSequence[0]
                slope, intercept = item.RescaleSlope, item.RescaleIntercept
                break
            except (AttributeError, IndexError, TypeError):
                continue
    try:
        return float(slope if slope is not None else 1.0), float(intercept if intercept is not None else 0.0)
    except (TypeError, ValueError):
        return 1.0, 0.0


def _decode(path) -> tuple[pydicom.Dataset, np.ndarray]:
    """The rescale attributes and decoded pixels of one file, read in one pass.

    ``pydicom.pixels.pixel_array`` parses only the image-pixel module (and the rescale tags) on
    its way to the pixel data; files it cannot read that way (no file meta, i.e. no transfer
    syntax: common in 2000-era archives) go through a full ``dcmread(force=True)``.
    """
    ds = pydicom.Dataset()
    try:
        return ds, pixel_array(path, ds_out=ds, specific_tags=_RESCALE_TAGS)
    except Exception:  # noqa: BLE001 - the full reader decides, and names the failure
        full = pydicom.dcmread(path, force=True)
        return full, full.pixel_array


def read_stored(images: list[ImageHeader]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stored pixel values of ``images`` ``(T, R, C)`` (as decoded: their common numpy dtype) and
    per-frame RescaleSlope and RescaleIntercept ``(T,)`` each.

    Raises :class:`PixelError` ``corrupt_pixel_data: file <index>`` for undecodable or truncated data.
    """
    decoded: dict[str, tuple[pydicom.Dataset, np.ndarray]] = {}
    out, rescale = [], []
    for h in images:
        key = str(h.path)
        try:
            if key not in decoded:
                decoded = {key: _decode(h.path)}  # keep one file decoded at a time
            ds, arr = decoded[key]
            if h.frame is not None:
                arr = arr[h.frame] if arr.ndim == 3 else arr
            if arr.shape != (h.rows, h.cols):
                raise PixelError(f"corrupt_pixel_data: file {h.file_index} (shape {arr.shape})")
            out.append(arr)
            rescale.append(_rescale(ds, h.frame))
        except PixelError:
            raise
        except Exception as exc:  # decoder errors, truncated data, missing PixelData
            raise PixelError(f"corrupt_pixel_data: file {h.file_index} ({type(exc).__name__})") from None
    slope, intercept = np.array(rescale, dtype=float).reshape(-1, 2).T
    return np.stack(out), slope, intercept


def to_float32(stored: np.ndarray, slope: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """``stored * slope + intercept`` per frame (leading axes of ``slope``), computed in float32."""
    s = np.asarray(slope, dtype=np.float32).reshape(np.shape(slope) + (1, 1))
    b = np.asarray(intercept, dtype=np.float32).reshape(np.shape(intercept) + (1, 1))
    if (s == 1).all() and (b == 0).all():
        return stored.astype(np.float32)
    return stored.astype(np.float32) * s + b


def read_frames(images: list[ImageHeader]) -> np.ndarray:
    """Pixels of ``images`` as (T, R, C) float32 after RescaleSlope/Intercept.

    Raises :class:`PixelError` ``corrupt_pixel_data: file <index>`` for undecodable or truncated data.
    """
    return to_float32(*read_stored(images))


def check_stack(sel: ViewSelection) -> str | None:
    """The failure reason of a selected SAX stack, or None when it is consistent."""
    frames = {p.n_frames for p in sel.sax}
    if len(frames) > 1:
        return "inconsistent_frame_count"
    shapes = {(p.plane.shape, tuple(np.round(p.plane.pixel_spacing_mm, 3))) for p in sel.sax}
    if len(shapes) > 1:
        return "inconsistent_pixel_geometry"
    return None


def trigger_times(planes: list[CinePlane]) -> np.ndarray:
    """Per-frame trigger time (median over slices), NaN where no slice has one."""
    t = np.stack([p.trigger_times_ms for p in planes])
    with np.errstate(all="ignore"):
        return np.array([np.nanmedian(c) if np.isfinite(c).any() else np.nan for c in t.T])


def build_exam_images(exam_id: str, sel: ViewSelection) -> ExamImages:
    """Read the pixels of the selected views into the cache structure (SAX slice 0 most basal)."""
    sax = [read_stored(p.images) for p in sel.sax]  # stored values: stacked at half the bytes of float32
    lax = {view: read_frames(p.images) for view, p in sel.lax.items()}
    return ExamImages(
        exam_id=exam_id,
        sax=to_float32(*(np.stack(part) for part in zip(*sax))),
        sax_planes=[p.plane for p in sel.sax],
        trigger_times_ms=trigger_times(sel.sax),
        lax=lax,
        lax_planes={view: p.plane for view, p in sel.lax.items()},
    )
