"""The workflow's per-shard exports (cmr_atlas.formats.export) on one small shard: the synthetic
cohort ingested (image cache), truth contours rasterised as the shard's automated masks."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pydicom
import pytest

from cmr_atlas.cine.annotations import build_manual, folder_map
from cmr_atlas.core.imagecache import load_masks, save_masks
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.dicom_seg import export_dicom_seg
from cmr_atlas.formats.export import export_shard_cap, export_shard_dicom_seg, export_shard_nifti
from cmr_atlas.formats.importers import import_annotations
from cmr_atlas.formats.nifti import to_nifti_array
from tests.formats.helpers import OBSERVER, assert_same_guide_points

KEY = "formats-export-key"


@dataclass
class Shard:
    dir: Path
    tables: dict[str, pd.DataFrame]  # ingest's exams, slices, exam_keys
    ids: dict[str, str]  # exam folder -> exam_id
    phases: dict[str, tuple[int, int]]  # exam_id -> (ED, ES) frame


@pytest.fixture(scope="module")
def shard(cohort, tmp_path_factory) -> Shard:
    """Both exams as one shard: ingest tables, image cache, masks at ED and ES, phases, folders.txt."""
    d = tmp_path_factory.mktemp("shard")
    folders = sorted(cohort.exams["exam_id"])
    rows = ingest_folders(cohort.root / "dicom", folders, KEY, d / "cache").frames()
    ids = folder_map(rows["exam_keys"], folders, KEY)
    truth = cohort.exams.set_index("exam_id")
    phases = {ids[f]: (int(truth.loc[f, "ed_frame"]), int(truth.loc[f, "es_frame"])) for f in folders}
    for folder, exam_id in ids.items():
        sax = cohort.sax_masks(phases[exam_id][0], folder)
        masks = np.zeros((sax.shape[0], cohort.index.n_frames(folder), *sax.shape[1:]), dtype=np.uint8)
        for f in phases[exam_id]:
            masks[:, f] = cohort.sax_masks(f, folder)
        save_masks(exam_id, masks, d / "masks" / f"{exam_id}.npz")
    pd.DataFrame([(e, ed, es) for e, (ed, es) in phases.items()],
                 columns=["exam_id", "ed_frame", "es_frame"]).to_parquet(d / "phases.parquet")
    for t in ("exam_keys", "slices"):
        rows[t].to_parquet(d / f"{t}.parquet")
    (d / "folders.txt").write_text("\n".join(folders) + "\n")
    return Shard(d, rows, ids, phases)


def test_dicom_seg_per_exam_and_phase_reads_back(cohort, shard, tmp_path):
    out = tmp_path / "export_identified" / "dicom_seg"
    s = shard.dir
    man = export_shard_dicom_seg(cohort.root, s / "folders.txt", s / "exam_keys.parquet", KEY, s / "phases.parquet",
                                 s / "masks", out, out / "manifest.parquet")
    assert pd.read_parquet(out / "manifest.parquet").equals(man)
    assert set(man["exam_id"]) == set(shard.ids.values())
    assert set(zip(man["exam_id"], man["part"])) == {(e, p) for e in shard.phases for p in ("ED", "ES")}
    files = [out / p for p in man["path"]]
    # named by exam_id, one folder per exam; the folder names (identifiers) appear in no file name
    assert all(f.is_file() and f.parent.name == e and f.name.startswith(e) for f, e in zip(files, man["exam_id"]))
    assert not any(folder in str(p) for folder in shard.ids for p in man["path"])
    # identified: the SEG carries the source images' patient attributes (why it lives apart)
    seg = pydicom.dcmread(files[0])
    src = pydicom.dcmread(cohort.index.images(next(iter(shard.ids)), "sax")[0].path)
    assert seg.Modality == "SEG" and seg.PatientID == src.PatientID
    got = import_annotations("dicom_seg", files, cohort.index, OBSERVER).contours
    sax = got[got["view"] == "sax"]
    for folder, exam_id in shard.ids.items():
        e = sax[sax["exam_id"] == folder]
        assert dict(e.groupby("phase")["frame"].first()) == dict(zip(("ED", "ES"), shard.phases[exam_id]))


def test_an_exam_a_seg_cannot_reference_is_skipped_and_logged(cohort, shard, tmp_path, monkeypatch, caplog):
    import cmr_atlas.formats.export as export
    bad_folder, bad_id = next(iter(shard.ids.items()))

    def refuse(masks, index, exam, *args, **kwargs):
        if exam == bad_folder:
            raise FormatError(f"exam {exam}: SAX slice 0 is a frame of a multi-frame file (not supported)")
        return export_dicom_seg(masks, index, exam, *args, **kwargs)

    monkeypatch.setattr(export, "export_dicom_seg", refuse)
    s, out = shard.dir, tmp_path / "seg"
    man = export_shard_dicom_seg(cohort.root, s / "folders.txt", s / "exam_keys.parquet", KEY, s / "phases.parquet",
                                 s / "masks", out, out / "manifest.parquet")
    assert set(man["exam_id"]) == set(shard.ids.values()) - {bad_id}
    assert f"exam {bad_id}: no DICOM SEG (FormatError)" in caplog.text and bad_folder not in caplog.text


def test_nifti_images_and_masks_per_exam(cohort, shard, tmp_path):
    out = tmp_path / "export" / "nifti"
    exam_ids = sorted(shard.ids.values())
    man = export_shard_nifti(exam_ids, shard.dir / "cache", shard.dir / "masks", out, out / "manifest.parquet")
    assert sorted(zip(man["exam_id"], man["part"])) == sorted((e, p) for e in exam_ids for p in ("images", "masks"))
    for exam_id in exam_ids:
        folder = next(f for f, e in shard.ids.items() if e == exam_id)
        masks = load_masks(shard.dir / "masks" / f"{exam_id}.npz")
        seg = nib.load(out / exam_id / f"{exam_id}_sa_seg.nii.gz")
        np.testing.assert_array_equal(np.asanyarray(seg.dataobj), to_nifti_array(masks))
        img = nib.load(out / exam_id / f"{exam_id}_sa.nii.gz")
        assert img.shape == seg.shape and img.header.get_zooms()[3] > 0
        # the label map's affine puts it on the exam's SAX images: it imports as contours at ED and ES
        got = import_annotations("nifti", [out / exam_id / f"{exam_id}_sa_seg.nii.gz"], cohort.index,
                                 OBSERVER, labels="cmr_atlas").contours
        assert set(got["exam_id"]) == {folder}
        assert set(got["frame"]) == set(shard.phases[exam_id])


def test_cap_per_exam_and_source_reads_back(cohort, shard, tmp_path):
    manual = build_manual(cohort.root / "truth", shard.tables["slices"], shard.tables["exam_keys"], KEY, OBSERVER)
    gp = pd.concat([manual, manual.assign(source="auto")], ignore_index=True)
    gp.to_parquet(tmp_path / "guide_points.parquet")
    out = tmp_path / "export" / "cap"
    man = export_shard_cap(tmp_path / "guide_points.parquet", shard.dir / "slices.parquet", out,
                           out / "manifest.parquet")
    assert set(zip(man["exam_id"], man["part"])) == {(e, s) for e in shard.ids.values() for s in ("auto", "manual")}
    for source in ("auto", "manual"):
        folders = [out / e / source for e in shard.ids.values()]
        ann = import_annotations("cap", folders, cohort.index, OBSERVER)
        ann.write(tmp_path / source)
        got = build_manual(tmp_path / source, shard.tables["slices"], shard.tables["exam_keys"], KEY, OBSERVER)
        expected = manual[manual["landmark"].fillna("") != "lv_centre"]  # no CAP type
        for exam_id in shard.ids.values():
            assert_same_guide_points(expected[expected["exam_id"] == exam_id], got[got["exam_id"] == exam_id], 0.1)
