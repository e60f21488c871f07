"""``cmr-atlas tiscout DIR``: the myocardial null point of the TI scout in one DICOM folder, one
JSON line per scout series (:func:`cmr_atlas.tiscout.folder.scout_folder`).  Exit status 0 when
every scout gave a reliable null point, 1 otherwise (the line's ``qc_reason`` says why)."""

from __future__ import annotations

import argparse
import json

from cmr_atlas.core.config import default


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("folder", help="DICOM folder holding the scout series (one study)")
    p.add_argument("--model", help=f"network (default {default('tiscout.model')}; ti_stemi = the paper's)")
    p.add_argument("--decoding", help=f"change_point, first_acceptable or classical (default {default('tiscout.decoding')})")
    p.add_argument("--models-dir", help="folder of model weights (default: the shipped models)")


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.core.config import find_models_dir
    from cmr_atlas.tiscout.folder import scout_folder
    from cmr_atlas.tiscout.select import default_options

    opts = default_options()
    opts.update({k: v for k, v in (("model", args.model), ("decoding", args.decoding)) if v})
    if args.models_dir:
        opts["models_dir"] = find_models_dir(args.models_dir)
    results = scout_folder(args.folder, opts)
    for r in results:
        print(json.dumps(r))
    return 0 if results and all(r["qc_reason"] is None for r in results) else 1
