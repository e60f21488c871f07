"""Per-exam image cache: what ingest writes and the GPU stage reads, so inference never parses DICOM.

One ``.npz`` per exam at ``<results>/cache/<exam_id>.npz`` (format version 2, key
``format_version``):

=====================  ==============================  =========================================
key                    shape / dtype                   meaning
=====================  ==============================  =========================================
``format_version``     () int                          2 (absent: version 1)
``sax``                (S, T, R, C) uint16, int16 or   SAX stack, slice 0 = most basal, frames in
                       float32 (see below)             trigger-time order
``sax_planes``         (S, 17) float64                 one :func:`~cmr_atlas.core.geometry.plane_vector`
                                                       per slice
``lax_2ch``            (T2, R2, C2) as ``sax``         2-chamber cine (absent key = no 2CH view)
``lax_2ch_plane``      (17,) float64
``lax_4ch``            (T4, R4, C4) as ``sax``         4-chamber cine (absent key = no 4CH view)
``lax_4ch_plane``      (17,) float64
``lax_3ch``            (T3, R3, C3) as ``sax``         3-chamber cine of clinical exams (absent key =
``lax_3ch_plane``      (17,) float64                   no 3CH view; legacy exams have none)
``trigger_times_ms``   (T,) float64                    SAX trigger times
``sax_masks``          (S, T, R, C) uint8 (optional)   labels written by inference:
                                                       :data:`cmr_atlas.core.vocab.LABELS`
=====================  ==============================  =========================================

Intensities are the stored pixel values after RescaleSlope/Intercept (no normalisation: the
networks whiten per image); :func:`load_exam_images` returns them as float32.  On disk an image
array whose float32 values are all integers that fit 16 bits (DICOM stored values without a
rescale, the usual MR case) is kept as uint16 or int16 in an uncompressed zip entry: writing and
reading it costs little more than copying the bytes, and the file is about the size of the
pixel data of the DICOM files.  Any other array (a rescale slope other than 1, floats) is kept as
float32 with deflate level 1.  Version 1 files (float32 images, all entries deflated) are read
the same way; a newer version stops with :class:`CacheFormatError`.

Plane vectors (:func:`~cmr_atlas.core.geometry.plane_vector`) hold ImagePositionPatient (3), ImageOrientationPatient (6), PixelSpacing (2), rows, cols,
SliceThickness, and 3 spare zeros, so that geometry survives without DICOM.

Inference writes the predicted masks of an exam beside it, in a file of their own
(:func:`save_masks`: ``exam_id``, ``segmented`` (S, T) bool and ``sax_masks`` uint8, deflate level
1), so that the guide-point stage reads them without the networks (no torch).  ``sax_masks`` holds
the rows ``r0:r1`` and columns ``c0:c1`` that have a label in some image, ``sax_masks_box`` =
``(r0, r1, c0, c1, R, C)`` (int64) says where they go in the ``(S, T, R, C)`` masks
(:func:`load_masks` fills the rest with background); a file without ``sax_masks_box`` holds the
whole images (written before it existed, or no label at all).
"""

from __future__ import annotations

import io
import struct
import zipfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

import numpy as np

from cmr_atlas.core.geometry import SlicePlane, plane_from_vector, plane_vector
from cmr_atlas.core.tables import atomic_file
from cmr_atlas.core.vocab import CLINICAL_LAX_VIEWS


@dataclass
class ExamImages:
    """Images of one exam with their geometry (patient coordinates via each :class:`SlicePlane`)."""

    exam_id: str
    sax: np.ndarray  # (S, T, R, C)
    sax_planes: list[SlicePlane]
    trigger_times_ms: np.ndarray
    lax: dict[str, np.ndarray] = field(default_factory=dict)  # view -> (T, R, C)
    lax_planes: dict[str, SlicePlane] = field(default_factory=dict)
    sax_masks: np.ndarray | None = None

    @property
    def n_slices(self) -> int:
        return int(self.sax.shape[0])

    @property
    def n_frames(self) -> int:
        return int(self.sax.shape[1])


FORMAT_VERSION = 2


class CacheFormatError(ValueError):
    """A cache file written by a newer cmr-atlas (its format version is unknown here)."""


def compact_image(image: np.ndarray) -> np.ndarray:
    """``image`` as uint16 or int16 when that holds every float32 value exactly, else float32."""
    if image.dtype in (np.uint16, np.int16):  # stored values, already exact
        return image
    arr = np.asarray(image, dtype=np.float32)
    with np.errstate(invalid="ignore"):  # out-of-range casts are caught by the comparison
        for dtype in (np.uint16, np.int16):
            ints = arr.astype(dtype)
            if np.array_equal(ints, arr):
                return ints
    return arr


def save_exam_images(images: ExamImages, path: str | Path) -> Path:
    """Write the cache file atomically."""
    arrays: dict[str, np.ndarray] = {
        "format_version": np.array(FORMAT_VERSION),
        "sax": compact_image(images.sax),
        "sax_planes": np.stack([plane_vector(p) for p in images.sax_planes]),
        "trigger_times_ms": np.asarray(images.trigger_times_ms, dtype=float),
        "exam_id": np.array(images.exam_id),
    }
    for view, arr in images.lax.items():
        arrays[view] = compact_image(arr)
        arrays[f"{view}_plane"] = plane_vector(images.lax_planes[view])
    if images.sax_masks is not None:
        arrays["sax_masks"] = images.sax_masks.astype(np.uint8)
    with atomic_file(path) as fh:
        savez(fh, arrays, stored=lambda a: a.dtype in (np.uint16, np.int16))
    return Path(path)


def _write_npy(fh: BinaryIO, arr: np.ndarray) -> None:
    """``np.lib.format.write_array`` (the same bytes) without its copies of a C-contiguous array
    (it writes ``tobytes()`` of 16 MB chunks to anything that is not a real file)."""
    if arr.flags.c_contiguous and arr.ndim and arr.size and not arr.dtype.hasobject:
        try:
            np.lib.format.write_array_header_1_0(fh, np.lib.format.header_data_from_array_1_0(arr))
        except ValueError:  # a header too long for format 1.0 (not one of ours): numpy decides
            pass
        else:
            fh.write(memoryview(arr).cast("B"))
            return
    np.lib.format.write_array(fh, arr, allow_pickle=False)


def savez(buf: BinaryIO, arrays: dict[str, np.ndarray], level: int = 1,
          stored: Callable[[np.ndarray], bool] = lambda a: False) -> None:
    """``np.savez_compressed`` at deflate level 1 (8x faster on float images than the default,
    12 % larger files) into ``buf`` (seekable); arrays for which ``stored(array)`` is true go
    uncompressed."""
    with zipfile.ZipFile(buf, "w") as zf:
        for name, arr in arrays.items():
            arr = np.asanyarray(arr)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o600 << 16
            if stored(arr):  # streamed into the archive: no intermediate copy
                info.compress_type = zipfile.ZIP_STORED
                with zf.open(info, "w", force_zip64=True) as fh:
                    _write_npy(fh, arr)
            else:
                npy = io.BytesIO()
                np.lib.format.write_array(npy, arr, allow_pickle=False)
                zf.writestr(info, npy.getbuffer(), compress_type=zipfile.ZIP_DEFLATED, compresslevel=level)


def _npz_shape(z: np.lib.npyio.NpzFile, key: str) -> tuple[int, ...]:
    """Shape of ``key`` in an open npz, from its .npy header only (no pixel bytes read)."""
    fmt = np.lib.format
    with z.zip.open(f"{key}.npy") as fh:
        version = fmt.read_magic(fh)
        if version == (1, 0):
            return tuple(fmt.read_array_header_1_0(fh)[0])
        if version == (2, 0):
            return tuple(fmt.read_array_header_2_0(fh)[0])
    return z[key].shape  # another header version: read the array


_LOCAL_HEADER = struct.Struct("<4s22xHH")  # signature, then the name and extra-field lengths


def _read_stored(raw: BinaryIO, info: zipfile.ZipInfo) -> np.ndarray | None:
    """The array of an uncompressed (ZIP_STORED) npz member, read from the archive file ``raw``
    into the array in one read: zipfile's stream copies it in 256 kB chunks through numpy's
    reader and checks its CRC, twice the time on a page-cached legacy exam (9.4 against 4.5 ms
    for its 25 MB).  The CRC is not checked (the cache is written atomically by ingest); a short read is a
    :class:`CacheFormatError`.  None for a member it does not read (deflated, another .npy
    version, Fortran order, objects): the caller reads it through zipfile."""
    if info.compress_type != zipfile.ZIP_STORED:
        return None
    fmt = np.lib.format
    raw.seek(info.header_offset)
    head = raw.read(_LOCAL_HEADER.size)
    if len(head) < _LOCAL_HEADER.size or head[:4] != b"PK\x03\x04":
        raise CacheFormatError(f"{getattr(raw, 'name', 'cache file')}: bad zip entry {info.filename}")
    name_len, extra_len = _LOCAL_HEADER.unpack(head)[1:]
    raw.seek(info.header_offset + _LOCAL_HEADER.size + name_len + extra_len)
    version = fmt.read_magic(raw)
    if version not in ((1, 0), (2, 0)):
        return None
    shape, fortran, dtype = (fmt.read_array_header_1_0 if version == (1, 0) else fmt.read_array_header_2_0)(raw)
    if fortran or dtype.hasobject:
        return None
    arr = np.empty(shape, dtype)
    if arr.nbytes and raw.readinto(memoryview(arr.reshape(-1).view(np.uint8))) != arr.nbytes:
        raise CacheFormatError(f"{getattr(raw, 'name', 'cache file')}: {info.filename} is truncated")
    return arr


def load_exam_images(path: str | Path, pixels: bool = True, stored: bool = False) -> ExamImages:
    """Read a cache file written by :func:`save_exam_images` (format version 1 or 2); images float32.

    ``pixels=False`` reads the geometry only (planes, trigger times, image shapes): the image
    arrays are then read-only zeros of the right shape (a broadcast scalar, no memory), for stages
    that need the planes and frame counts but not the intensities (the guide points).
    ``stored=True`` keeps the images in the type they are stored in (uint16, int16 or float32,
    the same values), for a reader that converts only the frames it uses: the conversion of a
    whole exam costs more than reading it (about 50 ms per legacy exam)."""
    def image(z: np.lib.npyio.NpzFile, key: str) -> np.ndarray:
        if pixels:
            arr = _read_stored(raw, z.zip.getinfo(f"{key}.npy"))
            arr = z[key] if arr is None else arr
            return arr if stored else arr.astype(np.float32, copy=False)
        return np.broadcast_to(np.float32(0), _npz_shape(z, key))

    with np.load(path, allow_pickle=False) as z, open(path, "rb") as raw:
        version = int(z["format_version"]) if "format_version" in z.files else 1
        if version > FORMAT_VERSION:
            raise CacheFormatError(f"{path}: image cache format version {version} is newer than this "
                                   f"cmr-atlas reads ({FORMAT_VERSION}); re-run ingest or update cmr-atlas")
        lax = {v: image(z, v) for v in CLINICAL_LAX_VIEWS if v in z.files}
        return ExamImages(
            exam_id=str(z["exam_id"]),
            sax=image(z, "sax"),
            sax_planes=[plane_from_vector(v) for v in z["sax_planes"]],
            trigger_times_ms=z["trigger_times_ms"],
            lax=lax,
            lax_planes={v: plane_from_vector(z[f"{v}_plane"]) for v in lax},
            sax_masks=z["sax_masks"] if pixels and "sax_masks" in z.files else None,
        )


def save_masks(exam_id: str, masks: np.ndarray, path: str | Path, segmented: np.ndarray | None = None) -> Path:
    """Write an exam's predicted label masks ``(S, T, R, C)`` atomically; ``segmented (S, T)``:
    which images the network ran on (config ``inference.frames: ed_es`` leaves the others
    background); None: every image."""
    masks = np.asarray(masks).astype(np.uint8, copy=False)
    seg = np.ones(masks.shape[:2], bool) if segmented is None else np.asarray(segmented, bool)
    if seg.shape != masks.shape[:2]:
        raise ValueError(f"segmented has shape {seg.shape}, the masks' slices and frames are {masks.shape[:2]}")
    arrays = {"exam_id": np.array(exam_id), "segmented": seg}
    labelled = np.bitwise_or.reduce(masks.reshape(-1, *masks.shape[2:]), axis=0) if masks.size else None
    rows = np.flatnonzero(labelled.any(axis=1)) if labelled is not None else []
    if len(rows):  # the rows and columns that hold a label in some image: far fewer bytes to deflate
        cols = np.flatnonzero(labelled.any(axis=0))
        r0, r1, c0, c1 = int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1
        arrays["sax_masks"] = masks[..., r0:r1, c0:c1]
        arrays["sax_masks_box"] = np.array([r0, r1, c0, c1, *masks.shape[2:]], np.int64)
    else:
        arrays["sax_masks"] = masks
    with atomic_file(path) as fh:
        savez(fh, arrays)
    return Path(path)


def load_masks(path: str | Path) -> np.ndarray:
    """The ``sax_masks (S, T, R, C)`` of a file written by :func:`save_masks` (a file that keeps
    the labelled box only is filled out with background)."""
    with np.load(path, allow_pickle=False) as z:
        masks = z["sax_masks"]
        if "sax_masks_box" not in z.files:
            return masks
        r0, r1, c0, c1, n_r, n_c = (int(v) for v in z["sax_masks_box"])
    if masks.shape[2:] != (r1 - r0, c1 - c0) or not (0 <= r0 < r1 <= n_r and 0 <= c0 < c1 <= n_c):
        raise CacheFormatError(f"{path}: sax_masks_box {[r0, r1, c0, c1, n_r, n_c]} does not fit masks {masks.shape}")
    out = np.zeros((*masks.shape[:2], n_r, n_c), np.uint8)
    out[..., r0:r1, c0:c1] = masks
    return out


def load_segmented(path: str | Path) -> np.ndarray:
    """Which images ``(S, T)`` of a :func:`save_masks` file were segmented (every image for a
    file written before the ``segmented`` array existed)."""
    with np.load(path, allow_pickle=False) as z:
        if "segmented" in z.files:
            return z["segmented"].astype(bool)
        return np.ones(z["sax_masks"].shape[:2], bool)
