"""Rows of the truth tables ``contours`` and ``landmarks``, shared by every synthetic protocol.

Rows are built as column dicts and concatenated once per exam (pandas frames per contour are slow).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.core.vocab import LANDMARKS
from cmr_atlas.synth import anatomy as an
from cmr_atlas.synth import truth as T
from cmr_atlas.synth import truthgeom as tg
from cmr_atlas.synth.observers import perturb_contour, perturb_landmark

# Long-axis views whose two valve landmarks are told apart by the septal (e1) side: the first name
# is the septal one.
_SEPTAL_FIRST = {"lax_4ch": ("mv_septal", "mv_lateral"), "lax_3ch": ("lvot_anteroseptal", "mv_inferolateral")}


def landmark_row(label: str, observer: str, sequence: str, view: str, sl: int, frame: int, phase: str | None,
                 name: str, p: np.ndarray, plane: SlicePlane, condition: str | None = None) -> dict:
    rc, _ = plane.patient_to_pixel(p)
    return {"exam_id": label, "observer": observer, "sequence": sequence, "condition": condition,
            "view": view, "slice_index": sl,
            "frame": frame, "phase": phase, "landmark": name, "x_mm": p[0], "y_mm": p[1], "z_mm": p[2],
            "row_px": rc[0], "col_px": rc[1]}


def contour_rows(label: str, observer: str, sequence: str, view: str, sl: int, frame: int, phase: str | None,
                 surface: str, pts: np.ndarray, plane: SlicePlane, condition: str | None = None) -> dict:
    """Columns of one contour (concatenated into a frame once per exam by :func:`frame_from_contours`)."""
    rc, _ = plane.patient_to_pixel(pts)
    return ({
        "exam_id": label, "observer": observer, "sequence": sequence, "condition": condition, "view": view,
        "slice_index": sl, "frame": frame, "phase": phase, "surface": surface, "point_index": np.arange(len(pts)),
        "x_mm": pts[:, 0], "y_mm": pts[:, 1], "z_mm": pts[:, 2], "row_px": rc[:, 0], "col_px": rc[:, 1],
    })


def frame_from_contours(parts: list[dict]) -> pd.DataFrame:
    cols = [c.name for c in T.CONTOURS.columns]
    if not parts:
        return T.CONTOURS.empty()
    n = [len(p["x_mm"]) for p in parts]
    data = {}
    for c in cols:
        vals = [p[c] for p in parts]
        if np.ndim(vals[0]) == 0:
            data[c] = np.repeat(np.array(vals, dtype=object), n)
        else:
            data[c] = np.concatenate(vals)
    df = pd.DataFrame(data)
    for c in ("slice_index", "frame", "point_index"):
        df[c] = df[c].astype("int64")
    return df


def name_pair(heart: an.Heart, view: str, pts: list[np.ndarray], shift: np.ndarray) -> dict[str, np.ndarray]:
    """Name two landmarks of a pair by anatomy: septal/lateral by the septal side (``e1``),
    anterior/inferior(posterior) by the anterior side (``+e2``, the heart's handedness; not the
    patient's anterior direction, which names them the other way round on hearts posed with
    ``e2`` slightly posterior)."""
    if len(pts) != 2:
        return {}
    a, b = pts
    la, lb = heart.to_local(a - shift), heart.to_local(b - shift)
    if view in _SEPTAL_FIRST:
        septal, other = _SEPTAL_FIRST[view]
        return {septal: a, other: b} if la[0] > lb[0] else {septal: b, other: a}
    first, second = LANDMARKS[view][:2]  # anterior first
    return {first: a, second: b} if la[1] > lb[1] else {first: b, second: a}


def plane_truth(label: str, heart: an.Heart, sequence: str, view: str, sl: int, plane: SlicePlane,
                shift_mm: np.ndarray, frames: Iterable[tuple[int, float, str | None]],
                rv_endo: bool = True) -> tuple[list[dict], list[dict]]:
    """Contour parts (:func:`contour_rows`) and landmark rows of one plane, displaced by
    ``shift_mm``, for ``frames`` = (frame index, activation w, phase ED/ES/None): LV endo and epi
    (and with ``rv_endo`` the RV cavity's) and the landmark set of the view."""
    contours, marks = [], []

    def mark(f, phase, name, p):
        marks.append(landmark_row(label, "truth", sequence, view, sl, f, phase, name, p, plane))

    rv_grid = tg.RVGrid(heart, plane, shift_mm) if rv_endo else None
    for f, w, phase in frames:
        centre = tg.axis_point_in_plane(heart, plane, shift_mm, w)
        for surface in ("endo", "epi"):
            pts = tg.plane_contour(heart, w, plane, shift_mm, surface, centre)
            if pts is None:
                continue
            if view != "sax":
                pts = tg.lax_open_contour(heart, w, pts, shift_mm)
            contours.append(contour_rows(label, "truth", sequence, view, sl, f, phase, surface, pts, plane))
            if view == "sax" and surface == "epi":
                for n, p in name_pair(heart, view, tg.rv_insertions(heart, w, pts, shift_mm), shift_mm).items():
                    mark(f, phase, n, p)
            if view == "sax" and surface == "endo":
                c2 = tg.polygon_centroid(plane.in_plane_mm(pts))
                mark(f, phase, "lv_centre", plane.position_mm + c2[0] * plane.row_cosine + c2[1] * plane.col_cosine)
        rv = tg.rv_endo_contour(heart, w, plane, shift_mm, rv_grid) if rv_endo else None
        if rv is not None:
            contours.append(contour_rows(label, "truth", sequence, view, sl, f, phase, "rv_endo", rv, plane))
        if view != "sax":
            named = name_pair(heart, view, tg.mitral_hinges(heart, w, plane, shift_mm), shift_mm)
            named["apex"] = tg.apex_point(heart, w, plane, shift_mm)
            for n, p in named.items():
                mark(f, phase, n, p)
    return contours, marks


def frame_volumes(label: str, heart: an.Heart, activation: np.ndarray, times_ms: np.ndarray,
                  phases: dict[int, str]) -> pd.DataFrame:
    """Rows of the truth table ``volumes``: the true cavity and myocardial volume of every cine frame."""
    rows = []
    for f, w in enumerate(activation):
        ph = heart.phase(float(w))
        rows.append({"exam_id": label, "frame": f, "phase": phases.get(f), "time_ms": float(times_ms[f]),
                     "activation": float(w), "volume_ml": ph.cavity_volume_ml,
                     "myo_volume_ml": ph.myocardial_volume_ml})
    return pd.DataFrame(rows, columns=T.VOLUMES.column_names)


def observer_truth(rng: np.random.Generator, contours: pd.DataFrame, marks: pd.DataFrame,
                    planes: dict[tuple[str, int], SlicePlane], n_observers: int,
                    all_frames: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``n_observers`` simulated observers' versions of the truth rows of the annotated frames: ED
    and ES (rows with a phase), or every given row with ``all_frames`` (single-frame series such as
    LGE and T1 maps, a perfusion series' reference frame)."""
    c_out, m_out = [], []
    sub = contours if all_frames else contours[contours.phase.notna()]
    groups = list(sub.groupby(["sequence", "condition", "view", "slice_index", "frame", "surface"], sort=True,
                              dropna=False))
    mk = (marks if all_frames else marks[marks.phase.notna()]).to_dict("records")
    for obs in [f"obs{i + 1}" for i in range(n_observers)]:
        for (seq, cond, view, sl, f, surface), g in groups:
            plane = planes[(view, sl)]
            pts = perturb_contour(rng, g[["x_mm", "y_mm", "z_mm"]].to_numpy(), plane, surface, obs, view == "sax")
            c_out.append(contour_rows(g.exam_id.iloc[0], obs, seq, view, sl, f, g.phase.iloc[0], surface, pts, plane,
                                      None if pd.isna(cond) else cond))
        for r in mk:
            plane = planes[(r["view"], r["slice_index"])]
            p = perturb_landmark(rng, np.array([r["x_mm"], r["y_mm"], r["z_mm"]]), plane, r["landmark"])
            m_out.append(landmark_row(r["exam_id"], obs, r["sequence"], r["view"], r["slice_index"], r["frame"],
                                     r["phase"], r["landmark"], p, plane, r.get("condition")))
    return frame_from_contours(c_out), (pd.DataFrame(m_out) if m_out else marks.iloc[:0])
