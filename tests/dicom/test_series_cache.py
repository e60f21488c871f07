"""The series cache: ingest reads every perfusion, AIF, scout, LGE and T1-map series once, and the
cached planes x frames are the files' pixels and per-image timing."""

from __future__ import annotations

import shutil

import numpy as np
import pydicom
import pytest

from cmr_atlas.core import ids
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import CacheFormatError
from cmr_atlas.core.seriescache import (CACHED_KINDS, SeriesImages, list_series_images, load_series_images,
                                        save_series_images, series_cache_path)
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.dicom.series_read import read_folder_series

KEY = "test-key-series-cache"


@pytest.fixture(scope="module")
def cached(clinical_cohort, tmp_path_factory):
    root, written = clinical_cohort
    cache = tmp_path_factory.mktemp("series-cache")
    rows = ingest_folders(root, sorted(written), KEY, cache)
    return rows.frames(), written, cache, root


def _files_of(root, vendor: str, series_number: int) -> list[pydicom.Dataset]:
    out = [pydicom.dcmread(p) for p in sorted((root / vendor).rglob("*")) if p.is_file()]
    return sorted((d for d in out if d.SeriesNumber == series_number), key=lambda d: int(d.InstanceNumber))


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE"])
def test_every_non_cine_series_cached_with_its_kind(cached, vendor):
    frames, written, cache, _ = cached
    eid = ids.exam_id(written[vendor]["study_uid"], KEY)
    series = frames["series"][frames["series"]["exam_id"] == eid]
    want = series[series["kind"].isin(CACHED_KINDS)]
    paths = list_series_images(cache, eid)
    assert [p.name for p in paths] == [f"{i:03d}_{k}.npz" for i, k in zip(want["series_index"], want["kind"])]
    for p, (_, row) in zip(paths, want.iterrows()):
        s = load_series_images(p)
        condition = row["stress_rest"] if isinstance(row["stress_rest"], str) else None
        assert (s.exam_id, s.series_index, s.kind, s.stress_rest) == (eid, row["series_index"], row["kind"], condition)
        assert s.n_planes == row["n_planes"] and int(s.n_frames.max()) == row["n_frames"]
    assert list_series_images(cache, eid, ("ti_scout",)) == [p for p in paths if p.stem.endswith("ti_scout")]


def test_perfusion_pixels_and_timing_are_the_files(cached):
    frames, written, cache, root = cached
    eid = ids.exam_id(written["GE"]["study_uid"], KEY)
    series = frames["series"].query("exam_id == @eid and kind == 'perfusion' and stress_rest == 'rest'").iloc[0]
    s = load_series_images(series_cache_path(cache, eid, series["series_index"], "perfusion"))
    files = _files_of(root, "GE", int(series["series_number"]))
    assert s.pixels.shape[:2] == (3, 45) and (s.n_frames == 45).all()
    # planes in order of first InstanceNumber, frames in acquisition order within a plane
    by_plane: dict[tuple, list[pydicom.Dataset]] = {}
    for d in files:
        by_plane.setdefault(tuple(np.round(np.asarray(d.ImagePositionPatient, float), 2)), []).append(d)
    for p, ds in enumerate(by_plane.values()):
        expected = np.stack([d.pixel_array.astype(np.float32) for d in ds])
        np.testing.assert_array_equal(s.plane_frames(p), expected)
        np.testing.assert_array_equal(s.flip_angle_deg[p], [float(d.FlipAngle) for d in ds])
        assert np.all(np.diff(s.acquisition_time_s[p]) > 0.5)  # one heartbeat per frame
    assert (s.flip_angle_deg[:, :3] == 5).all() and (s.flip_angle_deg[:, 3:] == 12).all()
    assert np.isnan(s.inversion_time_ms).all()


def test_scout_inversion_times_cached(cached):
    frames, written, cache, _ = cached
    eid = ids.exam_id(written["SIEMENS"]["study_uid"], KEY)
    (path,) = list_series_images(cache, eid, ("ti_scout",))
    s = load_series_images(path)
    np.testing.assert_allclose(s.inversion_time_ms[0], np.round(np.linspace(90.0, 1300.0, 20), 1))


def test_read_folder_series_matches_the_cache(cached):
    _, written, cache, root = cached
    eid = ids.exam_id(written["SIEMENS"]["study_uid"], KEY)
    from_folder = read_folder_series(root / "SIEMENS", kinds=("ti_scout", "perfusion"))
    cached_ = [load_series_images(p) for p in list_series_images(cache, eid, ("ti_scout", "perfusion"))]
    assert [s.kind for s in from_folder] == [s.kind for s in cached_]
    for a, b in zip(from_folder, cached_):
        assert a.exam_id == "" and a.series_index == b.series_index
        np.testing.assert_array_equal(a.pixels, b.pixels)


def test_unreadable_pixels_leave_a_reason_and_the_other_series(clinical_cohort, tmp_path):
    root, written = clinical_cohort
    shutil.copytree(root / "GE", tmp_path / "d" / "GE")
    scout = _files_of(tmp_path / "d", "GE", next(n for n, k, _ in written["GE"]["series"] if k == "ti_scout"))
    victim = next(p for p in sorted((tmp_path / "d" / "GE").rglob("*"))
                  if p.is_file() and pydicom.dcmread(p, stop_before_pixels=True).SOPInstanceUID == scout[3].SOPInstanceUID)
    victim.write_bytes(victim.read_bytes()[:-500])  # truncated pixel data
    rows = ingest_folders(tmp_path / "d", ["GE"], KEY, tmp_path / "cache").frames()
    s = rows["series"].set_index("kind")
    assert s.loc["ti_scout", "type_reason"].startswith("not_cached: corrupt_pixel_data")
    eid = rows["exams"]["exam_id"].iloc[0]
    kinds = [p.stem[4:] for p in list_series_images(tmp_path / "cache", eid)]
    assert "ti_scout" not in kinds and "perfusion" in kinds and "t1map" in kinds


def _series(n_frames: list[int], pixels_dtype=np.float32) -> SeriesImages:
    rng = np.random.default_rng(0)
    n, p = max(n_frames), len(n_frames)
    plane = SlicePlane.from_dicom([1.0, 2.0, 3.0], [1, 0, 0, 0, 1, 0], (2.0, 2.0), (6, 5), 8.0)
    pix = rng.normal(100, 10, (p, n, 6, 5)).astype(pixels_dtype)
    for k, m in enumerate(n_frames):
        pix[k, m:] = np.nan
    t = np.arange(p * n, dtype=float).reshape(p, n)
    return SeriesImages("E1", 4, 12, "perfusion", "perfusion", "rest", True, pix, np.array(n_frames), [plane] * p,
                        t, t + 1, np.full((p, n), np.nan), t + 2, 3.0, 72.0, None)


def test_round_trip_keeps_ragged_planes(tmp_path):
    s = _series([5, 3])
    back = load_series_images(save_series_images(s, tmp_path / "x.npz"))
    np.testing.assert_array_equal(back.pixels, s.pixels)  # NaN beyond n_frames, as written
    assert back.plane_frames(1).shape == (3, 6, 5)
    for k in ("acquisition_time_s", "trigger_time_ms", "inversion_time_ms", "flip_angle_deg"):
        np.testing.assert_array_equal(getattr(back, k), getattr(s, k))
    assert (back.kind, back.stress_rest, back.field_strength_t, back.heart_rate_bpm) == ("perfusion", "rest", 3.0, 72.0)
    np.testing.assert_allclose(back.planes[0].position_mm, [1.0, 2.0, 3.0])


def test_newer_format_is_refused(tmp_path):
    path = save_series_images(_series([2]), tmp_path / "x.npz")
    with np.load(path) as z:
        arrays = {k: z[k] for k in z.files}
    arrays["format_version"] = np.array(99)
    np.savez(path, **arrays)
    with pytest.raises(CacheFormatError, match="newer"):
        load_series_images(path)
