"""Pixels and per-image timing of the non-cine series (perfusion, AIF, TI scout, LGE, T1 maps) as
:class:`~cmr_atlas.core.seriescache.SeriesImages`: what ingest caches for the perfusion and
TI-scout stages, and what ``cmr-atlas tiscout DIR`` reads from one folder.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_atlas.core.seriescache import CACHED_KINDS, SeriesImages
from cmr_atlas.dicom.scan import ImageHeader, StudyMeta, scan_folder
from cmr_atlas.dicom.stack import PixelError, read_stored, to_float32
from cmr_atlas.dicom.views import SeriesInfo, select_views


class SeriesReadError(ValueError):
    """A series that cannot be cached as planes x frames; the message is the reason."""


def _acquisition_order(images: list[ImageHeader]) -> list[ImageHeader]:
    def key(h: ImageHeader) -> tuple:
        return (h.instance_number if h.instance_number is not None else 1 << 40,
                h.acquisition_time_s if h.acquisition_time_s is not None else np.inf,
                h.file_index, h.frame or 0)
    return sorted(images, key=key)


def _plane_key(h: ImageHeader) -> tuple:
    return (h.instance_number if h.instance_number is not None else 1 << 40, h.file_index, h.frame or 0)


def _values(planes: list[list[ImageHeader]], n: int, get) -> np.ndarray:
    out = np.full((len(planes), n), np.nan)
    for p, images in enumerate(planes):
        for f, h in enumerate(images):
            v = get(h)
            out[p, f] = np.nan if v is None else v
    return out


def _flip(h: ImageHeader) -> float | None:
    return h.image_flip_angle_deg if h.image_flip_angle_deg is not None else h.flip_angle_deg


def read_series_images(series: SeriesInfo, exam_id: str, series_index: int,
                       meta: StudyMeta | None = None) -> SeriesImages:
    """Read a typed series' pixels once, as planes x frames in acquisition order.

    Raises :class:`SeriesReadError` (``no_geometry``, ``planes_differ_in_matrix``) or
    :class:`~cmr_atlas.dicom.stack.PixelError` (``corrupt_pixel_data: file <index>``).
    """
    t = series.type
    planes = series.planes
    if not planes:
        raise SeriesReadError("no_geometry")
    cps = sorted(planes, key=lambda p: _plane_key(_acquisition_order(p.images)[0]))
    ordered = [_acquisition_order(p.images) for p in cps]
    geometry = [p.plane for p in cps]
    shapes = {g.shape for g in geometry}
    if len(shapes) > 1:
        raise SeriesReadError("planes_differ_in_matrix")
    rows, cols = shapes.pop()
    n = max(len(imgs) for imgs in ordered)
    pixels = np.full((len(ordered), n, rows, cols), np.nan, dtype=np.float32)
    for p, imgs in enumerate(ordered):
        stored, slope, intercept = read_stored(imgs)
        pixels[p, : len(imgs)] = to_float32(stored, slope, intercept)
    first = series.images[0]
    return SeriesImages(
        exam_id=exam_id, series_index=series_index, series_number=series.series_number,
        kind=t.kind if t else "unknown", sequence=t.sequence if t else None,
        stress_rest=t.stress_rest if t else None, post_contrast=bool(t and t.post_contrast),
        pixels=pixels, n_frames=np.array([len(imgs) for imgs in ordered]), planes=geometry,
        acquisition_time_s=_values(ordered, n, lambda h: h.acquisition_time_s),
        trigger_time_ms=_values(ordered, n, lambda h: h.trigger_time_ms),
        inversion_time_ms=_values(ordered, n, lambda h: None if h.inversion_time_bad else h.inversion_time_ms),
        flip_angle_deg=_values(ordered, n, _flip),
        field_strength_t=meta.field_strength_t if meta else None,
        heart_rate_bpm=meta.heart_rate_bpm if meta else None,
        map_units=first.map_units,
    )


def ordered_series(series: list[SeriesInfo]) -> list[SeriesInfo]:
    """Series in ``series_index`` order (SeriesNumber, then SeriesTime): the ``series`` table's key."""
    return sorted(series, key=lambda s: (s.series_number if s.series_number is not None else 1 << 30,
                                         s.series_time_s or 0.0))


def read_folder_series(folder: str | Path, kinds: tuple[str, ...] | None = CACHED_KINDS
                       ) -> list[SeriesImages | SeriesReadError]:
    """Scan, type and read the series of one DICOM folder (one study), for command-line use.

    Returns one item per series of ``kinds`` (None: every series) in ``series_index`` order: its
    images, or the :class:`SeriesReadError` that says why it could not be read.  ``exam_id`` is
    empty: the folder is not part of a cohort.
    """
    scan = scan_folder(Path(folder))
    if not scan.images:
        raise SeriesReadError("no_dicom_images")
    study = scan.images[0].study_uid
    images = [h for h in scan.images if h.study_uid == study]
    out: list[SeriesImages | SeriesReadError] = []
    for i, s in enumerate(ordered_series(select_views(images).series)):
        if kinds is not None and (s.type is None or s.type.kind not in kinds):
            continue
        try:
            out.append(read_series_images(s, "", i, scan.studies.get(study)))
        except (SeriesReadError, PixelError) as exc:
            out.append(SeriesReadError(str(exc)))
    return out
