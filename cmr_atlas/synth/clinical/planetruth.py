"""Truth tables of the clinical renderers: contour and landmark frames with observers at ED and ES
(the rows of each plane come from :func:`cmr_atlas.synth.truth_rows.plane_truth`, shared with the
legacy protocol), and scar and fibrosis pixel lists.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import truth as T
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.observers import CONTOUR_BIAS_MM, LANDMARK_SD_MM


def truth_frames(contours: list[dict], marks: list[dict], planes: dict[tuple[str, int], SlicePlane],
                 rng: np.random.Generator, observers: int, all_frames: bool = False) -> dict[str, pd.DataFrame]:
    """``contours`` and ``landmarks`` tables of one renderer, with ``observers`` simulated observers
    at ED and ES, or on every image with ``all_frames`` (:func:`truth_rows.observer_truth`;
    contours and landmarks the observer model has no habits for are left to the truth)."""
    contours_df = tr.frame_from_contours(contours)
    marks_df = pd.DataFrame(marks) if marks else T.LANDMARKS.empty()
    if observers:
        known_c = contours_df[contours_df.surface.isin(CONTOUR_BIAS_MM["obs1"])]
        known_m = marks_df[marks_df.landmark.isin(LANDMARK_SD_MM)]
        oc, om = tr.observer_truth(rng, known_c, known_m, planes, observers, all_frames)
        contours_df = pd.concat([contours_df, oc], ignore_index=True)
        marks_df = pd.concat([marks_df, om], ignore_index=True)
    return {T.CONTOURS.name: contours_df, T.LANDMARKS.name: marks_df}


def tissue_pixel_rows(label: str, sequence: str, kind: str, view: str, sl: int, mask: np.ndarray) -> dict:
    """Columns of the ``tissue_pixels`` rows of one mask (concatenated by :func:`tissue_frame`)."""
    r, c = np.nonzero(mask)
    return {"exam_id": label, "sequence": sequence, "kind": kind, "view": view, "slice_index": sl,
            "row_px": r, "col_px": c}


def tissue_frame(parts: list[dict]) -> pd.DataFrame:
    parts = [p for p in parts if len(p["row_px"])]
    if not parts:
        return CT.TISSUE_PIXELS.empty()
    n = [len(p["row_px"]) for p in parts]
    data = {}
    for col in (c.name for c in CT.TISSUE_PIXELS.columns):
        vals = [p[col] for p in parts]
        data[col] = (np.repeat(np.array(vals, dtype=object), n) if np.ndim(vals[0]) == 0
                     else np.concatenate(vals).astype("int64"))
    df = pd.DataFrame(data)
    df["slice_index"] = df["slice_index"].astype("int64")
    return df
