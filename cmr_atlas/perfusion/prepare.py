"""Series preparation: pair each stress/rest perfusion series with its AIF series, order its slices
basal -> apical, find its proton-density frames and the frame times, and say what is wrong with it.

Everything comes from the cached series (:class:`~cmr_atlas.core.seriescache.SeriesImages`): the
series typing of ingest (kind, stress/rest), the per-frame FlipAngle (PD frames are read with a
lower flip and come first), AcquisitionTime (one frame per heartbeat) and the plane geometry.
Base and apex: the LV long axis points from the base towards the patient's left, anterior and
inferior (DICOM patient axes x left, y posterior, z superior), so the apical slice is the one
furthest along ``(+1, -1, -1)``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.seriescache import SeriesImages

APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)
LEVELS = {1: ("mid",), 2: ("basal", "apical"), 3: ("basal", "mid", "apical")}
GEOMETRY_TOLERANCE_MM = 5.0  # stress and rest slices this far apart are not the same slices
AIF_PAIRING_S = 5.0  # an AIF series starts within this of its perfusion series (same heartbeats)


@dataclass
class PreparedSeries:
    """One perfusion series ready for quantification (or with the reason it is not)."""

    condition: str  # stress | rest
    series: SeriesImages
    aif: SeriesImages | None
    order: list[int]  # planes basal -> apical
    levels: list[str]  # AHA level of each ordered plane
    n_pd: int
    qc_reason: str | None = None  # set: the series is not quantified
    pair_reason: str | None = None  # set: quantified, but no stress/rest reserve

    @property
    def ok(self) -> bool:
        return self.qc_reason is None

    @property
    def planes(self) -> list[SlicePlane]:
        """The series' planes basal -> apical (slice ``k`` is on ``planes[k]``)."""
        return [self.series.planes[i] for i in self.order]

    def frames(self, k: int) -> np.ndarray:
        """Frames (T, R, C) of the ``k``-th plane basal -> apical."""
        return np.asarray(self.series.plane_frames(self.order[k]), dtype=float)

    def times_s(self, k: int) -> np.ndarray:
        """Acquisition time (s from the series' first frame) of each frame of the ``k``-th plane."""
        p = self.order[k]
        t = self.series.acquisition_time_s[p, : int(self.series.n_frames[p])]
        return t - np.nanmin(self.series.acquisition_time_s)


def pd_frame_count(flip_angle_deg: np.ndarray) -> int:
    """Leading frames read with a lower flip angle than the series' main one (the PD frames)."""
    flips = np.asarray(flip_angle_deg, float)
    flips = flips[np.isfinite(flips)]
    if flips.size == 0:
        return 0
    main = np.median(flips)
    n = 0
    while n < len(flips) and flips[n] < 0.8 * main:
        n += 1
    return n


def basal_to_apical(planes) -> list[int]:
    """Plane indices ordered from base to apex (along :data:`APEX_DIRECTION`)."""
    n = planes[0].normal
    n = n if n @ APEX_DIRECTION >= 0 else -n  # through-plane position increasing towards the apex
    depth = np.array([p.position_mm @ n for p in planes])
    return [int(i) for i in np.argsort(depth, kind="stable")]


def _start_s(s: SeriesImages) -> float:
    t = s.acquisition_time_s
    return float(np.nanmin(t)) if np.isfinite(t).any() else np.nan


def _pair_aif(s: SeriesImages, aifs: list[SeriesImages]) -> SeriesImages | None:
    same = [a for a in aifs if a.stress_rest == s.stress_rest]
    if not same:
        return None
    return min(same, key=lambda a: abs(_start_s(a) - _start_s(s)) if np.isfinite(_start_s(a) - _start_s(s)) else 1e9)


def _series_reason(s: SeriesImages, aif: SeriesImages | None, n_pd: int, min_frames: int) -> str | None:
    if s.n_planes < 2:
        return "single slice: no basal/mid/apical coverage for the AHA segments"
    if n_pd == 0:
        return "no proton-density frames (no lower per-frame flip angle): signal cannot be normalised"
    if int(np.min(s.n_frames)) - n_pd < min_frames:
        return f"truncated bolus: {int(np.min(s.n_frames)) - n_pd} dynamic frames (< {min_frames})"
    if not np.isfinite(s.acquisition_time_s[:, : int(np.min(s.n_frames))]).all():
        return "no AcquisitionTime per frame: frame times unknown"
    if aif is None:
        return "missing AIF series"
    if pd_frame_count(aif.flip_angle_deg[0]) == 0:
        return "AIF series without proton-density frames"
    return None


def prepare_exam(series: list[SeriesImages], min_frames: int = 30) -> list[PreparedSeries]:
    """Stress and rest perfusion series of one exam (stress first), paired and checked.

    ``series``: the exam's cached series of kinds ``perfusion`` and ``perfusion_aif`` (others are
    ignored); ``min_frames``: fewest dynamic frames (heartbeats) that hold a whole first pass."""
    perf = sorted([s for s in series if s.kind == "perfusion"], key=_start_s)
    aifs = [s for s in series if s.kind == "perfusion_aif"]
    out = []
    for s in perf:
        condition = s.stress_rest if s.stress_rest in ("stress", "rest") else "unknown"
        aif = _pair_aif(s, aifs)
        n_pd = pd_frame_count(s.flip_angle_deg[0])
        order = basal_to_apical(s.planes)
        reason = _series_reason(s, aif, n_pd, min_frames)
        if condition == "unknown" and reason is None:
            reason = "perfusion series neither stress nor rest"
        levels = list(LEVELS.get(len(order), LEVELS[3]))
        if len(order) > 3:
            reason = reason or f"{len(order)} slices: expected 3 (basal, mid, apical)"
        out.append(PreparedSeries(condition, s, aif, order, levels[: len(order)], n_pd, reason))
    _check_pair_geometry(out)
    return sorted(out, key=lambda p: p.condition != "stress")


def _check_pair_geometry(prepared: list[PreparedSeries]) -> None:
    """Stress and rest must image the same slices (the reserve compares them segment by segment)."""
    by = {p.condition: p for p in prepared}
    if "stress" not in by or "rest" not in by:
        return
    st, re = by["stress"], by["rest"]
    if len(st.order) != len(re.order):
        mismatch = True
    else:
        a = np.array([st.series.planes[i].position_mm for i in st.order])
        b = np.array([re.series.planes[i].position_mm for i in re.order])
        na, nb = st.series.planes[0].normal, re.series.planes[0].normal
        mismatch = bool(np.abs(a - b).max() > GEOMETRY_TOLERANCE_MM or abs(na @ nb) < 0.98)
    if mismatch:
        for p in (st, re):
            p.pair_reason = "stress and rest slice geometry differ: no reserve"


def dt_s(times_s: np.ndarray) -> float:
    """The heartbeat interval of a series: median spacing of its frame times."""
    return float(np.median(np.diff(np.asarray(times_s, float))))
