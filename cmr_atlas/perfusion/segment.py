"""2D+T segmentation of a motion-corrected perfusion slice: background, LV cavity, myocardium, RV.

Input (Xue et al. 2020, scaled to a CPU): the dynamic frames around the bolus passage as channels
(``offsets`` heartbeats relative to the frame where the heart region is brightest, so the RV,
LV and myocardial enhancement are all in), resampled bilinearly to a square grid of fixed spacing
centred on the heart (the motion correction's window centre), divided by the stack's 99.5th
percentile.  The network (:class:`~cmr_atlas.nets.resunet.ResUNet`) gives class probabilities on
that grid; they are resampled back to the slice's pixels and the most probable class taken.
Grid, offsets and class names come from the model card.
"""

from __future__ import annotations

from pathlib import Path

import contourpy
import numpy as np
import torch
from scipy import ndimage

from cmr_atlas.nets import registry
from cmr_atlas.nets.runtime import autocast, prepare_model

MODEL_NAME = "perf_seg"
CLASSES = ("background", "lv_cavity", "myocardium", "rv_cavity")
BACKGROUND, CAVITY, MYOCARDIUM, RV = range(4)
PEAK_RADIUS_MM = 30.0


def peak_frame(dyn: np.ndarray, centre_rc: np.ndarray, pixel_mm: float) -> int:
    """Dynamic frame where the mean signal of the heart region (a disc around ``centre_rc``) peaks."""
    rr, cc = np.mgrid[: dyn.shape[1], : dyn.shape[2]]
    disc = np.hypot(rr - centre_rc[0], cc - centre_rc[1]) * pixel_mm <= PEAK_RADIUS_MM
    return int(np.argmax(dyn[:, disc].mean(axis=1)))


def grid_coords(centre_rc: np.ndarray, pixel_mm: tuple[float, float], spacing_mm: float, size: int) -> np.ndarray:
    """Slice pixel coordinates (2, size, size) of every grid pixel."""
    k = (np.arange(size) - (size - 1) / 2.0) * spacing_mm
    return np.stack(np.meshgrid(centre_rc[0] + k / pixel_mm[0], centre_rc[1] + k / pixel_mm[1], indexing="ij"))


def net_input(dyn: np.ndarray, centre_rc: np.ndarray, pixel_mm: tuple[float, float], card: dict) -> np.ndarray:
    """Network input (channels, size, size) float32 of one motion-corrected slice's dynamic frames."""
    g = card["input"]
    t0 = peak_frame(dyn, centre_rc, float(np.mean(pixel_mm)))
    idx = np.clip(t0 + np.asarray(g["frame_offsets"]), 0, len(dyn) - 1)
    coords = grid_coords(centre_rc, pixel_mm, float(g["spacing_mm"]), int(g["size"]))
    x = np.stack([ndimage.map_coordinates(dyn[i], coords, order=1, mode="constant", cval=0.0) for i in idx])
    scale = np.percentile(x, 99.5)
    return (x / scale if scale > 0 else x).astype(np.float32)


def to_slice(probs: np.ndarray, centre_rc: np.ndarray, pixel_mm: tuple[float, float], spacing_mm: float,
             shape: tuple[int, int]) -> np.ndarray:
    """Class probabilities (K, size, size) on the grid -> (K, R, C) on the slice (background
    outside the grid)."""
    size = probs.shape[-1]
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    gi = (rr - centre_rc[0]) * pixel_mm[0] / spacing_mm + (size - 1) / 2.0
    gj = (cc - centre_rc[1]) * pixel_mm[1] / spacing_mm + (size - 1) / 2.0
    out = np.stack([ndimage.map_coordinates(p, [gi, gj], order=1, mode="constant", cval=0.0) for p in probs])
    outside = (gi < 0) | (gi > size - 1) | (gj < 0) | (gj > size - 1)
    out[BACKGROUND][outside] = 1.0
    return out


def load_segmenter(models_dir: str | Path, name: str = MODEL_NAME) -> tuple[torch.nn.Module, dict]:
    """The shipped perfusion network (checksum verified by the registry) in eval mode, and its card."""
    model, card = registry.load_model(name, models_dir)
    return prepare_model(model.eval()), card


def predict(model: torch.nn.Module, x: np.ndarray, precision: torch.dtype | None = None) -> np.ndarray:
    """Softmax probabilities (B, K, size, size) of inputs ``x`` (B, channels, size, size)."""
    with torch.inference_mode(), autocast(torch.device("cpu"), precision):
        logits = model(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
    return torch.softmax(logits.float(), dim=1).numpy()


def contours(probs: np.ndarray, level: float = 0.5) -> dict[str, np.ndarray]:
    """Sub-pixel LV contours of a slice's class probabilities ``probs`` (K, R, C): ``endo`` the
    ``level`` iso-line of P(LV cavity), ``epi`` that of P(cavity) + P(myocardium), each (N, 2)
    (row, col) pixels, closed (last point = first), the longest closed line where several are; a
    surface without one is left out.  The class map's pixel edges are a staircase of the slice's
    pixels (2-3 mm in perfusion); these lines follow the network's own (interpolated) boundary."""
    out = {}
    for name, z in (("endo", probs[CAVITY]), ("epi", probs[CAVITY] + probs[MYOCARDIUM])):
        lines = contourpy.contour_generator(z=np.asarray(z, float), line_type="Separate").lines(level)
        closed = [ln for ln in lines if len(ln) > 3 and np.allclose(ln[0], ln[-1])]
        if closed:
            out[name] = max(closed, key=len)[:, ::-1].copy()  # contourpy's (x = col, y = row)
    return out


def clean_labels(labels: np.ndarray) -> np.ndarray:
    """Keep the largest connected LV cavity, myocardium and RV region (spurious specks elsewhere
    would pull the LV centre and the insertion points)."""
    out = np.zeros_like(labels)
    for c in (CAVITY, MYOCARDIUM, RV):
        lab, n = ndimage.label(labels == c)
        if n:
            sizes = ndimage.sum(np.ones_like(lab), lab, index=np.arange(1, n + 1))
            out[lab == 1 + int(np.argmax(sizes))] = c
    return out
