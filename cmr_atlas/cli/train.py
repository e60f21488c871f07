"""``cmr-atlas train``: build annotated samples from a training cohort, then train each model.

    cmr-atlas train data  --out DATA [--n-exams N --seed S [--protocol clinical] | --cohort DIR --cache DIR]
    cmr-atlas train model NAME --data DATA --out resources/models [--minutes M --threads T]
    cmr-atlas train all   --out resources/models --data DATA ...   (both steps, every model)
    cmr-atlas train publish lm_heatmap_lax_lge --from RUN --out resources/models [--note TEXT]
        (a cine network fine-tuned on one sequence, e.g. LGE, published under the tissue stage's name)

Defaults of ``--n-exams``, ``--seed``, ``--minutes`` and ``--threads`` are the config's ``train``
defaults.  ``data`` writes a training-data folder (:mod:`cmr_atlas.cine.training`); ``model``
trains one model (:data:`cmr_atlas.cine.train_models.TRAINABLE`) and writes its weights and model
card (:mod:`cmr_atlas.cine.train_models`).
"""

from __future__ import annotations

import argparse
import logging

from cmr_atlas.cine.train_models import ROUTED, SEQUENCE_NETWORKS, TRAINABLE
from cmr_atlas.core.config import default
from cmr_atlas.nets.losses import DICE_MODES

log = logging.getLogger(__name__)


def _data_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--n-exams", type=int, default=default("train.n_exams"), help="synthetic training exams")
    q.add_argument("--seed", type=int, default=default("train.seed"), help="synthetic cohort seed (exams 0..n-1)")
    q.add_argument("--mi-fraction", type=float, default=0.2, help="fraction of MI exams")
    q.add_argument("--jobs", type=int, default=1, help="worker processes generating exams")
    q.add_argument("--extra-frames", type=int, default=2, help="frames per slice besides ED and ES")
    q.add_argument("--protocol", choices=["mesa", "clinical"], default="mesa",
                   help="synthetic protocol: legacy GRE cine (mesa) or the clinical exams' bSSFP cine "
                        "(SAX, 2CH, 3CH, 4CH)")
    q.add_argument("--cohort", help="use an ingested synthetic cohort (truth/) instead of generating")
    q.add_argument("--cache", help="image cache of that cohort")
    q.add_argument("--exam-id-key", default="cmr-atlas-demo-key", help="ingest's exam_id_key")
    q.add_argument("--landmark-grid", type=float, nargs=2, metavar=("SPACING_MM", "SIZE"),
                   help="grid of the landmark samples (default: the shipped networks', 1.5 mm x 128; "
                        "the paper's 1 mm is 1.0 192, the same 192 mm field of view); a landmark network "
                        "trained on the folder takes its inputs on it")
    q.add_argument("--sax-neighbour-slices", type=int, default=0, metavar="K",
                   help="SAX landmark images carry K slices either side (same frame) as channels, "
                        "for a network that sees through the stack (default 0: one slice)")
    q.add_argument("--breathing-p", type=float, default=None, metavar="P",
                   help="clinical protocol: share of cines acquired while the patient breathes (ghosts along "
                        "phase-encode), to train on more of them (default: the protocol's, 0.12)")


def _model_arguments(q: argparse.ArgumentParser) -> None:
    q.add_argument("--out", required=True, help="models folder (resources/models)")
    q.add_argument("--minutes", type=float, default=default("train.minutes"), help="wall-clock budget per model")
    q.add_argument("--threads", type=int, default=default("train.threads"), help="torch CPU threads")
    q.add_argument("--train-seed", type=int, default=0, help="seed of initialisation, split and augmentation")
    q.add_argument("--max-epochs", type=int, default=60)
    q.add_argument("--patience", type=int, default=None,
                   help="epochs without a better validation loss before stopping (default: the training "
                        "loops' 6; raise it where short epochs make the validation loss noisy)")
    q.add_argument("--batch-size", type=int, default=16)
    q.add_argument("--init-from", help="continue from the same-named model in this models folder (U-Nets)")
    q.add_argument("--zoom", type=float, nargs=2, metavar=("LO", "HI"), help="segmentation zoom range")
    q.add_argument("--dice", choices=DICE_MODES, default="batch",
                   help="seg_sax: the loss's soft Dice over the batch, per image (small apical slices weigh "
                        "as much as large ones) or the mean of both")
    q.add_argument("--rotation-deg", type=float,
                   help="landmark heatmap networks: in-plane rotation range of the augmentation (default +-30 deg)")
    q.add_argument("--hard-share", type=float, default=0.0,
                   help="landmark heatmap networks with --init-from: share of the batches drawn from the "
                        "training images the starting network gets wrong (misses, false positives, points "
                        "> 10 mm off); default 0: none singled out")
    q.add_argument("--band-p", type=float, default=0.0,
                   help="landmark heatmap networks: share of the training images given dark off-resonance "
                        "bands (bSSFP at 3 T; nets.augment.offresonance_bands); default 0: none")
    q.add_argument("--motion-p", type=float, default=0.0,
                   help="landmark heatmap networks: share of the training images re-acquired as if the patient "
                        "breathed (ghosts along phase-encode; nets.augment.breathing_ghosts); default 0: none")
    q.add_argument("--steps-per-epoch", type=int, default=60,
                   help="batches between validations (0 = one pass over the training images)")
    q.add_argument("--precision", choices=["float32", "auto", "bfloat16"], default="float32",
                   help="training steps under bfloat16 autocast (auto: where the CPU has native bf16 units)")
    q.add_argument("--lr", type=float, help="initial learning rate (default: the training loops'; lower it "
                   "to fine-tune with --init-from)")
    q.add_argument("--data-shares", type=float, nargs="+", metavar="SHARE",
                   help="share of each --data folder in every batch (e.g. 0.5 0.5: half GRE, half bSSFP, "
                        "whatever the folders' sizes); default: in proportion to their sizes")
    q.add_argument("--view-weights", nargs="+", metavar="VIEW=WEIGHT", type=_view_weight,
                   help="landmark heatmap networks: draw a view's images WEIGHT times as often within each "
                        "--data folder, the folders' shares kept (e.g. lax_3ch=2); default: every view 1")
    q.add_argument("--levels", type=int,
                   help="landmark heatmap networks: U-Net levels (default: the --init-from network's, else 4); "
                        "more than it has adds levels below its own, which keep their weights")
    q.add_argument("--vgg-schedule", choices=["cyclic", "independent"], default="cyclic",
                   help="lm_vgg: the legacy paper's cyclic transfer between views, or its baseline "
                        "of independently trained networks (same budget; for the Table A-1 comparison)")


def _view_weight(text: str) -> tuple[str, float]:
    """``VIEW=WEIGHT`` of ``--view-weights``."""
    view, sep, weight = text.partition("=")
    try:
        w = float(weight)
    except ValueError:
        w = float("nan")
    if not (sep and view and w > 0):
        raise argparse.ArgumentTypeError(f"give VIEW=WEIGHT with a positive weight (e.g. lax_3ch=2), got {text!r}")
    return view, w


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="train_command", metavar="STEP", required=True)
    d = sub.add_parser("data", help="build annotated training samples")
    m = sub.add_parser("model", help="train one model from built samples")
    a = sub.add_parser("all", help="build samples and train every model")
    pub = sub.add_parser("publish", help="publish a network fine-tuned on one sequence under its own name")
    pub.add_argument("name", choices=sorted(SEQUENCE_NETWORKS))
    pub.add_argument("--from", dest="trained", required=True,
                     help="the `train model` output folder (the network under its task's name, e.g. lm_heatmap_lax)")
    pub.add_argument("--out", required=True, help="models folder (resources/models)")
    pub.add_argument("--note", default="", help="added to the card's description (data, seeds)")
    _data_arguments(d)
    _data_arguments(a)
    d.add_argument("--out", required=True, help="data folder")
    m.add_argument("name", choices=TRAINABLE)
    m.add_argument("--save-as", choices=sorted(ROUTED),
                   help="train a network routed by sequence under this name (seg_sax_ssfp: the SAX "
                        "segmentation for bSSFP cine; lm_heatmap_sax_ssfp / lm_heatmap_lax_ssfp: the landmark "
                        "networks for bSSFP cine; docs/models.md), starting from the task's network")
    m.add_argument("--data", required=True, nargs="+", help="data folder(s) from `train data` (several are pooled)")
    a.add_argument("--data", required=True, help="data folder to write")
    _model_arguments(m)
    _model_arguments(a)


def _build_data(args: argparse.Namespace, out: str) -> dict:
    from cmr_atlas.cine.training import LM_GRID, build_data
    from cmr_atlas.nets.preprocess import Grid

    if args.cohort and not args.cache:
        raise SystemExit("--cohort needs --cache")
    grid = LM_GRID
    if args.landmark_grid:
        spacing, size = args.landmark_grid
        if size != int(size):
            raise SystemExit(f"--landmark-grid: the size {size} is not a whole number of pixels")
        grid = Grid(spacing, int(size))
    if args.sax_neighbour_slices < 0:
        raise SystemExit(f"--sax-neighbour-slices: {args.sax_neighbour_slices} is not a number of slices")
    return build_data(out, args.seed, args.n_exams, args.extra_frames, args.jobs, args.mi_fraction,
                      args.cohort or None, args.cache, args.exam_id_key, args.protocol, grid,
                      args.sax_neighbour_slices, args.breathing_p)


def run(args: argparse.Namespace) -> int:
    from cmr_atlas.cine.train_models import train_model

    if args.train_command == "data":
        _build_data(args, args.out)
        return 0
    if args.train_command == "publish":
        from cmr_atlas.cine.train_models import publish_as

        log.info("wrote %s", publish_as(args.trained, args.name, args.out, args.note))
        return 0
    if args.train_command == "all":
        _build_data(args, args.data)
    names = [args.name] if args.train_command == "model" else list(TRAINABLE)
    for name in names:
        for p in train_model(name, args.data, args.out, args.minutes, args.threads, args.train_seed,
                             args.max_epochs, args.batch_size, args.steps_per_epoch,
                             args.init_from, args.zoom,
                             args.vgg_schedule == "cyclic", args.precision, args.lr, args.data_shares,
                             save_as=getattr(args, "save_as", None), rotation_deg=args.rotation_deg,
                             dice=args.dice, hard_share=args.hard_share, band_p=args.band_p,
                             view_weights=dict(args.view_weights) if args.view_weights else None,
                             patience=args.patience, levels=args.levels, motion_p=args.motion_p):
            log.info("wrote %s", p)
    return 0
