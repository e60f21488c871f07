"""``cmr-atlas guidepoints``: the manual path's guide points from an annotations folder
(:mod:`cmr_atlas.cine.annotations`)."""

from __future__ import annotations

import argparse

from cmr_atlas.cine.annotations import write_manual_guide_points
from cmr_atlas.core.config import default


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--annotations", required=True, help="folder with contours.parquet and landmarks.parquet")
    p.add_argument("--slices", required=True, help="ingested slices table (planes)")
    p.add_argument("--exam-keys", required=True, help="ingested exam_keys table")
    p.add_argument("--key", required=True, help="exam_id_key used at ingest")
    p.add_argument("--observer", default=default("manual_observer"),
                   help="annotation observer to use (config manual_observer)")
    p.add_argument("--auto-guide-points", metavar="FILE",
                   help="automated guide points (guide_points_auto.parquet) to take the landmarks the "
                        "annotations lack from (config manual_landmarks_from_auto); default: none")
    p.add_argument("--out", required=True, help="output guide_points parquet")


def run(args: argparse.Namespace) -> int:
    write_manual_guide_points(args.annotations, args.slices, args.exam_keys, args.key, args.observer, args.out,
                              args.auto_guide_points)
    return 0
