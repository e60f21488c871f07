"""Ingest on the project's synthetic cohort: planes and order match the truth, keys join."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core import ids
from cmr_atlas.dicom.index import ingest_folders
from cmr_atlas.core.columns import SLICE_PLANE_COLUMNS
from tests.shared import shared_folder

pytestmark = pytest.mark.slow
KEY = "test-key-for-synth"
GEOMETRY = [c.name for c in SLICE_PLANE_COLUMNS if c.name not in ("exam_id", "view", "slice_index")]


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    cohort = pytest.importorskip("cmr_atlas.synth.mesa.cohort")
    # seed 7: exam 0 GE, exam 1 Siemens
    out = shared_folder(tmp_path_factory, "legacy_cohort_2x7", lambda out: cohort.generate_cohort(out, 2, 7))
    truth = {t: pd.read_parquet(out / "truth" / f"{t}.parquet") for t in ("slices", "exams", "subjects")}
    folders = sorted(p.name for p in (out / "dicom").iterdir())
    rows = ingest_folders(out / "dicom", folders, KEY, None)
    return rows.frames(), truth


def test_all_ok_both_vendors(synth):
    frames, truth = synth
    exams = frames["exams"]
    assert (exams["status"] == "ok").all(), exams["qc_reason"].tolist()
    assert set(exams["vendor"]) == {"GE", "SIEMENS"}
    assert exams["has_2ch"].all() and exams["has_4ch"].all()


def test_slices_match_truth_same_planes_same_order(synth):
    frames, truth = synth
    sub = truth["subjects"]
    label = {ids.exam_id(u, KEY): e for e, u in zip(sub["exam_id"], sub["study_instance_uid"])}
    ours = frames["slices"].assign(exam_id=lambda d: d["exam_id"].map(label))
    keys = ["exam_id", "view", "slice_index"]
    merged = ours.merge(truth["slices"], on=keys, how="outer", suffixes=("", "_truth"), indicator=True)
    assert (merged["_merge"] == "both").all(), merged.loc[merged["_merge"] != "both", keys]
    for c in GEOMETRY:
        assert np.allclose(merged[c].astype(float), merged[f"{c}_truth"].astype(float), atol=1e-3), c
    te = truth["exams"].set_index("exam_id")
    ex = frames["exams"].assign(label=lambda d: d["exam_id"].map(label)).set_index("label")
    assert (ex["n_sax_slices"] == te.loc[ex.index, "n_sax_slices"]).all()
    assert (ex["n_frames"] == te.loc[ex.index, "n_frames"]).all()


def test_exam_keys_join_covariates(synth):
    frames, truth = synth
    keys = frames["exam_keys"]
    sub = truth["subjects"]
    for key_type, column in (("exam_folder", "exam_id"), ("study_instance_uid", "study_instance_uid"),
                             ("patient_id", "patient_id")):
        hashed = sub[column].map(lambda v: ids.keyed_hash(v, KEY))
        joined = keys[keys["key_type"] == key_type].merge(pd.DataFrame({"key_hash": hashed}), on="key_hash")
        assert len(joined) == len(sub), key_type


def test_legacy_series_typed_gre_cine(synth):
    frames, _ = synth
    series = frames["series"]
    assert set(series["kind"]) <= {"cine", "localizer"} and (series["kind"] == "cine").any()
    assert set(series.loc[series["kind"] == "cine", "sequence"]) == {"cine_gre"}
    assert series["type_reason"].isna().all()
