"""Series cache: the non-cine series of an exam (perfusion, AIF, TI scout, LGE, T1 maps) as ingest
reads them once, so the perfusion and TI-scout stages never parse DICOM or see a file name.

One ``.npz`` per series at ``<results>/cache/series/<exam_id>/<series_index:03d>_<kind>.npz``;
``(exam_id, series_index)`` is the series' key in the ``series`` table and the de-identified
series key of every output table.  Arrays are planes x frames: a plane is one image position,
its frames in acquisition order.

=========================  =====================  ================================================
key                        shape / dtype          meaning
=========================  =====================  ================================================
``format_version``         () int                 1
``pixels``                 (P, F, R, C)           after RescaleSlope/Intercept; uint16/int16 when
                                                  exact (stored uncompressed), else float32;
                                                  frames beyond ``n_frames[p]`` are 0
``n_frames``               (P,) int               frames present per plane
``planes``                 (P, 17) float64        :func:`~cmr_atlas.core.geometry.plane_vector`
``acquisition_time_s``     (P, F) float64         AcquisitionTime (else ContentTime), s since
                                                  midnight; NaN absent
``trigger_time_ms``        (P, F) float64         TriggerTime; NaN absent
``inversion_time_ms``      (P, F) float64         InversionTime; NaN absent or invalid
``flip_angle_deg``         (P, F) float64         the image's FlipAngle; NaN absent
``meta``                   () str                 JSON: the scalar fields of :class:`SeriesImages`
=========================  =====================  ================================================
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cmr_atlas.core.geometry import SlicePlane, plane_from_vector, plane_vector
from cmr_atlas.core.imagecache import CacheFormatError, compact_image, savez
from cmr_atlas.core.tables import atomic_file

FORMAT_VERSION = 1
CACHED_KINDS = ("perfusion", "perfusion_aif", "ti_scout", "lge", "lge_psir", "t1map")
_PER_IMAGE = ("acquisition_time_s", "trigger_time_ms", "inversion_time_ms", "flip_angle_deg")
_SCALARS = ("exam_id", "series_index", "series_number", "kind", "sequence", "stress_rest", "post_contrast",
            "field_strength_t", "heart_rate_bpm", "map_units")


@dataclass
class SeriesImages:
    """One non-cine series of an exam, planes x frames.

    Frames of a plane are in acquisition order (InstanceNumber, then AcquisitionTime); planes in
    the order of their first image's InstanceNumber.  Per-image arrays are ``(P, F)`` with NaN
    where a value is absent; pixels of missing frames (a plane with fewer than ``F`` frames) are
    NaN once loaded.
    """

    exam_id: str
    series_index: int
    series_number: int | None
    kind: str  # cmr_atlas.dicom.series_types kind
    sequence: str | None
    stress_rest: str | None  # perfusion, perfusion_aif: stress or rest
    post_contrast: bool
    pixels: np.ndarray  # (P, F, R, C) float32
    n_frames: np.ndarray  # (P,) int
    planes: list[SlicePlane]
    acquisition_time_s: np.ndarray  # (P, F)
    trigger_time_ms: np.ndarray  # (P, F)
    inversion_time_ms: np.ndarray  # (P, F)
    flip_angle_deg: np.ndarray  # (P, F)
    field_strength_t: float | None = None
    heart_rate_bpm: float | None = None
    map_units: str | None = None  # T1 maps: RealWorldValueMapping units ("ms"); None when absent

    @property
    def n_planes(self) -> int:
        return int(self.pixels.shape[0])

    def plane_frames(self, p: int) -> np.ndarray:
        """The ``n_frames[p]`` frames of plane ``p``, ``(F_p, R, C)``."""
        return self.pixels[p, : int(self.n_frames[p])]


def series_cache_dir(cache_dir: str | Path, exam_id: str) -> Path:
    """The folder of an exam's series files."""
    return Path(cache_dir) / "series" / exam_id


def series_cache_path(cache_dir: str | Path, exam_id: str, series_index: int, kind: str) -> Path:
    return series_cache_dir(cache_dir, exam_id) / f"{series_index:03d}_{kind}.npz"


def list_series_images(cache_dir: str | Path, exam_id: str, kinds: tuple[str, ...] | None = None) -> list[Path]:
    """An exam's series files by ``series_index``, optionally of some kinds only."""
    folder = series_cache_dir(cache_dir, exam_id)
    if not folder.is_dir():
        return []
    paths = sorted(folder.glob("[0-9][0-9][0-9]_*.npz"))
    return [p for p in paths if kinds is None or p.stem[4:] in kinds]


def save_series_images(s: SeriesImages, path: str | Path) -> Path:
    """Write one series file atomically."""
    pix = np.where(np.isfinite(s.pixels), s.pixels, 0).astype(np.float32, copy=False)  # float32 already: no copy
    arrays = {
        "format_version": np.array(FORMAT_VERSION),
        "pixels": compact_image(pix),
        "n_frames": np.asarray(s.n_frames, dtype=np.int64),
        "planes": np.stack([plane_vector(p) for p in s.planes]),
        **{k: np.asarray(getattr(s, k), dtype=np.float64) for k in _PER_IMAGE},
        "meta": np.array(json.dumps({k: getattr(s, k) for k in _SCALARS})),
    }
    with atomic_file(path) as fh:
        savez(fh, arrays, stored=lambda a: a.dtype in (np.uint16, np.int16))
    return Path(path)


def load_series_images(path: str | Path) -> SeriesImages:
    """Read a file written by :func:`save_series_images`; pixels float32, missing frames NaN."""
    with np.load(path, allow_pickle=False) as z:
        version = int(z["format_version"])
        if version > FORMAT_VERSION:
            raise CacheFormatError(f"{path}: series cache format version {version} is newer than this "
                                   f"cmr-atlas reads ({FORMAT_VERSION}); re-run ingest or update cmr-atlas")
        pixels = z["pixels"].astype(np.float32)
        n_frames = z["n_frames"]
        for p, n in enumerate(n_frames):
            pixels[p, int(n):] = np.nan
        meta = json.loads(str(z["meta"]))
        return SeriesImages(
            pixels=pixels, n_frames=n_frames, planes=[plane_from_vector(v) for v in z["planes"]],
            **{k: z[k] for k in _PER_IMAGE}, **{k: meta.get(k) for k in _SCALARS},
        )

