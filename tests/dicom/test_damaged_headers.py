"""Property test: ingest fed damaged headers (garbage geometry, NaN or zero spacing, empty pixel
data, wrong value representations, garbage inversion times, two patients or studies in one
folder) ends every case in the tables, a typed series or a specific reason, never a traceback,
and never drops an image silently."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pydicom
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence
from pydicom.tag import Tag

from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.dicom.series_types import KINDS
from tests.dicom.clinical_exams import ClinicalSpec, write_clinical_exam

KEY = "test-key-for-damage"
OTHER_STUDY = "1.2.826.0.1.3680043.8.498.99999999999999999999"


def _raw(keyword: str, vr: str, text: str | bytes):
    """Set ``keyword`` to raw bytes as written (no validation): garbage values and wrong VRs."""
    def damage(ds: pydicom.Dataset) -> None:
        tag = Tag(pydicom.datadict.tag_for_keyword(keyword))
        b = text.encode() if isinstance(text, str) else text
        b += b" " * (len(b) % 2)
        ds._dict[tag] = RawDataElement(tag, vr, len(b), b, 0, False, True)
    return damage


def _delete(keyword: str):
    def damage(ds: pydicom.Dataset) -> None:
        if keyword in ds:
            delattr(ds, keyword)
    return damage


def _set(keyword: str, value):
    def damage(ds: pydicom.Dataset) -> None:
        setattr(ds, keyword, value)
    return damage


def _short_pixels(ds: pydicom.Dataset) -> None:
    ds.PixelData = ds.PixelData[: (len(ds.PixelData) // 3) & ~1]


DAMAGES = {
    "iop_short": _raw("ImageOrientationPatient", "DS", "1\\0\\0\\0\\1"),
    "iop_text": _raw("ImageOrientationPatient", "DS", "a\\b\\c\\d\\e\\f"),
    "iop_zero": _raw("ImageOrientationPatient", "DS", "0\\0\\0\\0\\0\\0"),
    "iop_parallel": _raw("ImageOrientationPatient", "DS", "1\\0\\0\\1\\0\\0"),
    "iop_wrong_vr": _raw("ImageOrientationPatient", "UN", b"\x01\x02\x03\x04"),
    "ipp_missing": _delete("ImagePositionPatient"),
    "ipp_nan": _raw("ImagePositionPatient", "DS", "nan\\0\\0"),
    "spacing_nan": _raw("PixelSpacing", "DS", "nan\\nan"),
    "spacing_zero": _raw("PixelSpacing", "DS", "0\\0"),
    "spacing_one_value": _raw("PixelSpacing", "DS", "1.5"),
    "thickness_nan": _raw("SliceThickness", "DS", "nan"),
    "thickness_zero": _raw("SliceThickness", "DS", "0"),
    "rows_zero": _set("Rows", 0),
    "pixels_empty": _set("PixelData", b""),
    "pixels_short": _short_pixels,
    "inversion_text": _raw("InversionTime", "DS", "abc"),
    "inversion_negative": _raw("InversionTime", "DS", "-300"),
    "inversion_nan": _raw("InversionTime", "DS", "nan"),
    "inversion_wrong_vr": _raw("InversionTime", "LO", "three hundred"),
    "trigger_text": _raw("TriggerTime", "DS", "soon"),
    "acquisition_time_text": _raw("AcquisitionTime", "TM", "99:99"),
    "image_type_garbage": _raw("ImageType", "CS", "\\\\MAP\\1"),
    "image_type_wrong_vr": _raw("ImageType", "US", b"\x01\x00"),
    "flip_wrong_vr": _raw("FlipAngle", "LO", "sixty"),
    "tr_negative": _raw("RepetitionTime", "DS", "-3"),
    "series_number_text": _raw("SeriesNumber", "IS", "x1"),
    "units_empty_item": _set("RealWorldValueMappingSequence", Sequence([Dataset()])),
    "second_patient": _set("PatientID", "OTHER-PATIENT"),
    "second_study": _set("StudyInstanceUID", OTHER_STUDY),
    "no_series_uid": _delete("SeriesInstanceUID"),
    "no_study_uid": _delete("StudyInstanceUID"),
}


@pytest.fixture(scope="module")
def small_exam(tmp_path_factory):
    root = tmp_path_factory.mktemp("damage")
    write_clinical_exam(root / "X", ClinicalSpec(n_sax=5, cine_frames=3, size=16, perfusion_frames=12,
                                                 scout_frames=8, seed=9))
    rows = ingest_folders(root, ["X"], KEY, None)
    assert [e["status"] for e in rows.exams] == ["ok"], rows.exams
    by_series: dict[str, list[str]] = {}
    for f in sorted((root / "X").rglob("*")):
        if f.is_file():
            by_series.setdefault(f.parent.name, []).append(f.relative_to(root / "X").as_posix())
    return root / "X", [by_series[k] for k in sorted(by_series)]


def _damage(folder: Path, series: list[list[str]], damages) -> None:
    for name, pick, whole_series in damages:
        files = series[pick % len(series)]
        for rel in (files if whole_series else [files[pick % len(files)]]):
            ds = pydicom.dcmread(folder / rel, force=True)
            DAMAGES[name](ds)
            ds.save_as(folder / rel)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(damages=st.lists(st.tuples(st.sampled_from(sorted(DAMAGES)), st.integers(0, 10**6), st.booleans()),
                        min_size=1, max_size=3))
def test_damaged_headers_end_in_the_tables(small_exam, damages):
    src, series = small_exam
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copytree(src, Path(tmp) / "X")
        _damage(Path(tmp) / "X", series, damages)
        rows = ingest_folders(Path(tmp), ["X"], KEY, Path(tmp) / "cache")
    frames = rows.frames()
    exams, table = frames["exams"], frames["series"]
    assert len(exams) >= 1 and set(exams["status"]) <= {"ok", "failed"}
    for _, e in exams.iterrows():  # a specific reason, not the runner's catch-all for a bug
        assert e["status"] == "ok" or e["qc_reason"], e
        assert not str(e["qc_reason"]).startswith(("ingest_error", "unreadable_folder")), e["qc_reason"]
    assert table["kind"].isin(KINDS).all()
    assert table.loc[table["kind"] == "unknown", "type_reason"].notna().all()
    # every file is an image of a listed series or a skipped file with its reason
    n_files = int(exams["n_files"].iloc[0])
    assert int(table["n_images"].sum()) + int(exams["n_files_skipped"].iloc[0]) == n_files
    if any(name == "second_patient" for name, *_ in damages) and len(exams) == 1:
        assert exams["qc_reason"].iloc[0] == "mixed_patients"
