"""``cmr-atlas infer``: run the CNNs on one shard of ingested exams (models loaded once).

Reads ``<cache>/<exam_id>.npz`` for the exams listed (status ok) in an ingest ``exams.parquet``
(or given with ``--exam-ids``), writes ``landmarks``, ``segmentation_qc``, ``phases`` and
``masks/<exam_id>.npz`` under ``--out``, and with ``--guide-points FILE`` the automated
guide-point table too.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import pandas as pd
import torch

from cmr_atlas.core.config import defaults, find_models_dir, load_config

log = logging.getLogger(__name__)


def shard_exam_ids(exams_parquet: str | Path) -> list[str]:
    """Exam ids with status ok from an ingest ``exams.parquet`` (all of them if it has no status)."""
    df = pd.read_parquet(exams_parquet)
    if "exam_id" not in df.columns:
        raise ValueError(f"{exams_parquet}: no exam_id column")
    if "status" in df.columns:
        df = df[df["status"] == "ok"]
    return sorted(df["exam_id"].astype(str).unique())


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
    p.add_argument("--batch", type=int, default=32, help="images per forward pass")
    p.add_argument("--guide-points", help="also write the automated guide-point table here")


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.cine import autoguide
    from cmr_atlas.cine.inference import load_models, run_shard

    cfg = load_config(args.config) if args.config else defaults()
    torch.set_num_threads(max(1, args.threads))
    models_dir = find_models_dir(args.models_dir or cfg["models_dir"])
    method = args.method or cfg["landmarks"]["method"]
    device = args.device or cfg["device"]
    ids = args.exam_ids or shard_exam_ids(args.exams)
    models = load_models(models_dir, method, device)
    log.info("inference on %d exams (%s landmarks, device %s)", len(ids), method, models.device)
    status = run_shard(ids, args.cache, args.out, models,
                       ed_method=cfg["segmentation"]["ed_frame"],
                       absent_threshold=float(cfg["landmarks"]["absent_threshold"]),
                       batch=args.batch)
    if args.guide_points:
        ok = [e for e, s in status.items() if s == "ok"]
        autoguide.run_shard(ok, args.cache, args.out, args.guide_points)
    failed = {e: s for e, s in status.items() if s != "ok"}
    log.info("inference done: %d ok, %d failed", len(status) - len(failed), len(failed))
    return 0
