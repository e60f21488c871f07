"""Scout frames -> network input: a fixed field of view around the image centre, resampled to a
square grid, scaled by the series' own bright level.

Why the centre: a TI scout is planned on the heart (mid short axis or 4-chamber through the LV),
so the heart lies near the middle of the 128 x 128, 2.3-2.8 mm matrix; a 160 mm field of view
keeps the whole heart and some chest wall (the paper's saliency maps show the network also looks
at skeletal muscle) and drops the lungs and arms, without needing a localiser or any truth.
Intensities: divided by the 99th percentile of the cropped series, so that scanners' arbitrary
scales and receive-coil gains do not matter, while the frames' relative brightness (the
information the method needs) is kept.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

FOV_MM = 160.0
SCALE_PERCENTILE = 99.0


def network_frames(frames: np.ndarray, spacing_mm: tuple[float, float], size: int,
                   fov_mm: float = FOV_MM) -> np.ndarray:
    """``(T, size, size)`` float32: the central ``fov_mm`` square of every frame, resampled with
    antialiasing and scaled (see the module).  ``spacing_mm`` is DICOM PixelSpacing (row, col)."""
    f = np.asarray(frames, dtype=np.float32)
    if f.ndim != 3:
        raise ValueError(f"frames must be (T, rows, cols), got shape {f.shape}")
    crop = []
    for axis, sp in ((1, spacing_mm[0]), (2, spacing_mm[1])):
        n = int(round(fov_mm / float(sp)))
        have = f.shape[axis]
        if n > have:  # smaller field of view than ours: pad with background
            pad = [(0, 0)] * 3
            pad[axis] = ((n - have) // 2, n - have - (n - have) // 2)
            f = np.pad(f, pad)
            have = n
        start = (have - n) // 2
        crop.append(slice(start, start + n))
    f = f[:, crop[0], crop[1]]
    t = torch.from_numpy(np.ascontiguousarray(f))[:, None]
    out = F.interpolate(t, size=(size, size), mode="bilinear", antialias=True, align_corners=False)[:, 0].numpy()
    scale = float(np.percentile(out, SCALE_PERCENTILE))
    return out / scale if scale > 0 else out
