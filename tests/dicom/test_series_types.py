"""Series typing: every series of a clinical exam told apart by header physics, descriptions blank."""

from __future__ import annotations

import dataclasses
import shutil

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.dicom.scan import scan_folder
from cmr_atlas.dicom.series_types import KINDS, plane_groups, type_series
from cmr_atlas.dicom.views import select_views
from tests.dicom import clinical_exams, exams

KEY = "test-key-for-types"
SMALL = dict(n_slices=7, n_frames=5, rows=24, cols=24)


@pytest.fixture(scope="module")
def ingested(clinical_cohort):
    root, written = clinical_cohort
    rows = ingest_folders(root, sorted(written), KEY, None)
    return rows.frames(), written


def _series(frames, written, vendor):
    from cmr_atlas.core import ids

    eid = ids.exam_id(written[vendor]["study_uid"], KEY)
    s = frames["series"]
    return s[s["exam_id"] == eid].set_index("series_number"), eid


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE"])
def test_every_series_typed_as_written(ingested, vendor):
    frames, written = ingested
    series, _ = _series(frames, written, vendor)
    truth = {n: kind for n, kind, _ in written[vendor]["series"]}
    assert series["kind"].to_dict() == truth
    assert set(series["kind"]) <= set(KINDS)
    assert series["type_reason"].isna().all(), series.loc[series["type_reason"].notna(), "type_reason"]
    assert (series["type_evidence"].str.len() > 0).all()
    assert (series["description_hint"] == "none").all()  # blank descriptions: physics alone


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE"])
def test_sequences_contrast_and_stress_rest(ingested, vendor):
    frames, written = ingested
    series, _ = _series(frames, written, vendor)
    assert set(series.loc[series["kind"] == "cine", "sequence"]) == {"cine_ssfp"}
    desc = {n: d for n, _, d in written[vendor]["series"]}
    by_desc = series.assign(desc=series.index.map(desc)).set_index("desc")
    assert by_desc.loc["perf stress", "stress_rest"] == "stress" and by_desc.loc["perf rest", "stress_rest"] == "rest"
    # each AIF series takes the condition of the perfusion series acquired with it
    assert by_desc.loc["perf aif stress", "stress_rest"] == "stress"
    assert by_desc.loc["perf aif rest", "stress_rest"] == "rest"
    assert not by_desc.loc["T1 map native", "post_contrast"] and by_desc.loc["T1 map post", "post_contrast"]
    assert by_desc.loc["TI scout", "sequence"] == "ti_scout"
    assert set(series.loc[series["kind"].isin(["lge", "lge_psir"]), "sequence"]) == {"lge"}


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE"])
def test_cine_views_only_from_cine_series(ingested, vendor):
    frames, written = ingested
    series, eid = _series(frames, written, vendor)
    exam = frames["exams"].set_index("exam_id").loc[eid]
    assert exam["status"] == "ok" and exam["qc_reason"] is None
    assert exam["n_sax_slices"] == 6 and exam["has_2ch"] and exam["has_4ch"]
    assert set(series.loc[series["role"] != "ignored", "kind"]) == {"cine"}
    desc = {n: d for n, _, d in written[vendor]["series"]}
    roles = {desc[n]: r for n, r in series["role"].items() if r.startswith("lax")}
    assert roles == {"cine 2ch": "lax_2ch", "cine 3ch": "lax_3ch", "cine 4ch": "lax_4ch"}
    slices = frames["slices"][frames["slices"]["exam_id"] == eid]
    assert set(slices["view"]) == {"sax", "lax_2ch", "lax_4ch"}  # the 3CH is listed, not selected
    assert (slices["n_frames"] == 6).all()


def test_descriptions_do_not_change_types(tmp_path, ingested):
    frames, written = ingested
    w = clinical_exams.write_clinical_exam(tmp_path / "X", clinical_exams.ClinicalSpec(
        seed=0, perfusion_frames=45, scout_frames=20, blank_descriptions=False))
    series = ingest_folders(tmp_path, ["X"], KEY, None).frames()["series"].set_index("series_number")
    assert series["kind"].to_dict() == {n: kind for n, kind, _ in w["series"]}
    assert series["description_hint"].isin(["localizer", "2ch", "3ch", "4ch", "sax", "t1map", "perfusion",
                                            "ti_scout", "lge"]).all()


def test_legacy_series_are_cine_gre_and_localizer_in_a_mixed_cohort(tmp_path, write_cohort, clinical_cohort):
    write_cohort(tmp_path / "dicom", 2, seed=4, **SMALL)
    legacy = ingest_folders(tmp_path / "dicom", ["EXAM0000", "EXAM0001"], KEY, None).frames()
    series = legacy["series"]
    assert set(series["kind"]) == {"cine", "localizer"}
    assert set(series.loc[series["kind"] == "cine", "sequence"]) == {"cine_gre"}
    assert (series.loc[series["kind"] == "localizer", "reason"] == "localizer").all()
    assert series["type_reason"].isna().all() and not series["post_contrast"].any()
    shutil.copytree(clinical_cohort[0] / "GE", tmp_path / "dicom" / "CLIN")
    mixed = ingest_folders(tmp_path / "dicom", ["CLIN", "EXAM0000", "EXAM0001"], KEY, None).frames()
    assert list(mixed["exams"]["status"]) == ["ok", "ok", "ok"]
    for table in ("exams", "slices", "series"):
        ours = mixed[table][mixed[table]["exam_id"].isin(legacy["exams"]["exam_id"])].reset_index(drop=True)
        nulls = (lambda d: d.astype(object).where(d.notna(), None))  # noqa: E731 - dtypes follow the rows
        pd.testing.assert_frame_equal(nulls(ours), nulls(legacy[table]))


@pytest.fixture(scope="module")
def headers(clinical_cohort):
    root, written = clinical_cohort
    images = scan_folder(root / "SIEMENS").images
    desc = {n: d for n, _, d in written["SIEMENS"]["series"]}
    by_desc: dict[str, list] = {}
    for h in images:
        by_desc.setdefault(desc[h.series_number], []).append(h)
    return by_desc


def _retype(images, **changes):
    changed = [dataclasses.replace(h, **changes) for h in images]
    return type_series(changed, None)


@pytest.mark.parametrize("series,changes,kind,reason", [
    ("TI scout", dict(inversion_time_ms=None), "unknown", "inversion-recovery frames without inversion times"),
    ("TI scout", dict(inversion_time_ms=None, inversion_time_bad=True), "unknown",
     "inversion-recovery frames without inversion times"),
    ("lge sax", dict(inversion_time_ms=None), "unknown", "inversion-recovery single frame without inversion time"),
    ("lge_psir sax", dict(inversion_time_ms=None), "lge_psir", "no inversion time"),
    ("lge sax", dict(inversion_time_ms=None, scanning_sequence=("GR",)), "unknown",
     "single frame, no inversion time, not a map"),
    ("perf stress", dict(acquisition_time_s=None), "unknown", "frames at one cardiac phase without acquisition times"),
    ("perf stress", dict(acquisition_time_s=None, trigger_time_ms=None), "unknown",
     "frames at one position without trigger or acquisition times"),
    ("T1 map native", dict(map_units=None, map_label=None), "t1map", "no_units"),
    ("T1 map native", dict(image_type=("DERIVED", "PRIMARY", "T2 MAP"), map_units=None, map_label=None,
                           sequence_name="T2PREP"), "unknown", "parametric map other than T1"),
    ("cine sax 1", dict(trigger_time_ms=None), "cine", "no_timing: assumed cine"),
])
def test_damaged_values_give_specific_reasons(headers, series, changes, kind, reason):
    t = _retype(headers[series], **changes)
    assert (t.kind, t.reason) == (kind, reason), t


def test_physics_beats_descriptions(headers):
    cine = [dataclasses.replace(h, description_hint="perfusion") for h in headers["cine 2ch"]]
    assert type_series(cine, None, "perfusion").kind == "cine"
    perf = type_series(headers["perf rest"], None, "sax")
    assert perf.kind == "perfusion" and perf.n_planes == 3 and perf.n_frames == 45


def test_cine_sequence_from_tr_and_flip(headers):
    gre = _retype(headers["cine 4ch"], repetition_time_ms=9.0, flip_angle_deg=20.0)
    assert (gre.kind, gre.sequence) == ("cine", "cine_gre")
    variant = _retype(headers["cine 4ch"], repetition_time_ms=None)
    assert variant.sequence == "cine_ssfp" and "SequenceVariant" in variant.evidence


def test_plane_groups_without_geometry(headers):
    images = [dataclasses.replace(h, orientation=None) for h in headers["perf rest"]]
    assert sorted(len(g) for g in plane_groups(images)) == [45, 45, 45]
    assert type_series(images, None).kind == "perfusion"


def test_lax_3ch_among_two_views_when_one_is_missing(clinical_cohort, tmp_path):
    root, written = clinical_cohort
    shutil.copytree(root / "SIEMENS", tmp_path / "X")
    desc = {n: d for n, _, d in written["SIEMENS"]["series"]}
    images = [h for h in scan_folder(tmp_path / "X").images if desc[h.series_number] != "cine 2ch"]
    sel = select_views(images)
    roles = {desc[s.series_number]: s.role for s in sel.series if s.role.startswith("lax")}
    assert roles == {"cine 3ch": "lax_3ch", "cine 4ch": "lax_4ch"}
    assert set(sel.lax) == {"lax_4ch"} and set(sel.other_lax) == {"lax_3ch"}
    assert np.isclose(sel.lax["lax_4ch"].plane.normal @ sel.other_lax["lax_3ch"].plane.normal, np.sqrt(0.5), atol=0.05) \
        or np.isclose(abs(sel.lax["lax_4ch"].plane.normal @ sel.other_lax["lax_3ch"].plane.normal), np.sqrt(0.5), atol=0.05)


def test_lge_with_adjusted_inversion_times_is_not_a_scout(headers):
    images = sorted(headers["lge sax"], key=lambda h: tuple(h.position))
    adjusted = [dataclasses.replace(h, inversion_time_ms=280.0 + 40.0 * k) for k, h in enumerate(images)]
    t = type_series(adjusted, None)
    assert t.kind == "lge" and "280-" in t.evidence  # varies across planes, one frame each: LGE


def test_map_image_type_on_frames_over_time_is_ignored(headers):
    t = _retype(headers["cine sax 2"], image_type=("DERIVED", "PRIMARY", "T1 MAP"))
    assert t.kind == "cine"


@pytest.mark.parametrize("vendor", ["SIEMENS", "GE"])
def test_plane_views_of_every_series(ingested, vendor):
    frames, written = ingested
    series, _ = _series(frames, written, vendor)
    desc = {n: d for n, _, d in written[vendor]["series"]}
    views = {desc[n]: v for n, v in series["plane_views"].items()}
    assert views["lge lax"] == views["lge_psir lax"] == "lax_2ch+lax_3ch+lax_4ch"
    for d in ("perf stress", "perf aif rest", "TI scout", "lge sax", "T1 map post", "T1 map native"):
        assert views[d] == "sax", d
    assert views["cine 3ch"] == "lax_3ch"


def test_enhanced_scout_and_perfusion_read_per_frame_times(clinical_cohort, tmp_path):
    """Enhanced MR: inversion and acquisition times per frame (MRModifierSequence InversionTimes,
    FrameContentSequence FrameAcquisitionDateTime) type the series as classic files do."""
    import pydicom
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    root, written = clinical_cohort
    desc = {n: d for n, _, d in written["SIEMENS"]["series"]}
    number = {d: n for n, d in desc.items()}
    out = tmp_path / "X"
    out.mkdir()
    for name in ("TI scout", "perf rest"):
        files = sorted((root / "SIEMENS" / f"series_{number[name]:03d}").iterdir())
        frames = [pydicom.dcmread(f) for f in files]
        planes: dict[tuple, list] = {}
        for ds in frames:
            planes.setdefault(tuple(ds.ImagePositionPatient), []).append(ds)
        for k, plane in enumerate(planes.values()):
            times = [(ds.get("InversionTime"), str(ds.get("AcquisitionTime", ""))) for ds in plane]
            enh = exams._enhanced(plane, k)
            for item, (ti, acq) in zip(enh.PerFrameFunctionalGroupsSequence, times):
                content = Dataset()
                content.FrameAcquisitionDateTime = f"20240101{acq}" if acq else ""
                item.FrameContentSequence = Sequence([content])
                if ti is not None:
                    mod = Dataset()
                    mod.InversionTimes = [float(ti)]
                    item.MRModifierSequence = Sequence([mod])
            for keyword in ("InversionTime", "AcquisitionTime"):
                if keyword in enh:
                    delattr(enh, keyword)
            enh.save_as(out / f"{name.replace(' ', '_')}_{k}.dcm", enforce_file_format=True)
    images = scan_folder(out).images
    kinds = {}
    for s in {h.series_uid for h in images}:
        t = type_series([h for h in images if h.series_uid == s], None)
        kinds[t.kind] = t
    assert set(kinds) == {"ti_scout", "perfusion"}
    assert kinds["perfusion"].n_planes == 3 and kinds["perfusion"].frame_interval_s == pytest.approx(0.9, abs=0.01)
