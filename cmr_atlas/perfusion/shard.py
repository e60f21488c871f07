"""The perfusion stage of one shard: every exam with perfusion series in the shard's ``series``
table, read from the series cache, through :func:`~cmr_atlas.perfusion.pipeline.run_exam`; the
manual path from an annotations folder (truth format, keyed by exam folder; ingest's
``exam_keys`` maps folders to exam ids without writing an identifier).  An exam whose cached
series cannot be read, or that fails unexpectedly, gets a ``perfusion_series`` row saying so and
the shard goes on.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from cmr_atlas.core.ids import folder_map
from cmr_atlas.core.seriescache import list_series_images, load_series_images
from cmr_atlas.core.tables import write_table
from cmr_atlas.perfusion.tables import PERFUSION_TABLES

if TYPE_CHECKING:
    from cmr_atlas.perfusion import pipeline

log = logging.getLogger(__name__)
KINDS = ("perfusion", "perfusion_aif")


def exam_annotations(annotations: str | os.PathLike | None, exam_keys: pd.DataFrame, key: str,
                     observer: str) -> dict[str, pipeline.Annotations]:
    """``{exam_id: Annotations}`` of the perfusion contours and landmarks of ``observer``."""
    from cmr_atlas.perfusion.pipeline import Annotations

    if not annotations:
        return {}
    folder = Path(annotations)
    paths = [folder / "contours.parquet", folder / "landmarks.parquet"]
    if not all(p.is_file() for p in paths):
        return {}
    filters = [("sequence", "==", "perfusion"), ("observer", "==", observer)]
    contours, landmarks = (pd.read_parquet(p, filters=filters) for p in paths)
    mapping = folder_map(exam_keys, sorted(set(contours["exam_id"])), key)
    return {exam_id: Annotations(contours[contours["exam_id"] == label], landmarks[landmarks["exam_id"] == label])
            for label, exam_id in mapping.items()}


def _failed(exam_id: str, reason: str) -> dict:
    return {"exam_id": exam_id, "condition": "unknown", "series_index": None, "slice": None, "level": None,
            "n_frames": None, "n_pd": None, "rr_s": None, "motion_mean_mm": None, "motion_max_mm": None,
            "residual_motion_mm": None, "aif_peak_mmol_l": None, "myocardium_pixels": None,
            "rv_insertion": None, "qc_reason": reason}


def perfusion_shard(series_path, exam_keys_path, cache_dir, models_dir, section: dict, out_paths: dict,
                    maps_dir, annotations=None, observer: str | None = None, key: str = "") -> dict[str, pd.DataFrame]:
    """Run the shard and write the four tables (``out_paths`` by table name) and the maps;
    ``annotations`` (a folder of contours/landmarks tables) needs the ``observer`` whose contours
    make the manual path (config ``manual_observer``)."""
    if annotations and not observer:
        raise ValueError("perfusion_shard: annotations given without the observer (config manual_observer)")
    series = pd.read_parquet(series_path)
    exams = sorted(set(series.loc[series["kind"].isin(KINDS), "exam_id"]))
    rows: dict[str, list[dict]] = {s.name: [] for s in PERFUSION_TABLES}
    Path(maps_dir).mkdir(parents=True, exist_ok=True)
    if exams:  # a shard without perfusion series needs neither the network nor torch
        ann = exam_annotations(annotations, pd.read_parquet(exam_keys_path), key, observer) if annotations else {}
        _run_exams(exams, rows, cache_dir, models_dir, section, maps_dir, ann)
    out = {}
    for schema in PERFUSION_TABLES:
        df = pd.DataFrame(rows[schema.name], columns=schema.column_names)
        write_table(df, out_paths[schema.name], schema)
        out[schema.name] = df
    return out


def _run_exams(exams: list[str], rows: dict[str, list[dict]], cache_dir, models_dir, section: dict, maps_dir,
               ann: dict) -> None:
    """Every exam of ``exams`` through the pipeline, its rows appended to ``rows`` by table name."""
    from cmr_atlas.nets.registry import ModelFileError
    from cmr_atlas.perfusion import insertion_net, maps, pipeline, segment
    from cmr_atlas.perfusion.quantify import QuantConfig

    cfg = QuantConfig.from_config(section)
    model = card = model_error = landmark_net = None
    try:
        model, card = segment.load_segmenter(models_dir)
        if cfg.insertions == "network":
            landmark_net = insertion_net.load(models_dir)
    except ModelFileError as exc:  # every exam gets the reason; the shard's tables are still written
        model_error = f"perfusion network unavailable: {exc}"
    for exam_id in exams:
        try:
            imgs = [load_series_images(p) for p in list_series_images(cache_dir, exam_id, KINDS)]
        except (OSError, ValueError, KeyError) as exc:
            rows["perfusion_series"].append(_failed(exam_id, f"series cache unreadable: {exc}"))
            continue
        if not any(s.kind == "perfusion" for s in imgs):
            rows["perfusion_series"].append(_failed(exam_id, "perfusion series not in the series cache"))
            continue
        if model_error:
            rows["perfusion_series"].append(_failed(exam_id, model_error))
            continue
        try:
            ex = pipeline.run_exam(exam_id, imgs, cfg, model, card, ann.get(exam_id), landmark_net=landmark_net)
        except Exception as exc:  # noqa: BLE001 - one exam's failure must not stop the shard
            log.exception("exam %s: perfusion failed", exam_id)
            rows["perfusion_series"].append(_failed(exam_id, f"perfusion failed: {type(exc).__name__}: {exc}"))
            continue
        for name in rows:
            rows[name] += ex.rows[name]
        if cfg.pixel_maps:
            maps.write_maps(ex, maps_dir)
        log.info("exam %s: %d perfusion segments", exam_id, len(ex.rows["perfusion_segments"]))
