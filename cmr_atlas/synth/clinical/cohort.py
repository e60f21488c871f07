"""Generate synthetic modern clinical exams (bSSFP cine, stress/rest perfusion, TI scout, LGE, T1
maps) with ground truth, and whole cohorts on disk.

The subject, heart and breath-hold machinery are the legacy protocol's; the physiology
(:mod:`.physiology`) and each sequence's physics are this protocol's.  Every exam comes from its own
seed sequence ``(seed, index)`` and every renderer from its own stream of it, so exam ``i`` is the
same whatever the cohort size or the renderers after it, and the same seed gives the same bytes.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth as T
from cmr_atlas.synth.clinical import protocol as P
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.clinical.physiology import CORONARY_TERRITORIES, draw_physiology, post_contrast_t1_ms
from cmr_atlas.synth.dicom_writer import PatientHeader, SeriesSpec, make_patient_header, write_exam
from cmr_atlas.synth.parallel import write_cohort
from cmr_atlas.synth.physics import R1_RELAXIVITY, relaxation
from cmr_atlas.synth.subjects import sample_subjects

log = logging.getLogger(__name__)

LABEL_PREFIX = "CLN"  # legacy exams are SYN<seed>-<index>: a mixed cohort keeps both apart


@dataclass
class ClinicalExam:
    """One generated clinical exam: its context, series as rendered, header and truth."""

    ctx: P.ClinicalExamContext
    header: PatientHeader
    series: list[P.RenderedSeries] = field(default_factory=list)
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return self.ctx.label


def exam_label(seed: int, index: int) -> str:
    return f"{LABEL_PREFIX}{seed}-{index:04d}"


def exam_streams(seed: int, index: int) -> dict[str, np.random.Generator]:
    """Exam ``index``'s independent generators per purpose (subject, heart, ..., dicom): a renderer's
    draws never shift another's, so a caller that needs one part of an exam (the scout, the cine,
    the perfusion series, for training data or a benchmark) renders it exactly as the full exam
    has it, from these streams and :func:`make_context`."""
    names = ("subject", "heart", "scanner", "physiology", "header", "cine", "perfusion", "scout", "lge",
             "t1map", "observers", "dicom")
    return {n: np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 100 + k]))
            for k, n in enumerate(names)}


def make_context(seed: int, index: int, mi_fraction: float = 0.0,
                 rngs: dict[str, np.random.Generator] | None = None) -> P.ClinicalExamContext:
    """Subject, heart, physiology, scanner and planned geometry of exam ``index``."""
    rngs = rngs or exam_streams(seed, index)
    subj = sample_subjects(rngs["subject"], 1, mi_fraction).iloc[0].to_dict()
    targets = {k[len("target_"):]: v for k, v in subj.items() if k.startswith("target_")}
    heart = an.make_heart(rngs["heart"], targets, subj["bsa_m2"], subj["height_cm"], subj["weight_kg"],
                          subj["heart_rate"])
    heart = replace(heart, aortic_root_deg=float(rngs["heart"].uniform(45.0, 65.0)))  # see Heart
    rs = rngs["scanner"]
    field_t, vendor, model = P.draw_scanner(rs)
    geometry = P.plan_geometry(rs, heart)
    th = heart.thorax
    coil = {"anterior_y": th.centre_xy[1] - th.semi_axes[1] - rs.uniform(5, 25),
            "posterior_y": th.centre_xy[1] + th.semi_axes[1] + rs.uniform(5, 25),
            "posterior_weight": rs.uniform(0.4, 0.9), "x_centre": th.centre_xy[0] + rs.normal(0, 30),
            "depth_mm": rs.uniform(80, 140)}
    physiology = draw_physiology(rngs["physiology"], subj, field_t)
    return P.ClinicalExamContext(exam_label(seed, index), subj, heart, physiology, field_t, vendor, model,
                                 geometry, P.draw_timeline(rs), coil)


def _renderers():
    # Imported here: each renderer module is one series family (see the package docstring).
    from cmr_atlas.synth.clinical import cine, lge, perfusion, scout, t1map

    return cine, perfusion, scout, lge, t1map


def generate_exam(seed: int, index: int, mi_fraction: float = 0.0, observers: int = 0) -> ClinicalExam:
    """Generate clinical exam ``index`` of the cohort with ``seed``: every series and its truth."""
    rngs = exam_streams(seed, index)
    ctx = make_context(seed, index, mi_fraction, rngs)
    subj = ctx.subject
    header = make_patient_header(rngs["header"], f"cmr-atlas-clinical-{seed}-{index}", subj["age"], subj["sex"],
                                 subj["height_cm"], subj["weight_kg"])
    ex = ClinicalExam(ctx, header)
    cine, perfusion, scout, lge, t1map = _renderers()
    parts = [cine.render(ctx, rngs["cine"], observers), perfusion.render(ctx, rngs["perfusion"], observers)]
    scout_part = scout.render(ctx, rngs["scout"], observers)
    parts.append(scout_part)
    lge_ti_ms = float(scout_part.truth[CT.TI_SCOUT.name].operator_ti_ms.iloc[0])
    parts += [lge.render(ctx, rngs["lge"], lge_ti_ms, observers), t1map.render(ctx, rngs["t1map"], observers)]
    for part in parts:
        ex.series += part.series
        for name, df in part.truth.items():
            ex.truth[name] = pd.concat([ex.truth[name], df], ignore_index=True) if name in ex.truth else df
    ex.series.sort(key=lambda s: s.start_min)
    ex.truth.update(_exam_truth(ex))
    return ex


def _segment_truth(ctx: P.ClinicalExamContext) -> pd.DataFrame:
    ph = ctx.physiology
    blood_post = _post_blood_concentration(ctx)
    territory = {s: t for t, segs in CORONARY_TERRITORIES.items() for s in segs}
    seg = np.arange(1, 17)
    native = np.full(16, ph.native_t1_myo_ms)
    return pd.DataFrame({
        "exam_id": ctx.label, "segment": seg, "territory": [territory[s] for s in seg],
        "mbf_stress_ml_min_g": ph.mbf_stress, "mbf_rest_ml_min_g": ph.mbf_rest, "native_t1_ms": native,
        "post_t1_ms": post_contrast_t1_ms(native, ph.ecv, ph.hematocrit, blood_post, ctx.field_t),
        "ecv": ph.ecv, "scar": np.isin(seg, ph.scar_segments), "fibrosis": np.isin(seg, ph.fibrosis_segments),
    })


def _post_blood_concentration(ctx: P.ClinicalExamContext) -> float:
    return float(ctx.blood_gd_mmol_l(ctx.timeline.t1_post_min))


def _exam_truth(ex: ClinicalExam) -> dict[str, pd.DataFrame]:
    ctx, ph, heart = ex.ctx, ex.ctx.physiology, ex.ctx.heart
    blood = relaxation(ctx.field_t, "blood").t1_ms
    d_r1 = R1_RELAXIVITY[ctx.field_t] * _post_blood_concentration(ctx)
    edv, esv = heart.ed.cavity_volume_ml, heart.es.cavity_volume_ml
    exams = pd.DataFrame([{
        "exam_id": ctx.label, "field_strength_t": ctx.field_t, "vendor": ctx.vendor, "model": ctx.model,
        "hematocrit": ph.hematocrit, "heart_rate_rest_bpm": ph.heart_rate_rest_bpm,
        "heart_rate_stress_bpm": ph.heart_rate_stress_bpm, "perfusion_group": ph.perfusion_group,
        "ischaemic_territory": ph.ischaemic_territory, "native_t1_myo_ms": ph.native_t1_myo_ms,
        "native_t1_blood_ms": blood, "post_t1_blood_ms": 1000.0 / (1000.0 / blood + d_r1),
        "amyloid_like": ph.amyloid_like, "scar_segments": ",".join(map(str, ph.scar_segments)),
        "scar_transmurality": ph.scar_transmurality, "fibrosis_segments": ",".join(map(str, ph.fibrosis_segments)),
        "total_dose_mmol_kg": sum(d for _, d in ctx.timeline.injections), "scout_min": ctx.timeline.scout_min,
        "lge_min": ctx.timeline.lge_min, "t1_post_min": ctx.timeline.t1_post_min,
        "n_sax_slices": len(ctx.geometry.sax_planes), "edv_ml": edv, "esv_ml": esv,
        "lv_mass_g": an.MYOCARDIAL_DENSITY_G_PER_ML * heart.ed.myocardial_volume_ml,
    }])
    subjects = pd.DataFrame([{
        "exam_id": ctx.label, "study_instance_uid": ex.header.study_uid, "patient_id": ex.header.patient_id,
        **{c.name: ctx.subject[c.name] for c in T.SUBJECTS.columns if c.name in ctx.subject},
    }])
    series = pd.DataFrame([{
        "exam_id": ctx.label, "series_number": k + 1, "kind": s.kind, "sequence": s.sequence, "view": s.view,
        "n_planes": len(s.planes), "n_frames": int(s.images[0].shape[0]), "description": s.description,
        "start_min": s.start_min,
    } for k, s in enumerate(ex.series)])
    return {"subjects": subjects, CT.CLINICAL_EXAMS.name: exams, CT.SERIES.name: series,
            CT.SEGMENTS.name: _segment_truth(ctx)}


def _series_time(start_min: float) -> str:
    """SeriesTime (HHMMSS) of a series starting ``start_min`` after the stress bolus (the clock of
    :func:`~cmr_atlas.synth.clinical.protocol.acquisition_time`)."""
    s = int(round(P.STRESS_BOLUS_CLOCK_S + start_min * 60))
    return f"{s // 3600:02d}{s // 60 % 60:02d}{s % 60:02d}"


def write_clinical_exam(ex: ClinicalExam, dicom_dir: Path, seed: int, index: int) -> list[Path]:
    """Write one generated clinical exam's DICOM files under ``dicom_dir/<label>/``."""
    ctx = ex.ctx
    specs = []
    for k, s in enumerate(ex.series):
        headers = {**ctx.scanner_headers(), "SeriesTime": _series_time(s.start_min), **s.series_headers}
        specs.append(SeriesSpec(s.kind, s.description, k + 1, s.planes, s.images, s.slice_indices, headers,
                                s.frame_headers or None))
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7]))
    return write_exam(dicom_dir / ex.label, ex.header, ctx.vendor, specs, np.zeros(0), 1000.0,
                      f"cmr-atlas-clinical-{seed}-{index}", rng)


def _generate_and_write(args: tuple) -> dict[str, pd.DataFrame]:
    seed, index, mi_fraction, observers, dicom_dir = args
    ex = generate_exam(seed, index, mi_fraction, observers)
    write_clinical_exam(ex, Path(dicom_dir), seed, index)
    return ex.truth


def truth_schemas():
    """The tables a clinical cohort's truth/ holds, shared and clinical."""
    return (T.SUBJECTS, T.CONTOURS, T.LANDMARKS, T.VOLUMES, *CT.CLINICAL_TRUTH_TABLES)


def generate_cohort(out: str | Path, n_exams: int, seed: int, mi_fraction: float = 0.0,
                    observers: int = 0, jobs: int = 1) -> Path:
    """Write ``out/dicom/<exam>/...`` and ``out/truth/*.parquet`` for ``n_exams`` clinical exams."""
    return write_cohort(out, _generate_and_write, n_exams, seed, mi_fraction, observers, jobs, truth_schemas(), log)
