"""element_value gives what pydicom's Dataset.get gives, for plain and odd encoded values alike."""

from __future__ import annotations

import warnings

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydicom.dataelem import RawDataElement
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.tag import Tag

from cmr_atlas.dicom.elements import element_value

# one keyword per VR the scan reads per file, and a multi-valued one for DS
KEYWORDS = {"SliceThickness": "DS", "ImagePositionPatient": "DS", "InstanceNumber": "IS", "SOPInstanceUID": "UI",
            "ImageType": "CS", "SeriesTime": "TM", "SeriesDescription": "LO", "StationName": "SH", "Rows": "US"}
ALPHABET = b"0123456789.+-eE \\\x00ax\xe9"


def _dataset(keyword: str, value: bytes, vr: str | None, charset: bytes | None, little: bool = True) -> Dataset:
    """A dataset holding one encoded element, as the file reader leaves it (raw, not converted)."""
    elements = {}
    if charset is not None:
        elements[Tag(0x00080005)] = RawDataElement(Tag(0x00080005), "CS", len(charset), charset, 0, False, True)
    tag = Tag(keyword)
    elements[tag] = RawDataElement(tag, vr, len(value), value, 0, vr is None, little)
    return Dataset(elements)


def _norm(v):
    """Values compared by type family and content (DSfloat = float, IS = int, UID = str, MultiValue = list)."""
    if isinstance(v, (list, MultiValue)):
        return ["list", *[_norm(x) for x in v]]
    if isinstance(v, float):
        return ("float", repr(float(v)))
    if isinstance(v, int):
        return ("int", int(v))
    if isinstance(v, str):
        return ("str", str(v))
    return (type(v).__name__, repr(v))


def _outcome(get):
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return _norm(get())
    except Exception as exc:  # noqa: BLE001 - the failure itself is compared
        return ("raises", type(exc).__name__)


def _same(keyword: str, value: bytes, vr: str | None, charset: bytes | None = None, little: bool = True) -> None:
    ours = _outcome(lambda: element_value(_dataset(keyword, value, vr, charset, little), keyword))
    ref = _outcome(lambda: _dataset(keyword, value, vr, charset, little).get(keyword))
    assert ours == ref, (keyword, value, vr, charset)


@pytest.mark.parametrize("keyword, value", [
    ("SliceThickness", b"6.0 "), ("SliceThickness", b" -1.5e+02"), ("SliceThickness", b".5"), ("SliceThickness", b"7."),
    ("SliceThickness", b"nan "), ("SliceThickness", b"1e"), ("SliceThickness", b"1_0"), ("SliceThickness", b"1.0\x00"),
    ("SliceThickness", b"   "), ("SliceThickness", b""),
    ("ImagePositionPatient", b"-124.4138\\-176.0128\\32.6961 "), ("ImagePositionPatient", b"1\\\\2"),
    ("ImagePositionPatient", b"1 \\ 2\\3"), ("InstanceNumber", b"12"), ("InstanceNumber", b" 007 "),
    ("InstanceNumber", b"2.0"), ("InstanceNumber", b"2.5"), ("InstanceNumber", b"1\\2"), ("InstanceNumber", b"+3"),
    ("SOPInstanceUID", b"1.2.840.10008.5.1.4.1.1.4\x00"), ("SOPInstanceUID", b"1.2\\3.4"), ("SOPInstanceUID", b"\x00\x00"),
    ("SOPInstanceUID", b" 0"),  # found by hypothesis: UID() strips leading spaces too
    ("ImageType", b"ORIGINAL\\PRIMARY\\M\\NORM "), ("ImageType", b"LOCALIZER"), ("ImageType", b"A\\B\x00"),
    ("SeriesTime", b"100200"), ("SeriesTime", b"10:02:00.5 "), ("SeriesTime", b"1002\\1003"),
    ("SeriesDescription", b"cine_sa_sl1 "), ("SeriesDescription", b"caf\xe9"), ("SeriesDescription", b"a\\b"),
    ("Rows", b"\xa0\x00"), ("Rows", b"\x00\x01\x00\x02"), ("Rows", b"\x01"),
])
@pytest.mark.parametrize("explicit", [True, False])
def test_plain_and_odd_values_as_pydicom(keyword, value, explicit):
    _same(keyword, value, KEYWORDS[keyword] if explicit else None)


def test_absent_mismatched_vr_big_endian_and_charsets_as_pydicom():
    assert element_value(Dataset(), "SliceThickness") is None
    _same("SliceThickness", b"6.0", "UN")  # explicit UN: pydicom's VR replacement decides
    _same("Rows", b"\x00\xa0", "US", little=False)
    for charset in (b"ISO_IR 100", b"ISO_IR 192", b"ISO 2022 IR 87", b"ISO_IR 13", b"\\ISO 2022 IR 149"):
        for value in (b"cine sax", b"caf\xe9", b"\x1b$B"):
            _same("SeriesDescription", value, "LO", charset)


@settings(max_examples=300, deadline=None)
@given(keyword=st.sampled_from(sorted(KEYWORDS)), value=st.lists(st.sampled_from(list(ALPHABET)), max_size=16),
       explicit=st.booleans())
def test_any_encoded_value_as_pydicom(keyword, value, explicit):
    _same(keyword, bytes(value), KEYWORDS[keyword] if explicit else None)
