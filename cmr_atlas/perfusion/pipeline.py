"""One exam's perfusion series to the output tables: prepare, correct motion, find the AIF,
segment (CNN; and the manual path from annotations when given), quantify, assemble rows.

A series that cannot be quantified (see :mod:`.prepare` and :mod:`.concentration` for the reasons)
gets one ``perfusion_series`` row with its ``qc_reason`` and nothing else; the exam's other series
and the shard go on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from cmr_atlas.core.seriescache import SeriesImages
from cmr_atlas.perfusion import insertion_net, manual, motion, prepare, qc, segment
from cmr_atlas.perfusion import quantify as Q
from cmr_atlas.perfusion.sectors import Insertions

log = logging.getLogger(__name__)
SOURCES = ("auto", "manual")


@dataclass
class Annotations:
    """One exam's manual contours and landmarks (truth format, pixel and patient coordinates)."""

    contours: pd.DataFrame
    landmarks: pd.DataFrame


@dataclass
class ExamPerfusion:
    exam_id: str
    rows: dict[str, list[dict]] = field(default_factory=lambda: {
        "perfusion_series": [], "perfusion_segments": [], "perfusion_global": [], "aif_curves": []})
    slices: dict[tuple[str, str], list[Q.SliceResult]] = field(default_factory=dict)  # (source, condition)
    # condition -> each slice's temporal maximum (insertion_net.slice_image): the maps' backdrop, the insertion network's input
    images: dict[str, list[np.ndarray]] = field(default_factory=dict)


def _series_row(exam_id: str, p: prepare.PreparedSeries, reason: str | None, **values) -> dict:
    row = {"exam_id": exam_id, "condition": p.condition, "series_index": p.series.series_index, "slice": None,
           "level": None, "n_frames": int(np.min(p.series.n_frames)), "n_pd": p.n_pd, "rr_s": None,
           "motion_mean_mm": None, "motion_max_mm": None, "residual_motion_mm": None, "aif_peak_mmol_l": None,
           "myocardium_pixels": None, "rv_insertion": None, "qc_reason": reason}
    row.update(values)
    return row


@dataclass
class SeriesFindings:
    """What one prepared series gives before quantification: the AIF, the motion-corrected slices,
    each slice's temporal maximum, and the automated path's class maps, contours and insertions
    (``network``: the insertion network's, None where it found none or runs not; ``rule``: the
    wall rule's).  The insertions of the stress and the rest series meet here
    (:func:`insertion_net.fuse_conditions`) before either is quantified."""

    p: prepare.PreparedSeries
    aif: Q.AifResult
    mcs: list[motion.MotionCorrection]
    images: list[np.ndarray]
    labels: list[np.ndarray]
    contours: list[dict]
    network: list[Insertions | None]
    rule: list[Insertions | None]


def find_series(p: prepare.PreparedSeries, cfg: Q.QuantConfig, model, card, precision=None,
                landmark_net=None) -> SeriesFindings:
    """AIF, motion correction, segmentation and insertions of one prepared series (the automated
    path); ``landmark_net``: the insertion network (:func:`insertion_net.load`), None = the wall
    rule alone.  Raises ValueError where a stage refuses the series."""
    aif = Q.arterial_input(p, cfg)
    mcs = Q.correct_slices(p)
    images = [insertion_net.slice_image(mc.frames, p.n_pd) for mc in mcs]
    probs = Q.auto_probabilities(model, card, p, mcs, precision)
    labels = [Q.class_map(pr) for pr in probs]
    rule = Q.stack_insertions(labels, p.series.planes[0])
    network = ([None] * len(labels) if landmark_net is None else insertion_net.detect(
        *landmark_net, images, p.planes, labels, cfg.insertion_absent_threshold))
    return SeriesFindings(p, aif, mcs, images, labels, [segment.contours(pr) for pr in probs], network, rule)


def fuse_insertions(found: list[SeriesFindings]) -> None:
    """The network's insertions of the stress and rest acquisitions of each slice, fused
    (:func:`insertion_net.fuse_conditions`) where the two series image the same slices (no
    ``pair_reason``)."""
    by = {f.p.condition: f for f in found}
    st, re = by.get("stress"), by.get("rest")
    if st is None or re is None or st.p.pair_reason or re.p.pair_reason:
        return
    st.network, re.network = insertion_net.fuse_conditions(st.network, st.p.planes, re.network, re.p.planes)


def manual_labels(f: SeriesFindings, ann: Annotations) -> tuple[list[np.ndarray], list[Insertions | None]]:
    """The manual path's class maps and clicked insertions of one series' slices (basal -> apical)
    from an observer's annotations, on the motion-corrected grid."""
    p = f.p
    cond = ann.contours[ann.contours["condition"] == p.condition]
    marks = ann.landmarks[ann.landmarks["condition"] == p.condition]
    corrected = manual.on_corrected_pose(cond)  # traced on the corrected series: already on its grid
    reach = 0 if corrected else int(np.ceil(motion.MAX_SHIFT_MM / float(np.mean(p.series.planes[0].pixel_spacing_mm))))
    out = [manual.manual_slice(cond, marks, p.series.planes, p.order, k, np.zeros(2) if corrected else mc.shifts_px[0],
                               mc.frames.shape[1:], None if corrected else manual.peak_enhancement(mc.frames[p.n_pd:]),
                               reach) for k, mc in enumerate(f.mcs)]
    return [o[0] for o in out], [o[1] for o in out]


def auto_insertions(f: SeriesFindings) -> list[Insertions | None]:
    """The automated path's RV insertions of one series' slices: the network's, else the wall
    rule's (:func:`insertion_net.combine`), kept where they pass :func:`Q.trusted_insertions`
    (before any slice borrows a neighbour's)."""
    px = float(np.mean(f.p.series.planes[0].pixel_spacing_mm))
    return Q.trusted_insertions(insertion_net.combine(f.network, f.rule), f.labels, px)


def quantify_found(ex: ExamPerfusion, f: SeriesFindings, cfg: Q.QuantConfig, ann: Annotations | None) -> None:
    """Quantify one series' findings (every source) and add its rows to ``ex``."""
    p = f.p
    px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
    ex.images[p.condition] = f.images
    by_net = [n is not None for n in f.network]
    for source in SOURCES if ann is not None else ("auto",):
        if source == "auto":  # an observer's clicked insertions stand whatever their contours' QC says
            (labels, ins), lines = (f.labels, auto_insertions(f)), f.contours
        else:
            (labels, ins), lines = manual_labels(f, ann), [{} for _ in f.mcs]
        found = [i is not None for i in ins]
        ins = Q.borrow_insertions(ins, labels)
        res = Q.quantify_series(p, f.mcs, labels, ins, f.aif, cfg)
        for r, c in zip(res, lines):
            r.contours = c
        ex.slices[(source, p.condition)] = res
        if source != "auto":
            continue
        for k, (r, mc) in enumerate(zip(res, f.mcs)):
            shifts_mm = np.linalg.norm(mc.shifts_px, axis=1) * px
            ex.rows["perfusion_series"].append(_series_row(
                ex.exam_id, p, r.qc_reason or p.pair_reason, slice=k, level=r.level, rr_s=prepare.dt_s(p.times_s(k)),
                motion_mean_mm=float(shifts_mm.mean()), motion_max_mm=float(shifts_mm.max()),
                residual_motion_mm=float(mc.residual_px * px), aif_peak_mmol_l=f.aif.peak_mM,
                myocardium_pixels=int((r.labels == 2).sum()),
                rv_insertion=_insertion_source(found[k], by_net[k], r.insertions is not None)))
    ex.rows["aif_curves"] += [{"exam_id": ex.exam_id, "condition": p.condition, "frame": i, "time_s": float(t),
                               "concentration_mmol_l": float(c)} for i, (t, c) in enumerate(zip(f.aif.times_s, f.aif.blood_mM))]


def _refused(ex: ExamPerfusion, p: prepare.PreparedSeries, exc: ValueError) -> None:
    log.warning("exam %s %s perfusion: %s", ex.exam_id, p.condition, exc)
    ex.rows["perfusion_series"].append(_series_row(ex.exam_id, p, str(exc)))


def _insertion_source(found: bool, by_net: bool, has: bool) -> str:
    if found:
        return "network" if by_net else "found"
    return "borrowed" if has else "none"


def segment_rows(exam_id: str, condition: str, source: str, results: list[Q.SliceResult], model: str) -> list[dict]:
    rows = []
    for r in results:
        for seg in sorted(r.segment_pixels):
            rows.append({"exam_id": exam_id, "condition": condition, "aha_segment": seg,
                         "mbf_ml_min_g": r.segment_mbf[model][seg], "mbf_fermi_ml_min_g": r.segment_mbf["fermi"][seg],
                         "mbf_2cxm_ml_min_g": r.segment_mbf["2cxm"][seg], "n_pixels": r.segment_pixels[seg],
                         "source": source, "qc_reason": r.segment_qc.get("segment", {}).get(seg),
                         "qc_reason_fermi": r.segment_qc.get("fermi", {}).get(seg),
                         "qc_reason_2cxm": r.segment_qc.get("2cxm", {}).get(seg)})
    return rows


def global_row(exam_id: str, source: str, segs: pd.DataFrame, no_reserve: bool) -> dict:
    """Global MBF of one source: the mean of the segments that pass the plausibility checks
    (:mod:`.qc`), with why any were left out or the result is implausible."""
    ok = segs["qc_reason"].isna() if "qc_reason" in segs else pd.Series(True, index=segs.index)
    means, counts, reasons = {}, {}, []
    for c in ("stress", "rest"):
        cond = segs["condition"] == c
        counts[c] = int((cond & ok).sum())
        means[c] = float(segs.loc[cond & ok, "mbf_ml_min_g"].mean()) if counts[c] else None
        if (cond & ~ok).any():
            reasons.append(f"{int((cond & ~ok).sum())} {c} segments implausible (left out)")
        reasons.append(qc.global_reason(c, means[c]))
    reserve = means["stress"] / means["rest"] if counts["stress"] and counts["rest"] and not no_reserve else None
    reasons.append(qc.reserve_reason(reserve))
    reasons = [r for r in reasons if r]
    return {"exam_id": exam_id, "source": source, "mbf_stress_ml_min_g": means["stress"],
            "mbf_rest_ml_min_g": means["rest"], "reserve": reserve, "n_segments_stress": counts["stress"],
            "n_segments_rest": counts["rest"], "qc_reason": "; ".join(reasons) or None}


def _global_rows(ex: ExamPerfusion, prepared: list[prepare.PreparedSeries]) -> None:
    segs = pd.DataFrame(ex.rows["perfusion_segments"])
    no_reserve = any(p.pair_reason for p in prepared)
    for source in SOURCES:
        g = segs[segs["source"] == source] if len(segs) else segs
        if not g.empty:
            ex.rows["perfusion_global"].append(global_row(ex.exam_id, source, g, no_reserve))


def run_exam(exam_id: str, series: list[SeriesImages], cfg: Q.QuantConfig, model, card,
             ann: Annotations | None = None, precision=None, landmark_net=None) -> ExamPerfusion:
    """Every perfusion series of one exam; rows of the four perfusion tables; ``landmark_net``: the
    insertion network (:func:`insertion_net.load`; config ``perfusion.insertions: network``),
    None = the wall rule alone."""
    ex = ExamPerfusion(exam_id)
    prepared = prepare.prepare_exam(series, cfg.min_frames)
    found = []
    for p in prepared:
        if not p.ok:
            ex.rows["perfusion_series"].append(_series_row(exam_id, p, p.qc_reason))
            continue
        try:
            found.append(find_series(p, cfg, model, card, precision, landmark_net))
        except ValueError as exc:  # a documented refusal of a stage (too few frames, no bolus, ...)
            _refused(ex, p, exc)
    if cfg.fuse_insertions:
        fuse_insertions(found)
    for f in found:
        try:
            quantify_found(ex, f, cfg, ann)
        except ValueError as exc:
            _refused(ex, f.p, exc)
    for (source, condition), res in ex.slices.items():
        ex.rows["perfusion_segments"] += segment_rows(exam_id, condition, source, res, cfg.model)
    _global_rows(ex, prepared)
    return ex
