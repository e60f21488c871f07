"""Saliency maps of the window classifier (the paper's Figure 4): the gradient of the window's
"acceptable" logit with respect to its input pixels (vanilla back-propagation), its magnitude
summed over the 4 frames of the window, shown over the window's ``t0`` frame."""

from __future__ import annotations

import numpy as np
import torch

from cmr_atlas.tiscout import windows as W
from cmr_atlas.tiscout.preprocess import network_frames


def window_saliency(model: torch.nn.Module, card: dict, frames: np.ndarray, spacing_mm: tuple[float, float],
                    t0: list[int]) -> list[tuple[np.ndarray, np.ndarray, float]]:
    """For each ``t0`` (frames ordered by TI): ``(t0 image, saliency map normalised to [0, 1],
    P(acceptable))`` on the network grid."""
    x = network_frames(frames, spacing_mm, int(card["input"]["size"]), float(card["input"]["fov_mm"]))
    win = W.windows(x)
    out = []
    model.eval()
    for t in t0:
        xi = torch.from_numpy(np.array(win[t - W.T0_OFFSET], dtype=np.float32))[None].requires_grad_(True)
        with torch.enable_grad():
            logit = model(xi)[0]
            logit.backward()
        sal = xi.grad[0].abs().sum(0).numpy()
        out.append((x[t], sal / max(float(sal.max()), 1e-12), float(torch.sigmoid(logit.detach()))))
    return out
