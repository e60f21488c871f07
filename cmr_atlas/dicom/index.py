"""The de-identified exam index: table schemas and the per-folder ingest that fills them.

:func:`ingest_folders` takes top-level folders of a cohort, and for each: scans headers, groups
files into exams by StudyInstanceUID, selects views (:mod:`views`), checks the stack, reads the
pixels of the chosen views into ``<cache_dir>/<exam_id>.npz`` (and every perfusion, AIF, TI-scout,
LGE and T1-map series into the series cache, :mod:`cmr_atlas.core.seriescache`, whether or not the
cine views pass) and returns the rows of the
``exams``, ``series``, ``slices`` and ``exam_keys`` tables (and ``linkage`` rows, which only
:func:`ingest_shard` given a ``linkage_path`` writes).  Every exam ends ``ok`` or ``failed``
with a specific ``qc_reason``; an exception in one exam is caught and recorded, never propagated
(:mod:`cmr_atlas.core.runner`).  :func:`ingest_shard` writes the tables and the ``exam_status``
rows of one shard.

``qc_reason``: for a failed exam, the failure (``no_sax_stack``, ``no_lax_view``,
``inconsistent_frame_count``, ``inconsistent_pixel_geometry``, ``corrupt_pixel_data: file <i> (...)``,
``no_dicom_files``, ``unreadable_folder: <type>``, ``mixed_patients`` (one StudyInstanceUID, several
PatientIDs), ``ingest_error: <type>`` for an unexpected error, see
:mod:`cmr_atlas.core.runner`); for an ok exam, the warnings joined by ``;``
(``missing_2ch``, ``missing_4ch``, ``slice_gap``, ``repeated_series``, ``no_trigger_time``,
``ambiguous_base_apex``, ``sop_uid_collision``, and from series typing ``perfusion_truncated``,
``no_ti_scout``, ``t1map_no_units``) or null.  A missing LAX view is a warning: the LV fit needs at least one
LAX view with mitral-valve points; an exam without any LAX view fails (``no_lax_view``).
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import warnings
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.columns import EXAM_ID, SHIFT_MM, SLICE_PLANE_COLUMNS
from cmr_atlas.core.geometry import plane_to_row
from cmr_atlas.core.imagecache import save_exam_images
from cmr_atlas.core.seriescache import CACHED_KINDS, save_series_images, series_cache_dir, series_cache_path
from cmr_atlas.core.runner import Outcome, attempt, run_exams, status_frame, write_status
from cmr_atlas.core.shards import dicom_root
from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.dicom import deid
from cmr_atlas.dicom.scan import FolderScan, ImageHeader, StudyMeta, scan_folder
from cmr_atlas.dicom.series_read import SeriesReadError, ordered_series, read_series_images
from cmr_atlas.dicom.stack import PixelError, build_exam_images, check_stack
from cmr_atlas.dicom.views import ViewSelection, select_views, slice_gaps

log = logging.getLogger(__name__)

STAGE = "ingest"  # the stage name of the runner's qc_reasons and of the exam_status rows

EXAMS = register(TableSchema(
    name="exams",
    description=(
        "De-identified exam index written by ingest: status, QC reason, acquisition parameters of "
        "the chosen SAX stack, available long-axis views, demographics that are not identifiers."
    ),
    row="exam (one DICOM study)",
    columns=(
        EXAM_ID,
        Column("status", "str", "ok or failed", nullable=False),
        Column("qc_reason", "str", "failure reason (failed) or ';'-separated warnings (ok); null = clean"),
        Column("vendor", "str", "SIEMENS, GE, PHILIPS, ... or OTHER"),
        Column("manufacturer_model", "str", "ManufacturerModelName (sanitised)"),
        Column("field_strength_t", "float", "MagneticFieldStrength", "T"),
        Column("n_sax_slices", "int", "slices of the chosen SAX stack"),
        Column("n_frames", "int", "cine frames per SAX slice"),
        Column("pixel_spacing_mm", "float", "SAX in-plane pixel size (PixelSpacing[0])", "mm"),
        Column("rows", "int", "SAX pixel rows"),
        Column("cols", "int", "SAX pixel columns"),
        Column("slice_thickness_mm", "float", "SAX SliceThickness", "mm"),
        Column("slice_spacing_mm", "float", "median distance between SAX slice positions", "mm"),
        Column("has_2ch", "bool", "a 2-chamber cine was found"),
        Column("has_4ch", "bool", "a 4-chamber cine was found"),
        Column("n_files", "int", "files in the exam's folder"),
        Column("n_files_skipped", "int", "files of the folder that are not readable DICOM images"),
        Column("n_series", "int", "series of the study"),
        Column("heart_rate_bpm", "float", "HeartRate (or 60000 / NominalInterval)", "bpm"),
        Column("rr_ms", "float", "NominalInterval (or 60000 / HeartRate)", "ms"),
        Column("patient_sex", "str", "PatientSex M, F or O"),
        Column("patient_age_years", "float", "PatientAge", "years"),
        Column("patient_size_m", "float", "PatientSize (height)", "m"),
        Column("patient_weight_kg", "float", "PatientWeight", "kg"),
    ),
))

SERIES = register(TableSchema(
    name="series",
    description=(
        "Every series of every ingested exam, with the role ingest gave it and why. The series "
        "description is not stored (free text); only its keyword class is."
    ),
    row="series",
    columns=(
        EXAM_ID,
        Column("series_index", "int", "order of the series in the exam (by SeriesNumber)", nullable=False),
        Column("series_number", "int", "SeriesNumber"),
        Column("role", "str", "sax, lax_2ch, lax_4ch (the selected cine views), lax_3ch (a 3-chamber cine "
               "found, not used by the cine pipeline) or ignored", nullable=False),
        Column("kind", "str", "series type from header physics (cmr_atlas.dicom.series_types): localizer, "
               "cine, perfusion, perfusion_aif, ti_scout, lge, lge_psir, t1map or unknown", nullable=False),
        Column("sequence", "str", "acquisition contrast (cmr_atlas.core.vocab.SEQUENCES): cine_gre, cine_ssfp, "
               "perfusion, ti_scout, lge, t1map; null when not known"),
        Column("post_contrast", "bool", "ContrastBolusAgent present (post-contrast T1 map, LGE, ...)"),
        Column("stress_rest", "str", "perfusion and its AIF series: stress or rest (higher heart rate = stress)"),
        Column("type_reason", "str", "why the kind is unknown, or a caveat of a typed series "
               "(no_units, truncated: ..., no inversion time, ...)"),
        Column("type_evidence", "str", "the header values that decided the kind"),
        Column("plane_views", "str", "views of the series' planes by orientation: sax, lax_2ch, lax_3ch, lax_4ch "
               "or other, '+'-joined (e.g. an LGE long-axis series: lax_2ch+lax_3ch+lax_4ch); null without "
               "a SAX stack"),
        Column("reason", "str", "why ignored (not_cine, localizer, repeat_superseded_by_series_N, ...)"),
        Column("view_evidence", "str", "how the role was decided: parallel_stack, geometry, "
               "geometry+description, geometry(description_disagrees), description(geometry_weak)"),
        Column("description_hint", "str", "keyword class of SeriesDescription: sax, 2ch, 3ch, 4ch, localizer, "
               "ti_scout, t1map, perfusion, lge, other, none"),
        Column("n_images", "int", "images (files, or frames of multi-frame files)"),
        Column("n_planes", "int", "distinct image planes"),
        Column("n_frames", "int", "most frames of any plane of the series"),
        Column("normal_x", "float", "plane normal (first plane), patient x"),
        Column("normal_y", "float", "plane normal, patient y"),
        Column("normal_z", "float", "plane normal, patient z"),
        Column("angle_to_sax_deg", "float", "angle between this series' planes and the SAX planes", "deg"),
        Column("rv_direction_cos", "float", "|normal . LV-to-RV direction in the SAX plane|: ~0 for 4CH, ~1 for 2CH"),
        Column("distance_to_sax_centre_mm", "float", "distance of the plane from the SAX stack centre", "mm"),
    ),
))

SLICES = register(TableSchema(
    name="slices",
    description=(
        "Image planes of the chosen views (the same for every frame): SAX slices ordered base to "
        "apex by geometry, and the LAX planes. Shift columns are filled by the fitting stage."
    ),
    row="image plane",
    columns=(
        *SLICE_PLANE_COLUMNS,
        Column("series_number", "int", "SeriesNumber the plane comes from"),
        Column("n_frames", "int", "cine frames"),
        Column("frames_ordered_by", "str", "trigger_time or instance_number"),
        Column("trigger_time_first_ms", "float", "first TriggerTime", "ms"),
        Column("trigger_time_last_ms", "float", "last TriggerTime", "ms"),
        Column("trigger_time_step_ms", "float", "median TriggerTime step", "ms"),
        Column("position_along_normal_mm", "float", "SAX: plane centre along the base-to-apex normal", "mm"),
        Column("gap_before_mm", "float", "SAX: distance from the previous (more basal) slice", "mm"),
        Column("gap_flag", "bool", "SAX: spacing to the previous slice irregular (> 1.5x or < 1/1.5x median)"),
        *SHIFT_MM,
    ),
))

EXAM_KEYS = register(TableSchema(
    name="exam_keys",
    description=(
        "Keyed hashes (HMAC-SHA256 under exam_id_key) of each exam's linkage keys, so a covariates "
        "table keyed by folder name, StudyInstanceUID or PatientID joins without identifiers."
    ),
    row="exam and key type",
    columns=(
        EXAM_ID,
        Column("key_type", "str", "exam_folder, study_instance_uid or patient_id", nullable=False),
        Column("key_hash", "str", "cmr_atlas.core.ids.keyed_hash(value, exam_id_key)", nullable=False),
    ),
))

LINKAGE = register(TableSchema(
    name="linkage",
    description=(
        "Re-identification table, written only with `linkage: true`: exam_id to StudyInstanceUID and "
        "source folder. Holds identifiers: keep it apart from analysis outputs."
    ),
    row="exam",
    columns=(
        EXAM_ID,
        Column("study_instance_uid", "str", "StudyInstanceUID"),
        Column("source_folder", "str", "top-level folder of the cohort"),
    ),
))

INGEST_TABLES = (EXAMS, SERIES, SLICES, EXAM_KEYS)


@dataclass
class IngestRows:
    exams: list[dict] = field(default_factory=list)
    series: list[dict] = field(default_factory=list)
    slices: list[dict] = field(default_factory=list)
    exam_keys: list[dict] = field(default_factory=list)
    linkage: list[dict] = field(default_factory=list)

    def extend(self, other: "IngestRows") -> None:
        for name in ("exams", "series", "slices", "exam_keys", "linkage"):
            getattr(self, name).extend(getattr(other, name))

    def frames(self) -> dict[str, pd.DataFrame]:
        out = {}
        for schema in (*INGEST_TABLES, LINKAGE):
            rows = getattr(self, schema.name)
            out[schema.name] = pd.DataFrame(rows, columns=schema.column_names) if rows else schema.empty()
        return out


def _exam_row(exam_id: str, meta: StudyMeta | None, n_files: int, n_skipped: int) -> dict:
    row = {c: None for c in EXAMS.column_names}
    row.update(exam_id=exam_id, status="failed", n_files=n_files, n_files_skipped=n_skipped,
               has_2ch=False, has_4ch=False, n_series=0)
    if meta is not None:
        row.update(
            vendor=meta.vendor, manufacturer_model=meta.manufacturer_model,
            field_strength_t=meta.field_strength_t, heart_rate_bpm=meta.heart_rate_bpm, rr_ms=meta.rr_ms,
            patient_sex=meta.patient_sex, patient_age_years=meta.patient_age_years,
            patient_size_m=meta.patient_size_m, patient_weight_kg=meta.patient_weight_kg,
        )
    return row


def _series_rows(exam_id: str, sel: ViewSelection) -> list[dict]:
    rows = []
    for i, s in enumerate(ordered_series(sel.series)):
        n = s.normal
        t = s.type
        rows.append({
            "exam_id": exam_id, "series_index": i, "series_number": s.series_number,
            "role": s.role, "kind": t.kind, "sequence": t.sequence, "post_contrast": t.post_contrast,
            "stress_rest": t.stress_rest, "type_reason": t.reason, "type_evidence": t.evidence,
            "plane_views": s.plane_views,
            "reason": s.reason or None, "view_evidence": s.evidence,
            "description_hint": s.description_hint, "n_images": len(s.images),
            "n_planes": len(s.planes), "n_frames": max((p.n_frames for p in s.planes), default=len(s.images) and 1),
            "normal_x": None if n is None else float(n[0]),
            "normal_y": None if n is None else float(n[1]),
            "normal_z": None if n is None else float(n[2]),
            "angle_to_sax_deg": s.angle_to_sax_deg, "rv_direction_cos": s.rv_cos,
            "distance_to_sax_centre_mm": s.distance_to_sax_centre_mm,
        })
    return rows


def _slice_rows(exam_id: str, sel: ViewSelection, by_key: dict) -> list[dict]:
    rows = []
    gaps, flags, _ = slice_gaps(sel.sax_offsets_mm)
    planes = [("sax", i, p) for i, p in enumerate(sel.sax)] + [(v, 0, p) for v, p in sorted(sel.lax.items())]
    for k, (view, i, p) in enumerate(planes):
        t = p.trigger_times_ms
        finite = t[np.isfinite(t)]
        row = plane_to_row(exam_id, view, i, p.plane)
        is_sax = view == "sax"
        row.update(
            series_number=by_key[p.series_key].series_number, n_frames=p.n_frames,
            frames_ordered_by=p.frames_ordered_by,
            trigger_time_first_ms=float(finite[0]) if len(finite) else None,
            trigger_time_last_ms=float(finite[-1]) if len(finite) else None,
            trigger_time_step_ms=float(np.median(np.diff(finite))) if len(finite) > 1 else None,
            position_along_normal_mm=float(sel.sax_offsets_mm[i]) if is_sax else None,
            gap_before_mm=(None if not is_sax or i == 0 else float(gaps[i])),
            gap_flag=bool(flags[i]) if is_sax else None,
            dx_mm=None, dy_mm=None, dz_mm=None,
        )
        rows.append(row)
    return rows


def _not_cached(row: dict, reason: str) -> None:
    row["type_reason"] = ";".join(r for r in (row["type_reason"], f"not_cached: {reason}") if r)


def _cache_series(sel: ViewSelection, rows: list[dict], exam_id: str, meta: StudyMeta | None,
                  cache_dir: Path) -> None:
    """Write the series cache of every non-cine series the perfusion and TI-scout stages read; a
    series that cannot be read gets ``not_cached: <reason>`` in its row's ``type_reason``."""
    for row, s in zip(rows, ordered_series(sel.series)):
        if s.type is None or s.type.kind not in CACHED_KINDS:
            continue
        try:
            images = read_series_images(s, exam_id, row["series_index"], meta)
        except (SeriesReadError, PixelError) as exc:
            _not_cached(row, str(exc))
            continue
        except Exception as exc:  # noqa: BLE001 - one odd series never costs the exam its cine
            _not_cached(row, f"read_error: {type(exc).__name__}")
            continue
        save_series_images(images, series_cache_path(cache_dir, exam_id, row["series_index"], s.type.kind))


def ingest_study(
    images: list[ImageHeader], exam_id: str, meta: StudyMeta | None, cache_dir: Path | None,
    n_files: int, n_skipped: int, extra_warnings: list[str] | None = None, failure: str | None = None,
) -> IngestRows:
    """Index one study and write its cache file; failures become the exam's qc_reason.

    ``failure``: a reason found before view selection (``mixed_patients``): the series are still
    typed and listed, the exam fails with it.

    A failed exam has no cache file: one left by an earlier run is removed, so the cache always
    matches the ``exams`` table.
    """
    if cache_dir is not None:
        (Path(cache_dir) / f"{exam_id}.npz").unlink(missing_ok=True)
        shutil.rmtree(series_cache_dir(cache_dir, exam_id), ignore_errors=True)
    out = IngestRows()
    row = _exam_row(exam_id, meta, n_files, n_skipped)
    out.exams.append(row)
    sel = select_views(images)
    by_key = {s.key: s for s in sel.series}
    row["n_series"] = len(sel.series)
    out.series = _series_rows(exam_id, sel)
    if cache_dir is not None and failure is None:
        _cache_series(sel, out.series, exam_id, meta, cache_dir)
    row["has_2ch"], row["has_4ch"] = "lax_2ch" in sel.lax, "lax_4ch" in sel.lax
    warnings = list(extra_warnings or []) + list(sel.warnings)
    if failure or sel.failure:
        row["qc_reason"] = failure or sel.failure
        return out
    p0 = sel.sax[0].plane
    _, flags, spacing = slice_gaps(sel.sax_offsets_mm)
    row.update(
        n_sax_slices=len(sel.sax), n_frames=sel.sax[0].n_frames, pixel_spacing_mm=p0.pixel_spacing_mm[0],
        rows=p0.shape[0], cols=p0.shape[1], slice_thickness_mm=p0.thickness_mm or None,
        slice_spacing_mm=spacing,
    )
    failure = check_stack(sel)
    if failure is None and not sel.lax:
        failure = "no_lax_view"
    if failure:
        row["qc_reason"] = failure
        return out
    for view in ("lax_2ch", "lax_4ch"):
        if view not in sel.lax:
            warnings.append(f"missing_{view[4:]}")
    if flags.any():
        warnings.append("slice_gap")
    if any(p.frames_ordered_by != "trigger_time" for p in sel.sax):
        warnings.append("no_trigger_time")
    try:
        images_ = build_exam_images(exam_id, sel)
    except PixelError as exc:
        row["qc_reason"] = str(exc)
        return out
    if cache_dir is not None:
        save_exam_images(images_, Path(cache_dir) / f"{exam_id}.npz")
    row["status"] = "ok"
    row["qc_reason"] = ";".join(warnings) or None
    out.slices = _slice_rows(exam_id, sel, by_key)
    return out


@contextlib.contextmanager
def quiet_pydicom():
    """Silence pydicom's warnings and log messages while reading: they quote element values
    (names, free text) and would carry identifiers into log files."""
    logger = logging.getLogger("pydicom")
    level, propagate = logger.level, logger.propagate
    logger.setLevel(logging.CRITICAL)
    logger.propagate = False
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logger.setLevel(level)
        logger.propagate = propagate


def ingest_folder(root: Path, folder: str, key: str, cache_dir: Path | None, folder_index: int = 0) -> IngestRows:
    """Ingest one top-level folder of a cohort (``.`` = the loose files of ``root``)."""
    with quiet_pydicom():
        return _ingest_folder(root, folder, key, cache_dir, folder_index)


def _failed_folder(folder: str, key: str, reason: str, n_files: int = 0, n_skipped: int = 0,
                   linkage: bool = True) -> IngestRows:
    """The one failed exam of a folder that gave no study (named by the folder's pseudo study)."""
    pseudo = deid.pseudo_study_uid(folder)
    eid = deid.exam_id(pseudo, key)
    out = IngestRows()
    row = _exam_row(eid, None, n_files, n_skipped)
    row["qc_reason"] = reason
    out.exams.append(row)
    out.exam_keys += deid.key_rows(eid, key, folder, pseudo, None)
    if linkage:
        out.linkage.append({"exam_id": eid, "study_instance_uid": None, "source_folder": folder})
    return out


def _ingest_folder(root: Path, folder: str, key: str, cache_dir: Path | None, folder_index: int) -> IngestRows:
    path = Path(root) if folder == "." else Path(root) / folder
    pseudo = deid.pseudo_study_uid(folder)
    try:
        scan: FolderScan = scan_folder(path, recursive=folder != ".", pseudo_study=pseudo)
    except OSError as exc:
        return _failed_folder(folder, key, f"unreadable_folder: {type(exc).__name__}", linkage=False)
    for file_index, reason in scan.rejected:
        log.info("folder %d: file %d skipped (%s)", folder_index, file_index, reason)
    n_skipped = len(scan.rejected)
    if not scan.images:
        out = _failed_folder(folder, key, "no_dicom_files", scan.n_files, n_skipped)
        log.info("folder %d: exam %s failed (no_dicom_files)", folder_index, out.exams[0]["exam_id"])
        return out
    by_study: dict[str, list[ImageHeader]] = {}
    for h in scan.images:
        by_study.setdefault(h.study_uid, []).append(h)
    out = IngestRows()
    for study_uid, images in by_study.items():
        out.extend(_ingest_one_study(scan, study_uid, images, folder, key, cache_dir, folder_index))
    return out


def _ingest_one_study(scan: FolderScan, study_uid: str, images: list[ImageHeader], folder: str, key: str,
                      cache_dir: Path | None, folder_index: int) -> IngestRows:
    """One study of a folder under the runner's failure policy, with its key and linkage rows."""
    eid = deid.exam_id(study_uid, key)
    meta = scan.studies.get(study_uid)
    n_skipped = len(scan.rejected)
    extra = ["sop_uid_collision"] if scan.uid_collisions.get(study_uid) else []
    failure = "mixed_patients" if len({p for p in scan.patients.get(study_uid, ()) if p}) > 1 else None
    outcome = attempt(eid, partial(ingest_study, images, eid, meta, cache_dir, scan.n_files, n_skipped, extra,
                                   failure), STAGE, log)
    rows = outcome.value
    if not outcome.ok:  # an unexpected error: the exam row alone
        rows = IngestRows()
        row = _exam_row(eid, meta, scan.n_files, n_skipped)
        row["qc_reason"] = outcome.qc_reason
        rows.exams.append(row)
    rows.exam_keys += deid.key_rows(eid, key, folder, study_uid, meta.patient_id if meta else None)
    rows.linkage.append({
        "exam_id": eid, "source_folder": folder,
        "study_instance_uid": None if study_uid == deid.pseudo_study_uid(folder) else study_uid,
    })
    e = rows.exams[0]
    log.info("folder %d: exam %s %s%s", folder_index, eid, e["status"],
             f" ({e['qc_reason']})" if e["qc_reason"] else "")
    return rows


def ingest_folders(root: Path, folders: list[str], key: str, cache_dir: Path | None) -> IngestRows:
    """Ingest several top-level folders; folder indices in log lines follow ``folders``' order.

    A folder whose ingest raises unexpectedly (outside its studies) becomes one failed exam named
    by the folder's pseudo study, ``qc_reason = "ingest_error: <type>"``.
    """
    index = {f: i for i, f in enumerate(folders)}
    outcomes = run_exams(
        folders, lambda f: ingest_folder(root, f, key, cache_dir, folder_index=index[f]), STAGE, log,
        exam_id=lambda f: deid.exam_id(deid.pseudo_study_uid(f), key), unit="folders",
        failed=lambda o: not o.ok or any(e["status"] != "ok" for e in o.value.exams),
    )
    out = IngestRows()
    for folder, o in zip(folders, outcomes):
        out.extend(o.value if o.ok else _failed_folder(folder, key, o.qc_reason))
    return out


def ingest_status(rows: IngestRows) -> pd.DataFrame:
    """``exam_status`` rows of ingest: one per exam, from its ``exams`` row."""
    return status_frame([Outcome(e["exam_id"], e["status"], e["qc_reason"]) for e in rows.exams], STAGE)


def ingest_shard(cohort_dir: str | Path, folders: list[str], key: str, cache_dir: str | Path | None, *,
                 exams_path: str | Path, series_path: str | Path, slices_path: str | Path,
                 exam_keys_path: str | Path, status_path: str | Path,
                 linkage_path: str | Path | None = None) -> IngestRows:
    """Ingest some top-level folders of a cohort and write every ingest table and the status rows.

    ``cache_dir`` None: index only, no image cache.  ``linkage_path`` None: no linkage table.
    """
    rows = ingest_folders(dicom_root(cohort_dir), folders, key, None if cache_dir is None else Path(cache_dir))
    frames = rows.frames()
    paths = {"exams": exams_path, "series": series_path, "slices": slices_path, "exam_keys": exam_keys_path,
             "linkage": linkage_path}
    for schema in (*INGEST_TABLES, LINKAGE):
        if paths[schema.name] is not None:
            write_table(frames[schema.name], paths[schema.name], schema)
    write_status(ingest_status(rows), status_path)
    n_ok = sum(r["status"] == "ok" for r in rows.exams)
    log.info("ingest: %d folders, %d exams ok, %d failed", len(folders), n_ok, len(rows.exams) - n_ok)
    return rows
