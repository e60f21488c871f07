"""DICOM nobody here wrote: pydicom's bundled test files (plus pydicom-data's when installed).

Every file is indexed or rejected with a reason, pixel decoding fails with a QC reason rather than
an exception, and ingesting them all as one cohort never crashes.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np
import pytest
from pydicom.data import get_testdata_file, get_testdata_files

from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.dicom.scan import scan_file
from cmr_atlas.dicom.stack import PixelError, read_frames

KEY = "test-key-real-files"
FILES = sorted(f for f in get_testdata_files() if os.path.isfile(f))
REASONS = ("not_dicom", "no_image", "not_monochrome", "unreadable_header", "bad_header")


@pytest.fixture(autouse=True)
def _quiet():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        yield


def test_every_file_indexed_or_rejected_with_reason():
    n_images = 0
    for i, f in enumerate(FILES):
        headers, _, reason = scan_file(Path(f), i, "pseudo")
        if reason is None:
            assert headers and all(h.file_index == i for h in headers)
            n_images += 1
            try:
                arr = read_frames(headers[:1])
            except PixelError as exc:
                assert str(exc).startswith(f"corrupt_pixel_data: file {i}")
            else:
                assert arr.shape == (1, headers[0].rows, headers[0].cols) and arr.dtype == np.float32
        else:
            assert reason.startswith(REASONS), (Path(f).name, reason)
    assert n_images > 50  # most of pydicom's files are images


def _get(name):
    f = get_testdata_file(name)
    if f is None:
        pytest.skip(f"{name} not available")
    return Path(f)


@pytest.mark.parametrize("name", ["MR_small_RLE.dcm", "MR_small_jp2klossless.dcm", "MR_small_bigendian.dcm",
                                  "MR_small_implicit.dcm", "MR_small_jpeg_ls_lossless.dcm"])
def test_compressed_variants_decode_to_the_same_pixels(name):
    ref = read_frames(scan_file(_get("MR_small.dcm"), 0, "x")[0])
    headers, _, reason = scan_file(_get(name), 0, "x")
    assert reason is None
    try:
        arr = read_frames(headers)
    except PixelError:  # no decoder for this syntax installed (JPEG-LS needs pyjpegls)
        pytest.skip(f"no decoder for {name}")
    assert np.array_equal(arr, ref)


def test_truncated_pixel_data_is_a_qc_reason():
    headers, _, reason = scan_file(_get("MR_truncated.dcm"), 7, "x")
    assert reason is None
    with pytest.raises(PixelError, match=r"^corrupt_pixel_data: file 7"):
        read_frames(headers)


def test_enhanced_multiframe_geometry_from_functional_groups():
    # per-frame PlanePositionSequence, shared PlaneOrientationSequence and PixelMeasuresSequence
    headers, _, reason = scan_file(_get("eCT_Supplemental.dcm"), 0, "x")
    assert reason is None and len(headers) == 2
    assert all(h.has_geometry for h in headers)
    assert not np.allclose(headers[0].position, headers[1].position)
    assert read_frames(headers).shape == (2, headers[0].rows, headers[0].cols)


def test_enhanced_mr_without_functional_groups_has_frames_but_no_geometry():
    headers, _, reason = scan_file(_get("emri_small.dcm"), 0, "x")  # from pydicom-data
    assert reason is None and len(headers) == 10
    assert not any(h.has_geometry for h in headers)  # this sample file lacks the groups
    assert read_frames(headers).shape[0] == 10


def test_all_files_as_one_cohort_never_crash(tmp_path):
    folder = tmp_path / "cohort" / "all"
    folder.mkdir(parents=True)
    for i, f in enumerate(FILES):
        (folder / f"{i:04d}").symlink_to(f)
    rows = ingest_folders(tmp_path / "cohort", ["all"], KEY, tmp_path / "cache")
    assert rows.exams
    for e in rows.exams:
        assert e["status"] in ("ok", "failed")
        assert e["status"] == "ok" or e["qc_reason"]
