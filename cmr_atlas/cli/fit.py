"""``cmr-atlas fit``: fit the LV model to every exam and source of a guide-point table.

Writes the five fit tables (``shapes``, ``model_frames``, ``slice_shifts``, ``measures``,
``wall_thickness``) and ``status/fit.parquet`` (``exam_status`` rows) under ``--out``.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

from cmr_atlas.cine.lvmodel.outputs import TABLES
from cmr_atlas.cine.lvmodel.run import fit_shard
from cmr_atlas.core.config import default

log = logging.getLogger(__name__)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--guide-points", required=True, type=Path, help="guide_points.parquet")
    parser.add_argument("--slices", required=True, type=Path,
                        help="slice-plane table (SLICE_PLANE_COLUMNS), e.g. slices.parquet")
    parser.add_argument("--out", required=True, type=Path, help="output folder for the tables")
    parser.add_argument("--no-breath-hold", action="store_true",
                        help="skip the breath-hold (slice shift) correction")
    parser.add_argument("--shift-reference", choices=["sax_mean", "lax"], default=default("fit.shift_reference"),
                        help="gauge of the slice shifts: SAX shifts sum to zero and LAX views are "
                             "shifted too (default: config fit.shift_reference), or LAX views fixed")
    parser.add_argument("--vtp", action="store_true",
                        help="also write a VTP surface per exam, source and phase under OUT/vtp/")


def run(args: argparse.Namespace) -> int:
    out = args.out
    fit_shard(args.guide_points, args.slices,
              **{f"{name}_path": out / f"{name}.parquet" for name in TABLES},
              status_path=out / "status" / "fit.parquet", breath_hold=not args.no_breath_hold,
              shift_reference=args.shift_reference, vtp_dir=out / "vtp" if args.vtp else None)
    return 0
