"""``cmr-atlas infer``: run the CNNs on one shard of ingested exams (models loaded once).

Reads ``<cache>/<exam_id>.npz`` for the exams listed (status ok) in an ingest ``exams.parquet``
(or given with ``--exam-ids``), writes ``landmarks`` (its ``sequence`` column from ``--series``),
``landmark_measures``, ``segmentation_qc``, ``phases`` and
``masks/<exam_id>.npz`` and ``status/infer.parquet`` (``exam_status`` rows) under ``--out``, and
with ``--guide-points FILE`` the automated guide-point table too (its status rows in
``status/auto_guide_points.parquet`` under ``--out``).
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cmr_atlas.core.config import defaults, find_models_dir, load_config
from cmr_atlas.core.shards import shard_exam_ids
from cmr_atlas.nets.runtime import PRECISIONS, RUNTIMES

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--cache", required=True, help="image cache folder (<results>/cache)")
    g = p.add_mutually_exclusive_group(required=True)
    g.add_argument("--exams", help="ingest exams.parquet of the shard (exams with status ok)")
    g.add_argument("--exam-ids", nargs="+", help="explicit exam ids")
    p.add_argument("--out", required=True, help="output folder (the shard folder)")
    p.add_argument("--config", help="config YAML (models_dir, landmarks, segmentation, device); default: the schema's defaults")
    p.add_argument("--models-dir", help="override config models_dir")
    p.add_argument("--method", choices=["heatmap", "vgg"], help="override landmarks.method")
    p.add_argument("--device", choices=["auto", "cpu", "cuda"], help="override config device")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (= the job's threads)")
    p.add_argument("--batch", type=int, help="images per forward pass (default: config inference.batch)")
    p.add_argument("--precision", choices=PRECISIONS, help="override config inference.precision")
    p.add_argument("--runtime", choices=RUNTIMES, help="override config inference.runtime")
    p.add_argument("--guide-points", help="also write the automated guide-point table here")
    p.add_argument("--series", help="ingest series.parquet of the shard: fills the landmarks' sequence column")


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.cine import autoguide
    from cmr_atlas.cine.inference import infer_shard

    cfg = load_config(args.config) if args.config else defaults()
    out = Path(args.out)
    shard = dict(landmarks_path=out / "landmarks.parquet", qc_path=out / "segmentation_qc.parquet",
                 phases_path=out / "phases.parquet", masks_dir=out / "masks")
    outcomes = infer_shard(
        args.exam_ids or shard_exam_ids(args.exams), args.cache,
        find_models_dir(args.models_dir or cfg["models_dir"]),
        method=args.method or cfg["landmarks"]["method"], device=args.device or cfg["device"],
        precision=args.precision or cfg["inference"]["precision"],
        runtime=args.runtime or cfg["inference"]["runtime"], crop_margin_mm=cfg["inference"]["crop_margin_mm"],
        lv_centre_from_mask=cfg["landmarks"]["lv_centre_from_mask"], frames=cfg["inference"]["frames"],
        threads=args.threads, status_path=out / "status" / "infer.parquet",
        ed_method=cfg["segmentation"]["ed_frame"], absent_threshold=cfg["landmarks"]["absent_threshold"],
        batch=args.batch or cfg["inference"]["batch"], series_path=args.series,
        measures_path=out / "landmark_measures.parquet", **shard)
    if args.guide_points:
        autoguide.run_shard([o.exam_id for o in outcomes if o.ok], args.cache, out_path=args.guide_points,
                            status_path=out / "status" / "auto_guide_points.parquet", **shard)
    return 0
