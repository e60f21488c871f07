"""The one-pass pixel reader gives what a full ``dcmread(...).pixel_array`` gives, on DICOM nobody
here wrote (pydicom's test files: compressed, big-endian, implicit VR, multi-frame, no preamble)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from cmr_atlas.dicom.scan import scan_file
from cmr_atlas.dicom.stack import PixelError, _decode, _rescale, read_frames, read_stored, to_float32

FILES = sorted(f for f in get_testdata_files() if os.path.isfile(f))


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def _full(path):
    ds = pydicom.dcmread(path, force=True)
    return ds, ds.pixel_array


def test_decode_equals_full_read_on_every_image_file():
    n = 0
    for i, f in enumerate(FILES):
        headers, _, reason = scan_file(Path(f), i, "x")
        if reason is not None:
            continue
        try:
            ref_ds, ref = _full(f)
        except Exception:  # noqa: BLE001 - a QC reason, or (more lenient) the right shape
            try:
                arr = read_frames(headers)
            except PixelError:
                continue
            assert arr.shape == (len(headers), headers[0].rows, headers[0].cols), Path(f).name
            continue
        ds, arr = _decode(Path(f))
        assert arr.dtype == ref.dtype and np.array_equal(arr, ref), Path(f).name
        frames = [None] if headers[0].frame is None else [h.frame for h in headers]
        assert [_rescale(ds, k) for k in frames] == [_rescale(ref_ds, k) for k in frames], Path(f).name
        n += 1
    assert n > 50


def test_rescale_applied_per_frame_in_float32():
    stored = np.array([[[1, 2]], [[3, 4]]], np.uint16)
    out = to_float32(stored, np.array([1.0, 0.5]), np.array([0.0, -1024.0]))
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, [[[1, 2]], [[3 * np.float32(0.5) - 1024, 4 * np.float32(0.5) - 1024]]])


def test_read_stored_keeps_the_stored_dtype():
    f = next(f for f in FILES if Path(f).name == "MR_small.dcm")
    headers, _, _ = scan_file(Path(f), 0, "x")
    stored, slope, intercept = read_stored(headers)
    assert stored.dtype == pydicom.dcmread(f).pixel_array.dtype and stored.shape == (1, 64, 64)
    assert slope.shape == intercept.shape == (1,)
    np.testing.assert_array_equal(read_frames(headers), to_float32(stored, slope, intercept))


def test_missing_sequence_delimiter_still_decodes_the_right_pixels():
    """dcmread drops encapsulated pixel data whose sequence delimiter is missing; the one-pass
    reader decodes it, and the pixels equal those of the intact file."""
    short, intact = get_testdata_file("emri_small_jpeg_2k_lossless_too_short.dcm"), get_testdata_file("emri_small.dcm")
    if short is None or intact is None:
        pytest.skip("pydicom-data files not available")
    headers, _, reason = scan_file(Path(short), 0, "x")
    assert reason is None
    np.testing.assert_array_equal(read_frames(headers), pydicom.dcmread(intact).pixel_array.astype(np.float32))


def test_raw_reads_equal_full_reads_and_only_native_files_take_them():
    """Images the header scan located (uncompressed, little endian, single frame) are read with one
    seek: values, dtype and rescale as a full read gives them; every other file is decoded."""
    n_raw = 0
    for i, f in enumerate(FILES):
        headers, _, reason = scan_file(Path(f), i, "x")
        if reason is not None or headers[0].raw_pixels is None:
            continue
        try:
            ds, ref = _full(f)
        except Exception:  # noqa: BLE001 - damaged test files: the truncation test covers them
            continue
        assert ds.file_meta.TransferSyntaxUID in ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1"), Path(f).name
        assert not ds.file_meta.TransferSyntaxUID.is_compressed and len(headers) == 1
        stored, slope, intercept = read_stored(headers)
        assert stored.dtype == ref.dtype and np.array_equal(stored[0], ref), Path(f).name
        assert (slope[0], intercept[0]) == _rescale(ds, None), Path(f).name
        n_raw += 1
    assert n_raw >= 10


def test_truncated_raw_pixels_are_corrupt(tmp_path):
    f = next(f for f in FILES if Path(f).name == "MR_small.dcm")
    offset = scan_file(Path(f), 0, "x")[0][0].raw_pixels.offset
    cut = tmp_path / "cut.dcm"
    cut.write_bytes(Path(f).read_bytes()[:offset + 1000])  # inside the pixel data
    headers, _, reason = scan_file(cut, 3, "x")
    assert reason is None and headers[0].raw_pixels is not None
    with pytest.raises(PixelError, match=r"^corrupt_pixel_data: file 3 \(truncated\)"):
        read_stored(headers)
