"""Workflow stage of one shard: landmarks on every LGE (SAX and long-axis) and SAX T1-map series (``tissue_landmarks``)
and T1/ECV per AHA segment of the T1 maps (``t1_segments``), from ingest's ``series`` table and
series cache; the cohort aggregate then takes each exam's measured hematocrit from the covariates.

Per exam through :func:`cmr_atlas.core.runner.run_exams` (stage ``tissue``): a failing exam gets
its ``exam_status`` row and never stops the shard; expected gaps (no T1 map, no post map, no
landmarks, slices off each other's plane) are ``t1_segments`` rows with a ``qc_reason``.
"""

from __future__ import annotations

import logging
from pathlib import Path

import pandas as pd

from cmr_atlas.cine.tissue.landmarks import (SEQUENCE_OF_KIND, TISSUE_LANDMARKS, load_tissue_models, reconstruction_pairs,
                                            series_landmarks)
from cmr_atlas.cine.tissue.segments import T1_SEGMENTS, apply_hematocrit, exam_rows, hematocrit_by_exam
from cmr_atlas.core.seriescache import SeriesImages, load_series_images, series_cache_path
from cmr_atlas.core.aggregate import concat_to
from cmr_atlas.core.runner import ExamFailure, run_exams, status_frame, write_status
from cmr_atlas.core.tables import concat_tables, read_table, write_table

log = logging.getLogger(__name__)

STAGE = "tissue"


LAX_VIEWS_READ = ("lax_2ch", "lax_3ch", "lax_4ch")  # long-axis LGE views with landmarks


def tissue_series(series: pd.DataFrame) -> pd.DataFrame:
    """Rows of ingest's ``series`` table that this stage reads: LGE, PSIR and T1-map series whose
    planes are short-axis (``plane_views`` sax), and LGE and PSIR series of one long-axis view."""
    views = series["plane_views"].fillna("")
    lge = series["kind"].isin([k for k, q in SEQUENCE_OF_KIND.items() if q == "lge"])
    keep = series["kind"].isin(list(SEQUENCE_OF_KIND)) & (views == "sax") | lge & views.isin(LAX_VIEWS_READ)
    return series[keep].sort_values(["exam_id", "series_index"])


def _load(cache_dir: Path, row) -> SeriesImages:
    path = series_cache_path(cache_dir, row.exam_id, int(row.series_index), row.kind)
    if not path.is_file():
        raise ExamFailure("no_series_cache")
    return load_series_images(path)


def exam_tables(exam_id: str, rows: pd.DataFrame, cache_dir: Path, models: dict,
                options: dict) -> tuple[pd.DataFrame, list[dict]]:
    """``(tissue_landmarks, t1_segments rows)`` of one exam's LGE/T1-map series (``rows``)."""
    lms, maps = [], {}
    loaded = [(row, _load(cache_dir, row)) for row in rows.itertuples()]
    pairs = reconstruction_pairs([s for _, s in loaded]) if options["pair_reconstructions"] else {}
    for row, s in loaded:
        if s.kind == "t1map":
            maps.setdefault("post" if s.post_contrast else "native", s)  # the first of each
        sequence = SEQUENCE_OF_KIND[s.kind]
        if sequence in models:  # a models folder without the sequence's network: no landmarks
            lms.append(series_landmarks(s, models[sequence], absent_threshold=options["absent_threshold"],
                                        batch=options["batch"], view=str(row.plane_views),
                                        companion=pairs.get(s.series_index)))
    lm = pd.concat(lms, ignore_index=True) if lms else TISSUE_LANDMARKS.empty()
    if maps and "t1map" not in models:
        return lm, [{"exam_id": exam_id, "qc_reason": "no_landmark_network"}]
    return lm, exam_rows(exam_id, maps.get("native"), maps.get("post"), lm, options["hematocrit"])


def tissue_shard(series_table: str | Path, cache_dir: str | Path, models_dir: str | Path, options: dict, *,
                 landmarks_path: str | Path, segments_path: str | Path, status_path: str | Path,
                 threads: int = 1) -> None:
    """Both tables and the exam_status rows of one shard.  ``options``: ``absent_threshold``,
    ``batch``, ``device``, ``precision``, ``hematocrit``, ``pair_reconstructions`` (the config's); the networks run on
    ``threads`` torch threads, and torch is imported only for a shard with such series."""
    series = read_table(series_table)
    todo = tissue_series(series)
    exams = series["exam_id"].drop_duplicates().tolist()
    models = {}
    if len(todo):
        import torch

        torch.set_num_threads(max(1, int(threads)))
        models = load_tissue_models(models_dir, device=options["device"], precision=options["precision"])
    outcomes = run_exams(exams, lambda e: exam_tables(e, todo[todo["exam_id"] == e], Path(cache_dir), models, options),
                         STAGE, log)
    lm = [o.value[0] for o in outcomes if o.ok and len(o.value[0])]
    seg = [r for o in outcomes if o.ok for r in o.value[1]]
    for o in outcomes:
        if not o.ok:
            seg.append({"exam_id": o.exam_id, "qc_reason": o.qc_reason})
    write_table(pd.concat(lm, ignore_index=True) if lm else TISSUE_LANDMARKS.empty(), landmarks_path, TISSUE_LANDMARKS)
    write_table(pd.DataFrame(seg, columns=T1_SEGMENTS.column_names), segments_path, T1_SEGMENTS)
    write_status(status_frame(outcomes, STAGE), status_path)


def run_shard(series_table: str | Path, cache_dir: str | Path, models_dir: str | Path, config: dict,
              landmarks_path: str | Path, segments_path: str | Path, status_path: str | Path, threads: int = 1) -> None:
    """The workflow's call: options from the filled config (``landmarks``, ``inference``, ``tissue``)."""
    options = {"absent_threshold": config["landmarks"]["absent_threshold"], "batch": config["inference"]["batch"],
               "device": config["device"], "precision": config["inference"]["precision"],
               "hematocrit": config["tissue"]["hematocrit"],
               "pair_reconstructions": config["tissue"]["pair_reconstructions"]}
    tissue_shard(series_table, cache_dir, models_dir, options, landmarks_path=landmarks_path,
                 segments_path=segments_path, status_path=status_path, threads=threads)


def aggregate(landmark_paths: list[str | Path], segment_paths: list[str | Path], covariates: str | Path | None,
              extra: str | Path | None, landmarks_out: str | Path, segments_out: str | Path) -> None:
    """The cohort tables: the shards' ``tissue_landmarks``, and their ``t1_segments`` with the ECV
    from each exam's measured hematocrit where the covariates have one."""
    concat_to(landmark_paths, landmarks_out, TISSUE_LANDMARKS)
    seg = concat_tables(list(segment_paths), T1_SEGMENTS)
    cov = read_table(covariates) if covariates and Path(covariates).is_file() else None
    ext = read_table(extra) if extra and Path(extra).is_file() else None
    write_table(apply_hematocrit(seg, hematocrit_by_exam(cov, ext)), segments_out, T1_SEGMENTS)
