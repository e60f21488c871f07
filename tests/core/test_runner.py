"""The one per-shard loop (cmr_atlas.core.runner): one failure policy in every per-exam stage."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.aggregate import concat_to
from cmr_atlas.core.runner import (EXAM_STATUS, ExamFailure, run_exams, status_frame,
                                   write_status)
from cmr_atlas.core.tables import read_table

# an exception message that quotes an identifier (a patient's folder): it must never be kept
SECRET = "/data/DOE^JOHN/IM0001.dcm"


def _work(item: str) -> int:
    if item == "small":
        raise ExamFailure("too_small")
    if item == "bad":
        raise FileNotFoundError(SECRET)
    return len(item)


def _no_secret_in_logs(caplog) -> None:
    for r in caplog.records:
        assert "DOE^JOHN" not in r.getMessage()
        assert r.exc_info is None and not r.exc_text  # no traceback text that would quote the message


def _no_secret_in_files(folder) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            assert b"DOE^JOHN" not in p.read_bytes(), p


def test_a_failing_exam_ends_failed_with_its_reason_and_the_shard_goes_on(caplog):
    log = logging.getLogger("test.runner")
    with caplog.at_level(logging.DEBUG, logger="test.runner"):
        out = run_exams(["a", "small", "bad", "dddd"], _work, "unit", log)
    assert [(o.exam_id, o.status, o.qc_reason, o.value) for o in out] == [
        ("a", "ok", None, 1), ("small", "failed", "too_small", None),
        ("bad", "failed", "unit_error: FileNotFoundError", None), ("dddd", "ok", None, 4)]
    _no_secret_in_logs(caplog)
    failed = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert failed == ["unit: exam small failed (too_small)", "unit: exam bad failed (unit_error: FileNotFoundError)"]
    where = [r.getMessage() for r in caplog.records if r.levelno == logging.DEBUG]
    assert len(where) == 1 and "test_runner.py:" in where[0] and "_work" in where[0]
    assert caplog.records[-1].getMessage().startswith("unit: 4/4 exams (2 failed)")


def test_status_table_written_and_concatenated(tmp_path):
    out = run_exams(["a", "bad"], _work, "unit", logging.getLogger("test.runner"))
    write_status(status_frame(out, "unit"), tmp_path / "s0" / "status" / "unit.parquet")
    write_status(status_frame([], "unit"), tmp_path / "s1" / "status" / "unit.parquet")
    concat_to([tmp_path / "s0" / "status" / "unit.parquet", tmp_path / "s1" / "status" / "unit.parquet"],
              tmp_path / "exam_status.parquet", EXAM_STATUS)
    st = read_table(tmp_path / "exam_status.parquet", EXAM_STATUS).astype(object)
    st = st.where(st.notna(), None)
    assert st.to_dict("records") == [
        {"exam_id": "a", "stage": "unit", "status": "ok", "qc_reason": None},
        {"exam_id": "bad", "stage": "unit", "status": "failed", "qc_reason": "unit_error: FileNotFoundError"}]
    _no_secret_in_files(tmp_path)


# --- every stage applies the policy -------------------------------------------------------------

def test_ingest_crash_in_one_study_fails_that_exam_only(tmp_path, monkeypatch, caplog):
    from cmr_atlas.dicom import index
    from tests.dicom.exams import write_cohort

    write_cohort(tmp_path / "cohort" / "dicom", 2, seed=3, n_slices=6, n_frames=3, rows=16, cols=16)
    real = index.ingest_study
    calls = []

    def flaky(images, exam_id, *args, **kwargs):
        calls.append(exam_id)
        if len(calls) == 1:
            raise RuntimeError(SECRET)
        return real(images, exam_id, *args, **kwargs)

    monkeypatch.setattr(index, "ingest_study", flaky)
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG):
        rows = index.ingest_shard(
            tmp_path / "cohort", ["EXAM0000", "EXAM0001"], "k", out / "cache",
            exams_path=out / "exams.parquet", series_path=out / "series.parquet", slices_path=out / "slices.parquet",
            exam_keys_path=out / "exam_keys.parquet", status_path=out / "status" / "ingest.parquet")
    exams = {e["exam_id"]: (e["status"], e["qc_reason"]) for e in rows.exams}
    assert exams[calls[0]] == ("failed", "ingest_error: RuntimeError")
    assert exams[calls[1]][0] == "ok"
    st = read_table(out / "status" / "ingest.parquet", EXAM_STATUS)
    assert sorted(zip(st["exam_id"], st["stage"], st["status"])) == sorted(
        (e, "ingest", s) for e, (s, _) in exams.items())
    assert not (out / "linkage.parquet").exists()
    _no_secret_in_logs(caplog)
    _no_secret_in_files(out)


def test_ingest_crash_outside_the_studies_fails_the_folder(tmp_path, monkeypatch, caplog):
    from cmr_atlas.dicom import index

    (tmp_path / "dicom" / "A").mkdir(parents=True)

    def boom(*args, **kwargs):
        raise KeyError(SECRET)

    monkeypatch.setattr(index, "scan_folder", boom)
    with caplog.at_level(logging.DEBUG):
        rows = index.ingest_folders(tmp_path / "dicom", ["A"], "k", None)
    assert [(e["status"], e["qc_reason"]) for e in rows.exams] == [("failed", "ingest_error: KeyError")]
    assert len(rows.exam_keys) and rows.exam_keys[0]["exam_id"] == rows.exams[0]["exam_id"]
    _no_secret_in_logs(caplog)


def test_infer_run_shard_policy(tmp_path, monkeypatch, caplog, ring_exam):
    from cmr_atlas.cine import inference
    from cmr_atlas.core.imagecache import save_exam_images

    for eid in ("A", "B"):
        images, _ = ring_exam(n_slices=2, n_frames=3)
        images.exam_id = eid
        save_exam_images(images, tmp_path / "cache" / f"{eid}.npz")

    def fake_infer(images, *args, **kwargs):
        if images.exam_id == "B":
            raise ValueError(SECRET)
        lm = inference.LANDMARKS_AUTO.empty()
        qc = inference.SEGMENTATION_QC.empty()
        ph = {"exam_id": images.exam_id, "ed_frame": 0, "es_frame": 1, "method": "max_volume",
              "edv_ml": 1.0, "esv_ml": 0.5}
        return inference.ExamInference(np.zeros(images.sax.shape, np.uint8), qc, lm, ph)

    monkeypatch.setattr(inference, "infer_exam", fake_infer)
    out = tmp_path / "out"
    with caplog.at_level(logging.DEBUG):
        outcomes = inference.run_shard(
            ["A", "B", "C"], tmp_path / "cache", None, landmarks_path=out / "landmarks.parquet",
            qc_path=out / "segmentation_qc.parquet", phases_path=out / "phases.parquet", masks_dir=out / "masks",
            status_path=out / "status" / "infer.parquet", ed_method="max_volume", absent_threshold=0.1, batch=4)
    assert [(o.exam_id, o.status, o.qc_reason) for o in outcomes] == [
        ("A", "ok", None), ("B", "failed", "infer_error: ValueError"), ("C", "failed", "no_image_cache")]
    assert list(read_table(out / "phases.parquet")["exam_id"]) == ["A"]
    assert sorted(p.name for p in (out / "masks").iterdir()) == ["A.npz"]
    st = read_table(out / "status" / "infer.parquet", EXAM_STATUS)
    assert list(st["status"]) == ["ok", "failed", "failed"] and set(st["stage"]) == {"infer"}
    _no_secret_in_logs(caplog)
    _no_secret_in_files(out)


def test_auto_guide_points_without_inference_result(tmp_path):
    from cmr_atlas.cine import autoguide, inference
    from cmr_atlas.core.tables import write_table

    for schema in (inference.LANDMARKS_AUTO, inference.SEGMENTATION_QC, inference.PHASES):
        write_table(schema.empty(), tmp_path / f"{schema.name}.parquet", schema)
    outcomes = autoguide.run_shard(
        ["A"], tmp_path / "cache", landmarks_path=tmp_path / "landmarks.parquet",
        qc_path=tmp_path / "segmentation_qc.parquet", phases_path=tmp_path / "phases.parquet",
        masks_dir=tmp_path / "masks", out_path=tmp_path / "gp.parquet", status_path=tmp_path / "status.parquet")
    assert [(o.status, o.qc_reason) for o in outcomes] == [("failed", "no_inference_result")]
    assert len(read_table(tmp_path / "gp.parquet")) == 0
    st = read_table(tmp_path / "status.parquet", EXAM_STATUS)
    assert st.to_dict("records") == [{"exam_id": "A", "stage": "auto_guide_points", "status": "failed",
                                      "qc_reason": "no_inference_result"}]


def test_fit_unexpected_error_is_a_failed_fit(tmp_path, monkeypatch, caplog):
    from cmr_atlas.cine.lvmodel import run
    from cmr_atlas.cine.lvmodel.exam import ExamFit

    def fake_fit(gp, planes, exam_id, source, **kwargs):
        if exam_id == "B":
            raise IndexError(SECRET)
        if exam_id == "C":
            return ExamFit(exam_id, source, "failed", "too_few_sax_contours")
        return ExamFit(exam_id, source)

    monkeypatch.setattr(run, "fit_exam", fake_fit)
    gp = pd.DataFrame({"exam_id": ["A", "A", "B", "C"], "source": ["auto", "manual", "auto", "auto"]})
    with caplog.at_level(logging.DEBUG):
        fits = run.fit_exams(gp, pd.DataFrame(), breath_hold=True, shift_reference="sax_mean")
    assert [(f.exam_id, f.source, f.status, f.qc_reason) for f in fits] == [
        ("A", "auto", "ok", None), ("A", "manual", "ok", None), ("B", "auto", "failed", "fit_error: IndexError"),
        ("C", "auto", "failed", "too_few_sax_contours")]
    st = run.fit_status(fits)
    assert list(st["stage"]) == ["fit_auto", "fit_manual", "fit_auto", "fit_auto"]
    m = run.tables_from_fits(fits)["measures"]
    assert m.loc[m["exam_id"] == "B", "qc_reason"].tolist() == ["fit_error: IndexError"]
    _no_secret_in_logs(caplog)


@pytest.mark.slow
def test_ingest_cli_writes_the_status_table(tmp_path):
    from cmr_atlas.cli import main
    from tests.dicom.exams import write_cohort

    write_cohort(tmp_path / "cohort" / "dicom", 1, seed=4, n_slices=6, n_frames=3, rows=16, cols=16)
    assert main(["ingest", str(tmp_path / "cohort"), "--out", str(tmp_path / "out"), "--exam-id-key", "k"]) == 0
    st = read_table(tmp_path / "out" / "status" / "ingest.parquet", EXAM_STATUS)
    ex = read_table(tmp_path / "out" / "exams.parquet")
    assert list(st["exam_id"]) == list(ex["exam_id"]) and list(st["status"]) == list(ex["status"])
