"""Fixtures of the report tests: a results folder with one exam of every review reason, image cache
files, inference masks and guide points (built on the ring exam of tests/conftest.py)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import save_exam_images, save_masks
from cmr_atlas.core.vocab import CAVITY, MYO

SHARD = "s0000"
FIT_IDS = [f"E{i:02d}" for i in range(10)] + ["X1"]  # exams with auto and manual measures
EDV_OUTLIER_ML = 40.0  # X1's auto - manual EDV; every other exam differs by +-1 ml

# What each exam of the folder should be listed for (exam -> priority), in the documented order.
EXPECTED_ORDER = [("E04", "failed"), ("E05", "failed"), ("X2", "failed"), ("E03", "partial"),
                  ("E06", "qc_flag"), ("X1", "disagreement")]


def _measures() -> pd.DataFrame:
    rows = []
    for i, exam in enumerate(FIT_IDS):
        manual = {"edv_ml": 150.0 + i, "esv_ml": 60.0, "ef_pct": 60.0, "lv_mass_g": 110.0}
        d_edv = EDV_OUTLIER_ML if exam == "X1" else (1.0 if i % 2 else -1.0)
        auto = {"edv_ml": manual["edv_ml"] + d_edv, "esv_ml": 62.0, "ef_pct": 59.0, "lv_mass_g": 112.0}
        for src, vals in (("auto", auto), ("manual", manual)):
            status, why = "ok", None
            if exam == "E03" and src == "auto":
                status, why = "partial", "no ES contours on 2 slices"
            if exam == "E04" and src == "manual":
                status, why = "failed", "too few guide points"
            rows.append({"exam_id": exam, "source": src, "method": "model", **vals, "status": status,
                         "qc_reason": why})
    return pd.DataFrame(rows)


def _exam_status() -> pd.DataFrame:
    rows = [{"exam_id": e, "stage": st, "status": "ok", "qc_reason": None}
            for e in FIT_IDS + ["X2"] for st in ("ingest", "infer")]
    df = pd.DataFrame(rows)
    df.loc[(df.exam_id == "E05") & (df.stage == "ingest"), ["status", "qc_reason"]] = ["failed", "no short-axis stack"]
    df.loc[(df.exam_id == "X2") & (df.stage == "infer"), ["status", "qc_reason"]] = ["failed", "empty masks"]
    df.loc[(df.exam_id == "E04") & (df.stage == "infer"), ["status", "qc_reason"]] = ["ok", "a warning"]
    fit = pd.DataFrame([{"exam_id": "E04", "stage": "fit_manual", "status": "failed",
                         "qc_reason": "too few guide points"}])
    return pd.concat([df, fit], ignore_index=True)


def _segmentation_qc() -> pd.DataFrame:
    rows = [{"exam_id": e, "slice_index": s, "frame": t, "cavity_area_mm2": 500.0, "myo_area_mm2": 400.0,
             "n_components_cavity": 1, "n_components_myo": 1, "flag": ""}
            for e in FIT_IDS for s in range(3) for t in range(4)]
    df = pd.DataFrame(rows)
    df.loc[(df.exam_id == "E06") & (df.slice_index == 1) & (df.frame == 3), "flag"] = "cavity_outside_myo;two_cavities"
    df.loc[(df.exam_id == "E07") & (df.frame == 1), "flag"] = "tiny_cavity"  # neither ED nor ES: no reason
    return df


def _lax_view(images, rng) -> tuple[np.ndarray, SlicePlane]:
    """A 4CH-like plane through the stack (containing its normal), with noise frames."""
    sax = images.sax_planes[len(images.sax_planes) // 2]
    plane = SlicePlane.centred(sax.centre_mm, sax.normal, sax.col_cosine, (1.5, 1.5), (64, 72))
    return rng.normal(100, 20, (6, *plane.shape)).astype(np.float32), plane


def _masks(images) -> np.ndarray:
    m = np.zeros(images.sax.shape, np.uint8)
    m[images.sax > 150] = CAVITY
    m[images.sax < 60] = MYO
    return m


def _guide_points(contours: pd.DataFrame, exam: str) -> pd.DataFrame:
    c = contours[contours["phase"].notna()].assign(exam_id=exam, kind="contour", landmark=None, weight=1.0)
    c = c.drop(columns=["observer", "row_px", "col_px"])
    auto = c.assign(source="auto", x_mm=c["x_mm"] + 0.8)
    return pd.concat([auto, c.assign(source="manual")], ignore_index=True)


def build_review_results(root, ring_exam):
    """The results folder: tables for every reason, cache + masks for X1, cache only for E06,
    nothing for X2 (its infer failed)."""
    root.mkdir(parents=True, exist_ok=True)
    shard = root / "shards" / SHARD
    (shard / "masks").mkdir(parents=True)
    _measures().to_parquet(root / "measures.parquet")
    _exam_status().to_parquet(root / "exam_status.parquet")
    pd.DataFrame({"exam_id": FIT_IDS + ["X2"], "status": "ok", "qc_reason": None}).to_parquet(root / "exams.parquet")
    _segmentation_qc().to_parquet(shard / "segmentation_qc.parquet")
    pd.DataFrame({"exam_id": FIT_IDS, "ed_frame": 0, "es_frame": 3, "method": "max_volume", "edv_ml": 150.0,
                  "esv_ml": 60.0}).to_parquet(shard / "phases.parquet")
    images, contours = ring_exam(noise=False)
    lax, plane = _lax_view(images, np.random.default_rng(1))
    images = dataclasses.replace(images, lax={"lax_4ch": lax}, lax_planes={"lax_4ch": plane})
    save_exam_images(images, root / "cache" / "X1.npz")
    save_masks("X1", _masks(images), shard / "masks" / "X1.npz")
    save_exam_images(dataclasses.replace(images, exam_id="E06"), root / "cache" / "E06.npz")
    pd.concat([_guide_points(contours, e) for e in ("X1", "E06")], ignore_index=True).to_parquet(
        root / "guide_points.parquet")
    return root


@pytest.fixture
def review_results(tmp_path, ring_exam):
    """A results folder with one exam per review reason (see :data:`EXPECTED_ORDER`)."""
    return build_review_results(tmp_path / "results", ring_exam)


@pytest.fixture
def review_expected():
    """(exam_id, priority) of every exam :func:`build_review_results` should list, in order."""
    return list(EXPECTED_ORDER)
