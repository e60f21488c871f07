"""Image cache format 2: 16-bit stored values kept exactly, other images as float32, version 1
files still read, a newer version a specific error."""

from __future__ import annotations

import io
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.geometry import SlicePlane, plane_vector
from cmr_atlas.core.imagecache import (
    FORMAT_VERSION, CacheFormatError, ExamImages, _read_stored, load_exam_images, load_masks, save_exam_images,
    save_masks, savez,
)
from cmr_atlas.core.tables import atomic_file


def _planes(n: int, shape=(6, 5)) -> list[SlicePlane]:
    return [SlicePlane.centred(np.array([0, 0, 8.0 * i]), [1, 0, 0], [0, 1, 0], (1.5, 1.5), shape) for i in range(n)]


def _exam(sax: np.ndarray, lax: np.ndarray | None = None) -> ExamImages:
    planes = _planes(sax.shape[0], sax.shape[2:])
    views = {} if lax is None else {"lax_2ch": lax}
    return ExamImages("E1", sax, planes, np.arange(sax.shape[1]) * 40.0, views,
                      {v: _planes(1, lax.shape[1:])[0] for v in views})


def _entries(path) -> dict[str, tuple[np.dtype, int]]:
    """zip entry -> (stored array dtype, compression method)."""
    out = {}
    with zipfile.ZipFile(path) as zf, np.load(path) as z:
        for info in zf.infolist():
            name = info.filename.removesuffix(".npy")
            out[name] = (z[name].dtype, info.compress_type)
    return out


@pytest.mark.parametrize("values, disk_dtype", [
    (np.arange(0, 4096), np.uint16),          # 12-bit unsigned MR values
    (np.arange(-2048, 2048), np.int16),       # signed stored values
    (np.arange(0, 65536, 7), np.uint16),      # the full unsigned range
])
def test_16_bit_integers_are_stored_uncompressed_and_read_back_exactly(tmp_path, values, disk_dtype):
    rng = np.random.default_rng(0)
    sax = rng.choice(values, (2, 3, 6, 5)).astype(np.float32)
    lax = rng.choice(values, (3, 4, 7)).astype(np.float32)
    p = save_exam_images(_exam(sax, lax), tmp_path / "E1.npz")
    entries = _entries(p)
    assert entries["sax"] == (disk_dtype, zipfile.ZIP_STORED)
    assert entries["lax_2ch"] == (disk_dtype, zipfile.ZIP_STORED)
    assert int(np.load(p)["format_version"]) == FORMAT_VERSION
    back = load_exam_images(p)
    assert back.sax.dtype == np.float32 and back.lax["lax_2ch"].dtype == np.float32
    np.testing.assert_array_equal(back.sax, sax)
    np.testing.assert_array_equal(back.lax["lax_2ch"], lax)
    stored = load_exam_images(p, stored=True)  # as on disk, for readers converting only what they use
    assert stored.sax.dtype == disk_dtype and stored.lax["lax_2ch"].dtype == disk_dtype
    np.testing.assert_array_equal(stored.sax.astype(np.float32), sax)


@pytest.mark.parametrize("sax", [
    np.full((2, 2, 6, 5), 0.5, np.float32),                      # rescaled (slope 0.5)
    np.full((2, 2, 6, 5), 70000.0, np.float32),                  # beyond 16 bits
    np.concatenate([np.full((1, 2, 6, 5), -1.0), np.full((1, 2, 6, 5), 40000.0)]).astype(np.float32),
    np.full((2, 2, 6, 5), np.nan, np.float32),
])
def test_other_images_stay_float32(tmp_path, sax):
    p = save_exam_images(_exam(sax), tmp_path / "E1.npz")
    assert _entries(p)["sax"] == (np.float32, zipfile.ZIP_DEFLATED)
    np.testing.assert_array_equal(load_exam_images(p).sax, sax)


@settings(max_examples=30, deadline=None)
@given(st.lists(st.floats(-70000, 70000, width=32) | st.integers(-40000, 70000).map(float), min_size=1, max_size=30))
def test_any_float32_image_round_trips_exactly(values):
    sax = np.resize(np.array(values, np.float32), (1, 1, 6, 5))
    with tempfile.TemporaryDirectory() as tmp:
        back = load_exam_images(save_exam_images(_exam(sax), Path(tmp) / "E1.npz")).sax
    assert back.dtype == np.float32 and np.array_equal(back, sax)


def test_version_1_files_are_read(tmp_path):
    """A format 1 file (float32 images, every entry deflated, no version key) as ingest wrote it."""
    sax = np.random.default_rng(1).integers(0, 1000, (3, 2, 6, 5)).astype(np.float32)
    planes = _planes(3)
    p = tmp_path / "old.npz"
    np.savez_compressed(p, sax=sax, sax_planes=np.stack([plane_vector(q) for q in planes]),
                        trigger_times_ms=np.array([0.0, 40.0]), exam_id=np.array("OLD"),
                        lax_4ch=sax[0] + 0.25, lax_4ch_plane=plane_vector(planes[0]))
    back = load_exam_images(p)
    assert back.exam_id == "OLD" and back.sax.dtype == np.float32
    np.testing.assert_array_equal(back.sax, sax)
    np.testing.assert_array_equal(back.lax["lax_4ch"], sax[0] + 0.25)


def test_newer_version_is_a_specific_error(tmp_path):
    p = save_exam_images(_exam(np.zeros((2, 2, 6, 5), np.float32)), tmp_path / "E1.npz")
    with np.load(p) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["format_version"] = np.array(FORMAT_VERSION + 1)
    np.savez(p, **arrays)
    with pytest.raises(CacheFormatError, match=f"format version {FORMAT_VERSION + 1} is newer"):
        load_exam_images(p)


def test_masks_round_trip(tmp_path):
    masks = np.random.default_rng(2).integers(0, 4, (2, 3, 6, 5)).astype(np.uint8)
    p = save_masks("E1", masks, tmp_path / "m.npz")
    back = load_masks(p)
    assert back.dtype == np.uint8
    np.testing.assert_array_equal(back, masks)
    assert str(np.load(p)["exam_id"]) == "E1"


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 8), st.integers(0, 8), st.integers(1, 9), st.integers(1, 9), st.integers(0, 2 ** 32 - 1))
def test_masks_keep_the_labelled_box_and_read_back_whole(r0, c0, h, w, seed):
    # labels anywhere inside a random box of a 10 x 12 image, none outside: the file keeps the box
    rng = np.random.default_rng(seed)
    masks = np.zeros((2, 3, 10, 12), np.uint8)
    r1, c1 = min(r0 + h, 10), min(c0 + w, 12)
    masks[..., r0:r1, c0:c1] = rng.integers(0, 4, (2, 3, r1 - r0, c1 - c0))
    with tempfile.TemporaryDirectory() as tmp:
        p = save_masks("E1", masks, Path(tmp) / "m.npz")
        np.testing.assert_array_equal(load_masks(p), masks)
        with np.load(p) as z:
            stored = z["sax_masks"]
            if masks.any():
                rows, cols = np.flatnonzero(masks.any(axis=(0, 1, 3))), np.flatnonzero(masks.any(axis=(0, 1, 2)))
                assert stored.shape == (2, 3, rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1)
            else:
                assert stored.shape == masks.shape and "sax_masks_box" not in z.files


def test_masks_written_whole_before_the_box_are_read(tmp_path):
    masks = np.random.default_rng(3).integers(0, 4, (2, 3, 6, 5)).astype(np.uint8)
    with atomic_file(tmp_path / "old.npz") as fh:
        savez(fh, {"exam_id": np.array("E1"), "sax_masks": masks})
    np.testing.assert_array_equal(load_masks(tmp_path / "old.npz"), masks)


def test_writes_are_reproducible(tmp_path):
    """Same images, same bytes (fixed zip timestamps): reruns do not look like changed outputs."""
    sax = np.arange(60, dtype=np.float32).reshape(1, 2, 6, 5)
    a = save_exam_images(_exam(sax), tmp_path / "a.npz").read_bytes()
    b = save_exam_images(_exam(sax), tmp_path / "b.npz").read_bytes()
    assert a == b


@pytest.mark.parametrize("version_1", [False, True])
def test_geometry_only_read_gives_shapes_and_planes_without_pixels(tmp_path, version_1):
    """``pixels=False`` (the guide-point stage): the same planes, times and image shapes, the
    images read-only zeros; both format versions."""
    rng = np.random.default_rng(3)
    exam = _exam(rng.integers(1, 900, (3, 4, 6, 5)).astype(np.float32) + (0.5 if version_1 else 0.0),
                 rng.integers(1, 900, (7, 8, 9)).astype(np.float32))
    p = save_exam_images(exam, tmp_path / "E1.npz")
    full, geo = load_exam_images(p), load_exam_images(p, pixels=False)
    assert geo.exam_id == full.exam_id and (geo.n_slices, geo.n_frames) == (3, 4)
    assert geo.sax.shape == full.sax.shape and geo.lax["lax_2ch"].shape == (7, 8, 9)
    for a, b in zip([*geo.sax_planes, geo.lax_planes["lax_2ch"]], [*full.sax_planes, full.lax_planes["lax_2ch"]]):
        np.testing.assert_array_equal(plane_vector(a), plane_vector(b))
    np.testing.assert_array_equal(geo.trigger_times_ms, full.trigger_times_ms)
    assert not geo.sax.any() and full.sax.any() and not geo.sax.flags.writeable


@pytest.mark.parametrize("arr", [
    np.arange(2 * 3 * 5, dtype=np.uint16).reshape(2, 3, 5),
    np.asfortranarray(np.arange(12, dtype=np.int16).reshape(3, 4)),  # numpy's own writer: fortran_order
    np.arange(12, dtype=np.int16).reshape(3, 4)[:, ::2],  # not contiguous
    np.zeros((0, 4), dtype=np.uint16),
    np.array(7, dtype=np.uint16),
])
def test_stored_entries_hold_numpys_npy_bytes(tmp_path, arr):
    """Stored entries are written from the array's buffer: the same bytes as np.lib.format.write_array."""
    ref = io.BytesIO()
    np.lib.format.write_array(ref, arr, allow_pickle=False)
    path = tmp_path / "a.npz"
    with atomic_file(path) as fh:
        savez(fh, {"a": arr}, stored=lambda a: True)
    with zipfile.ZipFile(path) as zf:
        assert zf.getinfo("a.npy").compress_type == zipfile.ZIP_STORED
        assert zf.read("a.npy") == ref.getvalue()
    assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]  # no temporary file left


def test_a_failed_write_leaves_no_file(tmp_path):
    with pytest.raises(RuntimeError):
        with atomic_file(tmp_path / "b.npz") as fh:
            fh.write(b"partial")
            raise RuntimeError("disk full")
    assert list(tmp_path.iterdir()) == []


def test_stored_images_are_read_in_one_piece_and_a_truncated_file_is_a_specific_error(tmp_path):
    rng = np.random.default_rng(1)
    sax = rng.integers(0, 4096, (3, 4, 16, 12)).astype(np.float32)
    p = save_exam_images(_exam(sax), tmp_path / "E1.npz")
    with zipfile.ZipFile(p) as zf:  # numpy's own reader of the same member
        via_zipfile = np.load(io.BytesIO(zf.read("sax.npy")))
    np.testing.assert_array_equal(load_exam_images(p, stored=True).sax, via_zipfile)
    with zipfile.ZipFile(p) as zf:
        info = zf.getinfo("sax.npy")
    # the archive cut inside the SAX pixels: a short read, not an array of garbage
    short = io.BytesIO(p.read_bytes()[:info.header_offset + 200])
    with pytest.raises(CacheFormatError, match="sax.npy is truncated"):
        _read_stored(short, info)


def test_a_masks_box_that_does_not_fit_is_a_specific_error(tmp_path):
    masks = np.zeros((1, 2, 6, 5), np.uint8)
    masks[..., 1:3, 2:4] = 1
    with atomic_file(tmp_path / "bad.npz") as fh:  # the box says 3 rows, the array holds 2
        savez(fh, {"exam_id": np.array("E1"), "sax_masks": masks[..., 1:3, 2:4],
                   "sax_masks_box": np.array([1, 4, 2, 4, 6, 5])})
    with pytest.raises(CacheFormatError, match="does not fit"):
        load_masks(tmp_path / "bad.npz")
