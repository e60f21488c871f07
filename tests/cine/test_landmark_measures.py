import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.cine.landmark_measures import (LANDMARK_MEASURES, angle_difference_deg, landmark_measures,
                                              lv_length_mm, rv_insertion_angle_deg)
from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.tables import conform


def _plane(rot_deg=0.0):
    a = np.radians(rot_deg)
    row = np.array([np.cos(a), np.sin(a), 0.0])
    col = np.array([-np.sin(a), np.cos(a), 0.0])
    return SlicePlane(np.array([5.0, -3.0, 40.0]), row, col, (1.5, 1.5), (64, 64))


@settings(max_examples=40, deadline=None)
@given(st.floats(-179.0, 179.0), st.floats(5.0, 60.0), st.floats(-90.0, 90.0))
def test_angle_is_measured_in_the_image_counter_clockwise_from_its_rows(angle, r_mm, rot):
    plane = _plane(rot)
    centre = plane.pixel_to_patient(np.array([30.0, 31.0]))
    # a point r_mm away at `angle` on the displayed image (row index grows downwards)
    rc = np.array([30.0, 31.0]) + r_mm / 1.5 * np.array([-np.sin(np.radians(angle)), np.cos(np.radians(angle))])
    got = rv_insertion_angle_deg(plane.pixel_to_patient(rc), centre, plane)
    assert abs(angle_difference_deg(got, angle)) < 1e-6


def test_angle_difference_wraps():
    assert angle_difference_deg(179.0, -179.0) == -2.0 and angle_difference_deg(-179.0, 179.0) == 2.0


def test_lv_length_and_the_measures_table():
    assert lv_length_mm([0, 0, 0], [20, 0, 0], [10, 0, 85]) == 85.0
    plane = _plane()
    c = plane.pixel_to_patient(np.array([32.0, 32.0]))
    a = plane.pixel_to_patient(np.array([22.0, 32.0]))  # straight up: 90 deg
    rows = [("sax", 2, "lv_centre", c, True), ("sax", 2, "rv_insert_anterior", a, True),
            ("sax", 3, "lv_centre", c, True), ("sax", 3, "rv_insert_anterior", a, False),  # absent: no angle
            ("lax_4ch", 0, "mv_septal", [0, 0, 0], True), ("lax_4ch", 0, "mv_lateral", [30, 0, 0], True),
            ("lax_4ch", 0, "apex", [15, 0, 80], True)]
    df = pd.DataFrame([{"exam_id": "E", "view": v, "slice_index": s, "frame": 0, "landmark": n, "x_mm": p[0],
                        "y_mm": p[1], "z_mm": p[2], "present": ok, "sequence": "cine_ssfp"}
                       for v, s, n, p, ok in rows])
    m = landmark_measures(df, lambda exam, view, s: plane)
    conform(m, LANDMARK_MEASURES)
    assert len(m) == 2
    sax = m[m["view"] == "sax"].iloc[0]
    assert sax["slice_index"] == 2 and abs(sax["rv_insert_angle_deg"] - 90.0) < 1e-9
    assert np.isnan(sax["lv_length_mm"]) and m[m["view"] == "lax_4ch"]["lv_length_mm"].iloc[0] == 80.0


def test_the_table_computes_what_image_measures_defines():
    """Random landmarks on SAX and long-axis images, some missing or absent: every table row equals
    :func:`image_measures` of its image's points."""
    from cmr_atlas.cine.landmark_measures import image_measures
    from cmr_atlas.core.vocab import LANDMARKS

    rng = np.random.default_rng(5)
    plane = _plane()
    rows = []
    for view, s, f in [(v, s, f) for v in ("sax", "lax_2ch", "lax_4ch") for s in range(2) for f in range(3)]:
        for name in LANDMARKS[view]:
            if rng.random() < 0.85:
                rows.append({"exam_id": "E", "view": view, "slice_index": s, "frame": f, "landmark": name,
                             **dict(zip(("x_mm", "y_mm", "z_mm"), rng.normal(0, 40, 3))),
                             "present": bool(rng.random() < 0.9), "sequence": "cine_gre"})
    df = pd.DataFrame(rows)
    m = landmark_measures(df, lambda exam, view, s: plane)
    ok = df[df["present"]]
    expected = 0
    for (view, s, f), g in ok.groupby(["view", "slice_index", "frame"]):
        want = image_measures(dict(zip(g["landmark"], g[["x_mm", "y_mm", "z_mm"]].to_numpy())), view, plane)
        got = m[(m["view"] == view) & (m["slice_index"] == s) & (m["frame"] == f)]
        if np.isnan(want["rv_insert_angle_deg"]) and np.isnan(want["lv_length_mm"]):
            assert got.empty
            continue
        expected += 1
        for k, v in want.items():
            np.testing.assert_allclose(got[k].iloc[0], v, rtol=1e-12, atol=1e-12)
    assert len(m) == expected > 5


def test_a_shard_in_one_call_uses_each_exams_own_planes():
    # the same pixel layout on two exams whose SAX planes are turned 90 degrees apart: one call over
    # both gives each exam the angle its own plane defines (the inference job measures a shard at once)
    from cmr_atlas.cine.landmark_measures import image_measures

    planes = {"E1": _plane(0.0), "E2": _plane(90.0)}
    rows = []
    for exam, plane in planes.items():
        for name, rc in (("lv_centre", (30.0, 31.0)), ("rv_insert_anterior", (20.0, 38.0))):
            p = plane.pixel_to_patient(np.array(rc))
            rows.append({"exam_id": exam, "view": "sax", "slice_index": 0, "frame": 0, "landmark": name,
                         "x_mm": p[0], "y_mm": p[1], "z_mm": p[2], "present": True, "sequence": "cine_gre"})
    df = pd.DataFrame(rows)
    m = landmark_measures(df, lambda exam, view, s: planes[exam])
    for exam, plane in planes.items():
        g = df[df["exam_id"] == exam]
        want = image_measures(dict(zip(g["landmark"], g[["x_mm", "y_mm", "z_mm"]].to_numpy())), "sax", plane)
        got = m.loc[m["exam_id"] == exam, "rv_insert_angle_deg"].iloc[0]
        assert abs(got - want["rv_insert_angle_deg"]) < 1e-9
    # the same image pixels: the same angle in each exam's own image
    assert abs(m["rv_insert_angle_deg"].iloc[0] - m["rv_insert_angle_deg"].iloc[1]) < 1e-9
