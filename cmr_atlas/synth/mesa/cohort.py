"""Generate synthetic legacy exams (images + ground truth) and whole cohorts on disk.

Every exam is generated from its own seed sequence ``(seed, index)``, so exam ``i`` of a cohort is
the same whatever the cohort size, and the same seed gives the same bytes.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane, plane_to_row
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth as T
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.dicom_writer import DESCRIPTIONS, PatientHeader, SeriesSpec, make_patient_header, write_exam
from cmr_atlas.synth.mesa.scanner import Acquisition, plan_acquisition, render_plane
from cmr_atlas.synth.parallel import write_cohort
from cmr_atlas.synth.subjects import sample_subjects

log = logging.getLogger(__name__)

SHAPE_GRID = (29, 29)
SEQUENCE = "cine_gre"  # the legacy protocol's one contrast  # n_long x n_circ samples of each true surface


@dataclass
class SyntheticExam:
    """One generated exam: images as stored, plus everything true about it."""

    label: str
    subject: dict
    heart: an.Heart
    acq: Acquisition
    header: PatientHeader
    images: ExamImages  # stored pixel values (uint16 range) as float32; exam_id = label
    truth: dict[str, pd.DataFrame] = field(default_factory=dict)
    localizers: list[tuple[SlicePlane, np.ndarray]] = field(default_factory=list)


def exam_label(seed: int, index: int) -> str:
    return f"SYN{seed}-{index:04d}"


def _quantise(img: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(img), 0, 4095).astype(np.uint16)


def _plane_truth(heart: an.Heart, acq: Acquisition, label: str, view: str, sl: int, plane: SlicePlane,
                 frames: range, phases: dict[int, str]) -> tuple[list[dict], list[dict]]:
    # the legacy truth has LV contours only (its tables and bytes predate the RV contours)
    return tr.plane_truth(label, heart, SEQUENCE, view, sl, plane, acq.shifts_mm[(view, sl)],
                          ((f, float(acq.activation[f]), phases.get(f)) for f in frames), rv_endo=False)


def _planned(seed: int, index: int, mi_fraction: float):
    """Subject, heart and planned acquisition of exam ``index``, and the exam's remaining streams
    (noise, observers, header): the first draws of :func:`generate_exam`, nothing rendered."""
    ss = np.random.SeedSequence([int(seed), int(index)])
    rng_subject, rng_heart, rng_scan, rng_noise, rng_obs, rng_hdr = (np.random.default_rng(s) for s in ss.spawn(6))
    subj = sample_subjects(rng_subject, 1, mi_fraction).iloc[0].to_dict()
    targets = {k[len("target_"):]: v for k, v in subj.items() if k.startswith("target_")}
    heart = an.make_heart(rng_heart, targets, subj["bsa_m2"], subj["height_cm"], subj["weight_kg"], subj["heart_rate"])
    vendor = "SIEMENS" if rng_scan.random() < 0.55 else "GE MEDICAL SYSTEMS"
    acq = plan_acquisition(rng_scan, heart, subj["heart_rate"], vendor)
    return subj, heart, acq, (rng_noise, rng_obs, rng_hdr)


def planned_acquisition(seed: int, index: int, mi_fraction: float = 0.0) -> tuple[an.Heart, Acquisition]:
    """The heart and planned acquisition of exam ``index`` (those :func:`generate_exam` renders),
    nothing rendered."""
    _, heart, acq, _ = _planned(seed, index, mi_fraction)
    return heart, acq


def lax_planes(seed: int, index: int, mi_fraction: float = 0.0) -> dict[str, SlicePlane]:
    """The long-axis planes of exam ``index`` (those :func:`generate_exam` renders), geometry only."""
    return dict(_planned(seed, index, mi_fraction)[2].lax_planes)


def generate_exam(seed: int, index: int, mi_fraction: float = 0.0, observers: int = 0) -> SyntheticExam:
    """Generate exam ``index`` of the cohort with ``seed``: subject, heart, images and truth."""
    subj, heart, acq, (rng_noise, rng_obs, rng_hdr) = _planned(seed, index, mi_fraction)
    label = exam_label(seed, index)
    frames = np.arange(acq.n_frames)
    sax = np.stack([_quantise(render_plane(heart, acq, p, acq.shifts_mm[("sax", i)], frames, rng_noise))
                    for i, p in enumerate(acq.sax_planes)])
    lax = {v: _quantise(render_plane(heart, acq, p, acq.shifts_mm[(v, 0)], frames, rng_noise))
           for v, p in acq.lax_planes.items()}
    images = ExamImages(label, sax.astype(np.float32), list(acq.sax_planes), acq.trigger_times_ms,
                        {v: a.astype(np.float32) for v, a in lax.items()}, dict(acq.lax_planes))
    uid_seed = f"cmr-atlas-synth-{seed}-{index}"
    hdr = make_patient_header(rng_hdr, uid_seed, subj["age"], subj["sex"], subj["height_cm"], subj["weight_kg"])
    ex = SyntheticExam(label, subj, heart, acq, hdr, images)
    ex.truth = _truth_tables(ex, rng_obs, observers)
    # three-plane localizer through the heart, end-diastole, no breath-hold shift
    centre = heart.to_patient(np.array([0, 0, 0.5 * heart.ed.length_mm]))
    for row, col in (([1, 0, 0], [0, 1, 0]), ([1, 0, 0], [0, 0, -1]), ([0, 1, 0], [0, 0, -1])):
        pl = SlicePlane.centred(centre, np.array(row, float), np.array(col, float), (1.8, 1.8), (256, 256), 8.0)
        img = render_plane(heart, acq, pl, np.zeros(3), np.array([acq.ed_frame]), rng_noise)
        ex.localizers.append((pl, _quantise(img)))
    return ex


def _truth_tables(ex: SyntheticExam, rng_obs: np.random.Generator, observers: int) -> dict[str, pd.DataFrame]:
    heart, acq, label, subj = ex.heart, ex.acq, ex.label, ex.subject
    ed_f, es_f = acq.ed_frame, acq.es_frame
    phases = {ed_f: "ED", es_f: "ES"}
    planes = {(v, i): p for v, i, p in acq.planes()}
    contours, marks = [], []
    for (view, sl), plane in planes.items():
        c, m = _plane_truth(heart, acq, label, view, sl, plane, range(acq.n_frames), phases)
        contours += c
        marks += m
    contours_df = tr.frame_from_contours(contours)
    marks_df = pd.DataFrame(marks)
    if observers:
        oc, om = tr.observer_truth(rng_obs, contours_df, marks_df, planes, observers)
        contours_df = pd.concat([contours_df, oc], ignore_index=True)
        marks_df = pd.concat([marks_df, om], ignore_index=True)
    w_ed, w_es = float(acq.activation[ed_f]), float(acq.activation[es_f])
    ph_ed, ph_es = heart.phase(w_ed), heart.phase(w_es)
    design = an.measured_indices(heart, subj["bsa_m2"])
    edv, esv = ph_ed.cavity_volume_ml, ph_es.cavity_volume_ml
    mass = an.MYOCARDIAL_DENSITY_G_PER_ML * ph_ed.myocardial_volume_ml
    p0 = acq.sax_planes[0]
    exams = pd.DataFrame([{
        "exam_id": label, "vendor": "SIEMENS" if acq.vendor == "SIEMENS" else "GE",
        "n_frames": acq.n_frames, "rr_ms": acq.rr_ms, "ed_frame": ed_f, "es_frame": es_f,
        "n_sax_slices": len(acq.sax_planes), "rows": p0.shape[0], "cols": p0.shape[1],
        "pixel_spacing_mm": p0.pixel_spacing_mm[0], "snr": acq.snr,
        "edv_ml": edv, "esv_ml": esv, "sv_ml": edv - esv, "ef_pct": 100 * (edv - esv) / edv,
        "lv_mass_g": mass, "edvi": edv / subj["bsa_m2"], "esvi": esv / subj["bsa_m2"],
        "lvmi": mass / subj["bsa_m2"], "sphericity_pct": design["sphericity_pct"],
        "rwt_pct": design["rwt_pct"], "conicity_pct": design["conicity_pct"], "ls_pct": design["ls_pct"],
    }])
    subjects = pd.DataFrame([{
        "exam_id": label, "study_instance_uid": ex.header.study_uid, "patient_id": ex.header.patient_id,
        **{c.name: subj[c.name] for c in T.SUBJECTS.columns if c.name in subj},
    }])
    shapes = []
    for phase, w in (("ED", w_ed), ("ES", w_es)):
        for surface in ("endo", "epi"):
            pts = heart.surface_grid(w, surface, *SHAPE_GRID)
            shapes.append(pd.DataFrame({"exam_id": label, "phase": phase, "surface": surface,
                                        "point_index": np.arange(len(pts)), "x_mm": pts[:, 0],
                                        "y_mm": pts[:, 1], "z_mm": pts[:, 2]}))
    slices = pd.DataFrame([plane_to_row(label, v, i, p) for (v, i), p in planes.items()])
    shift_rows = []
    for (v, i), p in planes.items():
        d = acq.shifts_mm[(v, i)]
        tp = float(d @ p.normal)
        shift_rows.append({"exam_id": label, "view": v, "slice_index": i, "dx_mm": d[0], "dy_mm": d[1],
                           "dz_mm": d[2], "in_plane_mm": float(np.linalg.norm(d - tp * p.normal)),
                           "through_plane_mm": tp})
    return {
        "subjects": subjects, "exams": exams, "shapes": pd.concat(shapes, ignore_index=True),
        "slices": slices, "slice_shifts": pd.DataFrame(shift_rows), "contours": contours_df,
        "landmarks": marks_df, "volumes": frame_volumes(heart, acq, label),
    }


def frame_volumes(heart: an.Heart, acq: Acquisition, label: str) -> pd.DataFrame:
    """Rows of the truth table ``volumes``: the true cavity and myocardial volume of every frame."""
    return tr.frame_volumes(label, heart, acq.activation, acq.trigger_times_ms,
                            {acq.ed_frame: "ED", acq.es_frame: "ES"})


def _series_specs(ex: SyntheticExam, rng: np.random.Generator) -> list[SeriesSpec]:
    vendor = ex.acq.vendor
    desc = DESCRIPTIONS[vendor]
    pick = lambda key: str(desc[key][int(rng.integers(len(desc[key])))])  # noqa: E731
    generic = rng.random() < 0.2
    specs = [SeriesSpec("localizer", pick("localizer"), 1, [p for p, _ in ex.localizers],
                        [im for _, im in ex.localizers], [0, 1, 2])]
    lax_order = ["lax_2ch", "lax_4ch"] if rng.random() < 0.7 else ["lax_4ch", "lax_2ch"]
    for n, view in enumerate(lax_order):
        d = (desc["generic_lax"][n] if vendor == "SIEMENS" else desc["generic_lax"][0]) if generic else pick(view)
        specs.append(SeriesSpec(view, d, 2 + n, [ex.acq.lax_planes[view]], [_quantise(ex.images.lax[view])], [0]))
    sax_imgs = [_quantise(ex.images.sax[i]) for i in range(ex.images.n_slices)]
    template = pick("sax")
    if vendor == "SIEMENS":
        for k, (p, im) in enumerate(zip(ex.acq.sax_planes, sax_imgs)):
            specs.append(SeriesSpec("sax", template.format(k=k + 1), 4 + k, [p], [im], [k]))
    else:
        specs.append(SeriesSpec("sax", template.format(k=""), 4, list(ex.acq.sax_planes), sax_imgs,
                                list(range(len(sax_imgs)))))
    return specs


def write_synthetic_exam(ex: SyntheticExam, dicom_dir: Path, seed: int, index: int) -> list[Path]:
    """Write one generated exam's DICOM files under ``dicom_dir/<label>/``."""
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7]))
    vendor_tag = "SIEMENS" if ex.acq.vendor == "SIEMENS" else "GE MEDICAL SYSTEMS"
    return write_exam(dicom_dir / ex.label, ex.header, vendor_tag, _series_specs(ex, rng),
                      ex.acq.trigger_times_ms, ex.acq.rr_ms, f"cmr-atlas-synth-{seed}-{index}", rng)


def _generate_and_write(args: tuple) -> dict[str, pd.DataFrame]:
    seed, index, mi_fraction, observers, dicom_dir = args
    ex = generate_exam(seed, index, mi_fraction, observers)
    write_synthetic_exam(ex, Path(dicom_dir), seed, index)
    return ex.truth


def generate_cohort(out: str | Path, n_exams: int, seed: int, mi_fraction: float = 0.0,
                    observers: int = 0, jobs: int = 1) -> Path:
    """Write ``out/dicom/<exam>/...`` and ``out/truth/*.parquet`` for ``n_exams`` exams."""
    return write_cohort(out, _generate_and_write, n_exams, seed, mi_fraction, observers, jobs, T.TRUTH_TABLES, log)


def default_jobs() -> int:
    return max(1, min(4, os.cpu_count() or 1))


def truth_label_map(ex: SyntheticExam, view: str, slice_index: int, frame: int) -> np.ndarray:
    """Noise-free labels (vocab.LABELS codes) at the pixel centres of a plane's central depth.

    0 background, 1 LV myocardium, 2 LV cavity, 3 RV cavity; includes the breath-hold shift.
    """
    plane = ex.acq.sax_planes[slice_index] if view == "sax" else ex.acq.lax_planes[view]
    shift = ex.acq.shifts_mm[(view, slice_index)]
    tissue = ex.heart.heart_labels(plane.pixel_grid_mm() - shift, float(ex.acq.activation[frame]))
    out = np.zeros(tissue.shape, dtype=np.uint8)
    out[tissue == an.LV_MYO] = 1
    out[tissue == an.LV_BLOOD] = 2
    out[tissue == an.RV_BLOOD] = 3
    return out
