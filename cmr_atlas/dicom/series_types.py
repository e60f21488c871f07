"""Series typing: what a series is (cine, perfusion, TI scout, LGE, T1 map, ...) from header values.

The rules use physics, timing and geometry (documented in docs/ingest.md, "Series types"); the
SeriesDescription keyword class only breaks ties, and the evidence is recorded.  In order:

1. ``localizer``: ImageType holds LOCALIZER (or single-frame planes with a localizer description).
2. ``t1map``: ImageType holds a MAP value (``T1 MAP``), or real-world value mapping units are
   present, or the sequence is MOLLI-like.  Maps without units stay ``t1map`` with
   ``type_reason = no_units`` (ImageType is the robust signal; scanners store T1 maps in ms).
   Other maps (T2, T2*) are ``unknown``.
   A map has one image per plane: ImageType MAP on a series with frames over time is ignored.
3. ``ti_scout``: the InversionTime varies across the frames of one plane (>= 3 values spanning
   >= 100 ms: Look-Locker).
4. ``lge`` / ``lge_psir``: InversionTime present and one frame per plane (one value per series
   normally; an operator's adjustment between planes is recorded in the evidence); phase
   sensitive (``lge_psir``) when ImageType value 3 is ``R`` (real) or a value is ``PSIR``.
   Single-frame PSIR images without InversionTime are still ``lge_psir`` (with a reason).
5. Inversion recovery (``IR`` in ScanningSequence) without inversion times: not a scout nor an
   LGE by physics; ``unknown`` with the reason (an LGE description makes a single-frame series
   ``lge`` with the reason recorded).
6. Single frame per plane, none of the above: ``unknown`` (``single frame, no inversion time, not a map``).
7. ``perfusion``: repetitions at fixed positions, AcquisitionTime advancing about one R-R
   (0.25-3 s) per frame over >= :data:`MIN_PERFUSION_FRAMES` frames, TriggerTime nearly
   constant per plane (less than 0.3 of the frame interval).  ``perfusion_aif``: the same with a
   pixel size >= :data:`AIF_MIN_PIXEL_MM`, or (exam rule) a single-plane series 1.3x coarser
   than a perfusion series acquired in the same heartbeats.
8. ``cine``: TriggerTime varying within a plane, acquired within one breath-hold (AcquisitionTime
   span < :data:`MAX_BREATH_HOLD_S`, or none).  Sequence ``cine_ssfp`` when TR < 5 ms and flip
   > 30 deg (bSSFP), else ``cine_gre`` when TR and flip are known; else from SequenceVariant
   (SS without SP) or the sequence name; else unknown (null).  Frames without any trigger or
   acquisition time: ``cine`` when there are at most :data:`MAX_CINE_FRAMES` per plane (the
   legacy rule: ordered by InstanceNumber), else ``unknown``.

Exam rules (:func:`exam_rules`): perfusion series acquired in the same heartbeats are paired
(AIF by resolution; a series with fewer frames than its partner, planes of unequal length or a
span under :data:`MIN_PERFUSION_SPAN_S` is ``truncated``); with two perfusion series the one with
the shorter frame interval (higher heart rate: adenosine) is ``stress``.  Exam warnings:
``perfusion_truncated``, ``no_ti_scout`` (LGE without a typed scout), ``t1map_no_units``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from cmr_atlas.dicom.scan import ImageHeader

KINDS: tuple[str, ...] = ("localizer", "cine", "perfusion", "perfusion_aif", "ti_scout", "lge", "lge_psir",
                          "t1map", "unknown")
MIN_TI_VALUES = 3  # distinct inversion times of a scout
MIN_TI_RANGE_MS = 100.0
SAME_TI_MS = 10.0  # one inversion time (within this) is quoted as one value
MIN_PERFUSION_FRAMES = 10  # repetitions over time: many heartbeats
FRAME_INTERVAL_S = (0.25, 3.0)  # one R-R (or two at high heart rates), 20-240 bpm
FIXED_TRIGGER_FRACTION = 0.3  # trigger spread per plane below this fraction of the frame interval
# First pass plus recirculation of a bolus take ~30 s (arrival 5-10 s, peak 15-20 s, recirculation
# 25-35 s: Kellman et al. JCMR 2017); a perfusion series shorter than that misses part of it.
MIN_PERFUSION_SPAN_S = 30.0
AIF_MIN_PIXEL_MM = 3.5  # the dual-sequence AIF image is low resolution (clinical-headers.md)
AIF_COARSER = 1.3
MAX_BREATH_HOLD_S = 30.0
MAX_CINE_FRAMES = 40  # cine phases per R-R (without timing, more frames are not assumed cine)
SAME_HEARTBEATS_S = 5.0  # perfusion and AIF series acquired together start within this
STRESS_FASTER = 0.05  # stress frame interval at least this fraction shorter than rest
_SSFP_NAME = re.compile(r"tfi|fiesta|trufi|b-?tfe|bffe|ssfp", re.IGNORECASE)


@dataclass
class SeriesType:
    """The type of one series and why."""

    kind: str  # one of KINDS
    sequence: str | None  # cmr_atlas.core.vocab.SEQUENCES value, null when not known
    evidence: str  # the header values that decided
    reason: str | None = None  # why unknown, or a caveat of a typed series (no_units, truncated ...)
    post_contrast: bool = False  # ContrastBolusAgent present
    stress_rest: str | None = None  # perfusion: stress or rest (exam rule)
    n_planes: int = 0
    n_frames: int = 0  # most frames of a plane
    pixel_mm: float | None = None
    acq_start_s: float | None = None
    frame_interval_s: float | None = None  # median AcquisitionTime step
    acq_span_s: float | None = None
    plane_frames: list[int] = field(default_factory=list)


def plane_groups(images: list[ImageHeader]) -> list[list[ImageHeader]]:
    """Images grouped by their raw position and orientation (for series without usable geometry)."""
    def rounded(a: np.ndarray | None) -> tuple | None:
        return None if a is None else tuple(np.round(a, 1))

    groups: dict[tuple, list[ImageHeader]] = {}
    for h in images:
        groups.setdefault((rounded(h.position), rounded(h.orientation)), []).append(h)
    return list(groups.values())


def _finite(values) -> np.ndarray:
    a = np.array([np.nan if v is None else v for v in values], dtype=float)
    return a[np.isfinite(a)]


def _span(a: np.ndarray) -> float:
    return float(a.max() - a.min()) if len(a) else 0.0


@dataclass
class _Timing:
    """Per-plane timing summary of a multi-frame series."""

    trigger_varies: bool  # some plane's trigger times span a part of the cycle
    trigger_fixed: bool  # every plane's trigger times (present) nearly constant
    acq_fraction: float  # images with an AcquisitionTime
    interval_s: float | None  # median AcquisitionTime step within planes
    span_s: float | None  # longest AcquisitionTime span of a plane
    start_s: float | None


def _timing(planes: list[list[ImageHeader]]) -> _Timing:
    intervals, spans, starts, trig_spans, trig_counts = [], [], [], [], []
    n, n_acq = 0, 0
    for p in planes:
        n += len(p)
        acq = np.unique(_finite(h.acquisition_time_s for h in p))
        n_acq += sum(h.acquisition_time_s is not None for h in p)
        if len(acq) >= 2:
            intervals.append(float(np.median(np.diff(acq))))
            spans.append(_span(acq))
        if len(acq):
            starts.append(float(acq.min()))
        trig = _finite(h.trigger_time_ms for h in p)
        trig_counts.append(len(np.unique(trig)))
        trig_spans.append(_span(trig) if len(trig) >= 2 else None)
    interval = float(np.median(intervals)) if intervals else None
    limit_ms = FIXED_TRIGGER_FRACTION * interval * 1000 if interval else 50.0
    present = [s for s in trig_spans if s is not None]
    return _Timing(
        trigger_varies=any(c >= 2 for c in trig_counts) and any(s > limit_ms for s in present),
        trigger_fixed=bool(present) and all(s <= limit_ms for s in present),
        acq_fraction=n_acq / max(n, 1), interval_s=interval,
        span_s=max(spans) if spans else None, start_s=min(starts) if starts else None,
    )


def _first_value(images: list[ImageHeader], attr: str):
    for h in images:
        v = getattr(h, attr)
        if v not in (None, ()):
            return v
    return None


def _cine_sequence(images: list[ImageHeader]) -> tuple[str | None, str]:
    """cine_ssfp or cine_gre from TR and flip (bSSFP: TR < 5 ms and flip > 30 deg), else hints."""
    tr, flip = _first_value(images, "repetition_time_ms"), _first_value(images, "flip_angle_deg")
    if tr is not None and flip is not None and tr > 0:
        ssfp = tr < 5.0 and flip > 30.0
        return ("cine_ssfp" if ssfp else "cine_gre"), f"TR {tr:g} ms, flip {flip:g} deg"
    variant = _first_value(images, "sequence_variant") or ()
    if "SS" in variant and "SP" not in variant:
        return "cine_ssfp", "SequenceVariant SS"
    if "SP" in variant:
        return "cine_gre", "SequenceVariant SP"
    name = _first_value(images, "sequence_name")
    if name and _SSFP_NAME.search(name):
        return "cine_ssfp", "SequenceName"
    return None, "no TR/flip/variant"


def _map_type(images: list[ImageHeader], hint: str) -> tuple[str, str | None, str] | None:
    """(kind, reason, evidence) of a parametric map, or None when the series is not a map (the
    caller checks that it has one image per plane: a map is not acquired over time)."""
    image_type = _first_value(images, "image_type") or ()
    units, label = _first_value(images, "map_units"), _first_value(images, "map_label")
    name = _first_value(images, "sequence_name") or ""
    map_values = [v for v in image_type if "MAP" in v]
    molli = "MOLLI" in name.upper()
    if not (map_values or units or molli):
        return None
    t1 = any("T1" in v for v in map_values) or (label or "").upper() == "T1" or molli
    evidence = ";".join(filter(None, [f"ImageType {'/'.join(map_values)}" if map_values else None,
                                      f"units {units}" if units else None, "MOLLI" if molli else None]))
    if not t1:
        return "unknown", "parametric map other than T1", evidence
    return "t1map", (None if units else "no_units"), evidence


def _scout_plane(plane: list[ImageHeader]) -> bool:
    """Frames at one position whose inversion times vary (Look-Locker)."""
    ti = _finite(h.inversion_time_ms for h in plane)
    return len(np.unique(np.round(ti))) >= MIN_TI_VALUES and _span(ti) >= MIN_TI_RANGE_MS


def _inversion_type(images, planes, hint: str) -> tuple[str, str | None, str, str | None] | None:
    """(kind, sequence, evidence, reason) from inversion times, or None when there are none."""
    ti = _finite(h.inversion_time_ms for h in images)
    n_bad = sum(h.inversion_time_bad for h in images)
    bad = f"; {n_bad} unreadable InversionTime" if n_bad else ""
    max_frames = max(len(p) for p in planes)
    image_type = _first_value(images, "image_type") or ()
    psir = "PSIR" in image_type or (len(image_type) > 2 and image_type[2] == "R")
    if any(_scout_plane(p) for p in planes):
        return "ti_scout", "ti_scout", f"InversionTime {ti.min():.0f}-{ti.max():.0f} ms{bad}", None
    if len(ti) and max_frames == 1:
        missing = len(images) - len(ti)
        reason = f"InversionTime missing on {missing} of {len(images)} images" if missing else None
        kind = "lge_psir" if psir else "lge"
        value = (f"{np.median(ti):.0f}" if _span(ti) <= SAME_TI_MS else f"{ti.min():.0f}-{ti.max():.0f}")
        return kind, "lge", f"InversionTime {value} ms{' PSIR' if psir else ''}{bad}", reason
    if len(ti):
        return ("unknown", None, f"InversionTime {ti.min():.0f}-{ti.max():.0f} ms",
                f"inversion times over {max_frames} frames per plane neither vary (scout) nor one frame (LGE)")
    ir = "IR" in (_first_value(images, "scanning_sequence") or ())
    if max_frames == 1 and psir:
        return "lge_psir", "lge", f"ImageType PSIR{bad}", "no inversion time"
    if not ir:
        return None
    if max_frames > 1:
        return ("unknown", None, f"ScanningSequence IR{bad}" + (f"; description {hint}" if hint != "none" else ""),
                "inversion-recovery frames without inversion times")
    if hint == "lge":
        return "lge", "lge", f"ScanningSequence IR; description lge{bad}", "no inversion time"
    return "unknown", None, f"ScanningSequence IR{bad}", "inversion-recovery single frame without inversion time"


def type_series(images: list[ImageHeader], planes: list[list[ImageHeader]] | None, hint: str = "none"
                ) -> SeriesType:
    """The type of one series from its images' header values (rules in the module docstring).

    ``planes``: the images grouped by plane (:func:`plane_groups` when None); ``hint``: the
    description keyword class.  Never raises for odd values.
    """
    planes = [p for p in (planes if planes is not None else plane_groups(images)) if p] or [images]
    counts = [len(p) for p in planes]
    spacing = _first_value(images, "pixel_spacing")
    t = SeriesType("unknown", None, "", post_contrast=any(h.contrast_agent for h in images),
                   n_planes=len(planes), n_frames=max(counts), plane_frames=counts,
                   pixel_mm=float(spacing[0]) if spacing else None)
    t.kind, t.sequence, t.evidence, t.reason = _decide(images, planes, hint, t)
    return t


def _decide(images, planes, hint: str, t: SeriesType) -> tuple[str, str | None, str, str | None]:
    image_type = _first_value(images, "image_type") or ()
    if "LOCALIZER" in image_type:
        return "localizer", None, "ImageType LOCALIZER", None
    mapped = _map_type(images, hint) if t.n_frames == 1 else None
    if mapped is not None:
        kind, reason, evidence = mapped
        return kind, ("t1map" if kind == "t1map" else None), evidence, reason
    inv = _inversion_type(images, planes, hint)
    if inv is not None:
        kind, sequence, evidence, reason = inv
        return kind, sequence, evidence, reason
    if t.n_frames == 1:
        if hint == "localizer":
            return "localizer", None, "description localizer; single frame", None
        return "unknown", None, "one frame per plane", "single frame, no inversion time, not a map"
    return _timed_type(images, planes, hint, t)


def _timed_type(images, planes, hint: str, t: SeriesType) -> tuple[str, str | None, str, str | None]:
    """Multi-frame series without inversion: perfusion (repetitions over heartbeats) or cine."""
    tm = _timing(planes)
    t.acq_start_s, t.frame_interval_s, t.acq_span_s = tm.start_s, tm.interval_s, tm.span_s
    repeated = (tm.acq_fraction >= 0.8 and tm.interval_s is not None
                and FRAME_INTERVAL_S[0] <= tm.interval_s <= FRAME_INTERVAL_S[1]
                and t.n_frames >= MIN_PERFUSION_FRAMES and not tm.trigger_varies)
    note = f"; description {hint}" if hint not in ("none", "other") else ""
    if repeated:
        aif = t.pixel_mm is not None and t.pixel_mm >= AIF_MIN_PIXEL_MM
        evidence = (f"{t.n_frames} frames at {tm.interval_s:.2f} s intervals over {tm.span_s:.0f} s, "
                    f"{'fixed' if tm.trigger_fixed else 'no'} trigger time"
                    f"{f'; pixel >= {AIF_MIN_PIXEL_MM:g} mm' if aif else ''}{note}")
        return ("perfusion_aif" if aif else "perfusion"), "perfusion", evidence, None
    if tm.trigger_varies:
        if tm.span_s is not None and tm.span_s > MAX_BREATH_HOLD_S:
            return ("unknown", None, f"trigger times vary; acquisition over {tm.span_s:.0f} s",
                    "frames over many breath-holds with varying trigger times")
        sequence, seq_evidence = _cine_sequence(images)
        return "cine", sequence, f"trigger times across the cycle; {seq_evidence}{note}", None
    if tm.trigger_fixed:
        if tm.acq_fraction < 0.8 or tm.interval_s is None:
            return ("unknown", None, "fixed trigger time" + note,
                    "frames at one cardiac phase without acquisition times")
        return ("unknown", None, f"fixed trigger time; {t.n_frames} frames at {tm.interval_s:.2f} s",
                "frames at one cardiac phase, too few or irregular for perfusion")
    if tm.interval_s is None and t.n_frames <= MAX_CINE_FRAMES:
        sequence, seq_evidence = _cine_sequence(images)
        return "cine", sequence, f"no trigger or acquisition times (legacy rule); {seq_evidence}{note}", \
            "no_timing: assumed cine"
    return ("unknown", None, f"{t.n_frames} frames per plane" + note,
            "frames at one position without trigger or acquisition times")


def _concurrent(a: SeriesType, b: SeriesType) -> bool:
    return (a.acq_start_s is not None and b.acq_start_s is not None
            and abs(a.acq_start_s - b.acq_start_s) <= SAME_HEARTBEATS_S)


def exam_rules(types: list[SeriesType]) -> list[str]:
    """Exam-level typing (AIF pairing, truncation, stress/rest) and the exam's warnings."""
    perf = [t for t in types if t.kind in ("perfusion", "perfusion_aif")]
    for a in perf:  # the coarse single-plane partner of a perfusion series is its AIF
        for b in perf:
            if (a is not b and a.kind == "perfusion" and a.n_planes == 1 and b.n_planes > 1 and _concurrent(a, b)
                    and a.pixel_mm and b.pixel_mm and a.pixel_mm >= AIF_COARSER * b.pixel_mm):
                a.kind = "perfusion_aif"
                a.evidence += f"; {a.pixel_mm / b.pixel_mm:.1f}x coarser than its concurrent perfusion series"
    warnings = []
    for a in perf:  # partners: the series of the same heartbeats, and stress vs rest (same protocol)
        why = _truncation(a, [b for b in perf if b is not a and (_concurrent(a, b) or b.kind == a.kind)])
        if why:
            a.reason = why
    if any(t.reason and t.reason.startswith("truncated") for t in perf):
        warnings.append("perfusion_truncated")
    _stress_rest([t for t in perf if t.kind == "perfusion"])
    for a in perf:  # an AIF series takes the condition of the perfusion series it was acquired with
        partner = [b for b in perf if b.kind == "perfusion" and b.stress_rest and _concurrent(a, b)]
        if a.kind == "perfusion_aif" and len(partner) == 1:
            a.stress_rest = partner[0].stress_rest
    kinds = {t.kind for t in types}
    if kinds & {"lge", "lge_psir"} and "ti_scout" not in kinds:
        warnings.append("no_ti_scout")
    if any(t.kind == "t1map" and t.reason == "no_units" for t in types):
        warnings.append("t1map_no_units")
    return warnings


def _truncation(t: SeriesType, partners: list[SeriesType]) -> str | None:
    if len(set(t.plane_frames)) > 1:
        return f"truncated: planes have {min(t.plane_frames)}-{max(t.plane_frames)} frames"
    more = [p.n_frames for p in partners if p.n_frames > t.n_frames]
    if more:
        return f"truncated: {t.n_frames} frames, {max(more)} in its AIF/perfusion partner or stress/rest pair"
    if t.acq_span_s is not None and t.acq_span_s < MIN_PERFUSION_SPAN_S:
        return f"truncated: {t.acq_span_s:.0f} s, under the {MIN_PERFUSION_SPAN_S:.0f} s of a first pass"
    return None


def _stress_rest(perf: list[SeriesType]) -> None:
    """Two perfusion series: the higher heart rate (shorter frame interval) is stress; equal rates:
    the earlier one (the usual protocol order), recorded as such."""
    timed = [t for t in perf if t.frame_interval_s is not None]
    if len(timed) != 2:
        return
    a, b = sorted(timed, key=lambda t: t.frame_interval_s)
    if a.frame_interval_s < (1 - STRESS_FASTER) * b.frame_interval_s:
        a.stress_rest, b.stress_rest = "stress", "rest"
        how = f"frame interval {a.frame_interval_s:.2f} vs {b.frame_interval_s:.2f} s"
    else:
        a, b = sorted(timed, key=lambda t: t.acq_start_s if t.acq_start_s is not None else 0.0)
        a.stress_rest, b.stress_rest = "stress", "rest"
        how = "equal heart rates: the earlier is stress (protocol order)"
    a.evidence += f"; stress: {how}"
    b.evidence += f"; rest: {how}"
