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
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import NamedTuple

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from cmr_atlas.core.columns import ED_FRAME, ES_FRAME, EXAM_ID, FRAME, PATIENT_XYZ_MM, SLICE_INDEX, VIEW
from cmr_atlas.core.geometry import SlicePlane, slice_spacing_mm
from cmr_atlas.core.imagecache import ExamImages, load_exam_images, save_masks
from cmr_atlas.core.vocab import CAVITY, MYO
from cmr_atlas.cine.landmarks import MODEL_VIEWS, decode_arrays, landmark_names, view_model
from cmr_atlas.nets.preprocess import Grid, prepare, to_net_px
from cmr_atlas.nets.registry import card_grid, load_model
from cmr_atlas.nets.runtime import forward, pick_device, resolve_precision
from cmr_atlas.nets.vgg import from_normalised
from cmr_atlas.cine.segmentation import cavity_volumes_ml, choose_phases, clean_mask, mask_qc
from cmr_atlas.core.runner import ExamFailure, Outcome, run_exams, status_frame, write_status
from cmr_atlas.core.tables import Column, TableSchema, register, write_table

log = logging.getLogger(__name__)

LANDMARKS_AUTO = register(TableSchema(
    name="landmarks", row="landmark per image",
    description=(
        "CNN landmarks: long-axis views on every frame, SAX slices at ED and ES. Pixel positions "
        "in the original image (x = column, y = row, sub-pixel, pixel centres at integers); "
        "patient coordinates via the slice plane. Absent landmarks have present = false and null "
        "positions."
    ),
    columns=(
        EXAM_ID,
        VIEW,
        SLICE_INDEX,
        FRAME,
        Column("landmark", "str", "landmark name (cmr_atlas.core.vocab.LANDMARKS)", nullable=False),
        Column("x_px", "float", "column in the original image", "px"),
        Column("y_px", "float", "row in the original image", "px"),
        *PATIENT_XYZ_MM,
        Column("confidence", "float", "heatmap peak probability (1 for coordinate regression)"),
        Column("present", "bool", "detected (peak probability >= landmarks.absent_threshold)", nullable=False),
        Column("method", "str", "heatmap or vgg"),
    ),
))

SEGMENTATION_QC = register(TableSchema(
    name="segmentation_qc", row="SAX slice and frame",
    description=(
        "Areas and plausibility of each predicted SAX mask (after keeping the largest component "
        "per label; component counts and flags describe the raw prediction)."
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


@dataclass
class Models:
    """Every network an inference job needs, loaded once."""

    seg: torch.nn.Module
    seg_card: dict
    landmark_method: str
    landmark: dict[str, tuple[torch.nn.Module, dict]]  # heatmap: model key; vgg: view
    device: torch.device
    dtype: torch.dtype | None  # autocast precision (None = float32), nets.runtime.resolve_precision


def load_models(models_dir: str | Path, *, method: str, device: str, precision: str) -> Models:
    """The networks of ``method`` (config ``landmarks.method``) on ``device`` (config ``device``),
    run at ``precision`` (config ``inference.precision``)."""
    dev = pick_device(device)
    seg, seg_card = load_model("seg_sax", models_dir, dev)
    if method == "heatmap":
        lm = {m: load_model(f"lm_heatmap_{m}", models_dir, dev) for m in MODEL_VIEWS}
    elif method == "vgg":
        lm = {v: load_model(f"lm_vgg_{v}", models_dir, dev) for v in ("lax_2ch", "lax_4ch", "sax")}
    else:
        raise ValueError(f"landmarks.method must be heatmap or vgg, not {method!r}")
    return Models(seg, seg_card, method, lm, dev, resolve_precision(precision, dev))


def _back_to_original(probs: torch.Tensor, plane: SlicePlane, grid: Grid) -> torch.Tensor:
    """Network-grid maps ``(N, C, n, n)`` resampled (bilinear) onto the original pixels ``(N, C, R, C)``."""
    rows, cols = plane.shape
    r, c = np.meshgrid(np.arange(rows, dtype=float), np.arange(cols, dtype=float), indexing="ij")
    net = to_net_px(np.stack([r, c], -1), plane, grid) * (2.0 / (grid.size - 1)) - 1.0
    g = torch.from_numpy(net[..., ::-1].copy()).float()[None].expand(len(probs), -1, -1, -1)
    out = F.grid_sample(probs, g, mode="bilinear", padding_mode="zeros", align_corners=True)
    # outside the network field of view: background
    outside = (g.abs() > 1).any(-1)
    out[:, 0][outside] = 1.0
    return out


def segment_exam(images: ExamImages, models: Models, *, batch: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Masks ``(S, T, R, C)`` uint8 (cleaned) and the QC rows of every slice and frame."""
    grid = card_grid(models.seg_card)
    t_n = images.n_frames
    masks = np.zeros(images.sax.shape, dtype=np.uint8)
    rows = []
    for s, plane in enumerate(images.sax_planes):
        x = prepare(images.sax[s], plane, grid)
        probs = torch.softmax(forward(models.seg, x, models.device, batch, models.dtype), 1)
        raw = _back_to_original(probs, plane, grid).argmax(1).numpy().astype(np.uint8)
        px_area = plane.pixel_spacing_mm[0] * plane.pixel_spacing_mm[1]
        for t in range(t_n):
            qc = mask_qc(raw[t])
            m = clean_mask(raw[t])
            masks[s, t] = m
            rows.append({"exam_id": images.exam_id, "slice_index": s, "frame": t,
                         "cavity_area_mm2": float((m == CAVITY).sum() * px_area),
                         "myo_area_mm2": float((m == MYO).sum() * px_area),
                         "n_components_cavity": qc.n_components_cavity,
                         "n_components_myo": qc.n_components_myo, "flag": qc.flag})
    return masks, pd.DataFrame(rows, columns=SEGMENTATION_QC.column_names)


def exam_volumes_ml(images: ExamImages, masks: np.ndarray) -> np.ndarray:
    """Cavity volume per frame (slice summation: area x slice spacing; 0 for a single slice)."""
    area = np.array([p.pixel_spacing_mm[0] * p.pixel_spacing_mm[1] for p in images.sax_planes])
    return cavity_volumes_ml(masks, area, slice_spacing_mm(images.sax_planes) or 0.0)


def _landmark_rows(exam_id: str, view: str, slice_index: int, frames: list[int], pred_rc: np.ndarray,
                   present: np.ndarray, conf: np.ndarray, plane: SlicePlane, grid: Grid, method: str) -> list[dict]:
    from cmr_atlas.nets.preprocess import from_net_px

    names = landmark_names(view)
    rows = []
    for i, f in enumerate(frames):
        for k, name in enumerate(names):
            ok = bool(present[i, k])
            rc = from_net_px(pred_rc[i, k], plane, grid) if ok else np.array([np.nan, np.nan])
            xyz = plane.pixel_to_patient(rc) if ok else np.full(3, np.nan)
            rows.append({"exam_id": exam_id, "view": view, "slice_index": slice_index, "frame": int(f),
                         "landmark": name, "x_px": float(rc[1]), "y_px": float(rc[0]),
                         "x_mm": float(xyz[0]), "y_mm": float(xyz[1]), "z_mm": float(xyz[2]),
                         "confidence": float(conf[i, k]), "present": ok, "method": method})
    return rows


def detect_landmarks(images: ExamImages, models: Models, sax_frames: list[int], *,
                     absent_threshold: float, batch: int,
                     sax_has_lv: np.ndarray | None = None) -> pd.DataFrame:
    """Landmarks on every LAX frame and on every SAX slice at ``sax_frames``.

    ``sax_has_lv (S, len(sax_frames))`` gates coordinate regression on SAX (it cannot say absent):
    a slice without a plausible LV mask gets absent landmarks.
    """
    stacks: list[tuple[str, int, np.ndarray, SlicePlane, list[int]]] = []
    for view in ("lax_2ch", "lax_4ch"):
        if view in images.lax:
            cine = images.lax[view]
            stacks.append((view, 0, cine, images.lax_planes[view], list(range(cine.shape[0]))))
    for s, plane in enumerate(images.sax_planes):
        stacks.append(("sax", s, images.sax[s, sax_frames], plane, list(sax_frames)))
    rows: list[dict] = []
    for view, s, cine, plane, frames in stacks:
        key = view_model(view) if models.landmark_method == "heatmap" else view
        model, card = models.landmark[key]
        grid = card_grid(card)
        x = prepare(cine, plane, grid)
        out = forward(model, x, models.device, batch, models.dtype)
        if models.landmark_method == "heatmap":
            rc, present, conf = decode_arrays(torch.softmax(out, 1).numpy(), absent_threshold)
        else:
            rc = from_normalised(out, grid.size).numpy().astype(float)
            inside = ((rc >= 0) & (rc <= grid.size - 1)).all(-1)
            present = inside.copy()
            if view == "sax" and sax_has_lv is not None:
                present &= np.asarray(sax_has_lv[s], bool)[:, None]
            conf = np.where(present, 1.0, 0.0)
        rows += _landmark_rows(images.exam_id, view, s, frames, rc, present, conf, plane, grid,
                               models.landmark_method)
    return pd.DataFrame(rows, columns=LANDMARKS_AUTO.column_names)


@dataclass
class ExamInference:
    masks: np.ndarray
    qc: pd.DataFrame
    landmarks: pd.DataFrame
    phases: dict = field(default_factory=dict)


def infer_exam(images: ExamImages, models: Models, *, ed_method: str, absent_threshold: float,
               batch: int) -> ExamInference:
    """Masks, QC, ED/ES phases and landmarks of one exam (settings: the config's
    ``segmentation.ed_frame``, ``landmarks.absent_threshold`` and ``inference.batch``)."""
    masks, qc = segment_exam(images, models, batch=batch)
    vols = exam_volumes_ml(images, masks)
    ed, es = choose_phases(vols, ed_method)
    frames = sorted({ed, es})
    flags = qc.set_index(["slice_index", "frame"])["flag"]
    has_lv = np.array([[flags.get((s, f), "empty") == "" for f in frames] for s in range(images.n_slices)])
    lm = detect_landmarks(images, models, frames, absent_threshold=absent_threshold, batch=batch,
                          sax_has_lv=has_lv)
    phases = {"exam_id": images.exam_id, "ed_frame": ed, "es_frame": es, "method": ed_method,
              "edv_ml": float(vols[ed]), "esv_ml": float(vols[es])}
    return ExamInference(masks, qc, lm, phases)


STAGE = "infer"  # the stage name of the runner's qc_reasons and of the exam_status rows


class ExamTables(NamedTuple):
    """The table rows of one inferred exam (its masks are on disk, not kept for the whole shard)."""

    landmarks: pd.DataFrame
    qc: pd.DataFrame
    phases: dict


def _infer_one(eid: str, cache_dir: Path, masks_dir: Path, models: Models, ed_method: str,
               absent_threshold: float, batch: int) -> ExamTables:
    """Infer one exam and save its masks."""
    cache = cache_dir / f"{eid}.npz"
    if not cache.is_file():
        raise ExamFailure("no_image_cache")
    res = infer_exam(load_exam_images(cache), models, ed_method=ed_method, absent_threshold=absent_threshold,
                     batch=batch)
    save_masks(eid, res.masks, masks_dir / f"{eid}.npz")
    return ExamTables(res.landmarks, res.qc, res.phases)


def run_shard(exam_ids: list[str], cache_dir: str | Path, models: Models, *, landmarks_path: str | Path,
              qc_path: str | Path, phases_path: str | Path, masks_dir: str | Path, status_path: str | Path,
              ed_method: str, absent_threshold: float, batch: int) -> list[Outcome[ExamTables]]:
    """Infer every exam of a shard under the runner's failure policy (:mod:`cmr_atlas.core.runner`).

    Writes the ``landmarks``, ``segmentation_qc`` and ``phases`` tables of the ok exams,
    ``<masks_dir>/<exam_id>.npz`` per ok exam and the ``exam_status`` rows of every exam.
    A missing cache file fails the exam with ``no_image_cache``.
    """
    masks_dir = Path(masks_dir)
    masks_dir.mkdir(parents=True, exist_ok=True)
    work = partial(_infer_one, cache_dir=Path(cache_dir), masks_dir=masks_dir, models=models,
                   ed_method=ed_method, absent_threshold=absent_threshold, batch=batch)
    outcomes = run_exams(exam_ids, work, STAGE, log)
    ok = [o.value for o in outcomes if o.ok]
    for schema, path, frames in ((LANDMARKS_AUTO, landmarks_path, [r.landmarks for r in ok]),
                                 (SEGMENTATION_QC, qc_path, [r.qc for r in ok]),
                                 (PHASES, phases_path, [pd.DataFrame([r.phases]) for r in ok])):
        df = pd.concat(frames, ignore_index=True) if frames else schema.empty()
        write_table(df, path, schema)
    write_status(status_frame(outcomes, STAGE), status_path)
    return outcomes


def infer_shard(exam_ids: list[str], cache_dir: str | Path, models_dir: str | Path, *, method: str, device: str,
                precision: str, threads: int, landmarks_path: str | Path, qc_path: str | Path, phases_path: str | Path,
                masks_dir: str | Path, status_path: str | Path, ed_method: str, absent_threshold: float,
                batch: int) -> list[Outcome[ExamTables]]:
    """One inference job: torch on ``threads`` CPU threads, the models loaded once, :func:`run_shard`."""
    torch.set_num_threads(max(1, int(threads)))
    models = load_models(models_dir, method=method, device=device, precision=precision)
    log.info("inference on %d exams (%s landmarks, device %s, %s)", len(exam_ids), method, models.device,
             "float32" if models.dtype is None else str(models.dtype).removeprefix("torch."))
    outcomes = run_shard(exam_ids, cache_dir, models, landmarks_path=landmarks_path, qc_path=qc_path,
                         phases_path=phases_path, masks_dir=masks_dir, status_path=status_path,
                         ed_method=ed_method, absent_threshold=float(absent_threshold), batch=int(batch))
    n_ok = sum(o.ok for o in outcomes)
    log.info("inference done: %d ok, %d failed", n_ok, len(outcomes) - n_ok)
    return outcomes
