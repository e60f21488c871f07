"""Inference: SAX segmentation of every frame, ED/ES selection, landmarks on every view.

One process per shard loads each model once (:func:`load_models`) and runs
:func:`infer_exam` per exam: images are prepared on the network grid (:mod:`cmr_atlas.nets.preprocess`),
run in batches (CPU with the job's threads, or CUDA with autocast), and mapped back to the original
pixels exactly.  Outputs per shard: the tables declared here (``landmarks``, ``segmentation_qc``,
``phases``) and one compact mask file per exam (``masks/<exam_id>.npz`` with ``sax_masks``
(S, T, R, C) uint8, labels as in :data:`cmr_atlas.core.vocab.LABELS`).

Landmark pixel columns: ``x_px`` is the column and ``y_px`` the row (sub-pixel, pixel centres at
integers) of the original image; ``x_mm, y_mm, z_mm`` are patient coordinates via the slice plane.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch

from cmr_atlas.core.config import default
from cmr_atlas.core.columns import ED_FRAME, ES_FRAME, EXAM_ID, FRAME, SLICE_INDEX
from cmr_atlas.core.geometry import SlicePlane, planes_match, slice_spacing_mm
from cmr_atlas.core.imagecache import ExamImages, load_exam_images, save_masks
from cmr_atlas.core.vocab import CAVITY, CLINICAL_LAX_VIEWS, LAX_VIEWS, MYO
from cmr_atlas.cine.landmark_measures import LANDMARK_MEASURES, landmark_measures
from cmr_atlas.cine.landmarks import LANDMARKS_AUTO, MODEL_VIEWS, landmark_names, view_model
from cmr_atlas.nets.heatmaps import (card_neighbour_frames, card_neighbour_slices, card_rotations, card_thresholds,
                                     card_zooms, decode_arrays, rotate_maps, rotation_averaged_probs)
from cmr_atlas.cine.lax_orientation import axis_angle_deg, card_span, turn_deg
from cmr_atlas.nets.preprocess import (Grid, crop_box, from_net_px, near_crop_edge, prepare, slice_with_neighbours,
                                      to_net_px)
from cmr_atlas.nets.registry import Routes, card_grid, routes
from cmr_atlas.nets.runtime import (OnnxNet, forward, load_net, pick_device, resolve_precision, resolve_runtime,
                                    takes_any_size)
from cmr_atlas.nets.vgg import from_normalised
from cmr_atlas.cine.segmentation import (MaskQC, cavity_volumes_ml, choose_phases, clean_masks_and_qc,
                                        counted_volumes_ml, lax_frame)
from cmr_atlas.core.runner import ExamFailure, Outcome, run_exams, status_frame, write_status
from cmr_atlas.core.tables import Column, TableSchema, register, write_table

log = logging.getLogger(__name__)

SEGMENTATION_QC = register(TableSchema(
    name="segmentation_qc", row="SAX slice and frame",
    description=(
        "Areas and plausibility of each predicted SAX mask (after keeping the largest component "
        "per label; component counts and flags describe the raw prediction). Every SAX image has "
        "a row, or with config inference.frames ed_es only the images segmented (frame 0, the "
        "volume-curve slices, every slice at ED, ES and their neighbours)."
    ),
    columns=(
        EXAM_ID,
        SLICE_INDEX,
        FRAME,
        Column("cavity_area_mm2", "float", "LV cavity area", "mm2"),
        Column("myo_area_mm2", "float", "LV myocardium area", "mm2"),
        Column("n_components_cavity", "int", "connected cavity regions in the raw mask"),
        Column("n_components_myo", "int", "connected myocardium regions in the raw mask"),
        Column("flag", "str", "implausible-mask reasons joined by ';' (empty = plausible)"),
    ),
))

PHASES = register(TableSchema(
    name="phases", row="exam",
    description="End-diastolic and end-systolic frames chosen from the segmented cavity volumes.",
    columns=(
        EXAM_ID,
        ED_FRAME,
        ES_FRAME,
        Column("method", "str", "ED rule: max_volume or first"),
        Column("edv_ml", "float", "cavity volume at ED by slice summation", "ml"),
        Column("esv_ml", "float", "cavity volume at ES by slice summation", "ml"),
    ),
))


FRAME_SCOPES = ("all", "ed_es")  # config inference.frames: the images the networks run on

SEG_TASK = "seg_sax"  # the SAX segmentation networks' task (nets.registry.routes)


@dataclass
class Models:
    """Every network an inference job needs, loaded once."""

    seg: torch.nn.Module  # the default SAX segmentation network (SEG_TASK; seg_for routes by sequence)
    seg_card: dict
    landmark_method: str
    landmark: dict[str, tuple[torch.nn.Module, dict]]  # heatmap: model key; vgg: view
    device: torch.device
    dtype: torch.dtype | None  # autocast precision (None = float32), nets.runtime.resolve_precision
    runtime: str = "torch"  # torch or onnxruntime (nets.runtime.resolve_runtime); +int8: some int8 graphs
    seg_routes: Routes | None = None  # None: the default network for every sequence
    seg_nets: dict[str, tuple[torch.nn.Module, dict]] = field(default_factory=dict)  # routed, by name
    # heatmap landmark networks routed by sequence: model key (lax, sax) -> routes of its task
    # (lm_heatmap_<key>); none: ``landmark``'s network for every sequence
    lm_routes: dict[str, Routes] = field(default_factory=dict)
    lm_nets: dict[str, tuple[torch.nn.Module, dict]] = field(default_factory=dict)  # of those tasks, by name

    def seg_for(self, sequence: str | None) -> tuple[torch.nn.Module, dict]:
        """``(network, card)`` segmenting SAX series of ``sequence`` (ingest's ``series`` table;
        None = not known): the network trained on it, else the default (``Routes.pick`` warns)."""
        if self.seg_routes is None:
            return self.seg, self.seg_card
        return self.seg_nets.get(self.seg_routes.pick(sequence), (self.seg, self.seg_card))

    def landmark_for(self, key: str, sequence: str | None,
                     view: str | None = None) -> tuple[torch.nn.Module, dict] | None:
        """``(network, card)`` finding the landmarks of model key ``key`` (heatmap: ``lax``/``sax``;
        vgg: the view) on images of ``sequence`` (None = not known): the network trained on it, else
        the key's default in :attr:`landmark` (``Routes.pick`` warns).  With a long-axis ``view``:
        a routed network whose card was trained on other views leaves it to the default, and None
        where neither serves it (the image gets no landmarks rather than a network's guess)."""
        default = self.landmark[key]
        r = self.lm_routes.get(key)
        net = default if r is None else self.lm_nets.get(r.pick(sequence), default)
        if view is None or view == "sax" or self.landmark_method != "heatmap":
            return net
        return next((n for n in (net, default) if view in card_views(n[1])), None)


def load_models(models_dir: str | Path, *, method: str, device: str, precision: str,
                runtime: str | None = None) -> Models:
    """The networks of ``method`` (config ``landmarks.method``) on ``device`` (config ``device``),
    run at ``precision`` (config ``inference.precision``) in ``runtime`` (config
    ``inference.runtime``; None: its default).  Segmentation: every network of task
    :data:`SEG_TASK` in ``models_dir``, routed by sequence (:meth:`Models.seg_for`)."""
    dev = pick_device(device)
    runtime = runtime or default("inference.runtime")
    rt = resolve_runtime(runtime, dev, precision)

    def load(name: str) -> tuple[torch.nn.Module, dict]:
        return load_net(name, models_dir, dev, precision, rt, strict=runtime == "onnxruntime",
                        runtime_setting=runtime)

    seg_routes = routes(SEG_TASK, models_dir)
    seg_nets = {name: load(name) for name in seg_routes.names}
    seg, seg_card = seg_nets[seg_routes.default]
    lm_routes: dict[str, Routes] = {}
    if method == "heatmap":  # each task's networks routed by sequence, as the segmentation's
        lm_routes = {m: routes(f"lm_heatmap_{m}", models_dir) for m in MODEL_VIEWS}
        lm_nets = {name: load(name) for r in lm_routes.values() for name in r.names}
        lm = {m: lm_nets[r.default] for m, r in lm_routes.items()}
    elif method == "vgg":
        lm = {v: load(f"lm_vgg_{v}") for v in ("lax_2ch", "lax_4ch", "sax")}
        lm_nets = {}
    else:
        raise ValueError(f"landmarks.method must be heatmap or vgg, not {method!r}")
    nets = [m for m, _ in [*seg_nets.values(), *lm.values(), *lm_nets.values()]]  # (lm: the vgg networks)
    if any(not isinstance(m, OnnxNet) for m in nets):
        rt = "torch"  # a failed export fell back (inference_model warned), or int8 beside autocast
    dtype = None if rt == "onnxruntime" else resolve_precision(precision, dev)
    if any(isinstance(m, OnnxNet) and m.int8 for m in nets):
        rt += "+int8"
    return Models(seg, seg_card, method, lm, dev, dtype, rt, seg_routes, seg_nets, lm_routes, lm_nets)


def card_views(card: dict) -> tuple[str, ...]:
    """Views a landmark network's card says it was trained on (cards without ``views`` predate the
    3CH view: 2CH and 4CH)."""
    return tuple(card.get("views", LAX_VIEWS))


def landmark_views(models: Models) -> tuple[str, ...]:
    """Long-axis views some long-axis landmark network serves (its card's :func:`card_views`;
    which network runs an image of a view: :meth:`Models.landmark_for`)."""
    if models.landmark_method != "heatmap":
        return LAX_VIEWS
    if "lax" not in models.landmark:  # a SAX-only set (LGE, T1 maps: cine.tissue)
        return ()
    r = models.lm_routes.get("lax")
    cards = [models.landmark["lax"][1], *(models.lm_nets[n][1] for n in (r.names if r else []) if n in models.lm_nets)]
    trained = {v for c in cards for v in card_views(c)}
    return tuple(v for v in CLINICAL_LAX_VIEWS if v in trained)


def cine_sequences(series: pd.DataFrame) -> dict[tuple[str, str], str]:
    """``{(exam_id, view): sequence}`` of the cine series ingest selected (its ``series`` table:
    roles sax, lax_2ch, lax_4ch; lax_3ch is a found 3-chamber cine)."""
    cines = series[series["role"].isin(("sax", *CLINICAL_LAX_VIEWS)) & series["sequence"].notna()]
    return {(str(e), str(r)): str(q) for e, r, q in zip(cines["exam_id"], cines["role"], cines["sequence"])}


def _net_taps(plane: SlicePlane, grid: Grid, axis: int, start: int = 0,
              length: int | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For each original row (``axis`` 0) or column (1): the lower of its two network-grid
    neighbours, the weight of the upper one, and whether it lies within the network field of view
    (bilinear sampling as ``grid_sample(align_corners=True)``); neighbours counted from grid row
    (column) ``start`` in a part ``length`` nodes long (default: the whole grid), and only pixels
    within that part are inside."""
    n = plane.shape[axis]
    length = grid.size if length is None else length
    rc = np.zeros((n, 2))
    rc[:, axis] = np.arange(n)
    x = to_net_px(rc, plane, grid)[:, axis]
    inside = (x >= 0) & (x <= grid.size - 1) & (x >= start) & (x <= start + length - 1)
    x = x - start
    lo = np.clip(np.floor(x), 0, length - 2).astype(np.intp)
    return lo, np.clip(x - lo, 0.0, 1.0).astype(np.float32), inside


def _argmax_classes(a: np.ndarray) -> np.ndarray:
    """``a (N, K, h, w)``.argmax(1) as uint8, the first of equals winning, by elementwise
    comparisons (numpy's argmax over a strided class axis is several times slower)."""
    best, out = a[:, 0].copy(), np.zeros((a.shape[0], *a.shape[2:]), np.uint8)
    for k in range(1, a.shape[1]):
        more = a[:, k] > best
        out[more] = k
        np.maximum(best, a[:, k], out=best)
    return out


# logits of certain background (softmax [1, 0, 0, ...] exactly) for the nodes around a crop
_CERTAIN_BACKGROUND = (0.0, -1e30)


def _labels_on_original(logits: torch.Tensor, plane: SlicePlane, grid: Grid,
                        box: tuple[slice, slice] | None = None) -> np.ndarray:
    """Labels ``(N, R, C)`` uint8 on the original pixels of network-grid logits ``(N, K, n, n)``
    (or ``(N, K, h, w)`` on the rows and columns ``box`` of the grid, the grid outside the box
    being background): the softmax probabilities resampled bilinearly, then the most probable
    class (the first of equals); background outside the network field of view.

    A bilinear sample is a convex combination of its four network neighbours, so where all four
    have the same most probable class (that of the logits: softmax keeps their order), so has the
    sample: only pixels between neighbours of different classes (the label borders, a few percent)
    interpolate the probabilities, computed at those neighbours only.
    """
    a = logits.numpy()
    start = (0, 0)
    if box is not None:  # one node of certain background around the box: the grid just outside it
        a = np.pad(a, ((0, 0), (0, 0), (1, 1), (1, 1)), constant_values=_CERTAIN_BACKGROUND[1])
        a[:, 0, [0, -1], :] = a[:, 0, :, [0, -1]] = _CERTAIN_BACKGROUND[0]
        start = (box[0].start - 1, box[1].start - 1)
    net = _argmax_classes(a)
    # network cells (between 4 neighbouring nodes) whose corners disagree on the class
    mixed_cell = ((net[:, :-1, :-1] != net[:, :-1, 1:]) | (net[:, :-1, :-1] != net[:, 1:, :-1])
                  | (net[:, :-1, :-1] != net[:, 1:, 1:]))
    r0, wr, in_r = _net_taps(plane, grid, 0, start[0], net.shape[1])
    c0, wc, in_c = _net_taps(plane, grid, 1, start[1], net.shape[2])
    labels = net[:, r0][:, :, c0]
    i, r, c = np.nonzero(mixed_cell[:, r0][:, :, c0])
    rr, cc, wr, wc = r0[r], c0[c], wr[r][:, None], wc[c][:, None]

    def probs(rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        # float64: two classes a few 1e-7 apart at a border pixel would swap on float32 rounding
        return torch.softmax(torch.from_numpy(a[i, :, rows, cols]).double(), 1).numpy()

    p = ((1 - wr) * (1 - wc) * probs(rr, cc) + (1 - wr) * wc * probs(rr, cc + 1)
         + wr * (1 - wc) * probs(rr + 1, cc) + wr * wc * probs(rr + 1, cc + 1))
    labels[i, r, c] = p.argmax(1)
    labels[:, ~(in_r[:, None] & in_c[None, :])] = 0
    return labels


def _downsampling(card: dict) -> int | None:
    """The U-Net's downsampling factor (a crop's side must be a multiple of it); None for a network
    that is not a U-Net (not fully convolutional, or unknown: no crop)."""
    arch = card.get("architecture", {})
    if arch.get("class") != "UNet":
        return None
    return 2 ** (int(arch.get("hparams", {}).get("levels", 4)) - 1)


# a slice's crop is at least this wide: the apical slices' own crops (down to 72 mm) cost the
# network context on their small objects (labels differing from the whole grid's: 0.11-0.7 % of
# the labelled pixels with this floor, up to 0.8 % without; 0.07-0.3 % for one crop per stack)
MIN_CROP_MM = 96.0


class SegPart(NamedTuple):
    """Segmentation logits of some of an exam's SAX images."""

    images: np.ndarray  # their indices in the slice-major (S*T) stack
    logits: torch.Tensor  # (len(images), K, h, w) float32
    box: tuple[slice, slice] | None  # the grid rows and columns the logits cover; None: the whole grid


def _labelled(logits: torch.Tensor) -> np.ndarray:
    """Where the most probable class of logits ``(N, K, h, w)`` is not background (class 0; the
    first of equals wins): elementwise maxima (torch's argmax over the class axis is 20x slower)."""
    a = logits.numpy()
    return np.maximum.reduce([a[:, k] for k in range(1, a.shape[1])]) > a[:, 0]


def seg_logits(model: torch.nn.Module | OnnxNet, card: dict, x: np.ndarray, n_frames: int, models: Models, *,
               batch: int, crop_margin_mm: float, min_crop_mm: float = MIN_CROP_MM,
               images: np.ndarray | None = None, first: SegPart | None = None) -> list[SegPart]:
    """Segmentation logits of network-grid images ``x (S*T, n, n)`` (slice-major, ``n_frames`` =
    T per slice), the network run on the part of the grid that holds the heart; ``images``: the
    indices of the images to segment (default every image; the others of ``x`` are not read);
    ``first``: the frame-0 part of an earlier call on the same ``x`` (its crops are reused, its
    images not run again).

    Frame 0 of every slice runs on the whole grid; the other frames of a slice run on the smallest
    crop that holds every labelled pixel of its frame 0 with ``crop_margin_mm`` around (aligned to
    the U-Net's downsampling, :func:`~cmr_atlas.nets.preprocess.crop_box`, at least
    ``min_crop_mm`` wide; a slice whose frame 0 has none takes the crop of the whole stack's);
    outside the crop the grid is background.  A crop per slice follows the heart's taper from base
    to apex (81 % of the stack-wide crop's pixels on legacy exams).  An image whose cropped labels
    come within half the margin of a crop side inside the grid runs again on the whole grid, so
    the crop never cuts the heart off.  The margin keeps the network's context: labels inside the
    crop differ from the whole grid's by border effects only (docs/cluster.md has the measured
    share).  ``crop_margin_mm`` 0 (config
    ``inference.crop_margin_mm``), a network that is not a U-Net or a runtime that cannot take
    other sizes: the whole grid for every image.
    """
    grid = card_grid(card)
    multiple = _downsampling(card)
    run = partial(forward, model, device=models.device, batch=batch, dtype=models.dtype)
    want = np.arange(len(x)) if images is None else np.unique(np.asarray(images, dtype=np.intp))
    if crop_margin_mm <= 0 or multiple is None or not takes_any_size(model) or n_frames < 2:
        return [SegPart(want, run(x[want]), None)]
    probe = np.arange(0, len(x), n_frames)
    rest = np.setdiff1d(want, probe)
    parts = [] if first is not None else [SegPart(probe, run(x[probe]), None)]
    first = first if first is not None else parts[0]
    margin_px = int(np.ceil(crop_margin_mm / grid.spacing_mm))
    probe_fg = _labelled(first.logits)
    whole = (slice(0, grid.size), slice(0, grid.size))
    stack_box = crop_box(probe_fg, margin_px, multiple)
    if stack_box is None:
        return parts + ([SegPart(rest, run(x[rest]), None)] if len(rest) else [])
    min_px = int(np.ceil(min_crop_mm / grid.spacing_mm))
    boxes = [crop_box(fg, margin_px, multiple, min_px) or stack_box for fg in probe_fg]
    key = [(b[0].start, b[0].stop, b[1].start, b[1].stop) for b in boxes]  # slices are unhashable
    redo = []
    for k in dict.fromkeys(key):  # slices with the same crop share the forward passes
        box = boxes[key.index(k)]
        sel = rest[np.isin(rest // n_frames, [s for s, b in enumerate(key) if b == k])]
        if not len(sel):
            continue
        if box == whole:
            parts.append(SegPart(sel, run(x[sel]), None))
            continue
        cropped = run(x[sel, box[0], box[1]])
        near = near_crop_edge(_labelled(cropped), box, (grid.size, grid.size), max(1, margin_px // 2))
        parts.append(SegPart(sel[~near], cropped[torch.from_numpy(~near)], box))
        redo.append(sel[near])
    redo = np.concatenate(redo) if redo else np.zeros(0, np.intp)
    if len(redo):
        log.debug("%d of %d cropped images ran again on the whole grid", len(redo), len(rest))
        parts.append(SegPart(redo, run(x[redo]), None))
    return parts


def _stack_labels(parts: list[SegPart], planes: list[SlicePlane], n_frames: int, grid: Grid,
                  images: np.ndarray) -> np.ndarray:
    """Labels ``(len(images), R, C)`` on the original pixels (:func:`_labels_on_original`) of the
    slice-major SAX images ``images`` (ascending), from the parts that hold them."""
    raw = np.zeros((len(images), *planes[0].shape), np.uint8)
    for part in parts:
        slice_of = part.images // n_frames
        for s in np.unique(slice_of):
            sel = slice_of == s
            raw[np.searchsorted(images, part.images[sel])] = _labels_on_original(
                part.logits[torch.from_numpy(sel)], planes[s], grid, part.box)
    return raw


def segment_exam(images: ExamImages, models: Models, *, batch: int, sequence: str | None = None,
                 crop_margin_mm: float | None = None) -> tuple[np.ndarray, pd.DataFrame]:
    """Masks ``(S, T, R, C)`` uint8 (cleaned) and the QC rows of every slice and frame, by the
    network for the SAX series' ``sequence`` (:meth:`Models.seg_for`).

    Every SAX image of the exam goes through the network (:func:`seg_logits`: on a crop around
    the heart for all but the first frame; ``crop_margin_mm``: config ``inference.crop_margin_mm``,
    None: its default) in batches that cross slices; masks are cleaned and checked for the whole
    stack at once.
    """
    run = _SaxSegmentation(images, models, batch, sequence, crop_margin_mm)
    run.segment(np.ones((images.n_slices, images.n_frames), bool))
    return run.masks, run.qc()


# ED + ES inference (config inference.frames ed_es): a volume curve from this share of the slices,
# those with the largest frame-0 cavity, finds ED and ES to within a frame; the whole stack at
# those frames and their neighbours then picks them.  On 40 held-out bSSFP and 48 GRE exams the
# curve slices alone chose the whole stack's ES in 85 % (bSSFP) and 100 % (GRE) of exams, every
# one within a frame; with the whole stack's neighbours, in every exam (docs/cluster.md)
CURVE_SLICE_SHARE = 0.3
MIN_CURVE_SLICES = 3
PHASE_REACH_FRAMES = 1  # neighbours of the curve's ED and ES segmented on every slice
# The curve slices are segmented at every other frame first, then at the neighbours of that
# curve's ED and of its CURVE_ES_CANDIDATES smallest frames: a curve with one minimum near ES has
# it beside its smallest coarse frame, and the second finds a curve that dips twice (one of 40
# held-out bSSFP exams dips at frames 7 and 10, the even frames seeing only the second); the
# every-frame curve's ED and ES then, without the odd frames away from them
CURVE_FRAME_STEP = 2
CURVE_ES_CANDIDATES = 2


def curve_slices(frame0_cavity_px: np.ndarray, share: float = CURVE_SLICE_SHARE,
                 minimum: int = MIN_CURVE_SLICES) -> np.ndarray:
    """Indices (ascending) of the slices whose frame-0 cavity ``(S,)`` is largest: ``share`` of
    the stack, at least ``minimum`` (every slice of a shorter stack); ties keep slice order."""
    area = np.asarray(frame0_cavity_px)
    k = min(len(area), max(minimum, int(np.ceil(share * len(area)))))
    return np.sort(np.argsort(-area, kind="stable")[:k])


def _near(frame: int, n_frames: int, reach: int) -> list[int]:
    """``frame`` and its ``reach`` neighbours on either side, around the cycle, ascending."""
    return sorted({(frame + d) % n_frames for d in range(-reach, reach + 1)})


def segment_exam_ed_es(images: ExamImages, models: Models, *, batch: int, ed_method: str,
                       sequence: str | None = None,
                       crop_margin_mm: float | None = None) -> tuple[np.ndarray, pd.DataFrame, tuple[int, int]]:
    """Masks ``(S, T, R, C)``, QC rows and ``(ed_frame, es_frame)`` with the network run on the
    images an ED + ES analysis needs (config ``inference.frames: ed_es``): frame 0 of every
    slice; the frames of the :func:`curve_slices` that their cavity volumes need to find ED and
    ES (:func:`~cmr_atlas.cine.segmentation.choose_phases` with ``ed_method``): every
    :data:`CURVE_FRAME_STEP`-th frame, then those around its ED and its smallest volumes; every slice at those
    two frames and their :data:`PHASE_REACH_FRAMES` neighbours, where the whole stack's volumes
    pick ED (largest; frame 0 for ``ed_method`` ``first``) and ES (smallest), as the whole
    stack's curve would whenever its ED and ES lie that close.  Images not segmented are
    background in the masks and have no QC row (``segmented`` of
    :func:`~cmr_atlas.core.imagecache.save_masks`).  About 45 % of the forward passes of
    :func:`segment_exam` on legacy exams."""
    run = _SaxSegmentation(images, models, batch, sequence, crop_margin_mm)
    n_s, n_t = images.n_slices, images.n_frames
    want = np.zeros((n_s, n_t), bool)
    want[:, 0] = True
    run.segment(want)
    curve = curve_slices(run.cavity_px[:, 0])
    in_curve = np.isin(np.arange(n_s), curve)
    coarse = np.arange(0, n_t, CURVE_FRAME_STEP)
    want[np.ix_(curve, coarse)] = True
    run.segment(want)
    vols = exam_counted_volumes_ml(images, run.cavity_px, include=in_curve)[coarse]
    reach = CURVE_FRAME_STEP - 1  # a one-minimum curve's ES lies within this of its smallest coarse frame
    fill = [f for j in np.argsort(vols, kind="stable")[:CURVE_ES_CANDIDATES] for f in _near(int(coarse[j]), n_t, reach)]
    if ed_method != "first":
        fill += _near(int(coarse[np.argmax(vols)]), n_t, reach)
    want[np.ix_(curve, fill)] = True
    run.segment(want)
    frames = np.flatnonzero(run.done[curve[0]])  # the curve slices share their frames
    ed_i, es_i = choose_phases(exam_counted_volumes_ml(images, run.cavity_px, include=in_curve)[frames], ed_method)
    ed_c, es_c = int(frames[ed_i]), int(frames[es_i])
    ed_near = [0] if ed_method == "first" else _near(ed_c, n_t, PHASE_REACH_FRAMES)
    es_near = _near(es_c, n_t, PHASE_REACH_FRAMES)
    want[:, ed_near + es_near] = True
    run.segment(want)
    vols = exam_counted_volumes_ml(images, run.cavity_px)  # every slice is segmented at the near frames
    ed = ed_near[int(np.argmax(vols[ed_near]))]
    es = es_near[int(np.argmin(vols[es_near]))]
    return run.masks, run.qc(), (ed, es)


class _SaxSegmentation:
    """One exam's SAX segmentation built up in passes: :meth:`segment` runs the network on the
    images asked for that no pass has run yet (prepared for the network once each; frame 0 of
    every slice first, its labels placing the crops of the others, :func:`seg_logits`) and
    cleans their masks."""

    def __init__(self, images: ExamImages, models: Models, batch: int, sequence: str | None,
                 crop_margin_mm: float | None):
        self.images, self.models, self.batch = images, models, batch
        self.net, self.card = models.seg_for(sequence)
        self.grid = card_grid(self.card)
        margin = default("inference.crop_margin_mm") if crop_margin_mm is None else crop_margin_mm
        self.margin = float(margin)
        n_s, n_t = images.n_slices, images.n_frames
        self.x = np.zeros((n_s * n_t, self.grid.size, self.grid.size), np.float32)
        self.done = np.zeros((n_s, n_t), bool)
        self.masks = np.zeros((n_s, n_t, *images.sax.shape[2:]), np.uint8)
        # cavity and myocardium pixels per image (0 where not run): the volumes and the QC areas
        self.cavity_px, self.myo_px = np.zeros((n_s, n_t), np.int64), np.zeros((n_s, n_t), np.int64)
        self.flags: dict[int, MaskQC] = {}
        self.first: SegPart | None = None

    def segment(self, want: np.ndarray) -> None:
        todo = np.asarray(want, bool) & ~self.done
        if self.first is None and self.margin > 0:
            todo[:, 0] = True  # the crops come from frame 0 (seg_logits runs it anyway)
        if not todo.any():
            return
        n_t = self.images.n_frames
        for s, plane in enumerate(self.images.sax_planes):
            f = np.flatnonzero(todo[s])
            if len(f):
                self.x[s * n_t + f] = prepare(self.images.sax[s, f], plane, self.grid)
        idx = np.flatnonzero(todo.ravel())
        parts = seg_logits(self.net, self.card, self.x, n_t, self.models, batch=self.batch,
                           crop_margin_mm=self.margin, images=idx, first=self.first)
        if self.first is None and parts and np.array_equal(parts[0].images, np.arange(0, len(self.x), n_t)):
            self.first = parts[0]  # frame 0 of every slice: later passes reuse its crops
        cleaned, qcs = clean_masks_and_qc(_stack_labels(parts, self.images.sax_planes, n_t, self.grid, idx))
        self.masks.reshape(-1, *self.masks.shape[2:])[idx] = cleaned
        self.cavity_px.reshape(-1)[idx] = (cleaned == CAVITY).sum(axis=(1, 2))
        self.myo_px.reshape(-1)[idx] = (cleaned == MYO).sum(axis=(1, 2))
        self.flags.update(zip(idx.tolist(), qcs))
        self.done |= todo

    def qc(self) -> pd.DataFrame:
        """QC rows of the segmented images, slice-major."""
        n_t = self.images.n_frames
        idx = np.flatnonzero(self.done.ravel())
        qcs = [self.flags[i] for i in idx.tolist()]
        px_area = np.array([p.pixel_spacing_mm[0] * p.pixel_spacing_mm[1] for p in self.images.sax_planes])[idx // n_t]
        return pd.DataFrame({
            "exam_id": self.images.exam_id,
            "slice_index": idx // n_t,
            "frame": idx % n_t,
            "cavity_area_mm2": self.cavity_px.reshape(-1)[idx] * px_area,
            "myo_area_mm2": self.myo_px.reshape(-1)[idx] * px_area,
            "n_components_cavity": [q.n_components_cavity for q in qcs],
            "n_components_myo": [q.n_components_myo for q in qcs],
            "flag": [q.flag for q in qcs],
        }, columns=SEGMENTATION_QC.column_names)


def _slice_summation(images: ExamImages, include: np.ndarray | None) -> tuple[np.ndarray, float]:
    """Pixel area per SAX slice (0 for slices not in ``include (S,)``) and the slice spacing."""
    area = np.array([p.pixel_spacing_mm[0] * p.pixel_spacing_mm[1] for p in images.sax_planes])
    if include is not None:
        area = area * np.asarray(include, dtype=float)
    return area, slice_spacing_mm(images.sax_planes) or 0.0


def exam_volumes_ml(images: ExamImages, masks: np.ndarray, include: np.ndarray | None = None) -> np.ndarray:
    """Cavity volume per frame (slice summation: area x slice spacing; 0 for a single slice);
    ``include (S,)``: only those slices."""
    return cavity_volumes_ml(masks, *_slice_summation(images, include))


def exam_counted_volumes_ml(images: ExamImages, cavity_px: np.ndarray,
                            include: np.ndarray | None = None) -> np.ndarray:
    """:func:`exam_volumes_ml` from the cavity's pixel count per image ``(S, T)``."""
    return counted_volumes_ml(cavity_px, *_slice_summation(images, include))


def _landmark_rows(exam_id: str, view: str, slice_index: int, frames: list[int], pred_rc: np.ndarray,
                   present: np.ndarray, conf: np.ndarray, plane: SlicePlane, grid: Grid, method: str,
                   sequence: str | None = None, names: tuple[str, ...] | None = None) -> pd.DataFrame:
    """Rows of one stack's landmarks: network points ``pred_rc (F, K, 2)`` mapped to the original
    pixels and to patient mm (NaN where absent)."""
    names = names or landmark_names(view)
    present = np.asarray(present, bool)
    rc = np.where(present[..., None], from_net_px(np.nan_to_num(pred_rc), plane, grid), np.nan)
    xyz = np.where(present[..., None], plane.pixel_to_patient(np.nan_to_num(rc)), np.nan)
    n_f, n_k = present.shape
    return pd.DataFrame({
        "exam_id": exam_id, "view": view, "slice_index": slice_index,
        "frame": np.repeat(np.asarray(frames, dtype=int), n_k), "landmark": np.tile(names, n_f),
        "x_px": rc[..., 1].ravel(), "y_px": rc[..., 0].ravel(),
        "x_mm": xyz[..., 0].ravel(), "y_mm": xyz[..., 1].ravel(), "z_mm": xyz[..., 2].ravel(),
        "confidence": np.asarray(conf, dtype=float).ravel(), "present": present.ravel(), "method": method,
        "sequence": sequence,
    })


def cavity_centres(masks: np.ndarray, has_lv: np.ndarray) -> np.ndarray:
    """Centroid (row, col, original pixels) of the LV cavity label of each SAX mask ``(S, F, R, C)``
    whose QC is plausible (``has_lv (S, F)``), NaN elsewhere: ``(S, F, 2)``.  The LV centre is the
    centroid of the endocardial contour, i.e. of the cavity the segmentation outlines."""
    out = np.full((*masks.shape[:2], 2), np.nan)
    for s, f in zip(*np.nonzero(np.asarray(has_lv, bool))):
        cav = np.argwhere(masks[s, f] == CAVITY)
        if len(cav):
            out[s, f] = cav.mean(0)
    return out


def _lv_centre_from_mask(rc: np.ndarray, present: np.ndarray, names: tuple[str, ...], centres: np.ndarray,
                         plane: SlicePlane, grid: Grid) -> None:
    """Where the SAX heatmap reports no LV centre but the segmentation has a plausible cavity
    (``centres (F, 2)`` original pixels, NaN: none), the cavity's centroid (in place, network pixels)."""
    if "lv_centre" not in names:
        return
    k = names.index("lv_centre")
    fill = ~present[:, k] & np.isfinite(centres).all(-1)
    rc[fill, k] = to_net_px(centres[fill], plane, grid)
    present[fill, k] = True


def _turn_each(x, sizes: list[int], turns_deg: list[float]):
    """``x`` (images ``(N, n, n)`` numpy or maps ``(N, C, n, n)`` torch), consecutive parts of
    ``sizes`` each rotated by its ``turns_deg`` (:func:`rotate_maps`); unchanged where all are 0."""
    if not any(turns_deg):
        return x
    import torch

    t = torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None] if isinstance(x, np.ndarray) else x
    parts = [rotate_maps(p, float(d)) for p, d in zip(torch.split(t, sizes), turns_deg)]
    out = torch.cat(parts)
    return out[:, 0].numpy() if isinstance(x, np.ndarray) else out


def _landmark_stacks(images: ExamImages, models: Models, sax_frames: list[int],
                     every_lax_frame: bool) -> list[tuple[str, int, np.ndarray, SlicePlane, list[int]]]:
    """``(view, slice, images (F, R, C), plane, frames)`` of every image stack that
    :func:`detect_landmarks` runs: each served long-axis cine, then each SAX slice at ``sax_frames``."""
    stacks = []
    for view in landmark_views(models):
        if view in images.lax:
            cine = images.lax[view]
            n_lax = cine.shape[0]
            lax_frames = (list(range(n_lax)) if every_lax_frame else
                          sorted({lax_frame(f, images.n_frames, n_lax) for f in sax_frames}))
            stacks.append((view, 0, cine if every_lax_frame else cine[lax_frames], images.lax_planes[view], lax_frames))
    for s, plane in enumerate(images.sax_planes if len(sax_frames) else []):  # no frames: no SAX input
        stacks.append(("sax", s, images.sax[s, sax_frames], plane, list(sax_frames)))
    return stacks


def _companion_stacks(stacks: list, companion: ExamImages, models: Models, sax_frames: list[int],
                      every_lax_frame: bool) -> list:
    """The stacks of ``companion`` (another reconstruction of the same acquisition), checked to
    be the same views, slices, frames and planes as ``stacks``."""
    theirs = _landmark_stacks(companion, models, sax_frames, every_lax_frame)
    same = len(theirs) == len(stacks) and all(
        (a[0], a[1], a[4]) == (b[0], b[1], b[4]) and a[2].shape == b[2].shape and planes_match(a[3], b[3])
        for a, b in zip(stacks, theirs))
    if not same:
        raise ValueError(f"companion images of exam {companion.exam_id} are not on the same planes, "
                         "frames and pixel grid as the images they go with")
    return theirs


def _stack_cine(images: ExamImages, stack: tuple) -> np.ndarray:
    """The whole cine ``(T, R, C)`` a stack's images were taken from."""
    view, s = stack[0], stack[1]
    return images.sax[s] if view == "sax" else images.lax[view]


def _whole_cine(images: ExamImages, stack: tuple) -> bool:
    """Whether a stack holds every frame of its cine, in order."""
    return list(stack[4]) == list(range(_stack_cine(images, stack).shape[0]))


def _neighbour_looks(images: ExamImages, stack: tuple, k: int) -> list[np.ndarray]:
    """The same SAX slice or long-axis cine ``k`` frames before and after each of ``stack``'s
    frames (cyclic: a cine covers the cardiac cycle); none for ``k`` = 0, a single-frame series or
    a stack of the whole cine (its neighbours are its own frames: :func:`_frame_mean`)."""
    frames = stack[4]
    cine = _stack_cine(images, stack)
    n = cine.shape[0]
    if k <= 0 or n < 2 * k + 1 or _whole_cine(images, stack):
        return []
    return [cine[[(f + d) % n for f in frames]] for d in range(-k, k + 1) if d != 0]


def _frame_mean(maps: torch.Tensor, k: int) -> torch.Tensor:
    """Maps ``(T, C, H, W)`` of a whole cine, each averaged with those ``k`` frames either side
    (cyclic): what the neighbour looks give, without running the network on any frame twice."""
    import torch

    if k <= 0 or maps.shape[0] < 2 * k + 1:
        return maps
    return torch.stack([torch.roll(maps, d, 0) for d in range(-k, k + 1)]).mean(0)


def _network_input(img: np.ndarray, source: list | None, stack: tuple, card: dict) -> np.ndarray:
    """One look's network input on its stack's grid: ``(F, n, n)``, or for a SAX network whose
    card has ``input.neighbour_slices`` k, ``(F, 2k+1, n, n)`` with the k slices either side of the
    same ``source`` (the primary images or a companion's) at the same frames as channels."""
    view, s, _, plane, _ = stack
    k = card_neighbour_slices(card)
    if not k or view != "sax":
        return prepare(img, plane, card_grid(card))
    if source is None:
        raise ValueError("a SAX network that sees the neighbouring slices takes no neighbouring cine frames "
                         "(its card has both input.neighbour_slices and decode.neighbour_frames)")
    sax = sorted((st for st in source if st[0] == "sax"), key=lambda st: st[1])  # the stack, base to apex
    at = [st[1] for st in sax].index(s)
    return slice_with_neighbours([st[2] for st in sax], [st[3] for st in sax], at, k, card_grid(card))


def _network_outputs(images: ExamImages, models: Models, nets: list, sources: list,
                     batch: int) -> dict[int, torch.Tensor]:
    """Each stack's network output (``{stack index: (frames, channels, H, W)}``; heatmaps: softmax
    maps): the images of one network in one :func:`forward`, each image's looks (itself, its
    companions', its SAX neighbour frames) averaged, as the test-time rotations are."""
    stacks = sources[0]
    outputs: dict[int, torch.Tensor] = {}
    for k in dict.fromkeys(id(m) for m, _ in nets):  # each network once, on all its images
        members = [i for i, (m, _) in enumerate(nets) if id(m) == k]
        model, card = nets[members[0]]
        # each image's looks: itself, its companions' images, its SAX neighbour frames (the card's)
        looks = [(i, img, src) for i in members for img, src in
                 [(src[i][2], src) for src in sources]
                 + [(img, None) for img in _neighbour_looks(images, stacks[i], card_neighbour_frames(card))]]
        # every look on the primary image's plane
        x = np.concatenate([_network_input(img, src, stacks[i], card) for i, img, src in looks])
        sizes = [len(stacks[i][4]) for i, _, _ in looks]
        if models.landmark_method == "heatmap":  # softmax maps, averaged over the card's rotations and zooms
            # long-axis images turned far from what the network was trained on go in upright
            turns = [0.0 if stacks[i][0] == "sax" else turn_deg(axis_angle_deg(stacks[i][3]), card_span(card, stacks[i][0]))
                     for i, _, _ in looks]
            x = _turn_each(x, sizes, turns)
            out = rotation_averaged_probs(lambda xr: forward(model, xr, models.device, batch, models.dtype), x,
                                          card_rotations(card), card_zooms(card))
            out = _turn_each(out, sizes, [-t for t in turns])
        else:
            out = forward(model, x, models.device, batch, models.dtype)
        parts = torch.split(out, sizes)
        for i in members:  # one image's looks averaged, as the rotations are
            outputs[i] = torch.stack([p for (j, _, _), p in zip(looks, parts) if j == i]).mean(0)
            if models.landmark_method == "heatmap" and _whole_cine(images, stacks[i]):
                outputs[i] = _frame_mean(outputs[i], card_neighbour_frames(card))
    return outputs


def detect_landmarks(images: ExamImages, models: Models, sax_frames: list[int], *,
                     absent_threshold: float, batch: int,
                     sax_has_lv: np.ndarray | None = None,
                     sequences: dict[str, str] | None = None,
                     sax_lv_centres: np.ndarray | None = None, every_lax_frame: bool = True,
                     companions: Sequence[ExamImages] = ()) -> pd.DataFrame:
    """Landmarks on every LAX frame (views of :func:`landmark_views`; without ``every_lax_frame``
    only the frames matching ``sax_frames``, :func:`~cmr_atlas.cine.segmentation.lax_frame`) and
    on every SAX slice at ``sax_frames``; ``sequences`` (``{view: sequence}``) fills the ``sequence`` column, picks
    each view's network where a task has networks routed by sequence (:meth:`Models.landmark_for`)
    and picks the heatmap networks' calibrated absent thresholds (:func:`card_thresholds`;
    ``absent_threshold`` where a card has none for that sequence, view and landmark).

    ``sax_has_lv (S, len(sax_frames))`` gates coordinate regression on SAX (it cannot say absent):
    a slice without a plausible LV mask gets absent landmarks.  ``sax_lv_centres (S,
    len(sax_frames), 2)`` (:func:`cavity_centres`; heatmaps): where the heatmap finds no LV centre,
    the segmented cavity's centroid (config ``landmarks.lv_centre_from_mask``); its confidence
    stays the heatmap's peak.  A long-axis image turned far outside the orientations its heatmap
    network was trained on (the card's ``orientation``) goes in upright and its maps are turned
    back (:mod:`cmr_atlas.cine.lax_orientation`).  The images of one network (all
    LAX cines, all SAX slices) go through it in one :func:`forward`.

    ``companions``: other reconstructions of the same acquisition (the PSIR of an LGE magnitude
    series), on the same planes, frames and pixel grid (else ``ValueError``); each image's softmax
    maps are averaged with its companions' before decoding, as the test-time rotations are, so
    every reconstruction gets the same landmarks (heatmap networks only).  A network whose card
    has ``decode.neighbour_frames`` k averages each image's maps with those of the same SAX slice or
    long-axis cine k frames before and after (:func:`~cmr_atlas.nets.heatmaps.card_neighbour_frames`).
    """
    stacks = _landmark_stacks(images, models, sax_frames, every_lax_frame)
    if companions and models.landmark_method != "heatmap":
        raise ValueError("companion images are averaged as heatmaps: they need heatmap landmark networks")
    sources = [stacks] + [_companion_stacks(stacks, c, models, sax_frames, every_lax_frame) for c in companions]
    model_key = (lambda view: view_model(view)) if models.landmark_method == "heatmap" else (lambda view: view)
    seq_of = (sequences or {}).get

    # routed by sequence; a view its sequence's network was not trained on: the default's, else none
    picked = [models.landmark_for(model_key(st[0]), seq_of(st[0]), st[0]) for st in stacks]
    sources = [[st for st, n in zip(src, picked) if n is not None] for src in sources]
    stacks = sources[0]
    nets = [n for n in picked if n is not None]
    outputs = _network_outputs(images, models, nets, sources, batch)
    rows = []
    for i, (view, s, _, plane, frames) in enumerate(stacks):
        card = nets[i][1]
        grid = card_grid(card)
        names, sequence = landmark_names(view, card), seq_of(view)
        if models.landmark_method == "heatmap":
            thr = card_thresholds(card, sequence, view, names, absent_threshold)
            rc, present, conf = decode_arrays(outputs[i].numpy(), thr)
            if view == "sax" and sax_lv_centres is not None:
                _lv_centre_from_mask(rc, present, names, np.asarray(sax_lv_centres)[s], plane, grid)
        else:
            rc = from_normalised(outputs[i], grid.size).numpy().astype(float)
            inside = ((rc >= 0) & (rc <= grid.size - 1)).all(-1)
            present = inside.copy()
            if view == "sax" and sax_has_lv is not None:
                present &= np.asarray(sax_has_lv[s], bool)[:, None]
            conf = np.where(present, 1.0, 0.0)
        rows.append(_landmark_rows(images.exam_id, view, s, frames, rc, present, conf, plane, grid,
                                   models.landmark_method, sequence, names))
    return pd.concat(rows, ignore_index=True)[list(LANDMARKS_AUTO.column_names)] if rows else LANDMARKS_AUTO.empty()


@dataclass
class ExamInference:
    masks: np.ndarray
    qc: pd.DataFrame
    landmarks: pd.DataFrame
    phases: dict = field(default_factory=dict)


def infer_exam(images: ExamImages, models: Models, *, ed_method: str, absent_threshold: float,
               batch: int, sequences: dict[str, str] | None = None,
               crop_margin_mm: float | None = None, lv_centre_from_mask: bool | None = None,
               frames: str | None = None) -> ExamInference:
    """Masks, QC, ED/ES phases and landmarks of one exam (settings: the config's
    ``segmentation.ed_frame``, ``landmarks.absent_threshold``, ``inference.batch`` and
    ``inference.crop_margin_mm`` (None: its default); ``sequences``: ``{view: sequence}`` of its
    cines: the SAX segmentation network (:meth:`Models.seg_for`) and the landmarks' ``sequence``
    column; ``lv_centre_from_mask``: config ``landmarks.lv_centre_from_mask`` (None: its default):
    the segmented cavity's centroid where the SAX heatmap finds no LV centre; ``frames``: config
    ``inference.frames`` (None: its default): ``all`` segments every SAX image and finds landmarks
    on every LAX frame, ``ed_es`` only what ED and ES need (:func:`segment_exam_ed_es`; LAX
    landmarks at the frames matching ED and ES)."""
    frames = default("inference.frames") if frames is None else frames
    if frames not in FRAME_SCOPES:
        raise ValueError(f"inference.frames must be one of {FRAME_SCOPES}, not {frames!r}")
    sequence = (sequences or {}).get("sax")
    if frames == "ed_es":
        masks, qc, (ed, es) = segment_exam_ed_es(images, models, batch=batch, ed_method=ed_method,
                                                 sequence=sequence, crop_margin_mm=crop_margin_mm)
    else:
        masks, qc = segment_exam(images, models, batch=batch, sequence=sequence, crop_margin_mm=crop_margin_mm)
    vols = exam_volumes_ml(images, masks)
    if frames == "all":
        ed, es = choose_phases(vols, ed_method)
    sax_frames = sorted({ed, es})
    flags = qc.set_index(["slice_index", "frame"])["flag"]
    has_lv = np.array([[flags.get((s, f), "empty") == "" for f in sax_frames] for s in range(images.n_slices)])
    if lv_centre_from_mask is None:
        lv_centre_from_mask = default("landmarks.lv_centre_from_mask")
    centres = cavity_centres(masks[:, sax_frames], has_lv) if lv_centre_from_mask else None
    lm = detect_landmarks(images, models, sax_frames, absent_threshold=absent_threshold, batch=batch,
                          sax_has_lv=has_lv, sequences=sequences, sax_lv_centres=centres,
                          every_lax_frame=frames == "all")
    phases = {"exam_id": images.exam_id, "ed_frame": ed, "es_frame": es, "method": ed_method,
              "edv_ml": float(vols[ed]), "esv_ml": float(vols[es])}
    return ExamInference(masks, qc, lm, phases)


def shard_measures(landmarks: pd.DataFrame, sax_planes: dict[str, list[SlicePlane]]) -> pd.DataFrame:
    """:data:`~cmr_atlas.cine.landmark_measures.LANDMARK_MEASURES` rows of a shard's landmarks in
    one call (per exam its pandas work cost ~14 ms); ``sax_planes``: each exam's SAX planes, in
    the shard's order (the rows' order, as the other tables)."""
    def plane_of(exam_id: str, view: str, s: int) -> SlicePlane | None:
        planes = sax_planes.get(exam_id, [])
        return planes[s] if view == "sax" and 0 <= s < len(planes) else None

    out = landmark_measures(landmarks, plane_of)
    rank = out["exam_id"].map({e: i for i, e in enumerate(sax_planes)})
    return out.iloc[np.argsort(rank.to_numpy(), kind="stable")].reset_index(drop=True)


STAGE = "infer"  # the stage name of the runner's qc_reasons and of the exam_status rows


class ExamTables(NamedTuple):
    """The table rows of one inferred exam (its masks are on disk, not kept for the whole shard)."""

    landmarks: pd.DataFrame
    qc: pd.DataFrame
    phases: dict
    sax_planes: list[SlicePlane] | None = None  # the SAX planes (the landmark measures' angles)


def _infer_one(eid: str, cache_dir: Path, masks_dir: Path, models: Models, ed_method: str,
               absent_threshold: float, batch: int,
               sequences: dict[tuple[str, str], str] | None = None,
               crop_margin_mm: float | None = None, lv_centre_from_mask: bool | None = None,
               frames: str | None = None) -> ExamTables:
    """Infer one exam and save its masks (and which images were segmented)."""
    cache = cache_dir / f"{eid}.npz"
    if not cache.is_file():
        raise ExamFailure("no_image_cache")
    views = {v: q for (e, v), q in (sequences or {}).items() if e == eid}
    images = load_exam_images(cache, stored=True)  # prepare() converts the images it reads
    res = infer_exam(images, models, ed_method=ed_method, absent_threshold=absent_threshold,
                     batch=batch, sequences=views, crop_margin_mm=crop_margin_mm,
                     lv_centre_from_mask=lv_centre_from_mask, frames=frames)
    segmented = np.zeros(res.masks.shape[:2], bool)
    segmented[res.qc["slice_index"].to_numpy(dtype=int), res.qc["frame"].to_numpy(dtype=int)] = True
    save_masks(eid, res.masks, masks_dir / f"{eid}.npz", segmented=segmented)
    return ExamTables(res.landmarks, res.qc, res.phases, images.sax_planes)


def run_shard(exam_ids: list[str], cache_dir: str | Path, models: Models, *, landmarks_path: str | Path,
              qc_path: str | Path, phases_path: str | Path, masks_dir: str | Path, status_path: str | Path,
              ed_method: str, absent_threshold: float, batch: int,
              sequences: dict[tuple[str, str], str] | None = None,
              measures_path: str | Path | None = None,
              crop_margin_mm: float | None = None,
              lv_centre_from_mask: bool | None = None,
              frames: str | None = None) -> list[Outcome[ExamTables]]:
    """Infer every exam of a shard under the runner's failure policy (:mod:`cmr_atlas.core.runner`);
    ``sequences`` (:func:`cine_sequences` of ingest's ``series`` table) fills the landmarks'
    ``sequence`` column (null without it); with ``measures_path`` the ``landmark_measures`` table
    (RV insertion angle, LV length) is written too; ``crop_margin_mm``, ``lv_centre_from_mask`` and
    ``frames``: config ``inference.crop_margin_mm``, ``landmarks.lv_centre_from_mask`` and
    ``inference.frames`` (None: their defaults; :func:`infer_exam`).

    Writes the ``landmarks``, ``segmentation_qc`` and ``phases`` tables of the ok exams,
    ``<masks_dir>/<exam_id>.npz`` per ok exam and the ``exam_status`` rows of every exam.
    A missing cache file fails the exam with ``no_image_cache``.
    """
    masks_dir = Path(masks_dir)
    masks_dir.mkdir(parents=True, exist_ok=True)
    work = partial(_infer_one, cache_dir=Path(cache_dir), masks_dir=masks_dir, models=models,
                   ed_method=ed_method, absent_threshold=absent_threshold, batch=batch, sequences=sequences,
                   crop_margin_mm=crop_margin_mm, lv_centre_from_mask=lv_centre_from_mask, frames=frames)
    outcomes = run_exams(exam_ids, work, STAGE, log)
    ok = [o.value for o in outcomes if o.ok]
    tables = [(LANDMARKS_AUTO, landmarks_path, [r.landmarks for r in ok]),
              (SEGMENTATION_QC, qc_path, [r.qc for r in ok]),
              (PHASES, phases_path, [pd.DataFrame([r.phases]) for r in ok])]
    if measures_path is not None:
        lm = [r.landmarks for r in ok if len(r.landmarks)]
        measures = shard_measures(pd.concat(lm, ignore_index=True), {o.exam_id: o.value.sax_planes for o in outcomes
                                                                      if o.ok}) if lm else None
        tables.append((LANDMARK_MEASURES, measures_path, [measures] if measures is not None and len(measures) else []))
    for schema, path, frames in tables:
        df = pd.concat(frames, ignore_index=True) if frames else schema.empty()
        write_table(df, path, schema)
    write_status(status_frame(outcomes, STAGE), status_path)
    return outcomes


def infer_shard(exam_ids: list[str], cache_dir: str | Path, models_dir: str | Path, *, method: str, device: str,
                precision: str, threads: int, landmarks_path: str | Path, qc_path: str | Path, phases_path: str | Path,
                masks_dir: str | Path, status_path: str | Path, ed_method: str, absent_threshold: float,
                batch: int, series_path: str | Path | None = None,
                measures_path: str | Path | None = None, runtime: str | None = None,
                crop_margin_mm: float | None = None,
                lv_centre_from_mask: bool | None = None,
                frames: str | None = None) -> list[Outcome[ExamTables]]:
    """One inference job: torch (and ONNX Runtime) on ``threads`` CPU threads, the models loaded
    once, :func:`run_shard`; ``series_path``: ingest's ``series`` table of the shard (the landmarks'
    ``sequence`` column); ``measures_path``: where to write the ``landmark_measures`` table;
    ``runtime``, ``crop_margin_mm``, ``lv_centre_from_mask`` and ``frames``: config
    ``inference.runtime``, ``inference.crop_margin_mm``, ``landmarks.lv_centre_from_mask`` and
    ``inference.frames`` (None: their defaults)."""
    torch.set_num_threads(max(1, int(threads)))
    models = load_models(models_dir, method=method, device=device, precision=precision, runtime=runtime)
    log.info("inference on %d exams (%s landmarks, device %s, %s, %s)", len(exam_ids), method, models.device,
             models.runtime, "float32" if models.dtype is None else str(models.dtype).removeprefix("torch."))
    outcomes = run_shard(exam_ids, cache_dir, models, landmarks_path=landmarks_path, qc_path=qc_path,
                         phases_path=phases_path, masks_dir=masks_dir, status_path=status_path,
                         ed_method=ed_method, absent_threshold=float(absent_threshold), batch=int(batch),
                         sequences=cine_sequences(pd.read_parquet(series_path)) if series_path else None,
                         measures_path=measures_path, crop_margin_mm=crop_margin_mm,
                         lv_centre_from_mask=lv_centre_from_mask, frames=frames)
    n_ok = sum(o.ok for o in outcomes)
    log.info("inference done: %d ok, %d failed", n_ok, len(outcomes) - n_ok)
    return outcomes
