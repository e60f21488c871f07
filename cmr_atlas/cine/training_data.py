"""Annotated training samples on the network grid, built from images + truth-format annotations.

An exam's annotations come in the synthetic truth format (:mod:`cmr_atlas.synth.truth`):
``contours`` and ``landmarks`` frames with patient coordinates ``x_mm, y_mm, z_mm`` of what an
observer traced on each image.  Points are projected onto the image's own plane
(:meth:`SlicePlane.patient_to_pixel`), so truth slices are matched to image slices by geometry
(nearest plane), never by index.  Samples are stored as arrays (float16 images) with an exam
index, so splits are exam-wise.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane, nearest_plane
from cmr_atlas.core.imagecache import ExamImages
from cmr_atlas.core.vocab import SURFACES
from cmr_atlas.cine.landmarks import MODEL_LANDMARKS, MODEL_VIEWS, landmark_names
from cmr_atlas.cine.segmentation import label_mask
from cmr_atlas.nets.preprocess import Grid, prepare, slice_with_neighbours, to_net_px
from cmr_atlas.nets.samples import VIEW_CODES, Samples

def _xyz(df: pd.DataFrame) -> np.ndarray:
    return df[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float)


def truth_slice_map(sax_contours: pd.DataFrame, planes: list[SlicePlane]) -> dict[int, int]:
    """``{image slice index: annotated slice_index}``, matched by geometry (not by index)."""
    mapping = {}
    for ts, g in sax_contours.groupby("slice_index"):
        j = nearest_plane(_xyz(g), planes)
        if j is not None:
            mapping[int(j)] = int(ts)
    return mapping


def contour_polygons(rows: pd.DataFrame, plane: SlicePlane) -> dict[str, np.ndarray]:
    """``{surface: (N, 2) original-pixel (row, col)}`` of one slice and frame's contours (>= 3 points)."""
    polys = {}
    for surface in SURFACES:
        pts = rows[rows["surface"] == surface].sort_values("point_index")
        if len(pts) >= 3:
            polys[surface] = plane.patient_to_pixel(_xyz(pts))[0]
    return polys


def select_frames(annot: pd.DataFrame, n_frames: int, extra: int, rng: np.random.Generator) -> list[int]:
    """ED and ES frames (from the annotation's ``phase``) plus ``extra`` other random frames."""
    key = annot.dropna(subset=["phase"]).groupby("phase")["frame"].first().to_dict() if "phase" in annot else {}
    frames = sorted({int(f) for f in key.values()})
    others = [f for f in range(n_frames) if f not in frames]
    if extra and others:
        frames += [int(f) for f in rng.choice(others, size=min(extra, len(others)), replace=False)]
    return sorted(frames)


def segmentation_samples(images: ExamImages, contours: pd.DataFrame, grid: Grid,
                         rng: np.random.Generator, extra_frames: int = 2,
                         observer: str = "truth") -> Samples:
    """SAX image + label mask pairs of one exam (slices with no contour are kept as background
    samples, so the network learns to leave apical/basal non-LV slices empty)."""
    c = contours[(contours["observer"] == observer) & (contours["view"] == "sax")]
    frames = select_frames(c, images.n_frames, extra_frames, rng)
    imgs, labs = [], []
    mapping = truth_slice_map(c, images.sax_planes)
    n = grid.size
    for s, plane in enumerate(images.sax_planes):
        prepped = prepare(images.sax[s, frames], plane, grid)
        for k, f in enumerate(frames):
            polys = {}
            if s in mapping:
                g = c[(c["slice_index"] == mapping[s]) & (c["frame"] == f)]
                polys = {k: to_net_px(rc, plane, grid) for k, rc in contour_polygons(g, plane).items()}
                if "epi" not in polys and "endo" not in polys and len(g) == 0:
                    continue  # frame not annotated on an annotated slice: skip, not background
            imgs.append(prepped[k])
            labs.append(label_mask((n, n), polys.get("endo"), polys.get("epi")))
    m = len(imgs)
    return Samples(np.asarray(imgs, dtype=np.float16).reshape(m, n, n), np.zeros(m, np.int32),
                   np.zeros(m, np.int8), [images.exam_id],
                   labels=np.asarray(labs, dtype=np.uint8).reshape(m, n, n))


def landmark_samples(images: ExamImages, landmarks: pd.DataFrame, model: str, grid: Grid,
                     rng: np.random.Generator, extra_frames: int = 2, observer: str = "truth",
                     sax_frames: str = "ed_es", neighbour_slices: int = 0) -> Samples:
    """Images of the views served by landmark ``model`` ('lax' or 'sax') with their points.

    SAX: every slice at the selected frames, including slices without landmarks (explicit
    negatives); LAX: the selected frames of each cine.  ``neighbour_slices`` k > 0 (SAX only):
    each image carries the k slices either side of it at the same frame as channels, on its own
    grid (:func:`~cmr_atlas.nets.preprocess.slice_with_neighbours`): images ``(M, 2k+1, n, n)``.
    """
    if neighbour_slices < 0:
        raise ValueError(f"neighbour_slices must be >= 0 (slices either side), not {neighbour_slices}")
    if neighbour_slices and model != "sax":
        raise ValueError(f"neighbouring slices are a SAX stack's, not the {model} views'")
    lm = landmarks[landmarks["observer"] == observer]
    k = len(MODEL_LANDMARKS[model])
    imgs, pts, views = [], [], []
    n = grid.size
    for view in MODEL_VIEWS[model]:
        v = lm[lm["view"] == view]
        names = landmark_names(view)
        if view == "sax":
            stacks = [(images.sax[s], p, s) for s, p in enumerate(images.sax_planes)]
            mapping = {}
            for ts, g in v.groupby("slice_index"):
                j = nearest_plane(_xyz(g), images.sax_planes)
                if j is not None:
                    mapping[int(j)] = int(ts)
        else:
            if view not in images.lax:
                continue
            stacks = [(images.lax[view], images.lax_planes[view], 0)]
            mapping = {0: int(v["slice_index"].iloc[0])} if len(v) else {}
        if not len(v):
            continue
        frames = select_frames(v, stacks[0][0].shape[0], extra_frames if view != "sax" or sax_frames != "ed_es" else 0, rng)
        for cine, plane, s in stacks:
            prepped = (slice_with_neighbours(images.sax[:, frames], images.sax_planes, s, neighbour_slices, grid)
                       if neighbour_slices else prepare(cine[frames], plane, grid))
            for i, f in enumerate(frames):
                p = np.full((k, 2), np.nan, dtype=np.float32)
                if s in mapping:
                    g = v[(v["slice_index"] == mapping[s]) & (v["frame"] == f)]
                    for j, name in enumerate(names):
                        row = g[g["landmark"] == name]
                        if len(row):
                            rc, _ = plane.patient_to_pixel(_xyz(row.iloc[:1]))
                            p[j] = to_net_px(rc, plane, grid)[0]
                imgs.append(prepped[i])
                pts.append(p)
                views.append(VIEW_CODES[view])
    m = len(imgs)
    shape = (m, 2 * neighbour_slices + 1, n, n) if neighbour_slices else (m, n, n)
    return Samples(np.asarray(imgs, dtype=np.float16).reshape(shape), np.zeros(m, np.int32),
                   np.asarray(views, dtype=np.int8), [images.exam_id],
                   points=np.asarray(pts, dtype=np.float32).reshape(m, k, 2))
