"""Scanner-side use: the null point of the TI scout in one DICOM folder (``cmr-atlas tiscout DIR``).

Every series of the folder is typed by ingest's rules; each TI scout gives one result.  Without a
typed scout, the multi-frame series that could have been meant get a result with the reason why
they are not usable: frames without InversionTime (typed unknown), or a series of another kind
(a cine mistaken for a scout).  Nothing here raises on bad input.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.dicom.series_read import SeriesReadError, read_folder_series
from cmr_atlas.tiscout.select import TiSelection, select_null


def _series_keys(s: SeriesImages) -> dict:
    return {"series_index": s.series_index, "series_number": s.series_number, "kind": s.kind}


def _result(keys: dict, sel: TiSelection) -> dict:
    return {**keys, **sel.to_dict()}


def _not_a_scout(s: SeriesImages) -> dict:
    ti = np.asarray(s.inversion_time_ms, float)
    n = int(s.n_frames.max()) if len(s.n_frames) else 0
    if s.kind == "unknown" and not np.isfinite(ti).any():
        reason = f"no InversionTime on {ti.size} of {ti.size} frames"
    else:
        reason = f"not a TI scout: the series is typed {s.kind}"
    return _result(_series_keys(s), TiSelection(qc_reason=reason, n_frames=n))


def scout_folder(folder: str | Path, options: dict) -> list[dict]:
    """One result per TI scout of ``folder`` (see the module); ``options`` as :func:`select_null`'s."""
    folder = Path(folder)
    if not folder.is_dir():
        return [_result({}, TiSelection(qc_reason=f"not a folder: {folder}"))]
    try:
        items = read_folder_series(folder, kinds=None)
    except (SeriesReadError, OSError) as exc:
        return [_result({}, TiSelection(qc_reason=f"cannot read {folder}: {exc}"))]
    series = [s for s in items if isinstance(s, SeriesImages)]
    scouts = [s for s in series if s.kind == "ti_scout"]
    if not scouts:
        multi = [s for s in series if len(s.n_frames) and int(s.n_frames.max()) > 1]
        if multi:
            return [_not_a_scout(s) for s in multi]
        unread = [str(e) for e in items if isinstance(e, SeriesReadError)]
        return [_result({}, TiSelection(qc_reason="no TI scout in the folder" + (
            f" (unreadable series: {', '.join(unread)})" if unread else "")))]
    out = []
    for s in scouts:
        n = int(s.n_frames[0])
        sel = select_null(s.pixels[0, :n], s.inversion_time_ms[0, :n], tuple(s.planes[0].pixel_spacing_mm), **options)
        out.append(_result(_series_keys(s), sel))
    return out
