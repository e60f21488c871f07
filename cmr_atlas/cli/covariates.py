"""``cmr-atlas covariates``: join a covariates table to exam_id by keyed hashes (no identifiers).

Writes covariates, covariates_extra and covariates_missing (parquet) under ``--out``.
"""

from __future__ import annotations

import argparse

from cmr_atlas.core.config import default, load_config
from cmr_atlas.core.ids import KEY_TYPES
from cmr_atlas.stats.covariates import covariates_paths, write_covariates


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--covariates", default="", help="covariates table (CSV or parquet); empty = none")
    p.add_argument("--exam-keys", required=True, help="exam_keys.parquet written by ingest")
    p.add_argument("--exams", help="exams.parquet (all exams, DICOM height/weight for BSA)")
    p.add_argument("--key-type", default=default("covariates_key"), choices=KEY_TYPES, help="config covariates_key")
    p.add_argument("--key-column", default=default("covariates_key_column"), help="config covariates_key_column")
    p.add_argument("--config", default="config/config.yaml",
                   help="config file whose exam_id_key is used (kept off the command line)")
    p.add_argument("--out", required=True, help="results folder")


def run(args: argparse.Namespace) -> int:
    key = load_config(args.config)["exam_id_key"]
    res = write_covariates(covariates_paths(args.out), args.covariates, args.exam_keys, args.key_type,
                           args.key_column, key, args.exams)
    print(f"covariates: {len(res.covariates)} exams joined, {len(res.missing)} without covariates -> {args.out}")
    return 0
