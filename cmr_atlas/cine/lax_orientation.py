"""In-plane orientation of long-axis images, and turning odd ones upright for the landmark networks.

Scanners choose a long-axis image's in-plane orientation by rules of their own (rows towards
patient left where the plane allows it, another reference where it does not), so now and then a
2CH, 3CH or 4CH image arrives turned far from the usual, e.g. a 3CH plane whose normal lies near
the left-right axis (issue 16: one LGE 3CH image 130 deg from the rest, its apex and mitral point
swapped by a network trained with +-30 deg rotations).  The DICOM geometry says how the image
lies in the patient, so such an image can be turned before the network sees it:

* :func:`axis_angle_deg`: the direction, in the image, of :data:`LV_AXIS_LPS` (the LV's long axis
  points left, anterior and inferior in every heart, give or take 30 deg) projected into the plane;
* the network's card keeps, per view, the span of that angle it was trained on
  (``orientation``: :func:`orientation_entry`, written by ``cmr-atlas models orient``): the
  middle 90 % of its training planes' angles (geometry only; never a test cohort), widened by the
  training augmentation's rotation range (the network saw those images turned that far);
* at inference an image whose angle lies outside the span is turned to the span's middle
  (:func:`turn_deg`) and its heatmaps turned back; images inside it are untouched, so
  typical exams' results do not change.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Sequence

import numpy as np

from cmr_atlas.core.geometry import SlicePlane

# Base -> apex of the LV in DICOM patient coordinates (LPS: +x left, -y anterior, -z inferior):
# roughly left, anterior and inferior; only its projection's direction in each view is used.
LV_AXIS_LPS = np.array([1.0, -1.0, -1.0]) / np.sqrt(3.0)
SPAN_PERCENTILES = (5.0, 95.0)  # of the training planes' angles: the few odd ones (a few %) do not widen it


def axis_angle_deg(plane: SlicePlane) -> float:
    """Angle (deg, (-180, 180]) of :data:`LV_AXIS_LPS` projected into ``plane``, in image index
    space: 0 along increasing column index, +90 along increasing row index (down)."""
    return float(np.degrees(np.arctan2(LV_AXIS_LPS @ plane.col_cosine, LV_AXIS_LPS @ plane.row_cosine)))


def _wrap(deg: float | np.ndarray) -> float | np.ndarray:
    return (np.asarray(deg) + 180.0) % 360.0 - 180.0


def span_deg(angles_deg: Sequence[float], widen_deg: float = 0.0) -> tuple[float, float]:
    """``(low, high)`` of a view's training angles (:data:`SPAN_PERCENTILES`) widened by
    ``widen_deg`` on each side, measured about their circular mean so a span across +-180 deg
    stays one interval (a span of 360 deg or more: every orientation)."""
    a = np.radians(np.asarray(angles_deg, float))
    centre = float(np.degrees(np.arctan2(np.sin(a).mean(), np.cos(a).mean())))
    rel = _wrap(np.degrees(a) - centre)
    lo, hi = np.percentile(rel, SPAN_PERCENTILES)
    return float(centre + lo - widen_deg), float(centre + hi + widen_deg)


def turn_deg(angle_deg: float, span: Sequence[float] | None) -> float:
    """The in-plane rotation (deg; :func:`cmr_atlas.nets.heatmaps.rotate_maps`' sense) that brings
    an image with axis angle ``angle_deg`` to the middle of ``span``; 0 inside the span or without
    one."""
    if span is None:
        return 0.0
    lo, hi = float(span[0]), float(span[1])
    centre, half = (lo + hi) / 2.0, (hi - lo) / 2.0
    if half >= 180.0:
        return 0.0
    off = float(_wrap(angle_deg - centre))
    return 0.0 if abs(off) <= half else off


def card_span(card: dict | None, view: str) -> tuple[float, float] | None:
    """The card's training span of ``view`` (``orientation.span_deg``), None without one."""
    span = (((card or {}).get("orientation") or {}).get("span_deg") or {}).get(view)
    return (float(span[0]), float(span[1])) if span else None


def orientation_entry(angles_by_view: dict[str, Iterable[float]], augment_deg: float, source: str) -> dict:
    """A landmark network's card ``orientation`` entry from its training planes' axis angles and
    its augmentation's rotation range (deg)."""
    spans, counts = {}, {}
    for view, angles in angles_by_view.items():
        a = list(angles)
        if a:
            spans[view] = [round(v, 1) for v in span_deg(a, augment_deg)]
            counts[view] = len(a)
    return {"axis_lps": [round(float(v), 4) for v in LV_AXIS_LPS], "span_deg": spans, "n_planes": counts,
            "percentiles": list(SPAN_PERCENTILES), "widened_by_deg": float(augment_deg), "source": source,
            "rule": "long-axis images whose axis angle lies outside the span are turned to its middle "
                    "before the network, and the heatmaps turned back (cmr_atlas.cine.lax_orientation)"}


def training_orientation(data_info: dict, augment_deg: float) -> dict | None:
    """The ``orientation`` entry of a long-axis network trained on ``data_info`` (a training data
    provenance) with rotations of +-``augment_deg``: the generators' planes of those exams; None
    where it names no synthetic exams (an ingested cohort: nothing to measure, nothing turned)."""
    from cmr_atlas.cine.training import data_parts, training_lax_planes

    planes = training_lax_planes(data_info)
    if not planes:
        return None
    seeds = sorted({int(p["cohort_seed"]) for p in data_parts(data_info) if "cohort_seed" in p})
    return orientation_entry({v: [axis_angle_deg(p) for p in ps] for v, ps in planes.items()}, augment_deg,
                             f"the long-axis planes of its training exams (cohort seeds {seeds}), geometry only")


def orient_model(name: str, models_dir: str | Path) -> dict:
    """Measure a shipped long-axis landmark network's training span (:func:`training_orientation`
    from its card's training data and augmentation) and write it into its card as ``orientation``;
    returns the entry."""
    import json

    from cmr_atlas.nets.registry import load_card

    card = load_card(name, models_dir)
    augment = float(((card.get("training") or {}).get("augmentation") or {}).get("rotation_deg", 0.0))
    entry = training_orientation(card["training_data"], augment)
    if entry is None:
        raise ValueError(f"{name}: its card records no synthetic long-axis training planes to measure")
    path = Path(models_dir) / f"{name}.json"
    path.write_text(json.dumps({**card, "orientation": entry}, indent=2) + "\n")
    return entry
