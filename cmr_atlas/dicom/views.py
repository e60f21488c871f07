"""Find the cine views of one study by geometry: the SAX stack and the 2CH and 4CH long-axis planes.

Rules (documented in docs/ingest.md):

1. Images are grouped per series into *planes* (same orientation and position) and every series
   is typed (:mod:`cmr_atlas.dicom.series_types`); only ``cine`` series take part in the view
   selection (perfusion, TI scouts, LGE and maps never become a SAX stack or a LAX view).
2. SAX stack: cine planes of all series of the study are clustered by orientation (normals within
   :data:`PARALLEL_DEG`); the cluster with the most distinct positions along its normal, at least
   :data:`MIN_SAX_SLICES`, is the stack.  This works for one series per slice (Siemens) as for one
   series with every slice (GE).  Two planes at the same position are repeats: the complete
   (modal frame count) and latest (SeriesNumber, then SeriesTime) one is kept.
3. Base to apex: the stack normal is oriented towards the patient's left-anterior-inferior
   (``APEX_DIRECTION``, LPS (+1, -1, -1)); slice 0 is the plane furthest against it (most basal).
   Geometry only: file names and InstanceNumbers do not matter.
4. LAX candidates: cine planes at more than :data:`MIN_LAX_ANGLE_DEG` to the SAX planes that pass
   within :data:`MAX_LAX_DISTANCE_MM` of the stack centre.  The 4CH plane contains the LV-to-RV
   direction, the 2CH plane is roughly perpendicular to it.  Without image content the RV side is
   taken from anatomy: the RV lies to the patient's right and anterior of the LV, so its direction
   in the SAX plane is ``RV_DIRECTION`` (LPS (-1, -1, 0)) projected onto that plane.  The score
   ``rv_cos = |n_lax . d_rv|`` is ~0 for a 4CH plane and ~1 for a 2CH plane; with two LAX
   orientations the lower score is the 4CH (:func:`_geometric_lax_labels`).  Description keywords
   (2ch/vla/two, 4ch/hla/four) support the geometric label; when they disagree, strong geometry
   wins, otherwise the description.  The evidence is recorded per series.  Three LAX orientations
   (clinical exams): lowest ``rv_cos`` 4CH; of the other two the one nearer perpendicular to the
   4CH is the 2CH, the one between (~45-60 deg from the 4CH) the 3CH (LVOT) view, recorded as the
   series role ``lax_3ch`` but not part of the selected views (the legacy cine pipeline has no
   use for it).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.core.geometry import SlicePlane, angle_between_deg
from cmr_atlas.dicom.scan import ImageHeader
from cmr_atlas.dicom.series_types import SeriesType, exam_rules, type_series

PARALLEL_DEG = 5.0
MIN_SAX_SLICES = 5
SAME_POSITION_MM = 1.0
MIN_LAX_ANGLE_DEG = 60.0
MAX_LAX_DISTANCE_MM = 40.0
APEX_DIRECTION = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)
RV_DIRECTION = np.array([-1.0, -1.0, 0.0]) / np.sqrt(2.0)
SAME_VIEW_DEG = 20.0  # a plane within this of a cine view's orientation is that view
TWO_CH_FOUR_CH_MIN_DEG = 65.0  # 2CH and 4CH planes are ~90 deg apart, the 3CH ~45 deg from each
GAP_FACTOR = 1.5  # a spacing > 1.5 x the median spacing (or < 1/1.5) is flagged


@dataclass
class CinePlane:
    """The frames of one series at one plane position, in trigger-time order."""

    series_key: str
    images: list[ImageHeader]
    plane: SlicePlane
    frames_ordered_by: str  # trigger_time or instance_number

    @property
    def n_frames(self) -> int:
        return len(self.images)

    @property
    def trigger_times_ms(self) -> np.ndarray:
        return np.array([np.nan if h.trigger_time_ms is None else h.trigger_time_ms for h in self.images])


@dataclass
class SeriesInfo:
    key: str
    series_number: int | None
    series_time_s: float | None
    description_hint: str
    images: list[ImageHeader]
    planes: list[CinePlane] = field(default_factory=list)
    role: str = "ignored"
    reason: str = ""
    evidence: str | None = None
    angle_to_sax_deg: float | None = None
    rv_cos: float | None = None
    distance_to_sax_centre_mm: float | None = None
    type: SeriesType | None = None
    plane_views: str | None = None  # views of its planes by geometry (e.g. "sax", "lax_2ch+lax_4ch")

    @property
    def normal(self) -> np.ndarray | None:
        return self.planes[0].plane.normal if self.planes else None


@dataclass
class ViewSelection:
    series: list[SeriesInfo]
    sax: list[CinePlane] = field(default_factory=list)  # slice 0 = most basal
    lax: dict[str, CinePlane] = field(default_factory=dict)  # lax_2ch, lax_4ch: the cine views
    other_lax: dict[str, CinePlane] = field(default_factory=dict)  # lax_3ch: found, not selected
    sax_normal: np.ndarray | None = None  # oriented base -> apex
    sax_offsets_mm: np.ndarray | None = None  # position of each SAX plane along sax_normal
    warnings: list[str] = field(default_factory=list)
    failure: str | None = None


def _series_sort_key(s: SeriesInfo) -> tuple:
    return (s.series_number if s.series_number is not None else -1,
            s.series_time_s if s.series_time_s is not None else -1.0)


def _order_frames(images: list[ImageHeader]) -> tuple[list[ImageHeader], str]:
    if all(h.trigger_time_ms is not None for h in images) and \
            len({h.trigger_time_ms for h in images}) == len(images):
        return sorted(images, key=lambda h: (h.trigger_time_ms, h.instance_number or 0)), "trigger_time"
    return sorted(images, key=lambda h: (h.instance_number if h.instance_number is not None else 0,
                                         h.file_index, h.frame or 0)), "instance_number"


def _plane_of(h: ImageHeader) -> SlicePlane:
    return SlicePlane.from_dicom(h.position, h.orientation, h.pixel_spacing, (h.rows, h.cols),
                                 h.thickness_mm or 0.0)


def group_planes(series: SeriesInfo) -> list[CinePlane]:
    """Split a series' images into planes (same orientation and position)."""
    groups: list[tuple[SlicePlane, list[ImageHeader]]] = []
    exact: dict[tuple, int] = {}  # identical header values: the common case, no geometry needed
    for h in series.images:
        key = (tuple(h.position), tuple(h.orientation), h.rows, h.cols)
        if key in exact:
            groups[exact[key]][1].append(h)
            continue
        try:
            p = _plane_of(h)
        except ValueError:  # degenerate orientation
            continue
        n = p.normal
        for i, (gp, members) in enumerate(groups):
            if (angle_between_deg(gp.normal, n) < 1.0
                    and np.linalg.norm(gp.position_mm - p.position_mm) < 0.5
                    and gp.shape == p.shape):
                members.append(h)
                exact[key] = i
                break
        else:
            exact[key] = len(groups)
            groups.append((p, [h]))
    out = []
    for p, members in groups:
        ordered, how = _order_frames(members)
        out.append(CinePlane(series.key, ordered, p, how))
    return out


def build_series(images: list[ImageHeader]) -> list[SeriesInfo]:
    by_key: dict[str, list[ImageHeader]] = {}
    for h in images:
        by_key.setdefault(h.series_uid, []).append(h)
    series = []
    for key, members in by_key.items():
        first = members[0]
        s = SeriesInfo(key, first.series_number, first.series_time_s,
                       _majority([h.description_hint for h in members]), members)
        series.append(s)
    return sorted(series, key=_series_sort_key)


def _majority(values: list[str]) -> str:
    return max(set(values), key=values.count)


def _cluster_parallel(planes: list[CinePlane]) -> list[list[CinePlane]]:
    clusters: list[list[CinePlane]] = []
    for p in planes:
        for c in clusters:
            if angle_between_deg(c[0].plane.normal, p.plane.normal) < PARALLEL_DEG:
                c.append(p)
                break
        else:
            clusters.append([p])
    return clusters


def _positions(cluster: list[CinePlane], normal: np.ndarray) -> list[list[CinePlane]]:
    """Group a parallel cluster by position along ``normal`` (repeats share a group)."""
    offs = sorted(cluster, key=lambda p: float(p.plane.centre_mm @ normal))
    groups: list[list[CinePlane]] = []
    for p in offs:
        d = float(p.plane.centre_mm @ normal)
        if groups and abs(d - float(groups[-1][0].plane.centre_mm @ normal)) < SAME_POSITION_MM:
            groups[-1].append(p)
        else:
            groups.append([p])
    return groups


def _modal(values: list[int]) -> int:
    return max(sorted(set(values), reverse=True), key=values.count)


def select_views(images: list[ImageHeader]) -> ViewSelection:
    """Identify the SAX stack and LAX views of one study; never raises for odd input."""
    series = build_series([h for h in images if h.has_geometry])
    no_geo = build_series([h for h in images if not h.has_geometry])
    for s in no_geo:
        s.reason = "no_geometry"
    sel = ViewSelection(series=series + no_geo)
    for s in series:
        s.planes = group_planes(s)
    for s in sel.series:
        s.type = type_series(s.images, [p.images for p in s.planes] if s.planes else None, s.description_hint)
    type_warnings = exam_rules([s.type for s in sel.series])
    by_key = {s.key: s for s in series}
    cluster = _sax_cluster(_cine_planes(series), by_key)
    if cluster is None:
        sel.failure = "no_sax_stack"
        for s in series:
            if not s.reason:
                s.reason = "not_in_sax_stack"
        return sel
    _select_sax(sel, cluster, by_key)
    _select_lax(sel, _lax_candidates(series, sel.sax, sel.sax_normal))
    for s in series:
        if s.role == "ignored" and not s.reason:
            s.reason = "unassigned"
    sel.warnings += type_warnings
    _label_plane_views(sel)
    return sel


def _label_plane_views(sel: ViewSelection) -> None:
    """Name the view of every series' planes by orientation: parallel (within
    :data:`SAME_VIEW_DEG`) to the SAX stack or to a found LAX view (perfusion slices, scouts,
    LGE and maps are planned like the cine views)."""
    refs = [("sax", sel.sax_normal)] + [(v, p.plane.normal) for v, p in {**sel.lax, **sel.other_lax}.items()]
    for s in sel.series:
        views = set()
        for p in s.planes:
            angles = [(angle_between_deg(p.plane.normal, n), v) for v, n in refs]
            best = min(angles)
            views.add(best[1] if best[0] < SAME_VIEW_DEG else "other")
        s.plane_views = "+".join(sorted(views)) or None


def _cine_planes(series: list[SeriesInfo]) -> list[CinePlane]:
    """The multi-frame planes of the cine-typed series; reasons for the other series."""
    cine: list[CinePlane] = []
    for s in series:
        if not s.planes:
            s.reason = "no_geometry"
        elif s.type.kind != "cine":
            s.reason = "localizer" if s.type.kind == "localizer" else "not_cine"
        elif max(p.n_frames for p in s.planes) < 2:
            s.reason = "not_cine"
        else:
            cine += [p for p in s.planes if p.n_frames >= 2]
    return cine


def _sax_cluster(cine: list[CinePlane], by_key: dict[str, SeriesInfo]) -> list[CinePlane] | None:
    """The parallel cluster with the most distinct positions (then SAX descriptions), or None."""
    best = None
    for c in _cluster_parallel(cine):
        n_pos = len(_positions(c, c[0].plane.normal))
        sax_hints = sum(by_key[p.series_key].description_hint == "sax" for p in c)
        score = (n_pos, sax_hints)
        if n_pos >= MIN_SAX_SLICES and (best is None or score > best[0]):
            best = (score, c)
    return None if best is None else best[1]


def _base_to_apex_normal(cluster: list[CinePlane], warnings: list[str]) -> np.ndarray:
    normal = cluster[0].plane.normal
    if normal @ APEX_DIRECTION < 0:
        normal = -normal
    if abs(float(normal @ APEX_DIRECTION)) < 0.2:
        warnings.append("ambiguous_base_apex")
    return normal


def _one_plane_per_position(cluster: list[CinePlane], normal: np.ndarray, by_key: dict[str, SeriesInfo]
                            ) -> tuple[list[CinePlane], dict[str, str]]:
    """At each position the complete (modal frame count), then latest plane; base to apex.

    Returns the chosen planes and ``{superseded series key: reason}``.
    """
    modal_frames = _modal([p.n_frames for p in cluster])

    def rank(p: CinePlane) -> tuple:
        return (p.n_frames == modal_frames, *_series_sort_key(by_key[p.series_key]))

    chosen: list[CinePlane] = []
    superseded: dict[str, str] = {}
    for group in _positions(cluster, normal):
        keep = max(group, key=rank)
        chosen.append(keep)
        for p in group:
            if p is not keep and p.series_key != keep.series_key:
                superseded[p.series_key] = f"repeat_superseded_by_series_{by_key[keep.series_key].series_number}"
    return chosen, superseded


def _select_sax(sel: ViewSelection, cluster: list[CinePlane], by_key: dict[str, SeriesInfo]) -> None:
    """Fill ``sel.sax`` (index 0 most basal), its normal and offsets, and the SAX series' roles."""
    normal = _base_to_apex_normal(cluster, sel.warnings)
    chosen, superseded = _one_plane_per_position(cluster, normal, by_key)
    if superseded:
        sel.warnings.append("repeated_series")
    sel.sax = chosen
    sel.sax_normal = normal
    sel.sax_offsets_mm = np.array([float(p.plane.centre_mm @ normal) for p in chosen])
    chosen_keys = {p.series_key for p in chosen}
    cluster_keys = {p.series_key for p in cluster}
    for s in by_key.values():
        if s.key in chosen_keys:
            s.role, s.reason, s.evidence = "sax", "", "parallel_stack"
            s.angle_to_sax_deg = 0.0
        elif s.key in superseded:
            s.reason = superseded[s.key]
        elif s.key in cluster_keys:
            s.reason = "repeat_superseded"


def _lax_candidates(series: list[SeriesInfo], sax: list[CinePlane], normal: np.ndarray
                    ) -> list[tuple[CinePlane, SeriesInfo]]:
    """Unassigned cine series steep to the stack and through its centre, with their RV score."""
    centre = np.mean([p.plane.centre_mm for p in sax], axis=0)
    sax_plane = sax[len(sax) // 2].plane
    d_rv = RV_DIRECTION - (RV_DIRECTION @ normal) * normal
    d_rv = d_rv / np.linalg.norm(d_rv) if np.linalg.norm(d_rv) > 1e-6 else None
    cands: list[tuple[CinePlane, SeriesInfo]] = []
    for s in series:
        if s.role == "sax" or s.reason:
            continue
        s_cine = [p for p in s.planes if p.n_frames >= 2]
        # the plane of this series closest to the stack centre
        p = min(s_cine, key=lambda p: abs(float((centre - p.plane.position_mm) @ p.plane.normal)))
        s.angle_to_sax_deg = angle_between_deg(p.plane.normal, sax_plane.normal)
        s.distance_to_sax_centre_mm = abs(float((centre - p.plane.position_mm) @ p.plane.normal))
        if s.angle_to_sax_deg < MIN_LAX_ANGLE_DEG:
            s.reason = "oblique_not_lax"
            continue
        if s.distance_to_sax_centre_mm > MAX_LAX_DISTANCE_MM:
            s.reason = "lax_plane_misses_sax_stack"
            continue
        s.rv_cos = abs(float(p.plane.normal @ d_rv)) if d_rv is not None else None
        cands.append((p, s))
    return cands


def _select_lax(sel: ViewSelection, lax_cands: list[tuple[CinePlane, SeriesInfo]]) -> None:
    """Label the candidates 2CH/3CH/4CH and keep, per view, the complete then latest series."""
    geo = _geometric_lax_labels(lax_cands)
    candidates: dict[str, list[tuple[CinePlane, SeriesInfo]]] = {"lax_2ch": [], "lax_4ch": [], "lax_3ch": []}
    for p, s in lax_cands:
        view, evidence = _label_lax(s.description_hint, *geo[s.key])
        if view is None:
            s.reason = "lax_view_undetermined"
            continue
        s.evidence = evidence
        candidates[view].append((p, s))
    for view, cands in candidates.items():
        if not cands:
            continue
        most = max(p.n_frames for p, _ in cands)
        p, keep = max(cands, key=lambda c: (c[0].n_frames == most, *_series_sort_key(c[1])))
        keep.role = view
        (sel.other_lax if view == "lax_3ch" else sel.lax)[view] = p
        for _, s in cands:
            if s is not keep:
                s.reason = f"repeat_superseded_by_series_{keep.series_number}"
                s.evidence = None
                if "repeated_series" not in sel.warnings:
                    sel.warnings.append("repeated_series")


def _geometric_lax_labels(cands: list[tuple[CinePlane, SeriesInfo]]) -> dict[str, tuple[str | None, bool]]:
    """``{series key: (geometric label, strong)}`` from the RV-direction score.

    With exactly two LAX orientations (repeats share one) the labels are relative: the orientation
    with the lower mean ``rv_cos`` is the 4CH; strong when the scores differ by more than 0.4.
    Otherwise each plane is labelled on its own (4CH below cos 45 deg), strong when more than 0.25
    from that threshold.
    """
    out: dict[str, tuple[str | None, bool]] = {s.key: (None, False) for _, s in cands}
    scored = [(p, s) for p, s in cands if s.rv_cos is not None]
    groups: list[list[tuple[CinePlane, SeriesInfo]]] = []
    for p, s in scored:
        for g in groups:
            if angle_between_deg(g[0][0].plane.normal, p.plane.normal) < 10.0:
                g.append((p, s))
                break
        else:
            groups.append([(p, s)])
    means = [float(np.mean([s.rv_cos for _, s in g])) for g in groups]
    if len(groups) == 3:
        return _three_lax_labels(groups, means, out)
    if len(groups) == 2 and angle_between_deg(groups[0][0][0].plane.normal, groups[1][0][0].plane.normal) \
            < TWO_CH_FOUR_CH_MIN_DEG:  # not a 2CH/4CH pair (~90 deg apart): one is the 3CH (~45 deg)
        three = int(np.argmin([abs(m - np.sqrt(0.5)) for m in means]))
        for i, g in enumerate(groups):
            for _, s in g:
                out[s.key] = ("lax_3ch" if i == three else
                              "lax_4ch" if s.rv_cos < np.sqrt(0.5) else "lax_2ch", False)
        return out
    if len(groups) == 2:
        if abs(means[0] - means[1]) > 0.2:
            four = int(np.argmin(means))
            strong = abs(means[0] - means[1]) > 0.4
            for i, g in enumerate(groups):
                for _, s in g:
                    out[s.key] = ("lax_4ch" if i == four else "lax_2ch", strong)
            return out
    for _, s in scored:
        out[s.key] = ("lax_4ch" if s.rv_cos < np.sqrt(0.5) else "lax_2ch", abs(s.rv_cos - np.sqrt(0.5)) > 0.25)
    return out


def _three_lax_labels(groups: list[list[tuple[CinePlane, SeriesInfo]]], means: list[float],
                      out: dict[str, tuple[str | None, bool]]) -> dict[str, tuple[str | None, bool]]:
    """Three LAX orientations: the 4CH has the lowest ``rv_cos`` (its plane holds the LV-to-RV
    direction); of the other two, the 2CH is the one nearer perpendicular to the 4CH (~90 deg) and
    the 3CH the one between (~45-60 deg).  Angles between the planes are intrinsic to the exam, so
    this does not lean on the generic RV direction twice.  Strong when the 4CH's score is clear
    (0.2 below the next) and the two angles differ by more than 15 deg; undetermined when neither."""
    order = np.argsort(means)
    four = int(order[0])
    others = [int(i) for i in order[1:]]
    normal = groups[four][0][0].plane.normal
    angles = [angle_between_deg(normal, groups[i][0][0].plane.normal) for i in others]
    two, three = (others[0], others[1]) if angles[0] >= angles[1] else (others[1], others[0])
    clear_four = means[others[0]] - means[four] > 0.2
    clear_split = abs(angles[0] - angles[1]) > 15.0
    if clear_four or clear_split:
        for view, i in (("lax_4ch", four), ("lax_2ch", two), ("lax_3ch", three)):
            for _, s in groups[i]:
                out[s.key] = (view, clear_four and clear_split)
    return out


def _label_lax(hint: str, geo: str | None, strong: bool) -> tuple[str | None, str | None]:
    """Combine the description keyword class and the geometric label into a LAX label."""
    desc = {"2ch": "lax_2ch", "4ch": "lax_4ch", "3ch": "lax_3ch"}.get(hint)
    if geo is None:
        return desc, ("description" if desc else None)
    if desc is None:
        return geo, "geometry"
    if desc == geo:
        return geo, "geometry+description"
    if strong:
        return geo, "geometry(description_disagrees)"
    return desc, "description(geometry_weak)"


def slice_gaps(offsets_mm: np.ndarray) -> tuple[np.ndarray, np.ndarray, float | None]:
    """Spacing before each slice (NaN for slice 0), irregular-gap flags, median spacing."""
    offsets_mm = np.asarray(offsets_mm, dtype=float)
    if len(offsets_mm) < 2:
        return np.full(len(offsets_mm), np.nan), np.zeros(len(offsets_mm), bool), None
    d = np.diff(offsets_mm)
    med = float(np.median(d))
    gap = np.concatenate([[np.nan], d])
    flags = np.concatenate([[False], (d > GAP_FACTOR * med) | (d < med / GAP_FACTOR)])
    return gap, flags, med
