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


def _auto_insertions(p, images: list[np.ndarray], labels: list[np.ndarray], landmark_net,
                     threshold: float) -> tuple[list, list[bool]]:
    """The automated path's insertions of every slice (the wall rule's; with ``landmark_net``, the
    insertion network's on the slices' ``images`` where it finds both) and whether each came from
    the network."""
    rule = Q.stack_insertions(labels, p.series.planes[0])
    if landmark_net is None:
        return rule, [False] * len(rule)
    net = insertion_net.detect(*landmark_net, images, [p.series.planes[i] for i in p.order], labels, threshold)
    return insertion_net.combine(net, rule), [n is not None for n in net]


def _labels(source: str, p, mcs, images, model, card, ann: Annotations | None, precision, landmark_net,
            threshold: float):
    if source == "auto":
        probs = Q.auto_probabilities(model, card, p, mcs, precision)
        labels = [Q.class_map(pr) for pr in probs]
        ins, by_net = _auto_insertions(p, images, labels, landmark_net, threshold)
        return labels, ins, [segment.contours(pr) for pr in probs], by_net
    cond = ann.contours[ann.contours["condition"] == p.condition]
    marks = ann.landmarks[ann.landmarks["condition"] == p.condition]
    px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
    reach = int(np.ceil(motion.MAX_SHIFT_MM / px))
    out = [manual.manual_slice(cond, marks, p.series.planes, p.order, k, mc.shifts_px[0], mc.frames.shape[1:],
                               manual.peak_enhancement(mc.frames[p.n_pd:]), reach) for k, mc in enumerate(mcs)]
    return [o[0] for o in out], [o[1] for o in out], [{} for _ in out], [False] * len(out)


def run_series(ex: ExamPerfusion, p: prepare.PreparedSeries, cfg: Q.QuantConfig, model, card,
               ann: Annotations | None, precision=None, landmark_net=None) -> None:
    """Quantify one prepared series (every source) and add its rows to ``ex``; ``landmark_net``: the
    insertion network (:func:`insertion_net.load`), None = the wall rule alone."""
    aif = Q.arterial_input(p, cfg)
    mcs = Q.correct_slices(p)
    px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
    ex.images[p.condition] = [insertion_net.slice_image(mc.frames, p.n_pd) for mc in mcs]
    for source in SOURCES if ann is not None else ("auto",):
        labels, ins, lines, by_net = _labels(source, p, mcs, ex.images[p.condition], model, card, ann, precision,
                                             landmark_net, cfg.insertion_absent_threshold)
        if source == "auto":  # an observer's clicked insertions stand whatever their contours' QC says
            ins = Q.trusted_insertions(ins, labels, px)
        found = [i is not None for i in ins]
        ins = Q.borrow_insertions(ins, labels)
        res = Q.quantify_series(p, mcs, labels, ins, aif, cfg)
        for r, c in zip(res, lines):
            r.contours = c
        ex.slices[(source, p.condition)] = res
        if source != "auto":
            continue
        for k, (r, mc) in enumerate(zip(res, mcs)):
            shifts_mm = np.linalg.norm(mc.shifts_px, axis=1) * px
            ex.rows["perfusion_series"].append(_series_row(
                ex.exam_id, p, r.qc_reason or p.pair_reason, slice=k, level=r.level, rr_s=prepare.dt_s(p.times_s(k)),
                motion_mean_mm=float(shifts_mm.mean()), motion_max_mm=float(shifts_mm.max()),
                residual_motion_mm=float(mc.residual_px * px), aif_peak_mmol_l=aif.peak_mM,
                myocardium_pixels=int((r.labels == 2).sum()),
                rv_insertion=_insertion_source(found[k], by_net[k], r.insertions is not None)))
    ex.rows["aif_curves"] += [{"exam_id": ex.exam_id, "condition": p.condition, "frame": i, "time_s": float(t),
                               "concentration_mmol_l": float(c)} for i, (t, c) in enumerate(zip(aif.times_s, aif.blood_mM))]


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
    for p in prepared:
        if not p.ok:
            ex.rows["perfusion_series"].append(_series_row(exam_id, p, p.qc_reason))
            continue
        try:
            run_series(ex, p, cfg, model, card, ann, precision, landmark_net)
        except ValueError as exc:  # a documented refusal of a stage (too few frames, no bolus, ...)
            log.warning("exam %s %s perfusion: %s", exam_id, p.condition, exc)
            ex.rows["perfusion_series"].append(_series_row(exam_id, p, str(exc)))
    for (source, condition), res in ex.slices.items():
        ex.rows["perfusion_segments"] += segment_rows(exam_id, condition, source, res, cfg.model)
    _global_rows(ex, prepared)
    return ex
