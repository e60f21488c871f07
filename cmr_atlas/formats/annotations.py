"""cmr-atlas's own annotation rows, as every importer returns them and every exporter reads them.

An annotations folder holds ``contours.parquet`` and ``landmarks.parquet`` with the columns of
:data:`cmr_atlas.synth.truth.CONTOURS` and :data:`~cmr_atlas.synth.truth.LANDMARKS` (patient mm,
``exam_id`` = exam folder name, view, slice_index, frame, phase, surface or landmark,
point_index, observer) -- what the manual path (:func:`cmr_atlas.cine.guidepoints.manual_guide_points`)
reads.  Imported contours may carry surfaces beyond the LV's ``endo``/``epi``: ``rv_endo`` and
``rv_epi`` (the LV model fit uses only endo/epi).

Formats that do not record the cardiac phase get it from :func:`assign_phases`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.segmentation import mask_contours
from cmr_atlas.core.tables import write_table
from cmr_atlas.dicom.views import RV_DIRECTION
from cmr_atlas.formats.dicom_index import ImageRef
from cmr_atlas.synth.truth import CONTOURS, LANDMARKS

# Pairs of landmarks that a format names alike (one CAP type, or one cvi42 point list); the first
# of each pair is the one further along the direction (LPS): anterior is -y and superior +z, the
# septum lies towards the RV (:data:`cmr_atlas.dicom.views.RV_DIRECTION`).
_ANTERIOR_SUPERIOR = np.array([0.0, -1.0, 1.0]) / np.sqrt(2.0)
LANDMARK_PAIRS: dict[str, tuple[tuple[str, str], np.ndarray]] = {
    "sax": (("rv_insert_anterior", "rv_insert_posterior"), _ANTERIOR_SUPERIOR),
    "lax_2ch": (("mv_anterior", "mv_inferior"), _ANTERIOR_SUPERIOR),
    "lax_4ch": (("mv_septal", "mv_lateral"), RV_DIRECTION),
}


@dataclass
class Annotations:
    """Contour and landmark rows in cmr-atlas's annotation format."""

    contours: pd.DataFrame
    landmarks: pd.DataFrame

    @classmethod
    def empty(cls) -> "Annotations":
        return cls(CONTOURS.empty(), LANDMARKS.empty())

    @classmethod
    def from_rows(cls, contours: Sequence[pd.DataFrame] = (), landmarks: Sequence[pd.DataFrame] = ()) -> "Annotations":
        """Concatenate row frames (either list may be empty)."""
        c = [f for f in contours if len(f)]
        lm = [f for f in landmarks if len(f)]
        return cls(pd.concat(c, ignore_index=True) if c else CONTOURS.empty(),
                   pd.concat(lm, ignore_index=True) if lm else LANDMARKS.empty())

    @classmethod
    def concat(cls, parts: list["Annotations"]) -> "Annotations":
        return cls.from_rows([p.contours for p in parts], [p.landmarks for p in parts])

    def write(self, folder: str | Path) -> dict[str, Path]:
        """Write the annotations folder (``contours.parquet``, ``landmarks.parquet``)."""
        folder = Path(folder)
        return {"contours": write_table(self.contours, folder / "contours.parquet", CONTOURS),
                "landmarks": write_table(self.landmarks, folder / "landmarks.parquet", LANDMARKS)}


def contour_rows(ref: ImageRef, surface: str, rc: np.ndarray, observer: str,
                 phase: str | None = None) -> pd.DataFrame:
    """Rows of one contour traced on image ``ref``: ``rc (N, 2)`` pixel (row, col), in order."""
    rc = np.asarray(rc, dtype=float).reshape(-1, 2)
    xyz = ref.plane.pixel_to_patient(rc)
    return pd.DataFrame({
        "exam_id": ref.exam, "observer": observer, "sequence": None, "condition": None, "view": ref.view,
        "slice_index": ref.slice_index, "frame": ref.frame, "phase": phase, "surface": surface, "point_index": np.arange(len(rc)),
        "x_mm": xyz[:, 0], "y_mm": xyz[:, 1], "z_mm": xyz[:, 2], "row_px": rc[:, 0], "col_px": rc[:, 1],
    }, columns=CONTOURS.column_names)


def landmark_rows(ref: ImageRef, names: list[str], rc: np.ndarray, observer: str,
                  phase: str | None = None) -> pd.DataFrame:
    """Rows of landmarks ``names`` on image ``ref`` at pixel ``rc (N, 2)`` (row, col)."""
    rc = np.asarray(rc, dtype=float).reshape(-1, 2)
    xyz = ref.plane.pixel_to_patient(rc)
    return pd.DataFrame({
        "exam_id": ref.exam, "observer": observer, "sequence": None, "condition": None, "view": ref.view,
        "slice_index": ref.slice_index, "frame": ref.frame, "phase": phase, "landmark": list(names),
        "x_mm": xyz[:, 0], "y_mm": xyz[:, 1], "z_mm": xyz[:, 2], "row_px": rc[:, 0], "col_px": rc[:, 1],
    }, columns=LANDMARKS.column_names)


def name_pair(view: str, xyz: np.ndarray) -> list[str]:
    """Names of two same-type landmarks of ``view`` (see :data:`LANDMARK_PAIRS`), by geometry."""
    (first, second), direction = LANDMARK_PAIRS[view]
    a, b = np.asarray(xyz, dtype=float) @ direction
    return [first, second] if a >= b else [second, first]


def _cavity_area_mm2(g: pd.DataFrame) -> float:
    """Area of a closed contour (patient mm) from the cross products of its points."""
    p = g.sort_values("point_index")[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float)
    if len(p) < 3:
        return 0.0
    p = p - p.mean(axis=0)
    return 0.5 * float(np.linalg.norm(np.cross(p, np.roll(p, -1, axis=0)).sum(axis=0)))


def frame_phases(contours: pd.DataFrame) -> dict[tuple[str, int], str]:
    """``{(exam_id, frame): phase}`` from the LV endocardial contours of the SAX view.

    Rule (formats without a phase): of the annotated SAX frames of an exam, the one with the
    largest summed endocardial area is ED, the one with the smallest ES; frames in between have no
    phase.  An exam with one annotated SAX frame: ED.  LAX frames take the phase of the SAX frame
    with the same index; exams without SAX contours apply the rule to each LAX view.
    """
    out: dict[tuple[str, int], str] = {}
    endo = contours[contours["surface"] == "endo"]
    for exam, g in endo.groupby("exam_id"):
        sax = g[g["view"] == "sax"]
        pools = [sax] if len(sax) else [v for _, v in g.groupby("view")]
        for pool in pools:
            area = pool.groupby(["frame", "view", "slice_index"]).apply(_cavity_area_mm2, include_groups=False)
            per_frame = area.groupby(level="frame").sum()
            out[(exam, int(per_frame.idxmax()))] = "ED"
            if len(per_frame) > 1:
                out[(exam, int(per_frame.idxmin()))] = "ES"
    return out


def assign_phases(ann: Annotations) -> Annotations:
    """Fill null phases by :func:`frame_phases`; phases already set are kept."""
    phases = frame_phases(ann.contours)

    def fill(df: pd.DataFrame) -> pd.DataFrame:
        if df.empty:
            return df
        rule = [phases.get((e, int(f))) for e, f in zip(df["exam_id"], df["frame"])]
        return df.assign(phase=df["phase"].where(df["phase"].notna(), pd.Series(rule, index=df.index)))

    return Annotations(fill(ann.contours), fill(ann.landmarks))


def mask_contour_rows(ref: ImageRef, labelled: np.ndarray, values: dict[str, int], observer: str,
                      phase: str | None = None, n_points: int = 48) -> list[pd.DataFrame]:
    """Contour rows of one (R, C) label slice of image ``ref``; ``values`` maps ``lv_cavity``,
    ``myocardium`` (and ``rv_cavity``) to label values.  LV ``endo`` = the cavity's outline, ``epi`` =
    that of cavity plus myocardium, ``rv_endo`` = the RV's (:func:`cmr_atlas.cine.segmentation.mask_contours`)."""
    lv, myo, rv = values["lv_cavity"], values["myocardium"], values.get("rv_cavity")
    regions = (("endo", labelled == lv), ("epi", (labelled == lv) | (labelled == myo)),
               ("rv_endo", labelled == rv if rv is not None else None))
    rows = []
    for surface, binary in regions:
        rc = mask_contours(binary, n_points) if binary is not None else None
        if rc is not None:
            rows.append(contour_rows(ref, surface, rc, observer, phase))
    return rows
