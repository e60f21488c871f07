"""Automated guide points: CNN masks and landmarks -> the guide-point table (``source = auto``).

At ED and ES, each SAX slice whose mask passes QC gives an endocardial contour (outline of the
cavity) and an epicardial contour (outline of cavity + myocardium), traced by marching squares
on the lightly smoothed mask, resampled to ``n_points`` equally spaced points and mapped to
patient coordinates through the slice plane.  Landmarks present at ED/ES (LAX frames matched by
cycle fraction) are added with ``weight = confidence``; contour points get weight 1.
"""

from __future__ import annotations

import logging
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.guidepoints import CYCLE_GUIDE_POINTS, GUIDE_POINTS
from cmr_atlas.cine.segmentation import lax_frame, mask_contours
from cmr_atlas.core.imagecache import ExamImages, load_exam_images, load_masks
from cmr_atlas.core.runner import ExamFailure, Outcome, run_exams, status_frame, write_status
from cmr_atlas.core.tables import read_table, write_table
from cmr_atlas.core.vocab import CAVITY, MYO

log = logging.getLogger(__name__)

STAGE = "auto_guide_points"  # the stage name of the runner's qc_reasons and of the exam_status rows

# QC flags that exclude a slice from the contours ("empty" slices simply have no LV)
EXCLUDING_FLAGS = ("small_cavity", "no_myocardium", "fragmented_cavity", "fragmented_myocardium",
                   "cavity_outside_myocardium")


def _excluded(flag: str) -> bool:
    return flag == "empty" or any(f in EXCLUDING_FLAGS for f in str(flag).split(";") if f)


def auto_guide_points(images: ExamImages, masks: np.ndarray, phases: dict, landmarks: pd.DataFrame,
                      qc: pd.DataFrame | None = None, n_points: int = 48) -> pd.DataFrame:
    """Guide-point rows of one exam at ED and ES (columns of :data:`GUIDE_POINTS`)."""
    frames = [("ED", int(phases["ed_frame"])), ("ES", int(phases["es_frame"]))]
    return _frame_rows(images, masks, frames, landmarks, qc, n_points)[GUIDE_POINTS.column_names]


def cycle_guide_points(images: ExamImages, masks: np.ndarray, phases: dict, landmarks: pd.DataFrame,
                       qc: pd.DataFrame | None = None, n_points: int = 48) -> pd.DataFrame:
    """Guide-point rows of every SAX frame (columns of :data:`CYCLE_GUIDE_POINTS`); phase ED/ES on
    those frames, null on the others.  The ED and ES rows equal :func:`auto_guide_points`'."""
    label = {int(phases["ed_frame"]): "ED", int(phases["es_frame"]): "ES"}
    frames = [(label.get(f), f) for f in range(images.n_frames)]
    df = _frame_rows(images, masks, frames, landmarks, qc, n_points)
    times = np.asarray(images.trigger_times_ms, dtype=float)
    # a LAX landmark row carries its LAX frame: the time is that of the SAX frame it stands for
    df["time_ms"] = times[df.pop("sax_frame").to_numpy(dtype=int)] if len(df) else np.array([])
    return df[CYCLE_GUIDE_POINTS.column_names]


# mask_contours pads its input with 2 zero pixels and smooths with a 3-pixel reach: on a crop this
# far beyond the labels it traces the same contour as on the whole image (to 1e-13 px; tests/cine/
# test_autoguide_crop.py), at a fraction of the cost (the heart is ~5% of a 160 x 256 image)
CROP_MARGIN_PX = 4


def _crop(labels: np.ndarray) -> tuple[slice, slice] | None:
    """Bounding box of the True pixels of ``labels``, CROP_MARGIN_PX wider (within the image)."""
    rows, cols = np.flatnonzero(labels.any(axis=1)), np.flatnonzero(labels.any(axis=0))
    if not rows.size:
        return None
    m = CROP_MARGIN_PX
    return (slice(max(rows[0] - m, 0), rows[-1] + m + 1), slice(max(cols[0] - m, 0), cols[-1] + m + 1))


def lv_contours(labels: np.ndarray, n_points: int) -> list[tuple[str, np.ndarray]]:
    """``(surface, (n_points, 2) row/col)`` of one SAX label mask: the endocardium (outline of the
    cavity) and epicardium (cavity + myocardium) by :func:`mask_contours`, traced on the labels'
    bounding box (:data:`CROP_MARGIN_PX`); none without a cavity."""
    box = _crop((labels == CAVITY) | (labels == MYO))
    if box is None:
        return []
    m = labels[box]
    cavity = m == CAVITY
    if not cavity.any():
        return []
    offset = np.array([box[0].start, box[1].start], dtype=float)
    out = []
    for surface, region in (("endo", cavity), ("epi", cavity | (m == MYO))):
        rc = mask_contours(region, n_points)
        if rc is not None:
            out.append((surface, rc + offset))
    return out


def _contour_blocks(images: ExamImages, masks: np.ndarray, phase: str | None, frame: int,
                    flags: dict[tuple[int, int], str], n_points: int) -> list[dict]:
    """Column blocks of one (phase, SAX frame)'s contours: per slice and surface, ``n_points`` rows."""
    blocks: list[dict] = []
    for s, plane in enumerate(images.sax_planes):
        if _excluded(flags.get((s, frame), "")):
            continue
        for surface, rc in lv_contours(masks[s, frame], n_points):
            xyz = plane.pixel_to_patient(rc)
            blocks.append({"phase": phase, "frame": frame, "view": "sax", "slice_index": s, "kind": "contour",
                           "surface": surface, "landmark": None, "point_index": np.arange(len(xyz)),
                           "xyz": xyz, "weight": 1.0, "sax_frame": frame, "n": len(xyz)})
    return blocks


def _frame_rows(images: ExamImages, masks: np.ndarray, frames: list[tuple[str | None, int]],
                landmarks: pd.DataFrame, qc: pd.DataFrame | None, n_points: int) -> pd.DataFrame:
    """Contour rows of each (phase, SAX frame) and the landmarks of the matching frames
    (columns of :data:`GUIDE_POINTS` and ``sax_frame``, the SAX frame each row stands for)."""
    eid = images.exam_id
    flags = {} if qc is None else {(int(r.slice_index), int(r.frame)): str(r.flag or "")
                                   for r in qc.itertuples()}
    lm = landmarks[(landmarks["exam_id"] == eid) & landmarks["present"]] if len(landmarks) else landmarks
    # each (view, frame)'s landmark columns as arrays, once: an ES or every-frame pass meets the
    # same LAX frame several times, and pandas selections cost more than the rows they hold
    lm_by = {}
    if len(lm):
        cols = (lm["slice_index"].to_numpy(dtype=int), lm["landmark"].to_numpy(dtype=object),
                np.stack([lm[c].to_numpy(dtype=float) for c in ("x_mm", "y_mm", "z_mm")], axis=1),
                lm["confidence"].to_numpy(dtype=float))
        lm_by = {k: tuple(c[idx] for c in cols) for k, idx in lm.groupby(["view", "frame"]).indices.items()}
    blocks: list[dict] = []
    for phase, frame in frames:
        blocks += _contour_blocks(images, masks, phase, frame, flags, n_points)
        for view in ("sax", "lax_2ch", "lax_4ch"):
            if view == "sax":
                f = frame
            elif view in images.lax:
                f = lax_frame(frame, images.n_frames, images.lax[view].shape[0])
            else:
                continue
            g = lm_by.get((view, f))
            if g is None:
                continue
            slice_index, landmark, xyz, confidence = g
            blocks.append({"phase": phase, "frame": f, "view": view, "slice_index": slice_index, "kind": "landmark",
                           "surface": None, "landmark": landmark, "point_index": 0, "xyz": xyz,
                           "weight": confidence, "sax_frame": frame, "n": len(xyz)})
    return _rows_frame(eid, blocks)


def _rows_frame(eid: str, blocks: list[dict]) -> pd.DataFrame:
    """The guide-point rows of column blocks (scalars repeated over each block's ``n`` rows)."""
    names = [*GUIDE_POINTS.column_names, "sax_frame"]
    if not blocks:
        return pd.DataFrame(columns=names)
    n = np.array([b["n"] for b in blocks])

    def column(key: str, dtype) -> np.ndarray:
        parts = [b[key] for b in blocks]
        if all(np.ndim(p) == 0 for p in parts):
            out = np.empty(len(parts), dtype=dtype)
            out[:] = parts
            return np.repeat(out, n)
        return np.concatenate([np.broadcast_to(np.asarray(p, dtype=dtype), (k,)) for p, k in zip(parts, n)])

    xyz = np.concatenate([b["xyz"] for b in blocks]).reshape(-1, 3)
    cols = {"exam_id": np.full(len(xyz), eid, dtype=object), "source": np.full(len(xyz), "auto", dtype=object),
            "phase": column("phase", object), "frame": column("frame", np.int64), "view": column("view", object),
            "slice_index": column("slice_index", np.int64), "kind": column("kind", object),
            "surface": column("surface", object), "landmark": column("landmark", object),
            "point_index": column("point_index", np.int64), "x_mm": xyz[:, 0], "y_mm": xyz[:, 1], "z_mm": xyz[:, 2],
            "weight": column("weight", float), "sax_frame": column("sax_frame", np.int64)}
    return pd.DataFrame(cols, columns=names)


def _guide_points_one(eid: str, cache_dir: Path, masks_dir: Path, phases: pd.DataFrame, landmarks: pd.DataFrame,
                      qc: pd.DataFrame, n_points: int, cycle: bool = False) -> pd.DataFrame:
    if eid not in phases.index:
        raise ExamFailure("no_inference_result")
    images = load_exam_images(cache_dir / f"{eid}.npz", pixels=False)  # planes and frame counts only
    masks = load_masks(masks_dir / f"{eid}.npz")
    make = cycle_guide_points if cycle else auto_guide_points
    return make(images, masks, phases.loc[eid].to_dict(), landmarks[landmarks["exam_id"] == eid],
                qc[qc["exam_id"] == eid], n_points)


def _run(exam_ids: list[str], cache_dir, landmarks_path, qc_path, phases_path, masks_dir, n_points: int,
         cycle: bool) -> list[Outcome[pd.DataFrame]]:
    phases = read_table(phases_path).set_index("exam_id")
    work = partial(_guide_points_one, cache_dir=Path(cache_dir), masks_dir=Path(masks_dir), phases=phases,
                   landmarks=read_table(landmarks_path), qc=read_table(qc_path), n_points=n_points, cycle=cycle)
    return run_exams(exam_ids, work, STAGE, log)


def run_shard(exam_ids: list[str], cache_dir: str | Path, *, landmarks_path: str | Path, qc_path: str | Path,
              phases_path: str | Path, masks_dir: str | Path, out_path: str | Path, status_path: str | Path,
              n_points: int = 48) -> list[Outcome[pd.DataFrame]]:
    """Guide points (source auto) of a shard from its inference outputs, under the runner's failure
    policy (:mod:`cmr_atlas.core.runner`); an exam without an inference result fails with
    ``no_inference_result``.  Writes the guide-point table and the ``exam_status`` rows."""
    outcomes = _run(exam_ids, cache_dir, landmarks_path, qc_path, phases_path, masks_dir, n_points, False)
    frames = [o.value for o in outcomes if o.ok and len(o.value)]
    write_table(pd.concat(frames, ignore_index=True) if frames else GUIDE_POINTS.empty(), out_path, GUIDE_POINTS)
    write_status(status_frame(outcomes, STAGE), status_path)
    return outcomes


def run_cycle(exam_ids: list[str], cache_dir: str | Path, *, landmarks_path: str | Path, qc_path: str | Path,
              phases_path: str | Path, masks_dir: str | Path, n_points: int = 48) -> list[Outcome[pd.DataFrame]]:
    """Guide points of every frame (:data:`CYCLE_GUIDE_POINTS`) of a shard's exams, under the
    runner's failure policy; an exam that fails here has failed :func:`run_shard` too (same
    inputs), whose ``exam_status`` rows report it."""
    return _run(exam_ids, cache_dir, landmarks_path, qc_path, phases_path, masks_dir, n_points, True)
