"""Faults injected into a written synthetic cohort, with the outcome ingest must report.

:func:`inject_faults` picks ``round(fraction * n)`` exam folders (seeded) and applies one fault to
each, cycling through :data:`FAULT_KINDS` in a seeded order so that every kind occurs once there are
enough exams.  It returns the ``faults`` truth table: ``exam`` (folder name), ``fault``,
``expected_status`` and ``expected_qc_reason``.

``expected_qc_reason`` is matched against ingest's ``qc_reason`` as follows: for a failed exam it
is the prefix of the failure reason (``corrupt_pixel_data`` matches ``corrupt_pixel_data: file 17
(...)``); for an ok exam it is one of the ``;``-separated warnings; null means the fault must leave
no trace in ``qc_reason`` (same outcome as the clean exam).

The target files are found by reading the exam's headers with ingest's own view selection
(:mod:`cmr_atlas.dicom.views`) and series typing (:mod:`cmr_atlas.dicom.series_types`); the
expected outcomes are fixed here, independently of them.

Clinical exams (``inject_faults(..., clinical_exams=...)``) draw among :func:`clinical_fault_names`:
the faults of the clinical series (:data:`CLINICAL_FAULT_KINDS`: a truncated perfusion series, a
TI scout without InversionTime, LGE without a scout, T1 maps without units) and the legacy ones.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from pathlib import Path

import numpy as np
import pandas as pd
import pydicom
from pydicom.uid import generate_uid

from cmr_atlas.dicom.scan import scan_folder
from cmr_atlas.core.tables import Column, TableSchema, register, write_table
from cmr_atlas.dicom.views import MIN_SAX_SLICES, ViewSelection, select_views

FAULTS = register(TableSchema(
    name="faults", group="truth", row="damaged exam",
    description=(
        "Faults injected after the cohort was written (`synth --faults`), with the outcome ingest "
        "must report. expected_qc_reason is the prefix of a failure reason, one of the ';'-separated "
        "warnings of an ok exam, or null (same qc_reason as the undamaged exam)."
    ),
    columns=(
        Column("exam", "str", "exam folder name under dicom/", nullable=False),
        Column("fault", "str", "fault kind (cmr_atlas.synth.faults.FAULT_KINDS, CLINICAL_FAULT_KINDS); "
               "'<kind>:not_applied' when it could not be applied", nullable=False),
        Column("expected_status", "str", "ok or failed"),
        Column("expected_qc_reason", "str", "expected failure-reason prefix or warning; null = no trace"),
    ),
))
FAULT_COLUMNS = FAULTS.column_names


def _selection(folder: Path) -> ViewSelection:
    scan = scan_folder(folder)
    by_study: dict[str, list] = {}
    for h in scan.images:
        by_study.setdefault(h.study_uid, []).append(h)
    if not by_study:
        raise ValueError("no DICOM images")
    return select_views(max(by_study.values(), key=len))


def _sax(sel: ViewSelection):
    if not sel.sax:
        raise ValueError("no SAX stack")
    return sel.sax


def _files(images) -> list[Path]:
    return sorted({h.path for h in images})


def _max_series_number(sel: ViewSelection) -> int:
    return max((s.series_number or 0) for s in sel.series)


def truncated_file(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """Cut a mid-stack SAX file inside its pixel data."""
    sax = _sax(_selection(folder))
    plane = sax[len(sax) // 2]
    path = plane.images[int(rng.integers(plane.n_frames))].path
    ds = pydicom.dcmread(path, force=True)
    n_pixel = len(ds.PixelData)
    size = path.stat().st_size
    with open(path, "r+b") as fh:
        fh.truncate(size - n_pixel // 2)
    return "failed", "corrupt_pixel_data"


def missing_slice(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """Delete every file of one mid-stack SAX slice: a gap in an otherwise fine stack."""
    sax = _sax(_selection(folder))
    k = int(rng.integers(1, len(sax) - 1))
    for path in _files(sax[k].images):
        path.unlink()
    if len(sax) - 1 < MIN_SAX_SLICES:
        return "failed", "no_sax_stack"
    return "ok", "slice_gap"


def _copy_series(images, folder: Path, series_number: int, time_shift_s: float, out_dir: Path,
                 keep_first_only: bool = False) -> None:
    series_uid = generate_uid()
    files = _files(images)[:1] if keep_first_only else _files(images)
    out_dir.mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(files):
        ds = pydicom.dcmread(path, force=True)
        ds.SeriesInstanceUID = series_uid
        ds.SOPInstanceUID = generate_uid()
        if getattr(ds, "file_meta", None) is not None:
            ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        ds.SeriesNumber = series_number
        t = str(ds.get("SeriesTime", "") or "120000")
        try:
            secs = int(t[:2]) * 3600 + int(t[2:4]) * 60 + float(t[4:] or 0) + time_shift_s
            ds.SeriesTime = f"{int(secs // 3600) % 24:02d}{int(secs % 3600 // 60):02d}{secs % 60:09.6f}"
        except ValueError:
            pass
        if keep_first_only:
            ds.SeriesDescription = "T1 single shot"
            ds.CardiacNumberOfImages = 1
        ds.save_as(out_dir / f"IMG{i:05d}")


def duplicated_series(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """Repeat the series of a mid-stack SAX slice (complete, later SeriesNumber and time)."""
    sel = _selection(folder)
    sax = _sax(sel)
    key = sax[len(sax) // 2].series_key
    series = next(s for s in sel.series if s.key == key)
    _copy_series(series.images, folder, _max_series_number(sel) + 100, 600, folder / "repeat_series")
    return "ok", "repeated_series"


def non_cine_series(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """An extra single-frame series (not cine): ignored."""
    sel = _selection(folder)
    sax = _sax(sel)
    _copy_series(sax[len(sax) // 2].images, folder, _max_series_number(sel) + 200, 900,
                 folder / "single_frame", keep_first_only=True)
    return "ok", None


def missing_lax_view(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """Delete the 2CH or the 4CH series: the exam stays usable with the other LAX view."""
    sel = _selection(folder)
    views = sorted(sel.lax)
    if not views:
        raise ValueError("no LAX view")
    view = views[int(rng.integers(len(views)))]
    key = sel.lax[view].series_key
    series = next(s for s in sel.series if s.key == key)
    for path in _files(series.images):
        path.unlink()
    if len(views) == 1:
        return "failed", "no_lax_view"
    return "ok", f"missing_{view[4:]}"


def reversed_slice_order(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """InstanceNumbers (and, for one series per slice, SeriesNumbers) of the SAX stack reversed."""
    sel = _selection(folder)
    sax = _sax(sel)
    keys = list(dict.fromkeys(p.series_key for p in sax))
    by_key = {s.key: s for s in sel.series}
    numbers = [by_key[k].series_number for k in keys]
    new_number = dict(zip(keys, numbers[::-1]))
    for key in keys:
        images = by_key[key].images
        inst = sorted({h.instance_number for h in images if h.instance_number is not None})
        mapping = dict(zip(inst, inst[::-1]))
        for path in _files(images):
            ds = pydicom.dcmread(path, force=True)
            if "InstanceNumber" in ds and ds.InstanceNumber is not None:
                ds.InstanceNumber = mapping.get(int(ds.InstanceNumber), ds.InstanceNumber)
            if new_number[key] is not None:
                ds.SeriesNumber = new_number[key]
            ds.save_as(path)
    return "ok", None


def text_file(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """A stray text file among the images."""
    (folder / "README scan notes.txt").write_text("scanned on the old Sonata, see paper log\n")
    return "ok", None


def odd_file_name(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """A SAX file renamed with spaces and non-ASCII characters."""
    sax = _sax(_selection(folder))
    path = _files(sax[0].images)[0]
    path.rename(path.with_name("Bild 1 – Schnitt ü ñ 心"))
    return "ok", None


def description_traversal(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """SeriesDescription of every series prefixed with ``../../`` (must never reach a path)."""
    sel = _selection(folder)
    for s in sel.series:
        for path in _files(s.images):
            ds = pydicom.dcmread(path, force=True)
            ds.SeriesDescription = "../../" + str(ds.get("SeriesDescription", "") or "")
            ds.save_as(path)
    return "ok", None


def _typed(folder: Path, *kinds: str) -> list:
    """The series of an exam folder that ingest's series typing gives one of ``kinds``."""
    found = [s for s in _selection(folder).series if s.type is not None and s.type.kind in kinds]
    if not found:
        raise ValueError(f"no {'/'.join(kinds)} series")
    return found


def _has(folder: Path, *kinds: str) -> bool:
    return any(s.type is not None and s.type.kind in kinds for s in _selection(folder).series)


def _remove_element(paths, keyword: str) -> None:
    """Delete a DICOM attribute from every file of ``paths``."""
    for path in paths:
        ds = pydicom.dcmread(path, force=True)
        if keyword in ds:
            delattr(ds, keyword)
        ds.save_as(path)


def truncated_perfusion(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """The last 15-30 heartbeats of a perfusion series missing (every plane: the scan was stopped)."""
    series = _typed(folder, "perfusion")
    s = series[int(rng.integers(len(series)))]
    frames = min((p.n_frames for p in s.planes), default=0)
    if frames < 40:
        raise ValueError("perfusion series too short to truncate")
    keep = frames - int(rng.integers(15, 31))  # heartbeats kept
    for p in s.planes:
        for h in sorted(p.images, key=lambda h: h.acquisition_time_s or 0.0)[keep:]:
            h.path.unlink(missing_ok=True)
    return "ok", "perfusion_truncated"


def scout_without_inversion_time(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """InversionTime removed from every image of the TI scout: no longer a scout (ingest says why)."""
    series = _typed(folder, "ti_scout")
    lge = _has(folder, "lge", "lge_psir")
    for s in series:
        _remove_element(_files(s.images), "InversionTime")
    return "ok", ("no_ti_scout" if lge else None)


def lge_without_scout(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """The TI scout deleted: the LGE series are still typed, the exam is flagged."""
    _typed(folder, "lge", "lge_psir")
    for s in _typed(folder, "ti_scout"):
        for path in _files(s.images):
            path.unlink()
    return "ok", "no_ti_scout"


def t1map_without_units(folder: Path, rng: np.random.Generator) -> tuple[str, str | None]:
    """RealWorldValueMappingSequence removed from every T1 map: still a T1 map, flagged no units."""
    for s in _typed(folder, "t1map"):
        _remove_element(_files(s.images), "RealWorldValueMappingSequence")
    return "ok", "t1map_no_units"


FAULT_KINDS: dict[str, Callable[[Path, np.random.Generator], tuple[str, str | None]]] = {
    "truncated_file": truncated_file,
    "missing_slice": missing_slice,
    "duplicated_series": duplicated_series,
    "non_cine_series": non_cine_series,
    "missing_lax_view": missing_lax_view,
    "reversed_slice_order": reversed_slice_order,
    "text_file": text_file,
    "odd_file_name": odd_file_name,
    "description_traversal": description_traversal,
}


# Faults of the clinical series (found by ingest's series typing), with their expected outcomes.
CLINICAL_FAULT_KINDS: dict[str, Callable[[Path, np.random.Generator], tuple[str, str | None]]] = {
    "truncated_perfusion": truncated_perfusion,
    "scout_without_inversion_time": scout_without_inversion_time,
    "lge_without_scout": lge_without_scout,
    "t1map_without_units": t1map_without_units,
}
_ALL_FAULTS = {**FAULT_KINDS, **CLINICAL_FAULT_KINDS}


def clinical_fault_names() -> list[str]:
    """The faults a clinical exam draws among: the clinical ones, then every legacy one (they act
    on the cine views, which a clinical exam has too)."""
    return [*CLINICAL_FAULT_KINDS, *FAULT_KINDS]


def apply_fault(folder: Path, fault: str, seed: int = 0) -> tuple[str, str | None]:
    """Apply one named fault (legacy or clinical) to an exam folder; returns (expected_status,
    expected_qc_reason)."""
    return _ALL_FAULTS[fault](Path(folder), np.random.default_rng(seed))


def inject_faults(dicom_dir: Path, exam_folders: list[str], fraction: float, seed: int,
                  clinical_exams: Collection[str] = ()) -> pd.DataFrame:
    """Apply one fault to each of ``round(fraction * len(exam_folders))`` seeded exams.

    Legacy exams cycle through :data:`FAULT_KINDS` in a seeded order; exams named in
    ``clinical_exams`` cycle through :func:`clinical_fault_names` in an order of their own (from a
    separate stream, so a legacy-only cohort draws exactly as before).  Returns the faults table
    (columns :data:`FAULT_COLUMNS`).  A fault that cannot be applied to an exam (no SAX stack to
    damage, no perfusion series, say) is recorded as ``not_applied`` with null expectations.
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError("fault fraction must be in [0, 1]")
    rng = np.random.default_rng(seed)
    folders = sorted(exam_folders)
    n = int(round(fraction * len(folders)))
    chosen = sorted(rng.choice(len(folders), size=n, replace=False).tolist()) if n else []
    order = list(rng.permutation(list(FAULT_KINDS)))
    clinical_order = list(np.random.default_rng([seed, 13]).permutation(clinical_fault_names()))
    clinical = set(clinical_exams)
    rows = []
    n_legacy = n_clinical = 0
    for i in chosen:
        if folders[i] in clinical:
            name = str(clinical_order[n_clinical % len(clinical_order)])
            n_clinical += 1
        else:
            name = str(order[n_legacy % len(order)])
            n_legacy += 1
        folder = Path(dicom_dir) / folders[i]
        try:
            status, reason = apply_fault(folder, name, seed=int(rng.integers(2**31)))
        except (ValueError, OSError, StopIteration):
            name, status, reason = f"{name}:not_applied", None, None
        rows.append({"exam": folders[i], "fault": name, "expected_status": status, "expected_qc_reason": reason})
    return pd.DataFrame(rows, columns=FAULT_COLUMNS)


def write_faults(cohort_dir: str | Path, exam_folders: list[str], fraction: float, seed: int,
                 clinical_exams: Collection[str] = ()) -> pd.DataFrame:
    """Damage a written cohort (:func:`inject_faults` on ``<cohort_dir>/dicom``) and write the
    faults table to ``<cohort_dir>/truth/faults.parquet``; returns it."""
    df = inject_faults(Path(cohort_dir) / "dicom", exam_folders, fraction, seed, clinical_exams)
    write_table(df, Path(cohort_dir) / "truth" / "faults.parquet", FAULTS)
    return df


def outcome_matches(expected_status: str, expected_reason: str | None, status: str, qc_reason: str | None,
                    clean_qc_reason: str | None = None) -> bool:
    """Whether an ingest outcome is what the faults table expects (rules in the module docstring)."""
    if status != expected_status:
        return False
    if expected_reason is None:
        return (qc_reason or None) == (clean_qc_reason or None)
    if status == "failed":
        return bool(qc_reason) and qc_reason.startswith(expected_reason)
    return expected_reason in (qc_reason or "").split(";")
