"""Small cine exams with an exactly known geometry, written as DICOM, for the ingest tests (through
the fixtures of conftest.py) and benchmarks/ingest.py.

The files are written by :mod:`cmr_atlas.synth.dicom_writer` (headers, vendor layouts: Siemens one
series per SAX slice with SliceLocation and explicit VR, GE one SAX series with implicit VR and no
SliceLocation). On top of it, what ingest tests need and the synthetic cohort never makes: planes
known exactly (the LV long axis is ``LONG_AXIS``; the RV lies along ``rv`` from the LV, which tests
may turn; the 4CH plane contains it, the 2CH plane is perpendicular), a 3-plane localizer, plain
descriptions, enhanced multi-frame files and compressed transfer syntaxes.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.uid import generate_uid

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth.dicom_writer import PatientHeader, SeriesSpec, stored_geometry
from cmr_atlas.synth.dicom_writer import write_exam as write_series

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
LONG_AXIS = np.array([0.6, -0.45, -0.65]) / np.linalg.norm([0.6, -0.45, -0.65])
MANUFACTURER = {"SIEMENS": "SIEMENS", "GE": "GE MEDICAL SYSTEMS"}
# (series number, description) per vendor and role; "{k}" is the SAX slice number from 1
SERIES = {
    "SIEMENS": {"localizer": (1, "localizer"), "lax_2ch": (2, "cine_2ch"), "lax_4ch": (3, "cine_4ch"),
                "sax": (10, "CINE_SA_SL{k}")},
    "GE": {"localizer": (1, "3-plane loc"), "lax_2ch": (2, "FGRE 2CH"), "lax_4ch": (3, "FGRE 4CH"),
           "sax": (5, "SAX FGRE CINE")},
}


@dataclass
class ExamSpec:
    vendor: str = "SIEMENS"  # SIEMENS or GE
    n_slices: int = 8
    n_frames: int = 10
    rows: int = 48
    cols: int = 48
    pixel_spacing: float = 3.0
    slice_spacing: float = 10.0  # plane spacing; the files say SpacingBetweenSlices 10 whatever this is
    rr_ms: float = 900.0
    centre: tuple[float, float, float] = (15.0, -40.0, 20.0)
    multiframe: bool = False  # one enhanced MR file per cine plane
    transfer_syntax: str | None = None  # e.g. pydicom.uid.RLELossless; None = uncompressed
    patient_name: str = "Doe^Jane"
    patient_id: str = "PID-000123"
    study_uid: str | None = None
    seed: int = 0
    rv_rotation_deg: float = 0.0  # turn the LV-to-RV direction about the long axis


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def _stored(plane: SlicePlane) -> SlicePlane:
    """The plane as the files hold it (the writer rounds the geometry): truth = what ingest reads."""
    ipp, iop, spacing = stored_geometry(plane)
    return SlicePlane.from_dicom(np.array(ipp), np.array(iop), tuple(spacing), plane.shape, plane.thickness_mm)


def exam_planes(spec: ExamSpec) -> dict[str, list[SlicePlane]]:
    """True planes, as stored: ``sax`` (base to apex), ``lax_2ch``, ``lax_4ch`` (one each)."""
    u = LONG_AXIS
    r = np.array([-1.0, -1.0, 0.2])
    r = _unit(r - (r @ u) * u)
    a = np.radians(spec.rv_rotation_deg)
    r = np.cos(a) * r + np.sin(a) * np.cross(u, r)
    w = np.cross(u, r)
    c = np.asarray(spec.centre, float)
    shape = (spec.rows, spec.cols)
    ps = (spec.pixel_spacing, spec.pixel_spacing)
    sax = [
        SlicePlane.centred(c + (k - (spec.n_slices - 1) / 2) * spec.slice_spacing * u, r, w, ps, shape, 6.0)
        for k in range(spec.n_slices)
    ]
    return {
        "sax": [_stored(p) for p in sax],
        "lax_4ch": [_stored(SlicePlane.centred(c, r, u, ps, shape, 6.0))],
        "lax_2ch": [_stored(SlicePlane.centred(c, w, u, ps, shape, 6.0))],
    }


def _localizer_planes(spec: ExamSpec) -> list[SlicePlane]:
    c = np.asarray(spec.centre, float)
    ps, shape = (spec.pixel_spacing * 2, spec.pixel_spacing * 2), (spec.rows, spec.cols)
    e = np.eye(3)
    return [SlicePlane.centred(c, e[0], e[1], ps, shape, 8.0),
            SlicePlane.centred(c, e[1], -e[2], ps, shape, 8.0),
            SlicePlane.centred(c, e[0], -e[2], ps, shape, 8.0)]


def _pixels(spec: ExamSpec, plane: SlicePlane, n_frames: int) -> np.ndarray:
    """(T, R, C) images of one plane; noise seeded by geometry so layouts give identical pixels."""
    tag = int(round(float(np.abs(plane.position_mm).sum() + 7 * np.abs(plane.normal).sum()) * 1000))
    rr, cc = np.mgrid[: spec.rows, : spec.cols]
    d = np.hypot(rr - spec.rows / 2, cc - spec.cols / 2)
    out = []
    for frame in range(n_frames):
        rng = np.random.default_rng([spec.seed, tag, frame])
        radius = spec.rows * (0.2 + 0.05 * np.cos(2 * np.pi * frame / max(n_frames, 1)))
        img = 200 + 600 * (d < radius) + rng.normal(0, 20, (spec.rows, spec.cols))
        out.append(np.clip(img, 0, 4095).astype(np.uint16))
    return np.stack(out)


def _header(spec: ExamSpec, study_uid: str) -> PatientHeader:
    return PatientHeader(name=spec.patient_name, patient_id=spec.patient_id, birth_date="19400101", sex="F",
                         age_years=61, height_m=1.62, weight_kg=70.0, study_date="20020315",
                         accession="ACC98765", study_uid=study_uid, frame_of_reference_uid=generate_uid(),
                         institution="Test Hospital")


def _series(spec: ExamSpec, planes: dict[str, list[SlicePlane]]) -> list[SeriesSpec]:
    names = SERIES[spec.vendor]
    loc = _localizer_planes(spec)
    out = [SeriesSpec("localizer", names["localizer"][1], names["localizer"][0], loc,
                      [_pixels(spec, p, 1) for p in loc], [0, 1, 2])]
    for view in ("lax_2ch", "lax_4ch"):
        number, description = names[view]
        out.append(SeriesSpec(view, description, number, planes[view],
                              [_pixels(spec, planes[view][0], spec.n_frames)], [0]))
    number, description = names["sax"]
    sax = [(k, p, _pixels(spec, p, spec.n_frames)) for k, p in enumerate(planes["sax"])]
    if spec.vendor == "GE":  # one series holding every slice
        return out + [SeriesSpec("sax", description, number, planes["sax"], [im for *_, im in sax],
                                 list(range(len(sax))))]
    return out + [SeriesSpec("sax", description.format(k=k + 1), number + k, [p], [im], [k]) for k, p, im in sax]


def _to_enhanced(files: list[Path]) -> list[Path]:
    """Each cine plane's single-frame files merged into one enhanced MR file (localizers stay)."""
    groups: dict[tuple, list[pydicom.Dataset]] = {}
    kept = []
    for f in files:
        ds = pydicom.dcmread(f)
        if "TriggerTime" not in ds:
            kept.append(f)
            continue
        groups.setdefault((ds.SeriesInstanceUID, tuple(ds.ImagePositionPatient)), []).append(ds)
        f.unlink()
    index: dict[str, int] = {}
    for (series_uid, _), frames in groups.items():
        k = index[series_uid] = index.get(series_uid, -1) + 1
        frames.sort(key=lambda d: float(d.TriggerTime))
        path = Path(frames[0].filename).parent / f"enh_{frames[0].SeriesNumber:03d}_{k:03d}.dcm"
        _enhanced(frames, k).save_as(path, enforce_file_format=True)
        kept.append(path)
    return kept


def _enhanced(frames: list[pydicom.Dataset], k: int) -> pydicom.Dataset:
    ds = frames[0]
    pm, po = Dataset(), Dataset()
    pm.PixelSpacing, pm.SliceThickness = ds.PixelSpacing, ds.SliceThickness
    po.ImageOrientationPatient = ds.ImageOrientationPatient
    shared = Dataset()
    shared.PixelMeasuresSequence, shared.PlaneOrientationSequence = Sequence([pm]), Sequence([po])
    per = []
    for f in frames:
        fg, pp, cs = Dataset(), Dataset(), Dataset()
        pp.ImagePositionPatient = f.ImagePositionPatient
        cs.NominalCardiacTriggerDelayTime = f.TriggerTime
        fg.PlanePositionSequence, fg.CardiacSynchronizationSequence = Sequence([pp]), Sequence([cs])
        per.append(fg)
    for keyword in ("ImagePositionPatient", "ImageOrientationPatient", "PixelSpacing", "SliceThickness",
                    "TriggerTime", "SliceLocation"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = ENHANCED_MR
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
    ds.InstanceNumber = k + 1
    ds.NumberOfFrames = len(frames)
    ds.SharedFunctionalGroupsSequence = Sequence([shared])
    ds.PerFrameFunctionalGroupsSequence = Sequence(per)
    ds.PixelData = b"".join(f.PixelData for f in frames)
    return ds


def _compress(files: list[Path], transfer_syntax: str) -> None:
    for f in files:
        ds = pydicom.dcmread(f)
        ds.compress(transfer_syntax)
        ds.save_as(f, enforce_file_format=True)


def write_exam(folder: str | Path, spec: ExamSpec | None = None) -> dict:
    """Write one exam under ``folder``; returns ``{"study_uid", "planes", "files"}``."""
    spec = spec or ExamSpec()
    study_uid = spec.study_uid or generate_uid()
    planes = exam_planes(spec)
    trigger_ms = np.arange(spec.n_frames) * spec.rr_ms / spec.n_frames
    # a fresh UID seed per write: the same spec written twice gives two studies, as a rescan would
    files = write_series(Path(folder), _header(spec, study_uid), MANUFACTURER[spec.vendor],
                         _series(spec, planes), trigger_ms, spec.rr_ms, generate_uid(),
                         np.random.default_rng(spec.seed))
    if spec.multiframe:
        files = _to_enhanced(files)
    if spec.transfer_syntax:
        _compress(files, spec.transfer_syntax)
    return {"study_uid": study_uid, "planes": planes, "files": files}


def write_cohort(dicom_dir: str | Path, n_exams: int, seed: int = 0, **spec_kwargs) -> list[dict]:
    """``n_exams`` exams in folders ``EXAM0000``..., alternating Siemens and GE layouts."""
    out = []
    for i in range(n_exams):
        spec = ExamSpec(vendor="SIEMENS" if i % 2 == 0 else "GE", seed=seed + i,
                        patient_id=f"PID-{seed:03d}-{i:04d}", **spec_kwargs)
        out.append(write_exam(Path(dicom_dir) / f"EXAM{i:04d}", spec))
    return out

