"""Per-exam image cache: what ingest writes and the GPU stage reads, so inference never parses DICOM.

One compressed ``.npz`` per exam at ``<results>/cache/<exam_id>.npz``:

=====================  ==============================  =========================================
key                    shape / dtype                   meaning
=====================  ==============================  =========================================
``sax``                (S, T, R, C) float32            SAX stack, slice 0 = most basal, frames in
                                                       trigger-time order
``sax_planes``         (S, 17) float64                 one :func:`~cmr_atlas.core.geometry.plane_vector`
                                                       per slice
``lax_2ch``            (T2, R2, C2) float32            2-chamber cine (absent key = no 2CH view)
``lax_2ch_plane``      (17,) float64
``lax_4ch``            (T4, R4, C4) float32            4-chamber cine (absent key = no 4CH view)
``lax_4ch_plane``      (17,) float64
``trigger_times_ms``   (T,) float64                    SAX trigger times
``sax_masks``          (S, T, R, C) uint8 (optional)   labels written by inference:
                                                       :data:`cmr_atlas.core.vocab.LABELS`
=====================  ==============================  =========================================

Intensities are the stored pixel values after RescaleSlope/Intercept (no normalisation: the
networks whiten per image).  Plane vectors (:func:`~cmr_atlas.core.geometry.plane_vector`) hold
ImagePositionPatient (3), ImageOrientationPatient (6), PixelSpacing (2), rows, cols,
SliceThickness, and 3 spare zeros, so that geometry survives without DICOM.

Inference writes the predicted masks of an exam beside it, in a file of their own
(:func:`save_masks`: ``exam_id`` and ``sax_masks`` (S, T, R, C) uint8), so that the guide-point
stage reads them without the networks (no torch).
"""

from __future__ import annotations

import io
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from cmr_atlas.core.geometry import SlicePlane, plane_from_vector, plane_vector
from cmr_atlas.core.tables import atomic_write_bytes
from cmr_atlas.core.vocab import LAX_VIEWS


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


def save_exam_images(images: ExamImages, path: str | Path) -> Path:
    """Write the cache file atomically."""
    arrays: dict[str, np.ndarray] = {
        "sax": images.sax.astype(np.float32),
        "sax_planes": np.stack([plane_vector(p) for p in images.sax_planes]),
        "trigger_times_ms": np.asarray(images.trigger_times_ms, dtype=float),
        "exam_id": np.array(images.exam_id),
    }
    for view, arr in images.lax.items():
        arrays[view] = arr.astype(np.float32)
        arrays[f"{view}_plane"] = plane_vector(images.lax_planes[view])
    if images.sax_masks is not None:
        arrays["sax_masks"] = images.sax_masks.astype(np.uint8)
    buf = io.BytesIO()
    _savez(buf, arrays)
    return atomic_write_bytes(path, buf.getvalue())


def _savez(buf: io.BytesIO, arrays: dict[str, np.ndarray], level: int = 1) -> None:
    """``np.savez_compressed`` at deflate level 1: 8x faster on float images, 12 % larger files."""
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED, compresslevel=level) as zf:
        for name, arr in arrays.items():
            with zf.open(f"{name}.npy", "w", force_zip64=True) as fh:
                np.lib.format.write_array(fh, np.asanyarray(arr), allow_pickle=False)


def load_exam_images(path: str | Path) -> ExamImages:
    """Read a cache file written by :func:`save_exam_images`."""
    with np.load(path, allow_pickle=False) as z:
        lax = {v: z[v] for v in LAX_VIEWS if v in z.files}
        return ExamImages(
            exam_id=str(z["exam_id"]),
            sax=z["sax"],
            sax_planes=[plane_from_vector(v) for v in z["sax_planes"]],
            trigger_times_ms=z["trigger_times_ms"],
            lax=lax,
            lax_planes={v: plane_from_vector(z[f"{v}_plane"]) for v in lax},
            sax_masks=z["sax_masks"] if "sax_masks" in z.files else None,
        )


def save_masks(exam_id: str, masks: np.ndarray, path: str | Path) -> Path:
    """Write an exam's predicted label masks ``(S, T, R, C)`` atomically."""
    buf = io.BytesIO()
    np.savez_compressed(buf, exam_id=np.array(exam_id), sax_masks=masks.astype(np.uint8))
    return atomic_write_bytes(path, buf.getvalue())


def load_masks(path: str | Path) -> np.ndarray:
    """The ``sax_masks`` of a file written by :func:`save_masks`."""
    with np.load(path, allow_pickle=False) as z:
        return z["sax_masks"]
