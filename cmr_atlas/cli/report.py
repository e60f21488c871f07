"""``cmr-atlas report``: the cohort HTML report of a results folder."""

from __future__ import annotations

import argparse

from cmr_atlas.report.page import build_report


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--results", default="results/demo", help="results folder (default results/demo)")
    p.add_argument("--out", help="report folder (default <results>/report)")
    p.add_argument("--models-dir", default="resources/models", help="folder of model cards (*.json)")
    p.add_argument("--title", default="cmr-atlas cohort report")
    p.add_argument("--render-backend", default="auto", choices=["auto", "pyvista", "matplotlib"],
                   help="atlas renders when the atlas stage left none")


def run(args: argparse.Namespace) -> int:
    index = build_report(args.results, args.out, args.models_dir, args.title, args.render_backend)
    print(f"report: {index.resolve()}")
    return 0
