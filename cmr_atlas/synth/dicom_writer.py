"""Write a synthetic exam as legacy scanners did: MR Image Storage, one file per slice and frame.

Vendor quirks (both 2000-era 1.5 T):

* SIEMENS (Sonata/Symphony): one series per SAX slice (each slice was its own breath-hold),
  ``SliceLocation`` present, ``InstanceNumber`` 1..T within each series, Explicit VR Little
  Endian, files ``series_NNN/MR.<series>.<instance>.IMA``.
* GE (Signa CV/i): one series holding every SAX slice, no ``SliceLocation``, ``InstanceNumber``
  running over the whole series slice by slice, Implicit VR Little Endian, files ``SE<n>/I<nnnn>``
  without extension.

Series descriptions vary in wording, and a fifth of exams have uninformative long-axis
descriptions, so that view identification has to rely on geometry.  Patient names and ids are
fake but present (de-identification is tested on them).  UIDs are deterministic (derived from the
cohort seed and exam index), so the same seed gives the same bytes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian, MRImageStorage, generate_uid

from cmr_atlas.core.geometry import SlicePlane

_SURNAMES = ["ALVAREZ", "BROWN", "CHEN", "DIALLO", "EVANS", "FISCHER", "GARCIA", "HUANG", "IVANOV",
             "JOHNSON", "KIM", "LOPEZ", "MILLER", "NGUYEN", "OKAFOR", "PATEL", "QUINN", "ROSSI",
             "SMITH", "TANAKA", "WILLIAMS", "YOUNG", "ZHANG"]
_GIVEN = ["ANA", "BEN", "CARLOS", "DEBORAH", "ELENA", "FRANK", "GRACE", "HIRO", "IRENE", "JAMES",
          "KWAME", "LINDA", "MARIA", "NOAH", "OLGA", "PETER", "ROSA", "SAMUEL", "TERESA", "WEI"]

DESCRIPTIONS = {
    "SIEMENS": {
        "localizer": ["localizer", "LOCALIZER", "scout_3plane"],
        "lax_2ch": ["cine_2ch", "CINE 2CH", "cine_vla"],
        "lax_4ch": ["cine_4ch", "CINE 4CH", "cine_hla"],
        "sax": ["cine_sa_sl{k}", "CINE_SAX_{k}", "sa cine {k}"],
        "generic_lax": ["cine_lax_a", "cine_lax_b"],
    },
    "GE MEDICAL SYSTEMS": {
        "localizer": ["3-pl loc", "3 PLANE LOC", "localizer"],
        "lax_2ch": ["FGRE 2CH", "2 CH FASTCARD", "VLA cine"],
        "lax_4ch": ["FGRE 4CH", "4 CH FASTCARD", "HLA cine"],
        "sax": ["SAX FGRE CINE", "SA FASTCARD", "short axis cine"],
        "generic_lax": ["FGRE LAX", "FGRE LAX"],
    },
}
MODELS = {"SIEMENS": ["Sonata", "Symphony"], "GE MEDICAL SYSTEMS": ["Signa CV/i", "Signa LX"],
          "Philips": ["Intera", "Achieva"]}  # clinical series override the model in their headers


def _uid(*parts: object) -> str:
    """Deterministic UID from parts; joined with a separator (generate_uid concatenates its
    entropy sources, so ("1", "10") and ("11", "0") would otherwise collide)."""
    return generate_uid(entropy_srcs=["/".join(str(p) for p in parts)])


@dataclass
class PatientHeader:
    """Fake identifying and demographic header values of one exam."""

    name: str
    patient_id: str
    birth_date: str
    sex: str
    age_years: int
    height_m: float
    weight_kg: float
    study_date: str
    accession: str
    study_uid: str
    frame_of_reference_uid: str
    institution: str


def make_patient_header(rng: np.random.Generator, uid_seed: str, age: float, sex: str, height_cm: float, weight_kg: float) -> PatientHeader:
    study = date(2000, 7, 15) + timedelta(days=int(rng.integers(0, 730)))
    birth = study - timedelta(days=int(age * 365.25))
    return PatientHeader(
        name=f"{rng.choice(_SURNAMES)}^{rng.choice(_GIVEN)}",
        patient_id=f"MESA{int(rng.integers(1000000, 9999999))}",
        birth_date=birth.strftime("%Y%m%d"),
        sex=sex,
        age_years=int(age),
        height_m=round(height_cm / 100.0, 2),
        weight_kg=round(weight_kg, 1),
        study_date=study.strftime("%Y%m%d"),
        accession=f"A{int(rng.integers(10**7, 10**8))}",
        study_uid=_uid(uid_seed, "study"),
        frame_of_reference_uid=_uid(uid_seed, "for"),
        institution=f"MESA Field Center {int(rng.integers(1, 7))}",
    )


@dataclass
class SeriesSpec:
    """One series to write: its images (T, R, C) per plane, and labels.

    ``series_headers`` override the legacy defaults of :func:`_base_dataset` (sequence, timing,
    field strength, ImageType, PixelRepresentation 1 for signed PSIR images, ...) and
    ``frame_headers[k][f]`` add per-image attributes by DICOM keyword (TriggerTime, InversionTime,
    AcquisitionTime, ...); a series with frame headers takes its TriggerTime from them, not from the
    exam's cine timing.  Both empty: the legacy series, byte for byte as before.
    """

    role: str  # localizer, sax, lax_2ch, lax_4ch (the truth; never written as such)
    description: str
    series_number: int
    planes: list[SlicePlane]
    images: list[np.ndarray]  # per plane: (T, R, C) uint16 (int16 where PixelRepresentation is 1)
    slice_indices: list[int]
    series_headers: dict = field(default_factory=dict)
    frame_headers: list[list[dict]] | None = None


def _base_dataset(hdr: PatientHeader, vendor: str, model: str, transfer_syntax: str) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = MRImageStorage
    ds.file_meta.TransferSyntaxUID = transfer_syntax
    ds.SOPClassUID = MRImageStorage
    ds.Modality = "MR"
    ds.Manufacturer = vendor
    ds.ManufacturerModelName = model
    ds.MagneticFieldStrength = 1.5
    ds.InstitutionName = hdr.institution
    ds.PatientName = hdr.name
    ds.PatientID = hdr.patient_id
    ds.PatientBirthDate = hdr.birth_date
    ds.PatientSex = hdr.sex
    ds.PatientAge = f"{hdr.age_years:03d}Y"
    ds.PatientSize = hdr.height_m
    ds.PatientWeight = hdr.weight_kg
    ds.StudyDate = hdr.study_date
    ds.SeriesDate = hdr.study_date
    ds.StudyTime = "093000"
    ds.AccessionNumber = hdr.accession
    ds.ReferringPhysicianName = "REFERRER^SYNTH"
    ds.StudyInstanceUID = hdr.study_uid
    ds.StudyID = "1"
    ds.FrameOfReferenceUID = hdr.frame_of_reference_uid
    ds.BodyPartExamined = "HEART"
    ds.ScanningSequence = "GR"
    ds.SequenceVariant = "SP"
    ds.MRAcquisitionType = "2D"
    ds.RepetitionTime = 9.0
    ds.EchoTime = 4.0
    ds.FlipAngle = 20
    ds.ImagingFrequency = 63.87
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    return ds


def stored_geometry(plane: SlicePlane) -> tuple[list[float], list[float], list[float]]:
    """ImagePositionPatient, ImageOrientationPatient and PixelSpacing as written (rounded)."""
    return ([round(float(v), 4) for v in plane.position_mm],
            [round(v, 6) for v in plane.dicom_orientation()],
            [round(plane.pixel_spacing_mm[0], 6), round(plane.pixel_spacing_mm[1], 6)])


def write_exam(
    out_dir: Path, hdr: PatientHeader, vendor: str, series: list[SeriesSpec], trigger_times_ms: np.ndarray,
    rr_ms: float, uid_seed: str, rng: np.random.Generator,
) -> list[Path]:
    """Write every series of one exam under ``out_dir``; returns the written paths."""
    siemens = vendor == "SIEMENS"
    model = str(rng.choice(MODELS[vendor]))
    ts = ExplicitVRLittleEndian if siemens else ImplicitVRLittleEndian
    written: list[Path] = []
    ge_running = 1
    for s in series:
        series_uid = _uid(uid_seed, "series", s.series_number)
        folder = out_dir / (f"series_{s.series_number:03d}" if siemens else f"SE{s.series_number}")
        folder.mkdir(parents=True, exist_ok=True)
        n_frames = s.images[0].shape[0]
        instance = 1
        for k, (plane, imgs, sl) in enumerate(zip(s.planes, s.images, s.slice_indices)):
            for f in range(n_frames):
                ds = _base_dataset(hdr, vendor, model, ts)
                ds.SeriesInstanceUID = series_uid
                ds.SeriesNumber = s.series_number
                ds.SeriesDescription = s.description
                ds.ProtocolName = s.description
                ds.SeriesTime = f"{10 + s.series_number // 60:02d}{s.series_number % 60:02d}00"
                ds.SOPInstanceUID = _uid(uid_seed, "sop", s.series_number, k, f)
                ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
                ds.InstanceNumber = instance
                ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "NORM"] if s.role != "localizer" else ["ORIGINAL", "PRIMARY", "LOCALIZER"]
                ds.ImagePositionPatient, ds.ImageOrientationPatient, ds.PixelSpacing = stored_geometry(plane)
                ds.SliceThickness = plane.thickness_mm
                if s.role == "sax":
                    ds.SpacingBetweenSlices = 10.0
                if siemens:
                    ds.SliceLocation = round(float(plane.position_mm @ plane.normal), 4)
                if s.role != "localizer" and s.frame_headers is None:
                    ds.TriggerTime = float(trigger_times_ms[f])
                    ds.CardiacNumberOfImages = n_frames
                    ds.NominalInterval = round(rr_ms)
                    ds.HeartRate = int(round(60000.0 / rr_ms))
                for key, value in s.series_headers.items():
                    setattr(ds, key, value)
                if s.frame_headers is not None:
                    for key, value in s.frame_headers[k][f].items():
                        setattr(ds, key, value)
                ds.Rows, ds.Columns = plane.shape
                ds.AcquisitionMatrix = [0, plane.shape[1], plane.shape[0], 0]
                pix = imgs[f]
                ds.WindowCenter = int(np.percentile(pix, 99) / 2)
                ds.WindowWidth = int(np.percentile(pix, 99))
                ds.PixelData = np.ascontiguousarray(pix, dtype="<i2" if ds.PixelRepresentation else "<u2").tobytes()
                if siemens:
                    path = folder / f"MR.{s.series_number}.{instance}.IMA"
                else:
                    path = folder / f"I{ge_running:04d}"
                    ge_running += 1
                ds.save_as(path, enforce_file_format=True)
                written.append(path)
                instance += 1
    return written
