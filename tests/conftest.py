"""Tiny synthetic fixtures for the network tests: disks/rings and blobs on oblique planes."""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.imagecache import ExamImages


def oblique_plane(centre=(10.0, -20.0, 30.0), spacing=(1.25, 1.4), shape=(96, 80)) -> SlicePlane:
    rc = np.array([0.8, 0.6, 0.0])
    cc = np.array([0.0, 0.0, -1.0])
    return SlicePlane.centred(np.array(centre), rc, cc, spacing, shape)


def ring_image(plane: SlicePlane, centre_rc, r_in_mm, r_out_mm, rng=None):
    """Image with a bright disk (cavity) inside a dark ring (myocardium) on a mid-grey background."""
    rows, cols = plane.shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    d = np.hypot((r - centre_rc[0]) * plane.pixel_spacing_mm[0], (c - centre_rc[1]) * plane.pixel_spacing_mm[1])
    img = np.full(plane.shape, 100.0)
    img[d < r_out_mm] = 30.0
    img[d < r_in_mm] = 200.0
    if rng is not None:
        img = img + rng.normal(0, 5, img.shape)
    return img.astype(np.float32)


def circle_rc(centre_rc, radius_mm, plane, n=40):
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([centre_rc[0] + radius_mm / plane.pixel_spacing_mm[0] * np.sin(a),
                     centre_rc[1] + radius_mm / plane.pixel_spacing_mm[1] * np.cos(a)], 1)


def ring_exam(n_slices=3, n_frames=4, seed=0, noise=True) -> tuple[ExamImages, pd.DataFrame]:
    """A SAX stack of rings whose cavity shrinks over the frames, with truth-format contours."""
    rng = np.random.default_rng(seed)
    planes, sax, rows = [], [], []
    for s in range(n_slices):
        plane = oblique_plane(centre=(10.0, -20.0 + 8 * s, 30.0))
        planes.append(plane)
        frames = []
        for t in range(n_frames):
            r_in = 18.0 - 2.0 * t if s < n_slices - 1 else 0.0
            ctr = ((plane.shape[0] - 1) / 2 + 2, (plane.shape[1] - 1) / 2 - 3)
            frames.append(ring_image(plane, ctr, r_in, r_in + 8 if r_in else 0.0, rng if noise else None))
            if r_in:
                for surface, rad in (("endo", r_in), ("epi", r_in + 8)):
                    rc = circle_rc(ctr, rad, plane)
                    xyz = plane.pixel_to_patient(rc)
                    for i, (p, q) in enumerate(zip(xyz, rc)):
                        rows.append({"exam_id": "X1", "observer": "truth", "view": "sax", "slice_index": s,
                                     "frame": t, "phase": {0: "ED", n_frames - 1: "ES"}.get(t),
                                     "surface": surface, "point_index": i, "x_mm": p[0], "y_mm": p[1],
                                     "z_mm": p[2], "row_px": q[0], "col_px": q[1]})
        sax.append(frames)
    images = ExamImages("X1", np.asarray(sax, np.float32), planes, np.arange(n_frames) * 40.0)
    return images, pd.DataFrame(rows)
