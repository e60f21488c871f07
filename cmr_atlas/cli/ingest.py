"""``cmr-atlas ingest COHORT_DIR --out DIR``: index DICOM exams, select views, write the image cache.

Writes ``DIR/exams.parquet``, ``series.parquet``, ``slices.parquet``, ``exam_keys.parquet``,
``DIR/cache/<exam_id>.npz``, ``DIR/status/ingest.parquet`` (``exam_status`` rows) and, with
``--linkage``, ``DIR/linkage.parquet``.  ``--folders``
restricts the run to some top-level folders of the cohort (one shard of the workflow).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from cmr_atlas.core.shards import select_folders
from cmr_atlas.dicom.index import ingest_shard

log = logging.getLogger(__name__)

KEY_ENV = "CMR_ATLAS_EXAM_ID_KEY"


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("cohort_dir", type=Path, help="folder of exams (or a synthetic cohort with dicom/)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    p.add_argument("--exam-id-key", default=None,
                   help=f"secret key of the exam-id hash (default: ${KEY_ENV}, else config exam_id_key)")
    p.add_argument("--config", type=Path, default=None, help="config YAML to take exam_id_key/linkage from")
    p.add_argument("--linkage", action=argparse.BooleanOptionalAction, default=None,
                   help="also write linkage.parquet (exam_id <-> StudyInstanceUID, folder)")
    p.add_argument("--folders", nargs="+", default=None, metavar="NAME",
                   help="only these top-level folders (default: all)")
    p.add_argument("--folders-file", type=Path, default=None, help="only the folders listed in this file")
    p.add_argument("--no-cache", action="store_true", help="index only, do not write the image cache")


def _settings(args: argparse.Namespace) -> tuple[str, bool]:
    from cmr_atlas.core.config import defaults, load_config

    cfg = load_config(args.config) if args.config is not None else defaults()
    key = args.exam_id_key or os.environ.get(KEY_ENV) or cfg.get("exam_id_key")
    if not key:
        raise SystemExit(f"cmr-atlas ingest: give --exam-id-key, ${KEY_ENV} or --config with exam_id_key")
    linkage = args.linkage if args.linkage is not None else bool(cfg["linkage"])
    return key, linkage


def run(args: argparse.Namespace) -> int:
    key, linkage = _settings(args)
    try:
        folders = select_folders(args.cohort_dir, args.folders, args.folders_file)
    except ValueError as exc:  # names no folder, only their number
        log.error("%s", exc)
        return 2
    out = args.out
    ingest_shard(args.cohort_dir, folders, key, None if args.no_cache else out / "cache",
                 exams_path=out / "exams.parquet", series_path=out / "series.parquet",
                 slices_path=out / "slices.parquet", exam_keys_path=out / "exam_keys.parquet",
                 status_path=out / "status" / "ingest.parquet",
                 linkage_path=out / "linkage.parquet" if linkage else None)
    return 0
