"""Small synthetic cine MR exams written as DICOM, for ingest tests and benchmarks.

Not the project's synthetic cohort (``cmr_atlas.synth``): a minimal writer with known geometry,
vendor-typical layouts (Siemens: one series per SAX slice; GE: one SAX series, implicit VR, no
SliceLocation), a 3-plane localizer, 2CH and 4CH cines, and options for enhanced multi-frame files
and compressed transfer syntaxes.  Geometry: the LV long axis (base to apex) is ``LONG_AXIS``; the
RV lies along ``rv`` from the LV, the 4CH plane contains it and the 2CH plane is perpendicular.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sequence import Sequence
from pydicom.uid import (
    ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid,
)

from cmr_atlas.core.geometry import SlicePlane

ENHANCED_MR = "1.2.840.10008.5.1.4.1.1.4.1"
LONG_AXIS = np.array([0.6, -0.45, -0.65]) / np.linalg.norm([0.6, -0.45, -0.65])


@dataclass
class ExamSpec:
    vendor: str = "SIEMENS"  # SIEMENS or GE
    n_slices: int = 8
    n_frames: int = 10
    rows: int = 48
    cols: int = 48
    pixel_spacing: float = 3.0
    slice_spacing: float = 10.0
    rr_ms: float = 900.0
    centre: tuple[float, float, float] = (15.0, -40.0, 20.0)
    multiframe: bool = False
    transfer_syntax: str | None = None  # e.g. pydicom.uid.RLELossless; None = uncompressed
    patient_name: str = "Doe^Jane"
    patient_id: str = "PID-000123"
    study_uid: str | None = None
    seed: int = 0
    rv_rotation_deg: float = 0.0  # turn the LV-to-RV direction about the long axis (tests)


def _unit(v) -> np.ndarray:
    v = np.asarray(v, float)
    return v / np.linalg.norm(v)


def exam_planes(spec: ExamSpec) -> dict[str, list[SlicePlane]]:
    """True planes: ``sax`` (base to apex), ``lax_2ch``, ``lax_4ch`` (one each)."""
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
        "sax": sax,
        "lax_4ch": [SlicePlane.centred(c, r, u, ps, shape, 6.0)],
        "lax_2ch": [SlicePlane.centred(c, w, u, ps, shape, 6.0)],
    }


def _localizer_planes(spec: ExamSpec) -> list[SlicePlane]:
    c = np.asarray(spec.centre, float)
    ps, shape = (spec.pixel_spacing * 2, spec.pixel_spacing * 2), (spec.rows, spec.cols)
    e = np.eye(3)
    return [SlicePlane.centred(c, e[0], e[1], ps, shape, 8.0),
            SlicePlane.centred(c, e[1], -e[2], ps, shape, 8.0),
            SlicePlane.centred(c, e[0], -e[2], ps, shape, 8.0)]


def _pixels(spec: ExamSpec, plane: SlicePlane, frame: int, n_frames: int) -> np.ndarray:
    """Image of one plane and frame; noise seeded by geometry so layouts give identical pixels."""
    tag = int(round(float(np.abs(plane.position_mm).sum() + 7 * np.abs(plane.normal).sum()) * 1000))
    rng = np.random.default_rng([spec.seed, tag, frame])
    rr, cc = np.mgrid[: spec.rows, : spec.cols]
    radius = spec.rows * (0.2 + 0.05 * np.cos(2 * np.pi * frame / max(n_frames, 1)))
    d = np.hypot(rr - spec.rows / 2, cc - spec.cols / 2)
    img = 200 + 600 * (d < radius) + rng.normal(0, 20, (spec.rows, spec.cols))
    return np.clip(img, 0, 4095).astype(np.uint16)


def _tm(seconds: float) -> str:
    h, rem = divmod(int(seconds), 3600)
    m, s = divmod(rem, 60)
    return f"{h:02d}{m:02d}{s:02d}.{int(round((seconds % 1) * 1e6)):06d}"


class _Writer:
    def __init__(self, spec: ExamSpec, root: Path):
        self.spec, self.root = spec, root
        self.study_uid = spec.study_uid or generate_uid()
        self.for_uid = generate_uid()
        self.files: list[Path] = []

    def base(self, series_uid: str, series_number: int, description: str, series_time: float) -> Dataset:
        s = self.spec
        ds = Dataset()
        ds.SOPClassUID = MRImageStorage
        ds.Modality = "MR"
        ds.Manufacturer = "SIEMENS" if s.vendor == "SIEMENS" else "GE MEDICAL SYSTEMS"
        ds.ManufacturerModelName = "Sonata" if s.vendor == "SIEMENS" else "Signa CV/i"
        ds.MagneticFieldStrength = 1.5
        ds.PatientName = s.patient_name
        ds.PatientID = s.patient_id
        ds.PatientBirthDate = "19400101"
        ds.AccessionNumber = "ACC98765"
        ds.PatientSex = "F"
        ds.PatientAge = "061Y"
        ds.PatientSize = 1.62
        ds.PatientWeight = 70
        ds.StudyInstanceUID = self.study_uid
        ds.SeriesInstanceUID = series_uid
        ds.FrameOfReferenceUID = self.for_uid
        ds.StudyDate = "20020315"
        ds.SeriesNumber = series_number
        ds.SeriesDescription = description
        ds.SeriesTime = _tm(series_time)
        ds.HeartRate = round(60000 / s.rr_ms)
        ds.NominalInterval = s.rr_ms
        ds.CardiacNumberOfImages = s.n_frames
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
        ds.Rows, ds.Columns = s.rows, s.cols
        return ds

    def save(self, ds: Dataset, path: Path, implicit: bool) -> None:
        meta = FileMetaDataset()
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
        meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
        meta.TransferSyntaxUID = ImplicitVRLittleEndian if implicit else ExplicitVRLittleEndian
        ds.file_meta = meta
        if self.spec.transfer_syntax:
            ds.compress(self.spec.transfer_syntax)
        path.parent.mkdir(parents=True, exist_ok=True)
        ds.save_as(path, enforce_file_format=True)
        self.files.append(path)

    def cine_series(self, folder: str, series_number: int, description: str, planes: list[SlicePlane],
                    file_name, time_offset: float, implicit: bool, slice_location: bool) -> None:
        s = self.spec
        series_uid = generate_uid()
        if s.multiframe:
            for k, plane in enumerate(planes):
                self.enhanced_file(folder, series_uid, series_number, description, plane, k, time_offset)
            return
        for k, plane in enumerate(planes):
            for t in range(s.n_frames):
                ds = self.base(series_uid, series_number, description, 36000 + time_offset)
                ds.SOPInstanceUID = generate_uid()
                ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
                # Siemens numbers instances per series (1..T), GE over the whole series
                ds.InstanceNumber = t + 1 if len(planes) == 1 else k * s.n_frames + t + 1
                ds.ImagePositionPatient = [float(v) for v in plane.position_mm]
                ds.ImageOrientationPatient = plane.dicom_orientation()
                ds.PixelSpacing = [float(v) for v in plane.pixel_spacing_mm]
                ds.SliceThickness = plane.thickness_mm
                if len(planes) > 1:
                    ds.SpacingBetweenSlices = s.slice_spacing
                if slice_location:
                    ds.SliceLocation = float(plane.centre_mm @ plane.normal)
                ds.TriggerTime = t * s.rr_ms / s.n_frames
                ds.PixelData = _pixels(s, plane, t, s.n_frames).tobytes()
                self.save(ds, self.root / folder / file_name(ds.InstanceNumber), implicit)

    def enhanced_file(self, folder, series_uid, series_number, description, plane, k, time_offset) -> None:
        s = self.spec
        ds = self.base(series_uid, series_number, description, 36000 + time_offset)
        ds.SOPClassUID = ENHANCED_MR
        ds.SOPInstanceUID = generate_uid()
        ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
        ds.InstanceNumber = k + 1
        ds.NumberOfFrames = s.n_frames
        shared = Dataset()
        pm = Dataset()
        pm.PixelSpacing = [float(v) for v in plane.pixel_spacing_mm]
        pm.SliceThickness = plane.thickness_mm
        shared.PixelMeasuresSequence = Sequence([pm])
        po = Dataset()
        po.ImageOrientationPatient = plane.dicom_orientation()
        shared.PlaneOrientationSequence = Sequence([po])
        ds.SharedFunctionalGroupsSequence = Sequence([shared])
        per = []
        for t in range(s.n_frames):
            fg = Dataset()
            pp = Dataset()
            pp.ImagePositionPatient = [float(v) for v in plane.position_mm]
            fg.PlanePositionSequence = Sequence([pp])
            cs = Dataset()
            cs.NominalCardiacTriggerDelayTime = t * s.rr_ms / s.n_frames
            fg.CardiacSynchronizationSequence = Sequence([cs])
            per.append(fg)
        ds.PerFrameFunctionalGroupsSequence = Sequence(per)
        ds.PixelData = np.stack([_pixels(s, plane, t, s.n_frames) for t in range(s.n_frames)]).tobytes()
        self.save(ds, self.root / folder / f"enh_{series_number:03d}_{k:03d}.dcm", implicit=False)

    def localizer(self, folder: str, description: str, file_name, implicit: bool) -> None:
        series_uid = generate_uid()
        for i, plane in enumerate(_localizer_planes(self.spec)):
            ds = self.base(series_uid, 1, description, 35000)
            ds.SOPInstanceUID = generate_uid()
            ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NONE"]
            ds.InstanceNumber = i + 1
            ds.ImagePositionPatient = [float(v) for v in plane.position_mm]
            ds.ImageOrientationPatient = plane.dicom_orientation()
            ds.PixelSpacing = [float(v) for v in plane.pixel_spacing_mm]
            ds.SliceThickness = plane.thickness_mm
            ds.PixelData = _pixels(self.spec, plane, 0, 1).tobytes()
            self.save(ds, self.root / folder / file_name(i + 1), implicit)


def write_exam(folder: str | Path, spec: ExamSpec | None = None) -> dict:
    """Write one exam under ``folder``; returns ``{"study_uid", "planes", "files"}``."""
    spec = spec or ExamSpec()
    root = Path(folder)
    w = _Writer(spec, root)
    planes = exam_planes(spec)
    if spec.vendor == "SIEMENS":
        def name(series):
            return lambda n: f"MR.{series}.{n:04d}.IMA"
        w.localizer("localizer_0001", "localizer", name(1), implicit=False)
        for k, plane in enumerate(planes["sax"]):
            sn = 10 + k
            w.cine_series(f"CINE_SA_SL{k + 1}_{sn:04d}", sn, f"CINE_SA_SL{k + 1}", [plane], name(sn),
                          100 + 30 * k, implicit=False, slice_location=True)
        w.cine_series("cine_2ch_0002", 2, "cine_2ch", planes["lax_2ch"], name(2), 40, False, True)
        w.cine_series("cine_4ch_0003", 3, "cine_4ch", planes["lax_4ch"], name(3), 70, False, True)
    else:
        def name(series):
            return lambda n: f"I{n}"
        w.localizer("S1", "3-plane loc", name(1), implicit=True)
        w.cine_series("S2", 2, "FGRE 2CH", planes["lax_2ch"], name(2), 40, True, False)
        w.cine_series("S3", 3, "FGRE 4CH", planes["lax_4ch"], name(3), 70, True, False)
        w.cine_series("S5", 5, "SAX FGRE CINE", planes["sax"], name(5), 100, True, False)
    return {"study_uid": w.study_uid, "planes": planes, "files": w.files}


def write_cohort(dicom_dir: str | Path, n_exams: int, seed: int = 0, **spec_kwargs) -> list[dict]:
    """``n_exams`` exams in folders ``EXAM0000``..., alternating Siemens and GE layouts."""
    out = []
    for i in range(n_exams):
        spec = ExamSpec(vendor="SIEMENS" if i % 2 == 0 else "GE", seed=seed + i,
                        patient_id=f"PID-{seed:03d}-{i:04d}", **spec_kwargs)
        out.append(write_exam(Path(dicom_dir) / f"EXAM{i:04d}", spec))
    return out
