"""Truth rows of one clinical image plane: LV endo/epi and RV endo contours and the landmark set of
its view, at the plane's breath-hold displacement, for any sequence (cine, LGE, T1 map); observer
versions at ED and ES; scar and fibrosis pixel lists.

Everything comes from the geometry the images are rendered from (:mod:`cmr_atlas.synth.truthgeom`),
so a truth point mapped through the written DICOM geometry lands where the renderer drew it.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth as T
from cmr_atlas.synth import truth_rows as tr
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.clinical import truth as CT
from cmr_atlas.synth.observers import CONTOUR_BIAS_MM, LANDMARK_SD_MM


def plane_truth(label: str, heart: an.Heart, sequence: str, view: str, sl: int, plane: SlicePlane,
                shift_mm: np.ndarray, frames: Iterable[tuple[int, float, str | None]]) -> tuple[list[dict], list[dict]]:
    """Contour parts (:func:`truth_rows.contour_rows`) and landmark rows of one plane for
    ``frames`` = (frame index, activation w, phase ED/ES/None)."""
    contours, marks = [], []

    def mark(f, phase, name, p):
        marks.append(tr.landmark_row(label, "truth", sequence, view, sl, f, phase, name, p, plane))

    rv_grid = tg.RVGrid(heart, plane, shift_mm)
    for f, w, phase in frames:
        centre = tg.axis_point_in_plane(heart, plane, shift_mm, w)
        for surface in ("endo", "epi"):
            pts = tg.plane_contour(heart, w, plane, shift_mm, surface, centre)
            if pts is None:
                continue
            if view != "sax":
                pts = tg.lax_open_contour(heart, w, pts, shift_mm)
            contours.append(tr.contour_rows(label, "truth", sequence, view, sl, f, phase, surface, pts, plane))
            if view == "sax" and surface == "epi":
                for n, p in tr.name_pair(heart, view, tg.rv_insertions(heart, w, pts, shift_mm), shift_mm).items():
                    mark(f, phase, n, p)
            if view == "sax" and surface == "endo":
                c2 = tg.polygon_centroid(plane.in_plane_mm(pts))
                mark(f, phase, "lv_centre", plane.position_mm + c2[0] * plane.row_cosine + c2[1] * plane.col_cosine)
        rv = tg.rv_endo_contour(heart, w, plane, shift_mm, rv_grid)
        if rv is not None:
            contours.append(tr.contour_rows(label, "truth", sequence, view, sl, f, phase, "rv_endo", rv, plane))
        if view != "sax":
            named = tr.name_pair(heart, view, tg.mitral_hinges(heart, w, plane, shift_mm), shift_mm)
            named["apex"] = tg.apex_point(heart, w, plane, shift_mm)
            for n, p in named.items():
                mark(f, phase, n, p)
    return contours, marks


def truth_frames(contours: list[dict], marks: list[dict], planes: dict[tuple[str, int], SlicePlane],
                 rng: np.random.Generator, observers: int) -> dict[str, pd.DataFrame]:
    """``contours`` and ``landmarks`` tables of one renderer, with ``observers`` simulated observers
    at ED and ES (:func:`truth_rows.observer_truth`; contours and landmarks the observer model has
    no habits for are left to the truth)."""
    contours_df = tr.frame_from_contours(contours)
    marks_df = pd.DataFrame(marks) if marks else T.LANDMARKS.empty()
    if observers:
        known_c = contours_df[contours_df.surface.isin(CONTOUR_BIAS_MM["obs1"])]
        known_m = marks_df[marks_df.landmark.isin(LANDMARK_SD_MM)]
        oc, om = tr.observer_truth(rng, known_c, known_m, planes, observers)
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
