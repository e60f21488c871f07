"""``cmr-atlas models``: the shipped networks.

    cmr-atlas models list   [--models-dir DIR]             one line per model card: sequences, views
    cmr-atlas models export --onnx OUT [--models-dir DIR] [--check]
    cmr-atlas models quantize [--name NAME ...] [--models-dir DIR] [--n-exams 4] [--n-images 256]
    cmr-atlas models orient   [--name NAME ...] [--models-dir DIR]
    cmr-atlas models rotations NAME ... --deg=-15,0,15 [--zooms 0.87,1.15] --note TEXT [--models-dir DIR]
    cmr-atlas models neighbours NAME ... --frames 1 --note TEXT [--models-dir DIR]

``export`` writes every network of the models folder (default: the config's ``models_dir``) as
``OUT/<name>.onnx`` with its card (:mod:`cmr_atlas.nets.onnx_export`); ``--check`` runs each
exported file with onnxruntime and fails if it differs from PyTorch by more than ``--tolerance``.
``quantize`` writes the int8 graph of each cine U-Net (``<name>.int8.onnx`` beside its weights, and
an ``int8`` entry in its card) calibrated on its training cohort (:mod:`cmr_atlas.cine.quantize_models`);
config ``inference.precision: int8`` runs them.  ``orient`` measures each long-axis landmark
network's training orientations and writes them into its card (``orientation``): long-axis images
turned far outside them go into the network upright (:mod:`cmr_atlas.cine.lax_orientation`).
``rotations`` sets a landmark heatmap network's test-time rotations (``decode.rotations_deg``: the
softmax maps of the rotated images averaged; chosen on validation exams, the note says how;
:func:`cmr_atlas.cine.landmark_calibration.set_rotations`); ``--zooms`` adds unrotated magnified looks
(``decode.zooms``, within the training augmentation's range; ``--zooms=`` clears them;
:func:`cmr_atlas.cine.landmark_calibration.set_zooms`).  ``neighbours`` sets how many cine frames on
each side a SAX landmark network's maps are averaged over (``decode.neighbour_frames``; 0: none;
:func:`cmr_atlas.cine.landmark_calibration.set_neighbour_frames`).
"""

from __future__ import annotations

import argparse
import logging

from cmr_atlas.core.config import default, find_models_dir

log = logging.getLogger(__name__)


def _numbers(what: str, example: str, allow_empty: bool = False):
    """An argparse type: ``-15,0,15`` -> ``[-15.0, 0.0, 15.0]``; with ``allow_empty`` an empty value
    -> ``[]``.  A bad value names ``what`` and an ``example`` (argparse names the option)."""
    def parse(text: str) -> list[float]:
        try:
            values = [float(a) for a in text.split(",") if a.strip() or not allow_empty]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{what} separated by commas, e.g. {example}, not {text!r}") from None
        return values
    return parse


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="models_command", metavar="ACTION", required=True)
    ls = sub.add_parser("list", help="the model cards: what each network was trained on")
    ex = sub.add_parser("export", help="export the networks to ONNX")
    qz = sub.add_parser("quantize", help="int8 graphs of the cine U-Nets, calibrated on their training cohorts")
    orient = sub.add_parser("orient", help="the long-axis landmark networks' training orientations, into their cards")
    rot = sub.add_parser("rotations", help="a landmark heatmap network's test-time rotations, into its card")
    nb = sub.add_parser("neighbours", help="the cine frames a SAX landmark network's maps are averaged over, into its card")
    for q in (ls, ex, qz, orient, rot, nb):
        q.add_argument("--models-dir", help="models folder (default: config models_dir)")
    ex.add_argument("--onnx", required=True, metavar="DIR", help="output folder of the .onnx files and cards")
    ex.add_argument("--name", nargs="+", help="only these models")
    ex.add_argument("--check", action="store_true", help="compare each export with PyTorch (onnxruntime)")
    ex.add_argument("--tolerance", type=float, default=1e-3, help="largest absolute output difference allowed")
    qz.add_argument("--name", nargs="+", help="only these models (default: every cine U-Net of the folder)")
    qz.add_argument("--n-exams", type=int, default=4, help="training-cohort exams per protocol to calibrate on")
    qz.add_argument("--n-images", type=int, default=256, help="calibration images per network")
    orient.add_argument("--name", nargs="+", help="only these models (default: every long-axis landmark heatmap network)")
    rot.add_argument("name", nargs="+", help="landmark heatmap networks (cards in the models folder)")
    rot.add_argument("--deg", required=True, type=_numbers("degrees", "-15,0,15"),
                     help="rotations in degrees, written --deg=-15,0,15 (0: none)")
    rot.add_argument("--zooms", type=_numbers("magnifications", "0.87,1.15", allow_empty=True),
                     help="test-time magnifications, e.g. 0.87,1.15 (--zooms= for none)")
    rot.add_argument("--note", required=True, help="how they were chosen (validation cohort, figures)")
    nb.add_argument("name", nargs="+", help="SAX landmark heatmap networks (cards in the models folder)")
    nb.add_argument("--frames", required=True, type=int, help="cine frames on each side (0: none)")
    nb.add_argument("--note", required=True, help="how it was chosen (validation cohort, figures)")


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.nets.heatmaps import card_neighbour_frames, card_rotations, card_zooms
    from cmr_atlas.nets.onnx_export import check_export, export_all, model_names
    from cmr_atlas.nets.registry import card_sequences, load_card

    models_dir = find_models_dir(args.models_dir or default("models_dir"))
    if args.models_command == "list":
        for name in model_names(models_dir):
            c = load_card(name, models_dir)
            serves = c.get("serves", name)  # a network routed by sequence: the task whose series it takes
            rot = list(card_rotations(c))  # what decoding reads
            print(f"{name}: sequences {','.join(card_sequences(c))}; "
                  f"views {','.join(c.get('views', ['sax']))}" + (f"; routed for {serves}" if serves != name else "")
                  + (f"; test-time rotations {rot} deg" if rot != [0.0] else "")
                  + (f"; test-time zooms {list(z)}" if (z := card_zooms(c)) else "")
                  + (f"; maps averaged over {k} cine frame(s) each side" if (k := card_neighbour_frames(c)) else ""))
        return 0
    if args.models_command in ("rotations", "neighbours"):
        from cmr_atlas.cine.landmark_calibration import set_neighbour_frames, set_rotations, set_zooms

        for name in args.name:
            try:  # a card that is not there or not such a network: one line, not a traceback
                if args.models_command == "rotations":
                    if args.zooms is not None:  # first: a zoom refused leaves the card as it was
                        print(f"{name}: test-time zooms {set_zooms(name, models_dir, args.zooms, args.note)['zooms']}")
                    rot = set_rotations(name, models_dir, args.deg, args.note)["rotations_deg"]
                    print(f"{name}: test-time rotations {rot} deg")
                else:
                    k = set_neighbour_frames(name, models_dir, args.frames, args.note)["neighbour_frames"]
                    print(f"{name}: maps averaged over {k} cine frame(s) on each side")
            except ValueError as e:
                raise SystemExit(f"cmr-atlas models {args.models_command}: {e}") from None
        return 0
    if args.models_command == "quantize":
        from cmr_atlas.cine.quantize_models import cine_unets, quantize_model

        for name in args.name or cine_unets(models_dir):
            print(f"{name}: wrote {quantize_model(name, models_dir, args.n_exams, args.n_images)}")
        return 0
    if args.models_command == "orient":
        from cmr_atlas.cine.lax_orientation import orient_model

        for name in args.name or [n for n in model_names(models_dir) if n.startswith("lm_heatmap_lax")]:
            print(f"{name}: training span (deg) {orient_model(name, models_dir)['span_deg']}")
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
