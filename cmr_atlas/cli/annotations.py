"""``cmr-atlas annotations import``: core-lab annotation files -> an annotations folder
(:func:`cmr_atlas.formats.importers.import_to_folder`)."""

from __future__ import annotations

import argparse
import sys

from cmr_atlas.core.config import default
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.importers import FORMATS, import_to_folder
from cmr_atlas.formats.nifti import LABEL_SETS


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    imp = sub.add_parser(
        "import", help="convert cvi42, CAP, NIfTI or DICOM SEG files into an annotations folder",
        description="Convert annotation files of a core-lab tool into cmr-atlas's annotations folder: "
                    "OUT/contours.parquet and OUT/landmarks.parquet (two tables with different columns, "
                    "hence a folder), which the manual path reads (config manual_annotations, "
                    "`cmr-atlas guidepoints --annotations OUT`).")
    imp.add_argument("--format", required=True, choices=FORMATS, help="format of FILE...")
    imp.add_argument("--cohort", required=True,
                     help="the cohort's DICOM folder (one folder per exam; its dicom/ subfolder when present): "
                          "annotations are matched to its images by SOPInstanceUID or geometry")
    imp.add_argument("--out", required=True,
                     help="annotations folder to write (contours.parquet + landmarks.parquet)")
    imp.add_argument("--observer", default=default("manual_observer"),
                     help="observer name written into the rows (default: config manual_observer, which "
                          "the manual path selects)")
    imp.add_argument("--labels", default=default("manual_annotations_labels"), choices=sorted(LABEL_SETS),
                     help="label values of NIfTI label maps (default: config manual_annotations_labels)")
    imp.add_argument("files", nargs="+", metavar="FILE",
                     help="annotation files, or folders searched for them (CAP: folders holding "
                          "SliceInfoFile.txt and GPFile*.txt)")


def run(args: argparse.Namespace) -> int:
    try:
        ann = import_to_folder(args.format, args.files, args.cohort, args.out, args.observer, args.labels)
    except (FormatError, FileNotFoundError) as exc:
        print(f"cmr-atlas annotations import: {exc}", file=sys.stderr)
        return 2
    print(f"{len(ann.contours)} contour points, {len(ann.landmarks)} landmarks of "
          f"{ann.contours['exam_id'].nunique()} exams -> {args.out}")
    return 0
