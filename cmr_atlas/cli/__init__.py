"""Command-line interface: ``cmr-atlas <subcommand> ...``.

Every subcommand is a module of this package exposing ``add_arguments(parser)`` and
``run(args) -> int``, which only parse arguments and call one package function; this file only
lists them (in pipeline order), so stages stay independent and only the chosen one is imported.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from cmr_atlas import __version__
from cmr_atlas.core.logs import log_to_stderr
from cmr_atlas.core.openmp import prefer_passive_wait

# name -> (module in cmr_atlas.cli with add_arguments/run, one-line help); pipeline order
COMMANDS: dict[str, tuple[str, str]] = {
    "synth": ("cmr_atlas.cli.synth", "generate a synthetic legacy cine MRI cohort with ground truth"),
    "ingest": ("cmr_atlas.cli.ingest", "index a folder of DICOM exams: views, slices, frames, image cache"),
    "infer": ("cmr_atlas.cli.infer", "run the landmark and segmentation CNNs on ingested exams"),
    "annotations": ("cmr_atlas.cli.annotations", "import core-lab annotation files (cvi42, CAP, NIfTI, DICOM SEG) into an annotations folder"),
    "guidepoints": ("cmr_atlas.cli.guidepoints", "build the guide-point table (auto or manual source)"),
    "fit": ("cmr_atlas.cli.fit", "fit the LV model with breath-hold correction; clinical measures"),
    "covariates": ("cmr_atlas.cli.covariates", "join a covariates table to exam_id by keyed hashes (no identifiers)"),
    "atlas": ("cmr_atlas.cli.atlas", "Procrustes alignment and PCA of fitted shapes"),
    "stats": ("cmr_atlas.cli.stats", "risk-factor logistic regression, cross-validated AUC, DeLong"),
    "tiscout": ("cmr_atlas.cli.tiscout", "myocardial null inversion time of the TI scout in one DICOM folder (JSON line)"),
    "report": ("cmr_atlas.cli.report", "HTML report for a results folder"),
    "train": ("cmr_atlas.cli.train", "train the landmark and segmentation networks"),
    "models": ("cmr_atlas.cli.models", "export the shipped networks (ONNX) and list their model cards"),
    "query": ("cmr_atlas.cli.query", "run SQL (DuckDB) over a results folder's parquet tables"),
    "schemas": ("cmr_atlas.cli.schemas", "print the documented schema of every output table"),
    "config": ("cmr_atlas.cli.config", "validate a workflow config and print it with every default filled in"),
}


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The CLI parser; with ``only``, import just that subcommand's module."""
    parser = argparse.ArgumentParser(
        prog="cmr-atlas",
        description="Legacy cine cardiac MRI to a population atlas of LV shape and motion.",
    )
    parser.add_argument("--version", action="version", version=f"cmr-atlas {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", metavar="SUBCOMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if only is not None and name != only:
            continue  # imported lazily: only the chosen stage pays for its imports (torch, ...)
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            p.set_defaults(_unavailable=name)
            continue
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(only=chosen if chosen in COMMANDS else "")
    args = parser.parse_args(argv)
    log_to_stderr(args.verbose)
    prefer_passive_wait()  # before any subcommand imports torch
    if args.command is None:
        parser.print_help()
        return 0
    if getattr(args, "_unavailable", None):
        print(f"cmr-atlas {args._unavailable}: this stage is not built yet", file=sys.stderr)
        return 2
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
