"""SAX landmark presence at the depths a clinical image averages (issue 16's boundary analysis):
the centre depth is the truth of record, the others say where the image blends presence and
absence; a renderer whose draws moved is caught rather than read as a different truth."""

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import LANDMARKS
from cmr_atlas.synth.slab import (BREATHING_COLUMNS, COLUMNS, DEPTH_COLUMNS, breathing_shift_mm, cine_breathing_mm,
                                  sax_landmarks_by_depth,
                                  sax_presence_by_depth)


@pytest.fixture(scope="module")
def truth_landmarks(clinical_synth_cohort):
    return pd.read_parquet(clinical_synth_cohort / "truth" / "landmarks.parquet")


@pytest.mark.parametrize("sequence", ["cine_ssfp", "lge"])
def test_the_centre_depth_is_the_truth_of_record(truth_landmarks, clinical_seed, sequence):
    d = sax_presence_by_depth(sequence, clinical_seed, 0, 0.0, truth_landmarks)  # raises on a mismatch
    assert list(d.columns) == COLUMNS and set(d["landmark"]) == set(LANDMARKS["sax"])
    assert d["frame"].nunique() == (2 if sequence == "cine_ssfp" else 1)  # ED and ES; LGE's one image
    assert ((d["depths_present"] >= 0) & (d["depths_present"] <= d["n_depths"])).all()
    assert (d.loc[d["present_centre"], "depths_present"] >= 1).all()
    full = d[d["depths_present"] == d["n_depths"]]
    assert len(full) and full["present_centre"].all()
    # mid-ventricular slices have every landmark at every depth; the stack's ends do not
    assert ((d["depths_present"] > 0) & (d["depths_present"] < d["n_depths"])).any()


def test_each_depths_points_lie_in_the_slice_and_the_centres_are_the_truths(truth_landmarks, clinical_seed):
    d = sax_landmarks_by_depth("cine_ssfp", clinical_seed, 0, 0.0)
    assert list(d.columns) == DEPTH_COLUMNS and set(d["depth_index"]) == {0, 1, 2}
    xyz = ["x_mm", "y_mm", "z_mm"]
    for sl, g in d.groupby("slice_index"):
        plane = d.attrs["planes"][sl]
        off = (g[xyz].to_numpy(float) - plane.position_mm) @ plane.normal
        assert np.allclose(off, 0.0, atol=1e-6)  # shown in the image's plane, whatever the depth
    t = truth_landmarks[(truth_landmarks["view"] == "sax") & (truth_landmarks["observer"] == "truth")
                        & (truth_landmarks["sequence"] == "cine_ssfp")
                        & truth_landmarks["frame"].isin(d.attrs["frames"])]
    centre = d[d["depth_mm"] == 0.0].merge(t, on=["slice_index", "frame", "landmark"], suffixes=("", "_t"))
    assert len(centre) == len(t) > 0
    assert np.allclose(centre[xyz].to_numpy(float), centre[[c + "_t" for c in xyz]].to_numpy(float), atol=1e-6)
    # the presence counts are these rows'
    p = sax_presence_by_depth("cine_ssfp", clinical_seed, 0, 0.0)
    counts = d.groupby(["slice_index", "frame", "landmark"]).size()
    got = p.set_index(["slice_index", "frame", "landmark"])["depths_present"]
    assert (got[got > 0] == counts.reindex(got[got > 0].index)).all() and got.sum() == len(d)


def test_breathing_is_given_for_every_cine_series_of_the_exam(truth_landmarks, clinical_seed):
    d = cine_breathing_mm(clinical_seed, 0, 0.0)
    assert list(d.columns) == BREATHING_COLUMNS and (d["breathing_mm"] >= 0).all()
    cine = truth_landmarks[(truth_landmarks["sequence"] == "cine_ssfp") & (truth_landmarks["observer"] == "truth")]
    # every series with a truth landmark is there (SAX slices beyond the heart have none)
    assert set(zip(cine["view"], cine["slice_index"])) <= set(zip(d["view"], d["slice_index"]))
    assert sorted(d.loc[d["view"] != "sax", "view"]) == ["lax_2ch", "lax_3ch", "lax_4ch"]
    assert (d["exam_id"] == cine["exam_id"].iloc[0]).all()
    # a cohort: about the generator's share of series breathe (12 %), the rest are held
    many = pd.concat([cine_breathing_mm(clinical_seed, i, 0.0) for i in range(6)])
    assert 0.03 < float((many["breathing_mm"] > 0).mean()) < 0.3 and (many["breathing_mm"] == 0).any()
    shift = many[[f"mean_shift_{a}_mm" for a in "xyz"]].to_numpy()
    held = many["breathing_mm"].to_numpy() == 0
    assert (shift[held] == 0).all() and (np.linalg.norm(shift, axis=1) <= many["breathing_mm"] + 1e-9).all()


def test_breathing_shift_is_in_plane_and_relative_to_the_centre_line():
    plane = SlicePlane(np.array([0.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]), np.array([0.0, 1.0, 0.0]),
                       (1.5, 1.5), (8, 8))
    still = np.tile([3.0, -2.0, 7.0], (8, 1))  # a constant displacement: the centre line's place, no shift
    assert np.allclose(breathing_shift_mm(still, plane), 0.0)
    moved = np.zeros((8, 3))
    moved[1:] = [2.0, 1.0, 5.0]  # every line but the centre one (row 0, fftfreq order) 2 mm along x
    mean, low = breathing_shift_mm(moved, plane)
    assert np.allclose(mean, [2.0 * 7 / 8, 7 / 8, 0.0])  # the through-plane part (z) is not seen
    assert 0.0 < low[0] < mean[0] and low[2] == 0.0  # the centre line weighs more


def test_a_truth_the_renderer_did_not_make_is_refused(truth_landmarks, clinical_seed):
    sax = truth_landmarks[(truth_landmarks["view"] == "sax") & (truth_landmarks["observer"] == "truth")
                          & (truth_landmarks["sequence"] == "lge")]
    with pytest.raises(ValueError, match="differ from the truth rows"):
        sax_presence_by_depth("lge", clinical_seed, 0, 0.0, truth_landmarks.drop(index=sax.index[:1]))
    with pytest.raises(ValueError, match="differ from the truth rows"):  # another exam's draws
        sax_presence_by_depth("lge", clinical_seed, 1, 0.0, truth_landmarks)


def test_an_unknown_sequence_is_named():
    with pytest.raises(ValueError, match="t1map"):
        sax_presence_by_depth("t1map", 1, 0, 0.0)


def _plane_rows(n_slices):
    return [{"position_x_mm": 0.0, "position_y_mm": 0.0, "position_z_mm": 10.0 * k} for k in range(n_slices)]


def test_benchmark_rows_get_their_slices_depths_and_boundary_split(benchmark_module):
    acc = benchmark_module("accuracy")
    from types import SimpleNamespace

    from cmr_atlas.core.geometry import SlicePlane

    planes = [SlicePlane(np.array([0.0, 0.0, 10.0 * k]), np.array([1.0, 0, 0]), np.array([0, 1.0, 0]),
                         (1.5, 1.5), (8, 8), 8.0) for k in range(2)]
    images = SimpleNamespace(sax_planes=planes[::-1])  # image order differs from the generator's
    depths = pd.DataFrame([{**_plane_rows(2)[k], "frame": 0, "landmark": n, "depths_present": dp, "n_depths": 3}
                           for k, dp in ((0, 3), (1, 1)) for n in ("a",)])
    rows = pd.DataFrame([
        {"view": "sax", "exam_id": "e", "slice": 1, "frame": 0, "landmark": "a", "truth_present": True},
        {"view": "sax", "exam_id": "e", "slice": 0, "frame": 0, "landmark": "a", "truth_present": False},
        {"view": "lax_2ch", "exam_id": "e", "slice": 0, "frame": 0, "landmark": "apex", "truth_present": True}])
    out = acc.add_depth_presence(rows, depths, images)
    assert out["depths_present"].iloc[0] == 3 and out["depths_present"].iloc[1] == 1  # matched by position
    assert np.isnan(out["depths_present"].iloc[2])  # long-axis rows have none
    t = acc.boundary_table(out, pd.Series([True, True, True]), ["exam_id", "slice", "frame"]).set_index("images")
    assert t.loc["agree", "n_images"] == 1 and t.loc["agree", "detected_pct"] == 100
    assert t.loc["boundary", "false_pos"] == 1 and t.loc["boundary", "absent"] == 1
    assert t.loc["agree", "false_pos"] == 0 and t.loc["all", "missed"] == 0
    t = acc.boundary_table(out, pd.Series([False, False, True]), ["exam_id", "slice", "frame"]).set_index("images")
    assert t.loc["agree", "detected_pct"] == 0 and t.loc["agree", "missed"] == 1 and t.loc["all", "false_pos"] == 0
