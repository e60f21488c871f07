"""``cmr-atlas report``: the cohort HTML report of a results folder (:mod:`cmr_atlas.report.page`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from cmr_atlas.cine.atlas_render import RENDER_BACKENDS
from cmr_atlas.core.config import default
from cmr_atlas.report.page import DEFAULT_TITLE, build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results/demo", help="results folder (default results/demo)")
    p.add_argument("--out", help="report folder (default <results>/report)")
    p.add_argument("--models-dir", default=default("models_dir"), help="folder of model cards (*.json)")
    p.add_argument("--title", default=DEFAULT_TITLE)
    p.add_argument("--render-backend", default=RENDER_BACKENDS[0], choices=RENDER_BACKENDS,
                   help="atlas renders when the atlas stage left none")
    p.add_argument("--review-max-exams", type=int, default=default("report.review_max_exams"),
                   help="exams listed in the Review section (0 = none)")


def run(args: argparse.Namespace) -> int:
    index = build_report(args.results, Path(args.out) / "index.html" if args.out else None, args.models_dir,
                         args.title, args.render_backend, review_max_exams=args.review_max_exams)
    print(f"report: {index.resolve()}")
    return 0
