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

    Images whose header scan located their raw values (:class:`~cmr_atlas.dicom.scan.RawPixels`)
    are read with one seek each; any other goes through pydicom's decoders.

    Raises :class:`PixelError` ``corrupt_pixel_data: file <index>`` for undecodable or truncated data.
    """
    if _raw_dtype(images) is not None:
        return _read_raw(images)
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


def _raw_dtype(images: list[ImageHeader]) -> str | None:
    """The stored dtype when every image's raw values were located and share it, else None."""
    dtypes = {h.raw_pixels.dtype if h.raw_pixels else None for h in images}
    return dtypes.pop() if len(dtypes) == 1 else None


def _read_raw(images: list[ImageHeader]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    out = np.empty((len(images), images[0].rows, images[0].cols), dtype=images[0].raw_pixels.dtype)
    for k, h in enumerate(images):
        if (h.rows, h.cols) != out.shape[1:]:
            raise PixelError(f"corrupt_pixel_data: file {h.file_index} (shape {(h.rows, h.cols)})")
        try:
            n_read = _read_into(h, out[k])
        except (OSError, ValueError) as exc:
            raise PixelError(f"corrupt_pixel_data: file {h.file_index} ({type(exc).__name__})") from None
        if n_read != out[k].nbytes:
            raise PixelError(f"corrupt_pixel_data: file {h.file_index} (truncated)")
    rescale = np.array([(h.raw_pixels.slope, h.raw_pixels.intercept) for h in images], dtype=float)
    return out, rescale[:, 0], rescale[:, 1]


def _read_into(h: ImageHeader, out: np.ndarray) -> int:
    """Read a :class:`~cmr_atlas.dicom.scan.RawPixels` image's stored values straight into ``out``
    (C-contiguous, of their dtype); the number of bytes read (fewer when the file ends early)."""
    with open(h.path, "rb") as fh:
        fh.seek(h.raw_pixels.offset)
        return fh.readinto(memoryview(out).cast("B"))


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


def cache_values(stored: np.ndarray, slope: np.ndarray, intercept: np.ndarray) -> np.ndarray:
    """What the image cache keeps: the 16-bit stored values themselves when no rescale applies (the
    usual MR case: no float32 round trip), else the rescaled float32 values."""
    if stored.dtype in (np.uint16, np.int16) and (np.asarray(slope) == 1).all() and (np.asarray(intercept) == 0).all():
        return stored
    return to_float32(stored, slope, intercept)


def _read_sax(planes: list[CinePlane]) -> np.ndarray:
    """:func:`cache_values` of a checked SAX stack ``(S, T, R, C)`` (:func:`check_stack`: one frame
    count).  Stored values, stacked at half the bytes of float32; raw values are read straight into
    one array (no per-slice arrays to stack)."""
    images = [h for p in planes for h in p.images]
    if _raw_dtype(images) is None:
        return cache_values(*(np.stack(part) for part in zip(*(read_stored(p.images) for p in planes))))
    stored, slope, intercept = read_stored(images)
    st = (len(planes), planes[0].n_frames)
    return cache_values(stored.reshape(st + stored.shape[1:]), slope.reshape(st), intercept.reshape(st))


def build_exam_images(exam_id: str, sel: ViewSelection) -> ExamImages:
    """Read the pixels of the selected views into the cache structure (SAX slice 0 most basal).

    Image arrays are :func:`cache_values`: ready for :func:`~cmr_atlas.core.imagecache.save_exam_images`
    (which loads them back as float32).
    """
    sax = _read_sax(sel.sax)
    cines = {**sel.lax, **sel.other_lax}  # + a clinical exam's 3CH cine (its landmarks; no fit uses it)
    lax = {view: cache_values(*read_stored(p.images)) for view, p in cines.items()}
    return ExamImages(
        exam_id=exam_id,
        sax=sax,
        sax_planes=[p.plane for p in sel.sax],
        trigger_times_ms=trigger_times(sel.sax),
        lax=lax,
        lax_planes={view: p.plane for view, p in cines.items()},
    )
