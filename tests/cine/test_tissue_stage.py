"""The tissue stage of one shard on a generated clinical exam's DICOM (ingested: its series table and
series cache): landmarks on every SAX LGE and T1-map slice and every long-axis LGE view by the shipped
network of its sequence and view, t1_segments against the generator's T1/ECV truth, and the qc
reasons of exams without maps or cache."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.tissue import stage as ST
from cmr_atlas.cine.tissue.landmarks import NETWORKS, TISSUE_LANDMARKS, load_tissue_models, series_landmarks
from cmr_atlas.cine.tissue.segments import T1_SEGMENTS
from cmr_atlas.core.config import default, find_models_dir
from cmr_atlas.core.runner import EXAM_STATUS
from cmr_atlas.core.seriescache import load_series_images, series_cache_path
from cmr_atlas.core.tables import read_table
from cmr_atlas.dicom.index import ingest_folder

OPTIONS = {"absent_threshold": default("landmarks.absent_threshold"), "batch": 16, "device": "cpu",
           "precision": "float32", "hematocrit": default("tissue.hematocrit"),
           "pair_reconstructions": default("tissue.pair_reconstructions")}


@pytest.fixture(scope="module")
def shard(tmp_path_factory, clinical_synth_cohort):
    """Series cache and series table of the clinical exam as ingest writes them, plus EXAM2 (no LGE
    or T1 map) and EXAM3 (a T1 map in the table whose cache file is missing), and the stage's three
    outputs; the cached series the stage reads and the clinical exam's id."""
    tmp = tmp_path_factory.mktemp("tissue")
    folder = next((clinical_synth_cohort / "dicom").iterdir())
    table = pd.DataFrame(ingest_folder(folder.parent, folder.name, "test-key", tmp / "cache").series)
    exam_id = table.exam_id.iloc[0]
    extra = pd.DataFrame([{"exam_id": "EXAM2", "series_index": 0, "kind": "cine", "plane_views": "sax", "post_contrast": False},
                          {"exam_id": "EXAM3", "series_index": 99, "kind": "t1map", "plane_views": "sax", "post_contrast": False}])
    pd.concat([table, extra], ignore_index=True).to_parquet(tmp / "series.parquet")
    out = {k: tmp / f"{k}.parquet" for k in ("landmarks", "segments", "status")}
    ST.tissue_shard(tmp / "series.parquet", tmp / "cache", find_models_dir(default("models_dir")), OPTIONS,
                    landmarks_path=out["landmarks"], segments_path=out["segments"], status_path=out["status"])
    read = ST.tissue_series(table)
    series = {r.series_index: (r.plane_views, load_series_images(series_cache_path(tmp / "cache", exam_id, r.series_index, r.kind)))
              for r in read.itertuples()}
    return series, out, exam_id


def test_shipped_networks_name_their_sequence_and_views():
    import json

    for (sequence, view_net), name in NETWORKS.items():
        card = json.loads((find_models_dir(default("models_dir")) / f"{name}.json").read_text())
        assert card["sequences"] == [sequence] and card["weights_file"] == f"{name}.pt"
        assert sorted(card["views"]) == (["sax"] if view_net == "sax" else ["lax_2ch", "lax_3ch", "lax_4ch"])
        assert (find_models_dir(default("models_dir")) / f"{name}.pt").stat().st_size < 5e6


def test_landmarks_on_every_image_of_every_series(shard):
    series, out, _ = shard
    lm = read_table(out["landmarks"], TISSUE_LANDMARKS)
    assert set(lm.series_index) == set(series)
    assert {v for v, _ in series.values()} == {"sax", "lax_2ch", "lax_3ch", "lax_4ch"}
    for index, (view, s) in series.items():
        rows = lm[lm.series_index == index]
        assert len(rows) == 3 * s.n_planes and set(rows.sequence) == {"t1map" if s.kind == "t1map" else "lge"}
        assert set(rows.view) == {view}
    # the middle of the LV: LV centre and both insertions found on the mid slices of the LGE stack
    index, (_, mag) = next((i, vs) for i, vs in series.items() if vs[0] == "sax" and vs[1].kind == "lge")
    mid = lm[(lm.series_index == index) & lm.slice_index.between(mag.n_planes // 3, 2 * mag.n_planes // 3)]
    assert mid.present.mean() > 0.8
    # long-axis LGE: both mitral points and the apex on every view, magnitude and PSIR
    lax = lm[lm.view != "sax"]
    assert len(lax) == 3 * 3 * 2 and lax.present.all()


def test_t1_segments_and_qc_reasons(shard, clinical_synth_cohort):
    _, out, exam1 = shard
    seg = read_table(out["segments"], T1_SEGMENTS)
    status = read_table(out["status"], EXAM_STATUS).set_index("exam_id")
    assert status.loc[exam1, "status"] == "ok" and status.loc["EXAM3", "qc_reason"] == "no_series_cache"
    assert seg.loc[seg.exam_id == "EXAM2", "qc_reason"].tolist() == ["no_t1_map"]
    assert seg.loc[seg.exam_id == "EXAM3", "qc_reason"].tolist() == ["no_series_cache"]
    ok = seg[(seg.exam_id == exam1) & seg.qc_reason.isna()]
    assert len(ok) >= 4 and ok.segment.between(1, 16).all() and (ok.hematocrit_source == "default").all()
    exam = pd.read_parquet(clinical_synth_cohort / "truth" / "clinical_exams.parquet").iloc[0]
    truth = pd.read_parquet(clinical_synth_cohort / "truth" / "segments.parquet").set_index("segment")
    assert np.median(ok.blood_native_t1_ms) == pytest.approx(exam.native_t1_blood_ms, rel=0.05)
    assert np.median(ok.blood_post_t1_ms) == pytest.approx(exam.post_t1_blood_ms, rel=0.1)
    healthy = ok[~ok.segment.map(truth.scar | truth.fibrosis)]  # lesions fill part of a segment's wall only
    assert len(healthy) >= 3
    assert (healthy.native_t1_ms - healthy.segment.map(truth.native_t1_ms)).abs().median() < 30.0
    assert (healthy.ecv - healthy.segment.map(truth.ecv)).abs().median() < 0.03


def test_magnitude_and_psir_of_one_acquisition_are_read_together(shard):
    series, out, _ = shard
    lm = read_table(out["landmarks"], TISSUE_LANDMARKS)
    lge = {i: s for i, (_, s) in series.items() if s.kind in ("lge", "lge_psir")}
    companion = lm[lm.series_index.isin(list(lge))].groupby("series_index")["companion_series_index"].unique()
    assert set(companion.index) == set(lge)
    for i, c in companion.items():  # each LGE series with the other reconstruction, both ways
        assert len(c) == 1 and lge[int(c[0])].kind != lge[i].kind and companion[int(c[0])][0] == i
        key = ["slice_index", "landmark"]
        a = lm[lm.series_index == i].set_index(key).sort_index()
        b = lm[lm.series_index == int(c[0])].set_index(key).sort_index()
        assert (a.present == b.present).all()
        assert np.allclose(a[["x_px", "y_px"]], b[["x_px", "y_px"]], atol=1e-3, equal_nan=True)
    assert lm.loc[lm.kind == "t1map", "companion_series_index"].isna().all()


def test_a_companion_averages_its_maps_with_the_series(shard):
    series, _, _ = shard
    models = load_tissue_models(find_models_dir(default("models_dir")), device="cpu", precision="float32")["lge"]
    mag = next(s for v, s in series.values() if v == "sax" and s.kind == "lge")
    psir = next(s for v, s in series.values() if v == "sax" and s.kind == "lge_psir")
    run = dict(absent_threshold=OPTIONS["absent_threshold"], batch=16, view="sax")
    alone = series_landmarks(mag, models, **run)
    assert alone["companion_series_index"].isna().all()
    itself = series_landmarks(mag, models, companion=mag, **run)  # the same maps averaged: the same decision
    assert np.allclose(itself["confidence"], alone["confidence"], atol=1e-5)
    paired = series_landmarks(mag, models, companion=psir, **run)
    assert (paired["companion_series_index"] == psir.series_index).all()
    assert np.abs(paired["confidence"] - alone["confidence"]).max() > 1e-5
    # a blank companion: the confident peaks averaged with next to nothing, about halved
    blank = series_landmarks(mag, models, companion=dataclasses.replace(mag, pixels=np.ones_like(mag.pixels)), **run)
    sure = alone["confidence"] > 0.9
    assert sure.sum() >= 6
    assert blank.loc[sure, "confidence"].between(0.45, 0.9).all()
    both_ways = series_landmarks(psir, models, companion=mag, **run)
    assert np.allclose(both_ways["confidence"], paired["confidence"], atol=1e-5)


def test_a_companion_on_other_planes_is_refused(shard):
    series, _, _ = shard
    models = load_tissue_models(find_models_dir(default("models_dir")), device="cpu", precision="float32")["lge"]
    mag = next(s for v, s in series.values() if v == "sax" and s.kind == "lge")
    shifted = dataclasses.replace(mag, planes=[dataclasses.replace(p, position_mm=np.asarray(p.position_mm) + [0, 0, 9.0])
                                               for p in mag.planes])
    with pytest.raises(ValueError, match="not on the same planes"):
        series_landmarks(mag, models, absent_threshold=OPTIONS["absent_threshold"], batch=16, companion=shifted)
