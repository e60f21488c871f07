import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.guidepoints import GUIDE_POINTS, landmarks_from_auto, manual_guide_points, match_annotation_planes
from cmr_atlas.cine.annotations import build_manual, folder_map
from cmr_atlas.core.ids import exam_id, keyed_hash
from cmr_atlas.synth.mesa.cohort import generate_exam
from cmr_atlas.core.tables import conform


@pytest.fixture(scope="module")
def exam():
    return generate_exam(31, 0, observers=1)


def test_manual_guide_points_match_planes_by_geometry(exam):
    truth = exam.truth
    eid = exam_id(truth["subjects"].study_instance_uid.iloc[0], "k" * 12)
    # an ingest that numbered the SAX stack the other way round
    slices = truth["slices"].assign(exam_id=eid)
    n = int((slices.view == "sax").sum())
    slices.loc[slices.view == "sax", "slice_index"] = n - 1 - slices.loc[slices.view == "sax", "slice_index"]
    gp = manual_guide_points(truth["contours"], truth["landmarks"], slices, {exam.label: eid}, observer="obs1")
    conform(gp, GUIDE_POINTS)
    assert set(gp.phase) == {"ED", "ES"} and set(gp.source) == {"manual"}
    obs = truth["contours"]
    obs = obs[(obs.observer == "obs1") & (obs.view == "sax")]
    # every annotated SAX slice kept, renumbered to the ingest's order
    assert sorted(gp[(gp.kind == "contour") & (gp.view == "sax")].slice_index.unique()) == sorted(n - 1 - obs.slice_index.unique())
    lm = gp[gp.kind == "landmark"]
    assert {"mv_septal", "apex", "rv_insert_anterior"} <= set(lm.landmark)


def test_unmatched_planes_and_unknown_exams_are_skipped(exam):
    truth = exam.truth
    slices = truth["slices"].assign(exam_id="E1")
    slices = slices[slices.view != "lax_2ch"]  # ingest found no 2CH
    gp = manual_guide_points(truth["contours"], truth["landmarks"], slices, {exam.label: "E1"}, observer="truth")
    assert "lax_2ch" not in set(gp.view) and len(gp) > 0
    assert manual_guide_points(truth["contours"], truth["landmarks"], slices, {}, observer="truth").empty


def test_plane_matching_tolerance(exam):
    s = exam.truth["slices"].assign(exam_id="E1")
    pts = exam.truth["contours"]
    pts = pts[(pts.observer == "truth") & (pts.view == "sax") & (pts.slice_index == 3)]
    assert match_annotation_planes(pts, s) == {("sax", 3): 3}
    moved = pts.assign(z_mm=pts.z_mm + 25.0, x_mm=pts.x_mm + 25.0)
    assert match_annotation_planes(moved, s[s.slice_index == 3]) == {}


def test_folder_map_uses_keyed_hashes():
    keys = pd.DataFrame({"exam_id": ["E1", "E1"], "key_type": ["exam_folder", "patient_id"],
                         "key_hash": [keyed_hash("SYN1-0000", "secret-key"), keyed_hash("MESA1", "secret-key")]})
    assert folder_map(keys, ["SYN1-0000", "other"], "secret-key") == {"SYN1-0000": "E1"}


def test_build_manual_reads_only_the_shards_exams(exam, tmp_path):
    """A shard job reads its own exams' annotations (memory follows the shard, not the cohort),
    and falls back to the truth observer when the configured one is absent."""
    truth = exam.truth
    other = {t: truth[t].assign(exam_id="SYN31-0099") for t in ("contours", "landmarks")}
    for t in ("contours", "landmarks"):
        pd.concat([truth[t], other[t]]).to_parquet(tmp_path / f"{t}.parquet")
    keys = pd.DataFrame({"exam_id": ["E1"], "key_type": ["exam_folder"], "key_hash": [keyed_hash(exam.label, "kk")]})
    slices = truth["slices"].assign(exam_id="E1")
    gp = build_manual(tmp_path, slices, keys, "kk", observer="obs1")
    assert set(gp.exam_id) == {"E1"} and len(gp) > 0
    same = manual_guide_points(truth["contours"], truth["landmarks"], slices, {exam.label: "E1"}, observer="obs1")
    pd.testing.assert_frame_equal(gp.reset_index(drop=True), same.reset_index(drop=True))
    # obs2 was never annotated here: the truth contours stand in, with a warning
    assert len(build_manual(tmp_path, slices, keys, "kk", observer="obs2")) > 0
    # no exam of this shard in the annotations: empty, not an error
    none = keys.assign(key_hash=keyed_hash("SYN31-0500", "kk"))
    assert build_manual(tmp_path, slices, none, "kk").empty


def _auto(exam, eid: str) -> pd.DataFrame:
    """A stand-in automated table: the truth observer's guide points, source auto, weights < 1."""
    truth = exam.truth
    gp = manual_guide_points(truth["contours"], truth["landmarks"], truth["slices"].assign(exam_id=eid),
                             {exam.label: eid}, observer="truth", source="auto")
    return gp.assign(weight=np.linspace(0.5, 0.9, len(gp)))


def test_landmarks_from_auto_fill_only_the_phase_views_without_manual_landmarks(exam):
    truth = exam.truth
    slices = truth["slices"].assign(exam_id="E1")
    contours_only = manual_guide_points(truth["contours"], truth["landmarks"].iloc[:0], slices, {exam.label: "E1"}, "obs1")
    auto = pd.concat([_auto(exam, "E1"), _auto(exam, "E2")], ignore_index=True)  # E2: no manual source
    filled = landmarks_from_auto(contours_only, auto)
    conform(filled, GUIDE_POINTS)
    assert list(filled.columns) == list(contours_only.columns)
    pd.testing.assert_frame_equal(filled.iloc[:len(contours_only)], contours_only, check_dtype=False)
    added = filled.iloc[len(contours_only):]
    assert set(added.exam_id) == {"E1"} and set(added.source) == {"manual"} and set(added.kind) == {"landmark"}
    lm = auto[(auto.exam_id == "E1") & (auto.kind == "landmark")]
    # a copy is the automated row but for its source: coordinates, frame, slice and weight kept
    pd.testing.assert_frame_equal(added.drop(columns="source").reset_index(drop=True),
                                  lm.drop(columns="source").reset_index(drop=True), check_dtype=False)

    # manual landmarks at ED on SAX (RV insertion points): those stay, the rest is filled
    manual = manual_guide_points(truth["contours"], truth["landmarks"], slices, {exam.label: "E1"}, "obs1")
    partial = manual[(manual.kind == "contour") | ((manual.phase == "ED") & (manual.view == "sax"))]
    added = landmarks_from_auto(partial, auto).iloc[len(partial):]
    cells = set(zip(added.phase, added.view))
    assert ("ED", "sax") not in cells and {("ES", "sax"), ("ED", "lax_2ch"), ("ED", "lax_4ch")} <= cells
    # complete manual annotations take nothing; an empty manual table stays empty
    assert len(landmarks_from_auto(manual, auto)) == len(manual)
    assert landmarks_from_auto(GUIDE_POINTS.empty(), auto).empty


def test_guidepoints_command_takes_landmarks_from_auto_guide_points(exam, tmp_path):
    from cmr_atlas.cli import main

    truth = exam.truth
    truth["contours"].to_parquet(tmp_path / "contours.parquet")
    truth["landmarks"].iloc[:0].to_parquet(tmp_path / "landmarks.parquet")  # a SEG-like source: no landmarks
    pd.DataFrame({"exam_id": ["E1"], "key_type": ["exam_folder"], "key_hash": [keyed_hash(exam.label, "kk")]}) \
        .to_parquet(tmp_path / "keys.parquet")
    truth["slices"].assign(exam_id="E1").to_parquet(tmp_path / "slices.parquet")
    _auto(exam, "E1").to_parquet(tmp_path / "auto.parquet")
    args = ["guidepoints", "--annotations", str(tmp_path), "--slices", str(tmp_path / "slices.parquet"),
            "--exam-keys", str(tmp_path / "keys.parquet"), "--key", "kk", "--observer", "obs1"]
    assert main([*args, "--out", str(tmp_path / "off.parquet")]) == 0
    assert main([*args, "--out", str(tmp_path / "on.parquet"), "--auto-guide-points", str(tmp_path / "auto.parquet")]) == 0
    off, on = pd.read_parquet(tmp_path / "off.parquet"), pd.read_parquet(tmp_path / "on.parquet")
    assert (off.kind == "contour").all() and len(off) > 0
    assert len(on) == len(off) + int((_auto(exam, "E1").kind == "landmark").sum())
    assert set(on.source) == {"manual"} and {"mv_septal", "apex", "rv_insert_anterior"} <= set(on.landmark.dropna())


def test_guide_point_job_does_not_import_torch():
    """The automated guide-point stage (CPU job) needs masks and landmarks, not the networks."""
    import subprocess
    import sys

    code = ("import sys, cmr_atlas.cine.autoguide, cmr_atlas.core.imagecache; "
            "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stderr
