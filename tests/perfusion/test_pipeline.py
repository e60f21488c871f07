"""The whole perfusion stage on a synthetic exam with the shipped network
(cmr_atlas.perfusion.pipeline, .shard): tables, both sources, bad input as QC rows."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.config import default
from cmr_atlas.core.seriescache import save_series_images, series_cache_path
from cmr_atlas.perfusion import insertion_net, pipeline, prepare, segment, shard
from cmr_atlas.perfusion.quantify import QuantConfig
from cmr_atlas.perfusion.tables import PERFUSION_TABLES
from tests.shared import shared_object

MODELS = Path(__file__).resolve().parents[2] / "resources" / "models"


@pytest.fixture(scope="module")
def model():
    return segment.load_segmenter(MODELS)


@pytest.fixture(scope="module")
def result(perfusion_exam, model, tmp_path_factory):
    """The default configuration, as the shard runs it: the insertion network loaded (run once
    for the test processes: half a minute)."""
    ex = perfusion_exam
    c, lm = ex.truth["contours"], ex.truth["landmarks"]
    ann = pipeline.Annotations(c[c.observer == "obs1"], lm[lm.observer == "obs1"])
    return shared_object(tmp_path_factory, "perfusion_result_default", lambda: pipeline.run_exam(
        ex.exam_id, ex.series, QuantConfig.from_config(default("perfusion")), *model, ann,
        landmark_net=insertion_net.load(MODELS)))


def test_auto_insertions_come_from_the_network_and_point_at_the_true_insertion(result, perfusion_exam):
    from cmr_atlas.perfusion.sectors import direction_error_deg

    series = pd.DataFrame(result.rows["perfusion_series"])
    assert (series.rv_insertion == "network").sum() >= 4
    lm = perfusion_exam.truth["landmarks"]
    ids = sorted({k[1] for k in perfusion_exam.labels})
    errors = []
    for cond in ("stress", "rest"):
        n_pd = next(prepare.pd_frame_count(s.flip_angle_deg[0]) for s in perfusion_exam.series
                    if s.kind == "perfusion" and s.stress_rest == cond)
        for k, r in enumerate(result.slices[("auto", cond)]):
            m = insertion_net.truth_points(lm, cond, ids[k], n_pd)  # the corrected slice's pose
            if r.insertions is None or "rv_insert_anterior" not in m:
                continue
            true = m["rv_insert_anterior"] - m["lv_centre"]
            errors.append(direction_error_deg(r.insertions.anterior_direction(), true))
    assert len(errors) >= 4 and np.mean(errors) < 10  # figures: benchmarks/perfusion.py


def test_a_slice_gets_one_insertion_direction_from_its_stress_and_rest_acquisitions(result):
    series = pd.DataFrame(result.rows["perfusion_series"]).set_index(["condition", "slice"])
    fused = 0
    for k, (s, r) in enumerate(zip(result.slices[("auto", "stress")], result.slices[("auto", "rest")])):
        if series.loc[("stress", k), "rv_insertion"] == series.loc[("rest", k), "rv_insertion"] == "network":
            assert np.allclose(s.insertions.anterior_direction(), r.insertions.anterior_direction(), atol=1e-6)
            fused += 1
    assert fused >= 2


def test_both_conditions_and_sources_are_quantified(result, perfusion_exam):
    series = pd.DataFrame(result.rows["perfusion_series"])
    assert set(series.condition) == {"stress", "rest"} and len(series) == 6
    segs = pd.DataFrame(result.rows["perfusion_segments"])
    assert set(segs.source) == {"auto", "manual"}
    auto = segs[segs.source == "auto"]
    assert auto.groupby("condition").aha_segment.nunique().min() >= 10
    assert auto.aha_segment.between(1, 16).all() and (auto.n_pixels > 0).all()
    glob = pd.DataFrame(result.rows["perfusion_global"]).set_index("source")
    truth = perfusion_exam.segment_mbf
    # stress above rest as in the truth, and within a broad band of it (figures: benchmarks/perfusion.py)
    assert glob.loc["auto", "mbf_stress_ml_min_g"] > glob.loc["auto", "mbf_rest_ml_min_g"]
    assert abs(glob.loc["auto", "mbf_rest_ml_min_g"] - truth["rest"].mean()) < 0.5
    aif = pd.DataFrame(result.rows["aif_curves"])
    assert aif.groupby("condition").concentration_mmol_l.max().between(0.5, 10).all()


def test_auto_segmentation_overlaps_the_truth(result, perfusion_exam):
    ids = sorted({k[1] for k in perfusion_exam.labels})
    dice = []
    for cond in ("stress", "rest"):
        for k, r in enumerate(result.slices[("auto", cond)]):
            t = perfusion_exam.labels[(cond, ids[k])] == segment.MYOCARDIUM
            a = r.labels == segment.MYOCARDIUM
            if t.sum() > 20:
                dice.append(2 * (t & a).sum() / (t.sum() + a.sum()))
    assert np.mean(dice) > 0.6


def test_auto_contours_follow_the_exact_contours(result, perfusion_exam):
    """The network's sub-pixel contours lie near the generator's exact ones (mean distance; the
    held-out figures: benchmarks/perfusion.py)."""
    ids = sorted({k[1] for k in perfusion_exam.labels})
    dist = []
    for cond in ("stress", "rest"):
        for k, r in enumerate(result.slices[("auto", cond)]):
            truth = perfusion_exam.contours[(cond, ids[k])]
            assert "epi" in r.contours and set(r.contours) >= set(truth) - {"endo"}
            for surface in set(r.contours) & set(truth):
                d = np.hypot(*(r.contours[surface][:, None] - truth[surface][None]).transpose(2, 0, 1)).min(axis=1)
                dist.append(d.mean())
    assert np.mean(dist) * 2.3 < 1.5  # pixels of ~2.3 mm


def test_shard_writes_every_table_and_survives_bad_exams(tmp_path, perfusion_exam):
    ex = perfusion_exam
    cache = tmp_path / "cache"
    rows = []
    truncated = copy.deepcopy(ex.series)
    truncated[0].n_frames[:] = 20
    truncated[0].pixels[:, 20:] = np.nan
    for exam_id, series in (("good", ex.series), ("short", truncated)):
        for s in series:
            s = copy.copy(s)
            s.exam_id = exam_id
            save_series_images(s, series_cache_path(cache, exam_id, s.series_index, s.kind))
            rows.append({"exam_id": exam_id, "series_index": s.series_index, "kind": s.kind})
    (cache / "series" / "broken").mkdir(parents=True)
    (cache / "series" / "broken" / "000_perfusion.npz").write_bytes(b"not a zip")
    rows.append({"exam_id": "broken", "series_index": 0, "kind": "perfusion"})
    pd.DataFrame(rows).to_parquet(tmp_path / "series.parquet")
    pd.DataFrame({"exam_id": [], "key_type": [], "key_hash": []}).to_parquet(tmp_path / "exam_keys.parquet")
    section = dict(default("perfusion"), pixel_maps=True)
    outs = {s.name: tmp_path / f"{s.name}.parquet" for s in PERFUSION_TABLES}
    got = shard.perfusion_shard(tmp_path / "series.parquet", tmp_path / "exam_keys.parquet", cache, MODELS,
                                section, outs, tmp_path / "maps")
    assert all(p.is_file() for p in outs.values())
    qc = got["perfusion_series"].set_index(["exam_id", "condition"])["qc_reason"]
    first = lambda key: np.atleast_1d(qc.loc[key])[0]  # noqa: E731
    assert "truncated bolus" in first(("short", "stress"))
    assert "unreadable" in first(("broken", "unknown"))
    assert qc.loc[("short", "rest")].isna().all()  # the rest series of that exam still quantified
    assert (got["perfusion_segments"].exam_id == "good").sum() >= 20
    good = got["perfusion_series"][got["perfusion_series"].exam_id == "good"]
    assert (good.rv_insertion == "network").any()  # the default config loads the insertion network
    assert len(list((tmp_path / "maps" / "good").glob("*.png"))) >= 4
    with np.load(sorted((tmp_path / "maps" / "good").glob("*.npz"))[0]) as z:  # the sub-pixel contours travel
        assert z["epi_rc"].shape[1] == 2 and z["epi_rc"].shape[0] > 10


def test_shard_without_the_network(tmp_path, perfusion_exam):
    """No perfusion series: no network needed, empty tables.  Perfusion series but no network
    (a models folder without perf_seg): every exam gets the reason, the tables are still written."""
    outs = {s.name: tmp_path / f"{s.name}.parquet" for s in PERFUSION_TABLES}
    pd.DataFrame({"exam_id": ["legacy"], "series_index": [0], "kind": ["cine"]}).to_parquet(tmp_path / "s0.parquet")
    pd.DataFrame({"exam_id": [], "key_type": [], "key_hash": []}).to_parquet(tmp_path / "keys.parquet")
    got = shard.perfusion_shard(tmp_path / "s0.parquet", tmp_path / "keys.parquet", tmp_path / "cache",
                                tmp_path / "no-models", default("perfusion"), outs, tmp_path / "maps")
    assert all(len(df) == 0 for df in got.values()) and all(p.is_file() for p in outs.values())
    rows = []
    for s in perfusion_exam.series:
        save_series_images(s, series_cache_path(tmp_path / "cache", "clin", s.series_index, s.kind))
        rows.append({"exam_id": "clin", "series_index": s.series_index, "kind": s.kind})
    pd.DataFrame(rows).to_parquet(tmp_path / "s1.parquet")
    got = shard.perfusion_shard(tmp_path / "s1.parquet", tmp_path / "keys.parquet", tmp_path / "cache",
                                tmp_path / "no-models", default("perfusion"), outs, tmp_path / "maps")
    assert got["perfusion_series"]["qc_reason"].str.startswith("perfusion network unavailable").all()
    assert len(got["perfusion_segments"]) == 0


def test_without_the_insertion_network_the_config_chooses_the_wall_rule(tmp_path, perfusion_exam):
    """A models folder with the segmentation network only: under the default (insertions: network)
    every exam says which network is missing; with insertions: wall the exam is quantified."""
    import shutil

    models = tmp_path / "models"
    models.mkdir()
    for f in ("perf_seg.json", "perf_seg.pt"):
        shutil.copy(MODELS / f, models / f)
    rows = []
    for s in perfusion_exam.series:
        save_series_images(s, series_cache_path(tmp_path / "cache", "clin", s.series_index, s.kind))
        rows.append({"exam_id": "clin", "series_index": s.series_index, "kind": s.kind})
    pd.DataFrame(rows).to_parquet(tmp_path / "s.parquet")
    pd.DataFrame({"exam_id": [], "key_type": [], "key_hash": []}).to_parquet(tmp_path / "keys.parquet")
    outs = {s.name: tmp_path / f"{s.name}.parquet" for s in PERFUSION_TABLES}
    section = dict(default("perfusion"), pixel_maps=False)
    got = shard.perfusion_shard(tmp_path / "s.parquet", tmp_path / "keys.parquet", tmp_path / "cache", models,
                                section, outs, tmp_path / "maps")
    reason = got["perfusion_series"]["qc_reason"]
    assert reason.str.contains("perfusion network unavailable").all() and reason.str.contains(insertion_net.NETWORK).all()
    got = shard.perfusion_shard(tmp_path / "s.parquet", tmp_path / "keys.parquet", tmp_path / "cache", models,
                                dict(section, insertions="wall"), outs, tmp_path / "maps")
    assert set(got["perfusion_series"].rv_insertion) <= {"found", "borrowed", "none"}
    assert len(got["perfusion_segments"]) >= 20


def test_each_estimators_verdict_is_kept_and_either_leaves_the_segment_out():
    from cmr_atlas.perfusion import mbf as M
    from cmr_atlas.perfusion.quantify import SliceResult, segment_qc

    def fit(mbf, at_bound=False):
        return M.MbfFit("any", np.array([mbf]), np.array([1.0]), np.array([0.001]), {}, np.array([at_bound]))

    high = segment_qc({"fermi": fit(2.0), "2cxm": fit(6.8)}, 0, "fermi", 1.0, 6.0)
    assert high["fermi"] is None and high["2cxm"].startswith("implausible segment MBF")
    assert high["segment"] == "2cxm: " + high["2cxm"]
    own = segment_qc({"fermi": fit(7.0), "2cxm": fit(2.0)}, 0, "fermi", 1.0, 6.0)
    assert own["segment"] == own["fermi"] and own["2cxm"] is None
    # the rows carry all three; the global mean takes the segments whose qc_reason is null
    z = np.zeros((4, 4))
    r = SliceResult("mid", z.astype(np.int8), z.astype(np.int8), None, np.zeros((1, 2)), 0.0, np.zeros(2),
                    np.zeros(3), np.zeros(3))
    r.segment_pixels = {7: 40, 8: 40}
    r.segment_mbf = {"fermi": {7: 2.0, 8: 3.0}, "2cxm": {7: 6.8, 8: 3.0}}
    r.segment_qc = {k: {7: high[k], 8: None} for k in high}
    rows = pd.DataFrame(pipeline.segment_rows("e", "stress", "auto", [r], "fermi")).set_index("aha_segment")
    assert rows.loc[7, "qc_reason"].startswith("2cxm: ") and pd.isna(rows.loc[7, "qc_reason_fermi"])
    g = pipeline.global_row("e", "auto", rows.reset_index(), no_reserve=True)
    assert g["mbf_stress_ml_min_g"] == 3.0 and g["n_segments_stress"] == 1


def test_insertions_are_not_fused_where_stress_and_rest_image_other_slices():
    from types import SimpleNamespace

    from cmr_atlas.core.geometry import SlicePlane
    from cmr_atlas.perfusion.sectors import Insertions

    plane = SlicePlane(position_mm=np.zeros(3), row_cosine=np.array([1.0, 0, 0]), col_cosine=np.array([0, 1.0, 0]),
                       pixel_spacing_mm=(2.0, 2.0), shape=(40, 40))
    c = np.array([20.0, 20.0])

    def found(cond: str, anterior, pair_reason=None):
        p = SimpleNamespace(condition=cond, pair_reason=pair_reason, planes=[plane])
        return SimpleNamespace(p=p, network=[Insertions(c, np.asarray(anterior, float), np.array([30.0, 20.0]))])

    st, re = found("stress", [20.0, 30.0]), found("rest", [30.0, 30.0])
    pipeline.fuse_insertions([st, re])
    assert np.allclose(st.network[0].anterior_direction(), re.network[0].anterior_direction())
    reason = "stress and rest slice geometry differ: no reserve"
    st, re = found("stress", [20.0, 30.0], reason), found("rest", [30.0, 30.0], reason)
    pipeline.fuse_insertions([st, re])
    assert np.allclose(st.network[0].anterior, [20.0, 30.0]) and np.allclose(re.network[0].anterior, [30.0, 30.0])
    only = found("stress", [20.0, 30.0])
    pipeline.fuse_insertions([only])  # one condition: nothing to fuse with
    assert np.allclose(only.network[0].anterior, [20.0, 30.0])


def test_manual_contours_of_an_acquired_frame_are_moved_onto_the_corrected_grid(perfusion_exam, model, result):
    """Annotations on an acquired frame (a site's, not the synthetic observers' corrected pose):
    the same contours labelled frame 0 are moved by the frame's displacement and aligned, so the
    masks shift but stay on the heart."""
    ex = perfusion_exam
    c, lm = ex.truth["contours"], ex.truth["landmarks"]
    ann = pipeline.Annotations(c[c.observer == "obs1"].assign(frame=0), lm[lm.observer == "obs1"].assign(frame=0))
    cfg = QuantConfig.from_config({**default("perfusion"), "pixel_maps": False})
    moved = pipeline.run_exam(ex.exam_id, ex.series, cfg, *model, ann)
    dice = []
    for cond in ("stress", "rest"):
        for a, b in zip(moved.slices[("manual", cond)], result.slices[("manual", cond)]):
            ma, mb = a.labels == segment.MYOCARDIUM, b.labels == segment.MYOCARDIUM
            if mb.any():
                dice.append(2 * (ma & mb).sum() / (ma.sum() + mb.sum()))
    assert len(dice) >= 4 and min(dice) > 0.5 and min(dice) < 1.0  # moved, yet on the same ring
