"""``cmr-atlas models``: the shipped networks.

    cmr-atlas models list   [--models-dir DIR]             one line per model card: sequences, views
    cmr-atlas models export --onnx OUT [--models-dir DIR] [--check]

``export`` writes every network of the models folder (default: the config's ``models_dir``) as
``OUT/<name>.onnx`` with its card (:mod:`cmr_atlas.nets.onnx_export`); ``--check`` runs each
exported file with onnxruntime and fails if it differs from PyTorch by more than ``--tolerance``.
"""

from __future__ import annotations

import argparse
import logging

from cmr_atlas.core.config import default, find_models_dir

log = logging.getLogger(__name__)


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the model cards: what each network was trained on")
    ex = sub.add_parser("export", help="export the networks to ONNX")
    for q in (ls, ex):
        q.add_argument("--models-dir", help="models folder (default: config models_dir)")
    ex.add_argument("--onnx", required=True, metavar="DIR", help="output folder of the .onnx files and cards")
    ex.add_argument("--name", nargs="+", help="only these models")
    ex.add_argument("--check", action="store_true", help="compare each export with PyTorch (onnxruntime)")
    ex.add_argument("--tolerance", type=float, default=1e-3, help="largest absolute output difference allowed")


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.nets.onnx_export import check_export, export_all, model_names
    from cmr_atlas.nets.registry import card_sequences, load_card

    models_dir = find_models_dir(args.models_dir or default("models_dir"))
    if args.models_command == "list":
        for name in model_names(models_dir):
            c = load_card(name, models_dir)
            print(f"{name}: sequences {','.join(card_sequences(c))}; "
                  f"views {','.join(c.get('views', ['sax']))}")
        return 0
    bad = 0
    for path in export_all(models_dir, args.onnx, args.name):
        log.info("wrote %s", path)
        if args.check:
            diff = check_export(path.stem, models_dir, path)
            ok = diff <= args.tolerance
            bad += not ok
            print(f"{path.stem}: max |ONNX - PyTorch| = {diff:.2e} ({'ok' if ok else 'FAILS'})")
    return 1 if bad else 0
