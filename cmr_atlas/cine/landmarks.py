"""Landmark heatmaps: Gaussian targets for training and sub-pixel points from predicted maps.

Targets (after the heatmap method of Xue et al. 2021): one channel per landmark holding a Gaussian
normalised to a peak of 1, and a background channel ``1 - sum`` (clipped at 0) in channel 0.  An
absent landmark has an all-zero channel.  At inference the softmax channel's peak probability is
the landmark's confidence; below the absent threshold (the network card's calibrated one for the
image's sequence, view and landmark, :func:`card_thresholds`, else the config's
``landmarks.absent_threshold``) the landmark is absent; otherwise its
position is the weighted centroid of the blob around the peak (pixels above half the peak,
connected to it, weighted by probability minus the cut), which gives sub-pixel positions.

Model channels are generic per model (``MODEL_LANDMARKS``); the view decides the names
(:data:`cmr_atlas.core.vocab.LANDMARKS`): on the long-axis model ``mv_a``/``mv_b`` are
``mv_anterior``/``mv_inferior`` on a 2CH image, ``mv_septal``/``mv_lateral`` on a 4CH image and
``lvot_anteroseptal``/``mv_inferolateral`` on a 3CH image (:data:`CHANNEL_ORDER`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from scipy import ndimage

from cmr_atlas.core.columns import EXAM_ID, FRAME, PATIENT_XYZ_MM, SLICE_INDEX, VIEW
from cmr_atlas.core.tables import Column, TableSchema, register
from cmr_atlas.core.vocab import LANDMARKS

if TYPE_CHECKING:
    import torch

# torch is imported where a function needs it: the tissue stage's shards without LGE or T1 maps
# read this module (the landmarks table's schema) and should not pay torch's import


LANDMARKS_AUTO = register(TableSchema(
    name="landmarks", row="landmark per image",
    description=(
        "CNN landmarks: long-axis views on every frame (lax_3ch where the exam's images have it and "
        "the long-axis network was trained on it), SAX slices at ED and ES. Pixel positions "
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
        Column("present", "bool", "detected: peak probability >= the absent threshold the network's card "
               "calibrated for the image's sequence, view and landmark, else landmarks.absent_threshold; "
               "a SAX lv_centre also where the segmentation has a plausible LV cavity (its centroid; "
               "landmarks.lv_centre_from_mask), with the heatmap's lower peak as confidence",
               nullable=False),
        Column("method", "str", "heatmap or vgg"),
        Column("sequence", "str", "the cine's acquisition contrast from ingest's series table "
               "(cmr_atlas.core.vocab.SEQUENCES: cine_gre, cine_ssfp, lge, t1map); null when not known"),
    ),
))

# model -> views it serves; channel k+1 of that model is landmark k of the view's tuple
# (a model card's ``views`` says which of them a shipped network was trained on)
MODEL_VIEWS: dict[str, tuple[str, ...]] = {"lax": ("lax_2ch", "lax_4ch", "lax_3ch"), "sax": ("sax",)}
MODEL_LANDMARKS: dict[str, tuple[str, ...]] = {
    "lax": ("mv_a", "mv_b", "apex"),
    "sax": LANDMARKS["sax"],
}


def view_model(view: str) -> str:
    for model, views in MODEL_VIEWS.items():
        if view in views:
            return model
    raise ValueError(f"no landmark model for view {view!r}")


# Channel order where it differs from the vocabulary's: on every long-axis view channel ``mv_a``
# is the anterior/septal side of the mitral annulus (2CH anterior, 4CH septal, 3CH the anteroseptal
# LVOT point), so similar-looking images of different views ask for the same channel layout (with
# the vocabulary's 3CH order a mixed 2CH/3CH/4CH network swapped the mitral points; docs/models.md).
CHANNEL_ORDER: dict[str, tuple[str, ...]] = {"lax_3ch": ("lvot_anteroseptal", "mv_inferolateral", "apex")}


def landmark_names(view: str, card: dict | None = None) -> tuple[str, ...]:
    """Names of the model channels 1..K on an image of ``view``: the order the network of ``card``
    was trained with (its ``landmarks_by_view``) where the card records it, else
    :data:`CHANNEL_ORDER` or the vocabulary's."""
    trained = (card or {}).get("landmarks_by_view", {})
    if view in trained:
        return tuple(trained[view])
    return CHANNEL_ORDER.get(view, LANDMARKS[view])


def gaussian_targets(points: torch.Tensor, size: int, sigma_px: float) -> torch.Tensor:
    """Targets ``(B, K+1, size, size)`` from points ``(B, K, 2)`` (row, col; NaN = absent)."""
    import torch

    b, k, _ = points.shape
    ax = torch.arange(size, dtype=torch.float32)
    present = torch.isfinite(points).all(-1)  # (B, K)
    p = torch.where(present[..., None], points, torch.zeros_like(points))
    dr = (ax[None, None, :] - p[..., 0:1]) ** 2  # (B, K, size)
    dc = (ax[None, None, :] - p[..., 1:2]) ** 2
    g = torch.exp(-(dr[..., :, None] + dc[..., None, :]) / (2 * sigma_px**2))
    g = g * present[..., None, None].float()
    bg = (1.0 - g.sum(1, keepdim=True)).clamp_min(0.0)
    return torch.cat([bg, g], dim=1)


@dataclass(frozen=True)
class Detection:
    row: float          # network pixel row (NaN when absent)
    col: float
    confidence: float   # peak probability
    present: bool


def decode_heatmap(prob: np.ndarray, absent_threshold: float, blob_fraction: float = 0.5) -> Detection:
    """Sub-pixel point from one landmark probability map ``(H, W)``; absent below
    ``absent_threshold`` (the config's ``landmarks.absent_threshold``)."""
    peak_idx = np.unravel_index(int(np.argmax(prob)), prob.shape)
    peak = float(prob[peak_idx])
    if not np.isfinite(peak) or peak < absent_threshold:
        return Detection(float("nan"), float("nan"), max(peak, 0.0), False)
    cut = blob_fraction * peak
    labels, _ = ndimage.label(prob >= cut)
    blob = labels == labels[peak_idx]
    # weights fall to zero at the blob's edge, so which pixels made the cut barely matters
    w = np.where(blob, prob - cut, 0.0)
    r, c = ndimage.center_of_mass(w)
    return Detection(float(r), float(c), peak, True)


def decode_arrays(probs: np.ndarray, absent_threshold: float | Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`decode_batch` as arrays: network points ``(B, K, 2)`` (row, col; NaN when absent),
    present ``(B, K)`` and confidence ``(B, K)``."""
    dets = decode_batch(probs, absent_threshold)
    rc = np.array([[(d.row, d.col) for d in ds] for ds in dets], dtype=float)
    return rc, np.array([[d.present for d in ds] for ds in dets]), np.array([[d.confidence for d in ds] for ds in dets])


def decode_batch(probs: np.ndarray, absent_threshold: float | Sequence[float]) -> list[list[Detection]]:
    """``probs (B, K+1, H, W)`` softmax output -> per image, one :class:`Detection` per landmark;
    ``absent_threshold``: one for every landmark, or one per landmark channel (K)."""
    k_n = probs.shape[1] - 1 if np.ndim(probs) == 4 else 0
    thr = np.broadcast_to(np.asarray(absent_threshold, dtype=float), (k_n,))
    return [[decode_heatmap(p[k], float(thr[k - 1])) for k in range(1, p.shape[0])] for p in probs]


# Calibrated decoding (issue 16): a landmark network's card may carry ``decode``:
#   {"rotations_deg": [...],            # test-time rotations whose probability maps are averaged
#    "absent_threshold": {sequence: {view: {landmark: threshold}}},   # calibrated per landmark
#    "calibration": {...}}              # how and on which (validation) exams they were chosen
# (written by benchmarks/landmark_calibration.py); without it, one unrotated pass and the
# config's landmarks.absent_threshold for every landmark.


def card_rotations(card: dict | None) -> tuple[float, ...]:
    """Test-time rotations (degrees) of a landmark network (its card's ``decode``), ``(0,)`` without."""
    rot = ((card or {}).get("decode") or {}).get("rotations_deg")
    return tuple(float(a) for a in rot) if rot else (0.0,)


def card_thresholds(card: dict | None, sequence: str | None, view: str, names: Sequence[str],
                    fallback: float) -> np.ndarray:
    """Per landmark channel, the absent threshold the card's ``decode`` calibrated for images of
    ``sequence`` and ``view``; ``fallback`` (the config's ``landmarks.absent_threshold``) where it
    has none (no calibration, a sequence it was not calibrated on, or the sequence not known)."""
    table = (((card or {}).get("decode") or {}).get("absent_threshold") or {}).get(sequence or "", {}).get(view, {})
    return np.array([float(table.get(n, fallback)) for n in names], dtype=float)


def rotate_maps(t: torch.Tensor, degrees: float) -> torch.Tensor:
    """``t (B, C, H, W)`` rotated by ``degrees`` about the grid's centre (bilinear, zeros outside:
    whitened images are zero-mean, so the padding equals the image mean as in ``prepare``)."""
    import torch
    import torch.nn.functional as F

    if degrees == 0.0:
        return t
    th = np.deg2rad(degrees)
    a = torch.tensor([[np.cos(th), -np.sin(th), 0.0], [np.sin(th), np.cos(th), 0.0]], dtype=t.dtype)
    grid = F.affine_grid(a[None].expand(t.shape[0], 2, 3), list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_averaged_probs(run: Callable[[np.ndarray], torch.Tensor], x: np.ndarray,
                            rotations_deg: Sequence[float]) -> torch.Tensor:
    """Softmax maps ``(N, K+1, n, n)`` of ``x (N, n, n)`` averaged over test-time rotations: each
    rotated input's output (``run``: images -> logits) rotated back onto the unrotated grid.  The
    rotations stay within the training augmentation's range (+-30 degrees), and a rotation keeps
    the image's handedness, so the anterior/inferior names stay meaningful (a flip would not)."""
    import torch

    acc = None
    for deg in rotations_deg:
        xr = x if deg == 0.0 else rotate_maps(torch.from_numpy(np.ascontiguousarray(x, np.float32))[:, None],
                                              float(deg))[:, 0].numpy()
        p = rotate_maps(torch.softmax(run(xr), 1), -float(deg))
        acc = p if acc is None else acc + p
    return acc / len(rotations_deg)
