"""Landmark heatmaps, whatever the image: Gaussian targets for training, sub-pixel points from
predicted maps, test-time rotations and the calibrated absent thresholds a model card carries.

Targets (after the heatmap method of Xue et al. 2021): one channel per landmark holding a Gaussian
normalised to a peak of 1, and a background channel ``1 - sum`` (clipped at 0) in channel 0.  An
absent landmark has an all-zero channel.  At inference the softmax channel's peak probability is
the landmark's confidence; below the absent threshold (the network card's calibrated one for the
image's sequence, view and landmark, :func:`card_thresholds`, else the caller's fallback) the
landmark is absent; otherwise its position is the weighted centroid of the blob around the peak
(pixels above half the peak, connected to it, weighted by probability minus the cut), which gives
sub-pixel positions.  The cine landmarks (:mod:`cmr_atlas.cine.landmarks`) and the perfusion RV
insertions (:mod:`cmr_atlas.perfusion.insertion_net`) decode with these.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable, Sequence

import numpy as np
from scipy import ndimage

if TYPE_CHECKING:
    import torch

# torch is imported where a function needs it: modules that only decode maps should not pay its import


def gaussian_targets(points: torch.Tensor, size: int, sigma_px: float,
                     amplitude: torch.Tensor | None = None) -> torch.Tensor:
    """Targets ``(B, K+1, size, size)`` from points ``(B, K, 2)`` (row, col; NaN = absent);
    ``amplitude (B, K)`` scales each landmark's Gaussian (default 1): the share of the depths an
    image averages that have the landmark, for partial-volume targets."""
    import torch

    b, k, _ = points.shape
    ax = torch.arange(size, dtype=torch.float32)
    present = torch.isfinite(points).all(-1)  # (B, K)
    p = torch.where(present[..., None], points, torch.zeros_like(points))
    dr = (ax[None, None, :] - p[..., 0:1]) ** 2  # (B, K, size)
    dc = (ax[None, None, :] - p[..., 1:2]) ** 2
    g = torch.exp(-(dr[..., :, None] + dc[..., None, :]) / (2 * sigma_px**2))
    g = g * present[..., None, None].float()
    if amplitude is not None:
        g = g * amplitude[..., None, None].to(g.dtype)
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
#    "zooms": [...],                    # test-time magnifications (unrotated), averaged with them
#    "absent_threshold": {sequence: {view: {landmark: threshold}}},   # calibrated per landmark
#    "calibration": {...}}              # how and on which (validation) exams they were chosen
# (written by benchmarks/landmark_calibration.py); without it, one unrotated pass and the
# config's landmarks.absent_threshold for every landmark.


def card_rotations(card: dict | None) -> tuple[float, ...]:
    """Test-time rotations (degrees) of a landmark network (its card's ``decode``), ``(0,)`` without."""
    rot = ((card or {}).get("decode") or {}).get("rotations_deg")
    return tuple(float(a) for a in rot) if rot else (0.0,)


def card_zooms(card: dict | None) -> tuple[float, ...]:
    """Test-time magnifications of a landmark network (its card's ``decode.zooms``; none without):
    each an extra unrotated look, averaged with the rotations' (docs/models.md, "Test-time zooms")."""
    return tuple(float(z) for z in ((card or {}).get("decode") or {}).get("zooms") or ())


def card_neighbour_frames(card: dict | None) -> int:
    """Cine frames on each side whose softmax maps an image's are averaged with (its card's
    ``decode.neighbour_frames``; 0 without): more looks at nearly the same anatomy, for the SAX
    images at the ends of the LV, where one look is a blend of depths (docs/models.md,
    "Neighbouring cine frames"; on long-axis cines measured and not shipped)."""
    return int(((card or {}).get("decode") or {}).get("neighbour_frames", 0))


def card_neighbour_slices(card: dict | None) -> int:
    """SAX slices on each side that a network's inputs carry as channels (its card's
    ``input.neighbour_slices``; 0: one slice): a network trained on ``train data
    --sax-neighbour-slices`` (docs/models.md, "Neighbouring slices as input channels")."""
    return int(((card or {}).get("input") or {}).get("neighbour_slices", 0))


def card_thresholds(card: dict | None, sequence: str | None, view: str, names: Sequence[str],
                    fallback: float) -> np.ndarray:
    """Per landmark channel, the absent threshold the card's ``decode`` calibrated for images of
    ``sequence`` and ``view``; ``fallback`` (the config's ``landmarks.absent_threshold``) where it
    has none (no calibration, a sequence it was not calibrated on, or the sequence not known)."""
    table = (((card or {}).get("decode") or {}).get("absent_threshold") or {}).get(sequence or "", {}).get(view, {})
    return np.array([float(table.get(n, fallback)) for n in names], dtype=float)


def rotate_maps(t: torch.Tensor, degrees: float, zoom: float = 1.0) -> torch.Tensor:
    """``t (B, C, H, W)`` rotated by ``degrees`` and magnified by ``zoom`` about the grid's centre
    (bilinear, zeros outside: whitened images are zero-mean, so the padding equals the image mean
    as in ``prepare``).  ``rotate_maps(rotate_maps(t, d, z), -d, 1 / z)`` is ``t`` up to resampling."""
    import torch
    import torch.nn.functional as F

    if degrees == 0.0 and zoom == 1.0:
        return t
    th = np.deg2rad(degrees)
    a = torch.tensor([[np.cos(th), -np.sin(th), 0.0], [np.sin(th), np.cos(th), 0.0]], dtype=t.dtype) / zoom
    grid = F.affine_grid(a[None].expand(t.shape[0], 2, 3), list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def rotation_averaged_probs(run: Callable[[np.ndarray], torch.Tensor], x: np.ndarray,
                            rotations_deg: Sequence[float], zooms: Sequence[float] = ()) -> torch.Tensor:
    """Softmax maps ``(N, K+1, n, n)`` of ``x (N, n, n)`` (or ``(N, C, n, n)``, a network whose
    inputs carry channels: each turned alike) averaged over test-time looks: each
    rotation, then each zoom unrotated; each look's output (``run``: images -> logits) mapped back
    onto the original grid.  The rotations stay within the training augmentation's range (+-30
    degrees) and the zooms within its scaling, and neither changes the image's handedness, so the
    anterior/inferior names stay meaningful (a flip would not)."""
    import torch

    looks = [(float(d), 1.0) for d in rotations_deg] + [(0.0, float(z)) for z in zooms]
    channels = np.ndim(x) == 4
    xt = torch.from_numpy(np.ascontiguousarray(x, np.float32))  # once, for every turned look
    xt = xt if channels else xt[:, None]
    acc = None
    for deg, zoom in looks:
        turned = rotate_maps(xt, deg, zoom)
        xr = x if (deg, zoom) == (0.0, 1.0) else (turned.numpy() if channels else turned[:, 0].numpy())
        p = rotate_maps(torch.softmax(run(xr), 1), -deg, 1.0 / zoom)
        acc = p if acc is None else acc + p
    return acc / len(looks)
