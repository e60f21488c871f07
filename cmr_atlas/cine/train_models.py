"""Training the cine networks from ``cmr-atlas train data`` folders (:mod:`cmr_atlas.cine.training`):
what each model learns (labels, landmarks, heatmap targets and their decoding) on the generic loops
of :mod:`cmr_atlas.nets.train`, and the model card written next to its weights.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import replace
from functools import partial
from pathlib import Path

import numpy as np

from cmr_atlas.cine.tissue.landmarks import NETWORKS as TISSUE_NETWORKS
from cmr_atlas.cine.landmarks import MODEL_LANDMARKS, MODEL_VIEWS, landmark_names
from cmr_atlas.nets.heatmaps import decode_arrays, gaussian_targets
from cmr_atlas.cine.lax_orientation import training_orientation
from cmr_atlas.cine.training import LM_GRID, SEG_GRID, data_parts, load_data
from cmr_atlas.nets.samples import VIEW_CODES, Samples
from cmr_atlas.core.config import default
from cmr_atlas.core.vocab import CAVITY, LABELS, LANDMARKS, MYO
from cmr_atlas.nets import train as loops
from cmr_atlas.nets.augment import LANDMARK_AUG, SEGMENTATION_AUG, AugmentConfig
from cmr_atlas.nets.preprocess import Grid
from cmr_atlas.nets.registry import load_model, save_model
from cmr_atlas.nets.unet import UNet

# The shipped set: name -> what it does (inference loads the ones its config selects).
MODELS = {
    "seg_sax": "SAX segmentation U-Net: background, LV myocardium, LV cavity, RV cavity",
    "seg_sax_ssfp": "SAX segmentation U-Net for bSSFP cine (task seg_sax; inference routes cine_ssfp series to it)",
    "lm_heatmap_lax": "heatmap U-Net for long-axis landmarks (mv_a, mv_b, apex): 2CH, 4CH (and 3CH where trained)",
    "lm_heatmap_sax": "heatmap U-Net for SAX landmarks (RV inserts, LV centre)",
    "lm_heatmap_sax_ssfp": "heatmap U-Net for SAX landmarks on bSSFP cine (task lm_heatmap_sax; inference routes "
                           "cine_ssfp series to it)",
    "lm_heatmap_lax_ssfp": "heatmap U-Net for long-axis landmarks on bSSFP cine (task lm_heatmap_lax; inference "
                           "routes cine_ssfp series to it)",
    "lm_vgg_lax_2ch": "VGG coordinate regression, 2CH landmarks",
    "lm_vgg_lax_4ch": "VGG coordinate regression, 4CH landmarks",
    "lm_vgg_sax": "VGG coordinate regression, SAX landmarks",
}
# Networks routed by sequence (inference picks them by the series' sequence): name -> their task,
# trained with ``train_model(task, ..., save_as=name)``.
ROUTED = {"seg_sax_ssfp": "seg_sax", "lm_heatmap_sax_ssfp": "lm_heatmap_sax", "lm_heatmap_lax_ssfp": "lm_heatmap_lax"}
# The tissue stage's landmark networks (cmr_atlas.cine.tissue.landmarks.NETWORKS): a cine network
# fine-tuned on one sequence, trained under its task's name, then published under its own with
# :func:`publish_as` (the tissue stage loads them by name, not by routing).  name -> (task, sequence)
# The perfusion pipeline's insertion network (cmr_atlas.perfusion.insertion_net.NETWORK) is one too.
SEQUENCE_NETWORKS = {**{name: (f"lm_heatmap_{view_net}", sequence) for (sequence, view_net), name in TISSUE_NETWORKS.items()},
                     "lm_heatmap_sax_perfusion": ("lm_heatmap_sax", "perfusion")}
_SEQUENCE_TEXT = {"lge": "LGE (magnitude and PSIR)", "t1map": "native and post-contrast T1 maps",
                  "perfusion": "first-pass perfusion (each slice's temporal maximum after motion correction)"}
_TASK_TEXT = {"lm_heatmap_sax": "SAX landmarks (RV inserts, LV centre)",
              "lm_heatmap_lax": "long-axis landmarks (mitral points, apex; 2CH, 3CH, 4CH)"}
TRAINABLE = ("seg_sax", "lm_heatmap_lax", "lm_heatmap_sax", "lm_vgg")  # lm_vgg: its three views together
SIGMA_MM = {"lax": 6.0, "sax": 4.0}  # Gaussian target width (Xue et al.: 8 px LAX / 4 px SAX at 1 mm)
VGG_VIEWS = ("lax_2ch", "lax_4ch", "sax")  # one regressor each (no 3CH regressor)
SEG_DICE = {"dice_cavity": CAVITY, "dice_myocardium": MYO}  # validation metric -> label


def train_segmentation(samples: Samples, cfg: loops.TrainConfig, **kwargs) -> tuple[UNet, dict]:
    """The SAX segmentation U-Net: one output per label of :data:`LABELS`, validated by the Dice of
    cavity and myocardium; ``kwargs`` as :func:`cmr_atlas.nets.train.train_segmentation`."""
    return loops.train_segmentation(samples, cfg, len(LABELS), SEG_DICE, **kwargs)


def decode_points(probs: np.ndarray, absent_threshold: float) -> tuple[np.ndarray, np.ndarray]:
    """Heatmap probabilities ``(M, K+1, n, n)`` -> network points ``(M, K, 2)`` and present ``(M, K)``."""
    rc, present, _ = decode_arrays(probs, absent_threshold)
    return rc, present


def train_heatmap(samples: Samples, cfg: loops.TrainConfig, sigma_px: float, spacing_mm: float,
                  absent_threshold: float | None = None, **kwargs) -> tuple[UNet, dict]:
    """A landmark heatmap U-Net on Gaussian targets of width ``sigma_px``, validated at the
    config's ``landmarks.absent_threshold`` unless given; ``kwargs`` as
    :func:`cmr_atlas.nets.train.train_heatmap`."""
    if absent_threshold is None:
        absent_threshold = default("landmarks.absent_threshold")
    model, report = loops.train_heatmap(samples, cfg, partial(gaussian_targets, sigma_px=sigma_px),
                                        partial(decode_points, absent_threshold=absent_threshold),
                                        spacing_mm, **kwargs)
    report["sigma_px"] = sigma_px
    return model, report


def data_sequences(data_info: dict) -> list[str]:
    """Sequences of a training-data provenance (:func:`cmr_atlas.cine.training.load_data`'s info;
    folders built before the clinical protocol are legacy GRE cine)."""
    return sorted({q for p in data_parts(data_info) for q in p.get("sequences", ["cine_gre"])})


def _card(name: str, grid: Grid, data_info: dict, report: dict, extra: dict, task: str | None = None) -> dict:
    return {
        "name": name,
        "serves": task or name,
        "description": MODELS[name],
        "sequences": data_sequences(data_info),
        "created_utc": _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "input": {**grid.to_dict(), "preprocessing": "per-image whitening, then bilinear resampling to "
                  "the grid centred on the image centre (zero outside the image)"},
        "training_data": data_info,
        "training": {k: v for k, v in report.items() if k != "history"},
        "history": report.get("history", []),
        **extra,
    }


def _previous_run(name: str, init_from: str | Path | None, task: str | None = None) -> tuple[dict | None, list[dict]]:
    """Weights of model ``name`` in the models folder ``init_from`` (or, where that folder has no
    ``name``, of the task's default network ``task``: a routed network's first fine-tune) and the
    records of its runs."""
    if not init_from:
        return None, []
    if task and not (Path(init_from) / f"{name}.json").is_file():
        name = task
    prev_model, prev_card = load_model(name, init_from)
    previous = prev_card.get("previous_runs", []) + [{
        # its input grid too: a fine-tune may move a network to another grid (1.5 mm -> 1 mm)
        "sha256": prev_card["sha256"], "input": prev_card.get("input"), "training": prev_card.get("training"),
        "history": prev_card.get("history", [])}]
    return prev_model.state_dict(), previous


def _train_seg_sax(data_dirs: list, out_dir: str | Path, cfg: loops.TrainConfig, init_from: str | Path | None,
                   zoom: tuple[float, float] | None, shares: list[float] | None = None,
                   save_as: str = "seg_sax", dice: str = "batch") -> Path:
    init_state, previous = _previous_run(save_as, init_from, "seg_sax")
    aug = SEGMENTATION_AUG if zoom is None else replace(SEGMENTATION_AUG, zoom=tuple(zoom))
    samples, info = load_data(data_dirs, "seg")
    model, rep = train_segmentation(samples, cfg, init_state=init_state, aug=aug, dice=dice,
                                    sample_p=loops.sampling_probabilities(samples.meta["folder"], shares))
    loss = "cross-entropy + soft Dice" + {"batch": "", "image": " (per image)", "both": " (mean of batch and per image)"}[dice]
    card = _card(save_as, SEG_GRID, info, rep, {"labels": LABELS, "loss": loss,
                                                "views": ["sax"], "data_shares": shares,
                                                "previous_runs": previous}, task="seg_sax")
    return save_model(model, card, out_dir)


def _train_lm_heatmap(m: str, data_dirs: list, out_dir: str | Path, cfg: loops.TrainConfig,
                      init_from: str | Path | None, shares: list[float] | None = None,
                      rotation_deg: float | None = None, hard_share: float = 0.0,
                      band_p: float = 0.0, save_as: str | None = None,
                      view_weights: dict[str, float] | None = None, levels: int | None = None,
                      motion_p: float = 0.0) -> Path:
    task = f"lm_heatmap_{m}"
    name = save_as or task  # a network routed by sequence serves the task under its own name
    init_state, previous = _previous_run(name, init_from, task)
    samples, info = load_data(data_dirs, f"lm_{m}")
    grid = Grid.from_dict(info["landmark_grid"])  # the folders' grid: trained on 1 mm data, it takes 1 mm inputs
    sigma_px = SIGMA_MM[m] / grid.spacing_mm
    aug = landmark_augmentation(grid, band_p, rotation_deg, motion_p)
    sample_p = loops.sampling_probabilities(samples.meta["folder"], shares)
    if view_weights:
        sample_p = loops.with_view_weights(sample_p, samples.meta["folder"], samples.view,
                                           {VIEW_CODES[v]: w for v, w in view_weights.items()})
    model, rep = train_heatmap(samples, cfg, sigma_px, grid.spacing_mm, init_state=init_state, aug=aug,
                               sample_p=sample_p, hard_share=hard_share, levels=levels)
    views = [v for v in MODEL_VIEWS[m] if (samples.view == VIEW_CODES[v]).any()]  # those it saw
    card = _card(name, grid, info, rep, {
        "channels": ["background", *MODEL_LANDMARKS[m]], "views": views,
        "landmarks_by_view": {v: list(landmark_names(v)) for v in views},
        "sigma_mm": SIGMA_MM[m], "loss": "KL + soft Dice (class weights 1, 5, 5, 5)",
        "data_shares": shares, **({"view_weights": view_weights} if view_weights else {}),
        "previous_runs": previous}, task=task)
    neighbours = data_parts(info)[0].get("sax_neighbour_slices", 0) if m == "sax" else 0
    if neighbours:  # inference gives it the same neighbouring slices
        card["input"]["neighbour_slices"] = neighbours
        card["input"]["preprocessing"] += (f"; channels: the slice and the {neighbours} slice(s) either side of it "
                                           "in the stack (base to apex), each sampled on the slice's grid along "
                                           "the stack's normal, zeros past the ends of the stack")
    # a long-axis network: the orientations it was trained on, for turning odd images upright
    orientation = training_orientation(info, aug.rotation_deg) if m == "lax" else None
    if orientation is not None:
        card["orientation"] = orientation
    return save_model(model, card, out_dir)


def landmark_augmentation(grid: Grid, band_p: float = 0.0, rotation_deg: float | None = None,
                          motion_p: float = 0.0) -> AugmentConfig:
    """The landmark networks' augmentation (:data:`LANDMARK_AUG`) for inputs on ``grid``: its shift
    and breathing displacement are in network pixels of :data:`LM_GRID`, so they are rescaled to
    move the image as many mm on any grid; ``band_p``, ``rotation_deg`` and ``motion_p`` as
    ``cmr-atlas train model``'s options."""
    to_grid = LM_GRID.spacing_mm / grid.spacing_mm
    aug = replace(LANDMARK_AUG, band_p=float(band_p), motion_p=float(motion_p),
                  shift_px=LANDMARK_AUG.shift_px * to_grid,
                  motion_px=tuple(v * to_grid for v in LANDMARK_AUG.motion_px))
    return aug if rotation_deg is None else replace(aug, rotation_deg=float(rotation_deg))


def publish_as(trained_dir: str | Path, name: str, models_dir: str | Path, note: str = "") -> Path:
    """Copy the network a training run wrote under its task's name (``trained_dir``) into
    ``models_dir`` as the sequence network ``name`` (:data:`SEQUENCE_NETWORKS`): its card keeps the
    run's records, with the new name, description (plus ``note``: data and seeds) and checksum;
    returns the card path."""
    if name not in SEQUENCE_NETWORKS:
        raise SystemExit(f"unknown sequence network {name!r}: choose {', '.join(SEQUENCE_NETWORKS)}")
    task, sequence = SEQUENCE_NETWORKS[name]
    description = (f"heatmap U-Net for {_TASK_TEXT[task]} on {_SEQUENCE_TEXT[sequence]}: a cine {task} "
                   "fine-tuned on that sequence (transfer learning, Xue et al. 2021)")
    model, card = load_model(task, trained_dir)
    card = {**card, "name": name, "serves": name, "description": f"{description}; {note}" if note else description}
    return save_model(model, card, models_dir)


def _train_lm_vgg(data_dirs: list, out_dir: str | Path, cfg: loops.TrainConfig, transfer: bool) -> list[Path]:
    by_view = {}
    for m in MODEL_VIEWS:
        s, info = load_data(data_dirs, f"lm_{m}")
        for v in MODEL_VIEWS[m]:
            if v in VGG_VIEWS:
                by_view[v] = s.subset(np.flatnonzero(s.view == VIEW_CODES[v]))
    grid = Grid.from_dict(info["landmark_grid"])
    models, rep = loops.train_vgg_cyclic(by_view, cfg, grid.spacing_mm, transfer=transfer)
    paths = []
    for v, model in models.items():
        card = _card(f"lm_vgg_{v}", grid, info, rep["views"][v], {
            "landmarks": list(LANDMARKS[v]), "views": [v], "loss": "MSE of normalised coordinates",
            "schedule": "cyclic transfer" if transfer else "independent",
            "cyclic_transfer_stages": rep["stages"], "output": "normalised (row, col) in [-1, 1]"})
        paths.append(save_model(model, card, out_dir))
    return paths


def train_model(name: str, data_dirs: str | Path | list[str | Path], out_dir: str | Path, minutes: float,
                threads: int, seed: int, max_epochs: int, batch_size: int, steps_per_epoch: int,
                init_from: str | Path | None = None, zoom: tuple[float, float] | None = None,
                vgg_transfer: bool = True, precision: str = "float32", lr: float | None = None,
                data_shares: list[float] | None = None, save_as: str | None = None,
                rotation_deg: float | None = None, dice: str = "batch", hard_share: float = 0.0,
                band_p: float = 0.0, view_weights: dict[str, float] | None = None,
                patience: int | None = None, levels: int | None = None, motion_p: float = 0.0) -> list[Path]:
    """Train model ``name`` (:data:`TRAINABLE`) on one or more ``train data`` folders and write its
    weights and card(s) to ``out_dir``; ``steps_per_epoch`` 0 = one pass over the training images.
    With ``init_from`` (a models folder) a U-Net continues from its weights of the same name, and
    the card keeps the earlier runs' records under ``previous_runs``; ``zoom`` overrides the
    segmentation augmentation's zoom range; ``vgg_transfer=False`` trains the VGG views
    independently (the legacy paper's baseline); ``precision`` ``auto`` trains under bfloat16
    autocast where the CPU computes it natively (:func:`cmr_atlas.nets.runtime.cpu_has_native_bf16`);
    ``lr``: Adam's initial learning rate (default :class:`~cmr_atlas.nets.train.TrainConfig`'s; lower
    for fine-tuning from ``init_from``); ``data_shares``: each data folder's share of the training
    batches (U-Nets; e.g. ``[1, 1]`` = half legacy GRE, half bSSFP whatever their sizes; default:
    every image equally likely); ``save_as``: the network's name when it is one routed by sequence
    (:data:`ROUTED`; e.g. ``seg_sax_ssfp`` or ``lm_heatmap_sax_ssfp`` trained on bSSFP folders; its
    card lists the folders' sequences and ``serves`` the task; :func:`cmr_atlas.nets.registry.routes`); ``dice``: the
    segmentation loss's Dice over the batch, per image (small apical slices weigh as much as
    mid-ventricular ones) or the mean of both; ``hard_share``: landmark heatmap networks fine-tuned
    from ``init_from`` draw the training images the starting network gets wrong this share of the
    time (:func:`cmr_atlas.nets.train.train_heatmap`); ``band_p``: landmark heatmap networks see
    dark off-resonance bands drawn over this share of their images
    (:func:`cmr_atlas.nets.augment.offresonance_bands`); ``motion_p``: this share of their images
    re-acquired as if the patient breathed (:func:`cmr_atlas.nets.augment.breathing_ghosts`);
    ``view_weights`` (``{view: weight}``, landmark
    heatmap networks): a view's images drawn that many times as often within each data folder, the
    folders' shares kept (:func:`cmr_atlas.nets.train.with_view_weights`); ``levels``: a landmark
    heatmap U-Net's depth (default: the starting network's, else 4:
    :func:`cmr_atlas.nets.train.train_heatmap`); deeper than the network it starts from, that
    network's levels are kept and the new ones added (:func:`cmr_atlas.nets.train.deepen`).  U-Nets
    save their best weights so far to ``out_dir/<name>.checkpoint.pt`` while training."""
    from cmr_atlas.nets.runtime import cpu_has_native_bf16

    if name not in TRAINABLE:
        raise SystemExit(f"unknown model {name!r}: choose {', '.join(TRAINABLE)}")
    data_dirs = [data_dirs] if isinstance(data_dirs, (str, Path)) else list(data_dirs)
    cfg = loops.TrainConfig(max_epochs=max_epochs, batch_size=batch_size, max_seconds=minutes * 60,
                            seed=seed, threads=threads, steps_per_epoch=steps_per_epoch or None,
                            bf16_autocast=precision == "bfloat16" or (precision == "auto" and cpu_has_native_bf16()),
                            **({} if lr is None else {"lr": lr}),
                            **({} if patience is None else {"patience": patience}))
    if data_shares is not None and len(data_shares) != len(data_dirs):
        raise SystemExit(f"--data-shares: one share per data folder ({len(data_dirs)}), got {len(data_shares)}")
    if hard_share and (not name.startswith("lm_heatmap_") or init_from is None):
        raise SystemExit(f"--hard-share is for fine-tuning a landmark heatmap network from --init-from (the "
                         f"starting network picks the hard examples), not {name} from {init_from}")
    if view_weights and not name.startswith("lm_heatmap_"):
        raise SystemExit(f"--view-weights weighs the views of a landmark heatmap network, not of {name}")
    if view_weights and set(view_weights) - set(MODEL_VIEWS[name.removeprefix("lm_heatmap_")]):
        raise SystemExit(f"--view-weights: {name}'s views are {', '.join(MODEL_VIEWS[name.removeprefix('lm_heatmap_')])}, "
                         f"got {', '.join(view_weights)}")
    if levels is not None and not (name.startswith("lm_heatmap_") and levels >= 2):
        raise SystemExit(f"--levels sets the depth (>= 2) of a landmark heatmap U-Net, not {levels} for {name}")
    for option, value in (("--band-p", band_p), ("--motion-p", motion_p)):
        if value and not name.startswith("lm_heatmap_"):
            raise SystemExit(f"{option} is an augmentation of the landmark heatmap networks, not of {name}")
    if name == "lm_vgg":
        return _train_lm_vgg(data_dirs, out_dir, cfg, vgg_transfer)
    Path(out_dir).mkdir(parents=True, exist_ok=True)
    if save_as is not None and ROUTED.get(save_as) != name:
        raise SystemExit(f"save_as names a routed network of {name} ({[k for k, t in ROUTED.items() if t == name]}), "
                         f"not {save_as!r}")
    cfg.checkpoint_path = str(Path(out_dir) / f"{save_as or name}.checkpoint.pt")
    if name == "seg_sax":
        return [_train_seg_sax(data_dirs, out_dir, cfg, init_from, zoom, data_shares, save_as or name,
                               dice)]
    return [_train_lm_heatmap(name.removeprefix("lm_heatmap_"), data_dirs, out_dir, cfg, init_from, data_shares,
                              rotation_deg, hard_share, band_p, save_as, view_weights, levels, motion_p)]
