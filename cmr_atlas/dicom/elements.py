"""Element values of a parsed dataset at a fraction of the cost of ``Dataset.get``.

``ds.get("Keyword")`` costs about 20 us per element (keyword lookup, the VR and value hooks, value
validation, a new DataElement stored back into the dataset); the header scan reads about 30
elements of every file, which cost it more than parsing the file.  :func:`element_value` converts
the plain cases itself, exactly as pydicom does: a defined-length, non-deferred value of the
element's dictionary VR (or of an implicit-VR file) that is

- DS or IS: decimal or integer strings of ASCII digits (a DS may be multi-valued);
- UI: a UID of printable ASCII without a backslash (trailing NUL or space padding and leading
  spaces removed);
- CS, TM: printable ASCII (a CS may be multi-valued);
- LO, SH: printable ASCII without a backslash, in a file whose character set leaves ASCII as it
  is (none, ISO_IR 6, ISO_IR 100, ISO_IR 192);
- US: one little-endian value.

Anything else (empty, deferred, VR mismatch, non-ASCII, odd numbers such as ``1e`` or ``nan``,
multi-valued strings other than the above) goes through pydicom (``ds[tag].value``), so values and
failures stay pydicom's.  Multi-valued DS and CS come back as a ``list`` where pydicom gives a
``MultiValue`` of DSfloat or str (same items, same iteration); a single DS as ``float`` (pydicom:
``DSfloat``, the same number), an IS as ``int`` (pydicom: ``IS``), strings as ``str`` (pydicom:
``str`` or ``UID``).  Callers convert with ``float``, ``int``, ``str`` or iterate.
"""

from __future__ import annotations

import re

import pydicom
from pydicom.datadict import dictionary_VR, tag_for_keyword
from pydicom.dataelem import RawDataElement
from pydicom.tag import BaseTag

_DECIMAL = re.compile(rb" *[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)? *")
_INTEGER = re.compile(rb" *[+-]?\d+ *")
_PRINTABLE = re.compile(rb"[ -~]*")  # printable ASCII, backslash included
_ASCII_CHARSETS = ("", "ISO_IR 6", "ISO_IR 100", "ISO_IR 192")
_CHARSET = 0x00080005
_SLOW = object()  # "let pydicom convert it"


def _ds(b: bytes, little: bool):
    items = b.split(b"\\")  # pydicom: strip, then split; every item must be a plain decimal
    if not all(_DECIMAL.fullmatch(x) for x in items):
        return _SLOW
    return float(items[0]) if len(items) == 1 else [float(x) for x in items]


def _is(b: bytes, little: bool):
    return int(b) if _INTEGER.fullmatch(b) else _SLOW


def _ui(b: bytes, little: bool):
    b = b.rstrip(b"\x00 ")
    # pydicom's UID() strips what is left on both sides too (a leading space)
    return b.decode("ascii").strip(" ") if b and _PRINTABLE.fullmatch(b) and b"\\" not in b else _SLOW


def _cs(b: bytes, little: bool):
    if not _PRINTABLE.fullmatch(b):
        return _SLOW
    items = b.decode("ascii").rstrip(" ").split("\\")
    return items[0] if len(items) == 1 else items


def _tm(b: bytes, little: bool):
    return b.decode("ascii").rstrip(" ") if _PRINTABLE.fullmatch(b) and b"\\" not in b else _SLOW


def _us(b: bytes, little: bool):
    return int.from_bytes(b, "little") if little and len(b) == 2 else _SLOW


_CONVERT = {"DS": _ds, "IS": _is, "UI": _ui, "CS": _cs, "TM": _tm, "US": _us, "LO": _tm, "SH": _tm}
_TEXT = ("LO", "SH")  # decoded with the file's character set by pydicom
_TAGS: dict[str, tuple[int, str]] = {}


def _tag_vr(keyword: str) -> tuple[int, str]:
    if keyword not in _TAGS:
        tag = tag_for_keyword(keyword)
        if tag is None:
            raise KeyError(f"unknown DICOM keyword {keyword}")
        _TAGS[keyword] = (BaseTag(tag), dictionary_VR(tag))
    return _TAGS[keyword]


def _ascii_charset(ds: pydicom.Dataset) -> bool:
    if ds.get_item(_CHARSET, keep_deferred=True) is None:
        return True
    cs = ds[_CHARSET].value
    return (cs or "") in _ASCII_CHARSETS


def element_value(ds: pydicom.Dataset, keyword: str):
    """The value of element ``keyword`` as ``ds.get(keyword)`` gives it (None when absent); see
    the module docstring for the types of the plain cases."""
    tag, vr = _tag_vr(keyword)
    el = ds._dict.get(tag)  # ds.get_item(tag, keep_deferred=True) without its tag conversion
    if el is None:
        return None
    if type(el) is not RawDataElement:
        return el.value
    b = el.value
    convert = _CONVERT.get(vr)
    if (convert is not None and b is not None and el.VR in (None, vr) and 0 < el.length == len(b)
            and (vr not in _TEXT or _ascii_charset(ds))):
        v = convert(b, el.is_little_endian)
        if v is not _SLOW:
            return v
    return ds[tag].value
