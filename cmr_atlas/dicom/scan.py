"""Header scan: every file of an exam folder, whatever its name, read as DICOM or rejected with a reason.

Only headers are read here: the pixel data element is deferred (its value is not read), and for
an uncompressed little-endian single-frame image its position in the file is kept
(:class:`RawPixels`), so that pixels are read later, for the chosen series only
(:mod:`cmr_atlas.dicom.stack`), with one seek and no second parse.  One :class:`ImageHeader` per image: a classic one-file-per-
image file gives one, an enhanced multi-frame file gives one per frame (geometry and trigger delay
from the per-frame functional groups).

Privacy: identifiers (PatientID, StudyInstanceUID) are only kept in :class:`StudyMeta` for keyed
hashing; names, birth dates, accession numbers and free text are never extracted.  Files are
referred to by their index in the sorted file list of the folder, never by name, in reasons and logs.
"""

from __future__ import annotations

import io
import math
import os
import re
from dataclasses import dataclass, field
from functools import lru_cache, partial
from pathlib import Path

import numpy as np
import pydicom
from pydicom.dataelem import RawDataElement
from pydicom.errors import InvalidDicomError

from cmr_atlas.dicom.elements import element_value


@dataclass(frozen=True)
class RawPixels:
    """Where an uncompressed little-endian single-frame image's stored values lie in its file."""

    offset: int  # file position of the first pixel value
    dtype: str  # numpy dtype of the stored values: <u2, <i2, u1 or i1
    slope: float  # RescaleSlope (1 when absent)
    intercept: float  # RescaleIntercept (0 when absent)


@dataclass
class ImageHeader:
    """Header fields of one image (one file, or one frame of a multi-frame file)."""

    file_index: int
    frame: int | None  # frame within a multi-frame file, None for single-frame files
    path: Path
    study_uid: str
    series_uid: str
    series_number: int | None
    series_time_s: float | None  # SeriesTime (or AcquisitionTime) in seconds since midnight
    description_hint: str
    sop_uid: str
    instance_number: int | None
    position: np.ndarray | None  # ImagePositionPatient
    orientation: np.ndarray | None  # ImageOrientationPatient (6)
    pixel_spacing: tuple[float, float] | None
    rows: int | None
    cols: int | None
    thickness_mm: float | None
    spacing_between_mm: float | None
    trigger_time_ms: float | None
    localizer: bool = False
    # acquisition values for series typing (:mod:`cmr_atlas.dicom.series_types`); defaults = absent
    inversion_time_ms: float | None = None  # InversionTime, only when a finite value > 0
    inversion_time_bad: bool = False  # InversionTime present but not a finite number >= 0
    acquisition_time_s: float | None = None  # AcquisitionTime (else ContentTime), s since midnight
    image_type: tuple[str, ...] = ()  # ImageType values, upper case
    scanning_sequence: tuple[str, ...] = ()  # ScanningSequence values (GR, IR, SE, ...)
    sequence_variant: tuple[str, ...] = ()  # SequenceVariant values (SK, SS, SP, MP, ...)
    sequence_name: str | None = None  # SequenceName (sanitised)
    repetition_time_ms: float | None = None
    echo_time_ms: float | None = None
    flip_angle_deg: float | None = None
    contrast_agent: bool = False  # ContrastBolusAgent present and not blank
    map_units: str | None = None  # RealWorldValueMappingSequence units CodeValue (e.g. "ms")
    map_label: str | None = None  # RealWorldValueMappingSequence LUTLabel (e.g. "T1")
    pixel_signed: bool = False  # PixelRepresentation 1
    image_flip_angle_deg: float | None = None  # this image's FlipAngle (perfusion proton-density frames differ)
    raw_pixels: RawPixels | None = None  # None: pixels go through pydicom's decoders

    @property
    def has_geometry(self) -> bool:
        return (
            self.position is not None and self.orientation is not None
            and self.pixel_spacing is not None and bool(self.rows) and bool(self.cols)
        )


@dataclass
class StudyMeta:
    """Exam-level attributes, from the first image header of a study."""

    study_uid: str
    patient_id: str | None  # kept only to be hashed into exam_keys
    vendor: str | None
    manufacturer_model: str | None
    field_strength_t: float | None
    heart_rate_bpm: float | None
    rr_ms: float | None
    cardiac_number_of_images: int | None
    patient_sex: str | None
    patient_age_years: float | None
    patient_size_m: float | None
    patient_weight_kg: float | None


@dataclass
class FolderScan:
    """Result of scanning one exam folder."""

    n_files: int
    images: list[ImageHeader] = field(default_factory=list)
    rejected: list[tuple[int, str]] = field(default_factory=list)  # (file_index, reason)
    studies: dict[str, StudyMeta] = field(default_factory=dict)
    uid_collisions: dict[str, int] = field(default_factory=dict)  # study -> images sharing a SOP UID
    patients: dict[str, set] = field(default_factory=dict)  # study -> PatientIDs (only counted, never stored)


_HINT_PATTERNS = (  # first match wins: sequence words before view words ("LGE 2CH" is lge)
    ("ti_scout", re.compile(r"ti[ _-]?(scout|find|select)|look[ _-]?locker")),
    ("t1map", re.compile(r"t1[ _-]?map|molli")),
    ("perfusion", re.compile(r"perf|first[ _-]?pass|(^|[^a-z])(fpp|aif|stress|rest)([^a-z]|$)")),
    ("lge", re.compile(r"(^|[^a-z])(lge|psir|de|delayed|late|viability)([^a-z]|$)")),
    ("localizer", re.compile(r"loc|scout|survey|pilot|3[ _-]?plane|tri[ _-]?plane")),
    ("3ch", re.compile(r"3[ _-]?ch|(^|[^a-z])(three|lvot)([^a-z]|$)")),
    ("2ch", re.compile(r"2[ _-]?ch|(^|[^a-z])two|(^|[^a-z])vla([^a-z]|$)")),
    ("4ch", re.compile(r"4[ _-]?ch|(^|[^a-z])four|(^|[^a-z])hla([^a-z]|$)")),
    ("sax", re.compile(r"(^|[^a-z])(sax?|short)([^a-z]|$)")),
)


def description_hint(description: str | None) -> str:
    """Keyword class of a SeriesDescription: sax, 2ch, 3ch, 4ch, localizer, ti_scout, t1map,
    perfusion, lge, other or none (a hint only: series typing and views rely on header physics).

    Only this class is stored: descriptions are free text and may hold anything.
    """
    if not description or not str(description).strip():
        return "none"
    text = str(description).lower()
    for hint, pattern in _HINT_PATTERNS:
        if pattern.search(text):
            return hint
    return "other"


@lru_cache(maxsize=256)
def _cached_hint(description: str) -> str:
    return description_hint(description)


def _hint(description) -> str:
    """:func:`description_hint`, remembered per description string (every file of a series has
    the same)."""
    return _cached_hint(description) if isinstance(description, str) else description_hint(description)


def list_files(folder: Path) -> list[Path]:
    """All regular files under ``folder`` (recursively), sorted, hidden entries skipped.

    ``folder`` may be the cohort root's loose-file unit: pass ``recursive=False`` through
    :func:`scan_folder` for that.
    """
    out = []
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        out += [Path(dirpath) / f for f in filenames if not f.startswith(".")]
    return sorted(out)


def _float(v) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _int(v) -> int | None:
    f = _float(v)
    return int(round(f)) if f is not None else None


def _floats(v, n: int) -> np.ndarray | None:
    try:
        a = np.array([float(x) for x in v], dtype=float)
    except (TypeError, ValueError):
        return None
    return a if a.shape == (n,) and np.all(np.isfinite(a)) else None


def _positive(v: int | None) -> int | None:
    return v if v is not None and v > 0 else None


def _spacing(v) -> tuple[float, float] | None:
    """PixelSpacing (row, column) in mm; None unless two finite values > 0."""
    a = _floats(v, 2)
    return tuple(a) if a is not None and np.all(a > 0) else None


def _values(v) -> tuple[str, ...]:
    """A multi-valued code string (ImageType, ScanningSequence, ...) as upper-case values."""
    if v is None:
        return ()
    items = v.split("\\") if isinstance(v, (str, bytes)) else v
    try:
        return tuple(str(x).strip().upper()[:32] for x in items)
    except TypeError:
        return (str(v).strip().upper()[:32],)


def _inversion(v) -> tuple[float | None, bool]:
    """(InversionTime in ms when > 0, whether a value was present but unusable).

    Some scanners write 0 on sequences without inversion: 0 is absent, not bad.
    """
    if v is None or (isinstance(v, str) and not v.strip()):
        return None, False
    f = _float(v)
    if f is None or f < 0:
        return None, True
    return (f if f > 0 else None), False


def _real_world_units(ds: pydicom.Dataset) -> tuple[str | None, str | None]:
    """(units CodeValue, LUTLabel) of the first RealWorldValueMappingSequence item, if any."""
    try:
        item = _first(ds, "RealWorldValueMappingSequence")
        if item is None:
            return None, None
        units = _first(item, "MeasurementUnitsCodeSequence")
        return (_sanitise(units.get("CodeValue"), 16) if units is not None else None,
                _sanitise(item.get("LUTLabel"), 16))
    except Exception:  # noqa: BLE001 - a malformed optional sequence is the same as none
        return None, None


def _image_values(ds: pydicom.Dataset) -> dict:
    """The values of :class:`ImageHeader` that series typing reads per image."""
    ti, ti_bad = _inversion(element_value(ds, "InversionTime"))
    return dict(inversion_time_ms=ti, inversion_time_bad=ti_bad,
                acquisition_time_s=_time_s(element_value(ds, "AcquisitionTime") or element_value(ds, "ContentTime")),
                image_type=_values(element_value(ds, "ImageType")),
                image_flip_angle_deg=_float(element_value(ds, "FlipAngle")))


def _series_values(ds: pydicom.Dataset) -> dict:
    """The values of :class:`ImageHeader` that series typing reads once per series (sequence,
    timing parameters, contrast, map units): the first file of a series gives them."""
    units, label = _real_world_units(ds)
    agent = ds.get("ContrastBolusAgent")
    return dict(
        scanning_sequence=_values(ds.get("ScanningSequence")),
        sequence_variant=_values(ds.get("SequenceVariant")),
        sequence_name=_sanitise(ds.get("SequenceName"), 32),
        repetition_time_ms=_float(ds.get("RepetitionTime")),
        echo_time_ms=_float(ds.get("EchoTime")),
        flip_angle_deg=_float(ds.get("FlipAngle")),
        contrast_agent=bool(str(agent or "").strip()),
        map_units=units, map_label=label,
        pixel_signed=_int(ds.get("PixelRepresentation")) == 1,
    )


def _time_s(v) -> float | None:
    """DICOM TM ``HHMMSS.frac`` to seconds since midnight."""
    s = str(v or "").strip().replace(":", "")
    m = re.match(r"^(\d{2})(\d{2})?(\d{2})?(\.\d+)?$", s)
    if not m:
        return None
    h, mi, se = int(m.group(1)), int(m.group(2) or 0), int(m.group(3) or 0)
    return h * 3600 + mi * 60 + se + float(m.group(4) or 0)


def _age_years(v) -> float | None:
    """PatientAge ``nnnY/M/W/D`` in years."""
    m = re.match(r"^\s*(\d{1,3})\s*([YMWD]?)\s*$", str(v or "").upper())
    if not m:
        return None
    n = float(m.group(1))
    return {"Y": n, "": n, "M": n / 12, "W": n / 52.1775, "D": n / 365.25}[m.group(2)]


def _sanitise(v, maxlen: int = 64) -> str | None:
    s = re.sub(r"[^A-Za-z0-9 ._/+-]", "", str(v or "")).strip()[:maxlen]
    return s or None


def _vendor(manufacturer) -> str | None:
    m = str(manufacturer or "").upper()
    for key, name in (("SIEMENS", "SIEMENS"), ("GE", "GE"), ("PHILIPS", "PHILIPS"),
                      ("TOSHIBA", "TOSHIBA"), ("CANON", "CANON"), ("HITACHI", "HITACHI")):
        if key in m:
            return name
    return "OTHER" if m.strip() else None


_DEFER_BYTES = 1024  # element values longer than this are not read (pixel data, private blobs)
_IN_MEMORY_BYTES = 4 << 20  # files up to this size are read whole and parsed in memory
_PIXEL_DATA = 0x7FE00010
_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")  # implicit, explicit VR
_RAW_DTYPES = {(16, False): "<u2", (16, True): "<i2", (8, False): "u1", (8, True): "i1"}


def raw_pixels(ds: pydicom.Dataset) -> RawPixels | None:
    """The position and layout of a single-frame image's pixel values when they can be read as
    raw bytes (uncompressed, little endian, one sample, 8 or 16 bits, the expected length, longer
    than :data:`_DEFER_BYTES`), else None.  Signed values narrower than their container need
    pydicom's sign extension: None.

    The pixels are read again later, for the chosen series only: keeping every file's bytes from
    the scan instead costs more (fresh memory pages) than reading the chosen ones again."""
    meta = getattr(ds, "file_meta", None)
    if meta is None or str(element_value(meta, "TransferSyntaxUID") or "") not in _NATIVE_LITTLE_ENDIAN:
        return None
    el = ds.get_item(_PIXEL_DATA, keep_deferred=True)
    if not isinstance(el, RawDataElement) or el.length <= _DEFER_BYTES:  # undefined length (encapsulated) fails the length test below
        return None
    v = partial(element_value, ds)
    bits, stored = _int(v("BitsAllocated")), _int(v("BitsStored"))
    signed = _int(v("PixelRepresentation")) == 1
    rows, cols = _int(v("Rows")) or 0, _int(v("Columns")) or 0
    if ((_int(v("NumberOfFrames")) or 1) != 1 or (_int(v("SamplesPerPixel")) or 1) != 1
            or (bits, signed) not in _RAW_DTYPES or (signed and stored != bits)
            or el.length != rows * cols * bits // 8):
        return None
    slope, intercept = _float(v("RescaleSlope")), _float(v("RescaleIntercept"))
    return RawPixels(el.value_tell, _RAW_DTYPES[bits, signed], 1.0 if slope is None else slope,
                     0.0 if intercept is None else intercept)


def read_small_file(path: Path) -> bytes | None:
    """The whole file when it holds at most :data:`_IN_MEMORY_BYTES`, else None.

    One read: pydicom reading from the file makes a system call for each of its small reads and
    seeks (about 80 for a legacy image), which cost more than parsing the bytes."""
    with open(path, "rb") as fh:
        return None if os.fstat(fh.fileno()).st_size > _IN_MEMORY_BYTES else fh.read()


def _dcmread(path: Path, data: bytes | None, force: bool) -> pydicom.Dataset:
    """The whole dataset (``data``: the file's bytes, parsed in memory; else long values deferred);
    a file whose full parse loses the dataset (encapsulated pixel data without its sequence
    delimiter: pydicom returns nothing) is read again up to its pixel data."""
    source = (lambda: path) if data is None else (lambda: io.BytesIO(data))
    ds = pydicom.dcmread(source(), defer_size=_DEFER_BYTES if data is None else None, force=force)
    if "Rows" not in ds:
        ds = pydicom.dcmread(source(), stop_before_pixels=True, force=force)
    return ds


def read_header(path: Path, data: bytes | None = None) -> pydicom.Dataset:
    """Read a file's header (from ``data``, the file's bytes, when given); raises
    InvalidDicomError when it is not DICOM.

    Files without the 128-byte preamble (common in 2000-era archives) are read with ``force``, then
    accepted only if they hold real DICOM attributes.
    """
    try:
        return _dcmread(path, data, force=False)
    except InvalidDicomError:
        pass
    ds = _dcmread(path, data, force=True)
    if "SOPClassUID" not in ds and "StudyInstanceUID" not in ds:
        raise InvalidDicomError("no DICOM attributes")
    return ds


def _first(seq_owner, seq_name: str):
    seq = getattr(seq_owner, seq_name, None)
    return seq[0] if seq else None


def _functional(frame_group, shared_group, seq_name: str):
    """An item of a functional-group sequence, per-frame first, then shared."""
    for g in (frame_group, shared_group):
        if g is not None:
            item = _first(g, seq_name)
            if item is not None:
                return item
    return None


def study_meta(ds: pydicom.Dataset, study_uid: str) -> StudyMeta:
    hr = _float(ds.get("HeartRate"))
    rr = _float(ds.get("NominalInterval"))
    if rr is None and hr:
        rr = 60000.0 / hr
    if hr is None and rr:
        hr = 60000.0 / rr
    sex = str(ds.get("PatientSex", "") or "").strip().upper()[:1] or None
    return StudyMeta(
        study_uid=study_uid,
        patient_id=(str(ds.get("PatientID", "")).strip() or None),
        vendor=_vendor(ds.get("Manufacturer")),
        manufacturer_model=_sanitise(ds.get("ManufacturerModelName")),
        field_strength_t=_float(ds.get("MagneticFieldStrength")),
        heart_rate_bpm=hr if hr and hr > 0 else None,
        rr_ms=rr if rr and rr > 0 else None,
        cardiac_number_of_images=_int(ds.get("CardiacNumberOfImages")),
        patient_sex=sex if sex in ("M", "F", "O") else None,
        patient_age_years=_age_years(ds.get("PatientAge")),
        patient_size_m=_float(ds.get("PatientSize")) or None,
        patient_weight_kg=_float(ds.get("PatientWeight")) or None,
    )


def image_headers(ds: pydicom.Dataset, file_index: int, path: Path, study_uid: str,
                  series_cache: dict | None = None) -> list[ImageHeader]:
    """One header per image of a dataset (several for a multi-frame file).

    ``series_cache`` (``{(study, series uid): values}``, filled here) lets the series-level
    values be read from the first file of each series only: reading them from every file
    would cost ingest a tenth of its speed.
    """
    v = partial(element_value, ds)
    desc = v("SeriesDescription") or v("ProtocolName")
    series_uid = str(v("SeriesInstanceUID") or f"series-number-{ds.get('SeriesNumber', '')}")
    cache = {} if series_cache is None else series_cache
    key = (study_uid, series_uid)
    if key not in cache:
        cache[key] = _series_values(ds)
    acq = {**cache[key], **_image_values(ds)}
    base = dict(
        file_index=file_index,
        path=path,
        study_uid=study_uid,
        series_uid=series_uid,
        series_number=_int(v("SeriesNumber")),
        series_time_s=_time_s(v("SeriesTime") or v("AcquisitionTime") or v("ContentTime")),
        description_hint=_hint(desc),
        sop_uid=str(v("SOPInstanceUID") or f"file-{file_index}"),
        instance_number=_int(v("InstanceNumber")),
        rows=_positive(_int(v("Rows"))),
        cols=_positive(_int(v("Columns"))),
        localizer="LOCALIZER" in acq["image_type"],
        **acq,
    )
    base["raw_pixels"] = raw_pixels(ds)  # None for multi-frame files
    n_frames = _int(v("NumberOfFrames")) or 1
    per_frame = ds.get("PerFrameFunctionalGroupsSequence")
    if n_frames > 1 and per_frame is not None:
        shared = _first(ds, "SharedFunctionalGroupsSequence")
        out = []
        for k in range(n_frames):
            fg = per_frame[k] if k < len(per_frame) else None
            pix = _functional(fg, shared, "PixelMeasuresSequence")
            sync = _functional(fg, shared, "CardiacSynchronizationSequence")
            out.append(_frame_header(
                _frame_timing(base, fg, shared), k,
                _functional(fg, shared, "PlanePositionSequence"),
                _functional(fg, shared, "PlaneOrientationSequence"),
                pix,
                _spacing(pix.get("PixelSpacing")) if pix is not None else None,
                _float(sync.get("NominalCardiacTriggerDelayTime")) if sync is not None else None,
            ))
        return out
    return _plain_headers(ds, base, n_frames)


def _plain_headers(ds: pydicom.Dataset, base: dict, n_frames: int) -> list[ImageHeader]:
    """Headers of a single-frame file, or of a legacy multi-frame file without functional
    groups: its frames share the geometry; the cine time axis, if any, comes from FrameTime."""
    v = partial(element_value, ds)
    frame_time = _float(v("FrameTime"))
    trigger = _float(v("TriggerTime"))
    geometry = dict(
        position=_floats(v("ImagePositionPatient"), 3), orientation=_floats(v("ImageOrientationPatient"), 6),
        pixel_spacing=_spacing(v("PixelSpacing")), thickness_mm=_float(v("SliceThickness")),
        spacing_between_mm=_float(v("SpacingBetweenSlices")),
    )
    if n_frames == 1:
        return [ImageHeader(**base, frame=None, trigger_time_ms=trigger, **geometry)]
    return [ImageHeader(
        **{**base, "sop_uid": f"{base['sop_uid']}#{k}"}, frame=k,
        trigger_time_ms=(k * frame_time) if frame_time is not None else None,
        **{k_: (a.copy() if isinstance(a, np.ndarray) else a) for k_, a in geometry.items()},
    ) for k in range(n_frames)]


def _frame_timing(base: dict, frame_group, shared_group) -> dict:
    """``base`` with the frame's acquisition time and inversion time of an enhanced MR file
    (FrameContentSequence FrameAcquisitionDateTime, MRModifierSequence InversionTimes)."""
    out = dict(base)
    content = _functional(frame_group, None, "FrameContentSequence")
    if content is not None:
        dt = str(content.get("FrameAcquisitionDateTime") or "").strip()
        t = _time_s(dt[8:].split("+")[0].split("-")[0]) if len(dt) > 8 else None
        if t is not None:
            out["acquisition_time_s"] = t
    timing = _functional(frame_group, shared_group, "MRTimingAndRelatedParametersSequence")
    if timing is not None and timing.get("FlipAngle") is not None:
        out["image_flip_angle_deg"] = _float(timing.get("FlipAngle"))
    modifier = _functional(frame_group, shared_group, "MRModifierSequence")
    if modifier is not None and modifier.get("InversionTimes") is not None:
        times = modifier.get("InversionTimes")
        out["inversion_time_ms"], out["inversion_time_bad"] = _inversion(
            times[0] if not isinstance(times, (str, bytes, float, int)) else times)
    return out


def _frame_header(base: dict, k: int, pos, ori, pix, spacing, trig) -> ImageHeader:
    """Header of frame ``k`` of an enhanced multi-frame file (InstanceNumber is per file, so the
    frame index orders frames that lack a trigger delay)."""
    return ImageHeader(
        **{**base, "sop_uid": f"{base['sop_uid']}#{k}", "instance_number": (base["instance_number"] or 0) * 100000 + k},
        frame=k,
        position=_floats(pos.get("ImagePositionPatient"), 3) if pos is not None else None,
        orientation=_floats(ori.get("ImageOrientationPatient"), 6) if ori is not None else None,
        pixel_spacing=spacing,
        thickness_mm=_float(pix.get("SliceThickness")) if pix is not None else None,
        spacing_between_mm=_float(pix.get("SpacingBetweenSlices")) if pix is not None else None,
        trigger_time_ms=trig,
    )


def scan_file(path: Path, file_index: int, pseudo_study: str, series_cache: dict | None = None
              ) -> tuple[list[ImageHeader], pydicom.Dataset | None, str | None]:
    """Headers of one file, or a rejection reason; never raises for bad input (``series_cache``:
    see :func:`image_headers`)."""
    try:
        data = read_small_file(path)
        ds = read_header(path, data)
    except InvalidDicomError:
        return [], None, "not_dicom"
    except Exception as exc:  # truncated header, bad tag lengths, I/O errors
        return [], None, f"unreadable_header: {type(exc).__name__}"
    try:
        if "Rows" not in ds or "Columns" not in ds:
            return [], None, "no_image"
        if (_int(element_value(ds, "SamplesPerPixel")) or 1) != 1:
            return [], None, "not_monochrome"
        study_uid = str(element_value(ds, "StudyInstanceUID") or "").strip() or pseudo_study
        return image_headers(ds, file_index, path, study_uid, series_cache), ds, None
    except Exception as exc:  # malformed values deep in the header
        return [], None, f"bad_header: {type(exc).__name__}"


def _patient_key(ds: pydicom.Dataset) -> str:
    """PatientID, to count the patients of a study (never stored); blank when absent."""
    try:
        return str(element_value(ds, "PatientID") or "").strip()
    except Exception:  # noqa: BLE001 - an unreadable identifier is the same as none
        return ""


def _content_key(h: ImageHeader) -> tuple:
    """What makes two images with the same SOPInstanceUID the same image."""
    r = (lambda a: None if a is None else tuple(np.round(a, 3)))
    return (h.series_uid, r(h.position), r(h.orientation), h.trigger_time_ms, h.instance_number, h.frame)


def scan_folder(folder: Path, recursive: bool = True, pseudo_study: str = "no-study-uid") -> FolderScan:
    """Scan every file of an exam folder (``recursive=False``: its loose files only).

    Files that hold no StudyInstanceUID are grouped under ``pseudo_study``.  Repeated copies of
    the same SOP instance (same SOPInstanceUID) are kept once.
    """
    folder = Path(folder)
    files = list_files(folder) if recursive else sorted(
        p for p in folder.iterdir() if p.is_file() and not p.name.startswith(".")
    )
    result = FolderScan(n_files=len(files))
    seen: dict[tuple[str, str], tuple] = {}
    series_cache: dict = {}
    for i, path in enumerate(files):
        headers, ds, reason = scan_file(path, i, pseudo_study, series_cache)
        if reason is not None:
            result.rejected.append((i, reason))
            continue
        new = []
        for h in headers:
            key, content = (h.study_uid, h.sop_uid), _content_key(h)
            if key in seen:
                if seen[key] == content:
                    continue  # the same image twice (a copied file)
                # same UID, different image: a writer's bug, not a copy; keep it, count it
                result.uid_collisions[h.study_uid] = result.uid_collisions.get(h.study_uid, 0) + 1
                h.sop_uid = f"{h.sop_uid}#file{i}"
            seen[(h.study_uid, h.sop_uid)] = content
            new.append(h)
        if not new:
            result.rejected.append((i, "duplicate_instance"))
            continue
        result.images += new
        study = new[0].study_uid
        result.patients.setdefault(study, set()).add(_patient_key(ds))
        if study not in result.studies:
            try:
                result.studies[study] = study_meta(ds, study)
            except Exception:  # noqa: BLE001 - exam attributes are optional
                result.studies[study] = StudyMeta(study, None, *([None] * 10))
    return result
