"""cvi42 workspaces (``.cvi42wsx``): contours and points keyed by SOPInstanceUID.

Layout (XML; the names as public readers of UK Biobank workspaces report them)::

    .../Hash:item[@Hash:key='StudyMapStates']/List:item/
        Hash:item[@Hash:key='StudyUid']                      (text)
        Hash:item[@Hash:key='ImageStates']/
            Hash:item[@Hash:key=<SOPInstanceUID>]/Hash:item[@Hash:key='Contours']/
                Hash:item[@Hash:key=<contour name>]/
                    Hash:item[@Hash:key='Points']/List:item/{Point:x, Point:y}
                    Hash:item[@Hash:key='SubpixelResolution']  (text, usually 4)

``Point:x`` is the column and ``Point:y`` the row, integers in sub-pixel units: divided by
``SubpixelResolution`` they are pixel indices with integer values at pixel centres -- cmr-atlas's
convention (:mod:`cmr_atlas.core.geometry`), so no half-pixel shift.  Slice and frame come from the
image's DICOM headers through :class:`~cmr_atlas.formats.dicom_index.CohortIndex`; the phase from
:func:`~cmr_atlas.formats.annotations.assign_phases`.

Contour names (:data:`CONTOUR_NAMES`, :data:`IGNORED_NAMES`) are those public readers of UK Biobank
workspaces list; the point-ROI names (:data:`POINT_NAMES`: RV insertion reference points, the LAX
LV extent) are cmr-atlas's reading of cvi42 and should be checked against a real workspace.  An
unlisted name is an error, so a new name shows up at once rather than being dropped.

The writer uses ``SubpixelResolution`` :data:`WRITE_SUBPIXEL` (16, not cvi42's usual 4): readers
divide by the stored value, and 1/32 pixel keeps the rounding of a round trip under 0.1 mm.
"""

from __future__ import annotations

import logging
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations, assign_phases, contour_rows, landmark_rows, name_pair
from cmr_atlas.formats.dicom_index import CohortIndex, ImageRef

log = logging.getLogger(__name__)

NS = {
    "": "http://www.circlecvi.com/cvi42/Workspace/",
    "Hash": "http://www.circlecvi.com/cvi42/Workspace/Hash/",
    "List": "http://www.circlecvi.com/cvi42/Workspace/List/",
    "Point": "http://www.circlecvi.com/cvi42/Workspace/Point/",
}
_H, _L, _P = (f"{{{NS[k]}}}" for k in ("Hash", "List", "Point"))
ITEM, KEY, LIST_ITEM = f"{_H}item", f"{_H}key", f"{_L}item"

CONTOUR_NAMES: dict[str, tuple[str, str]] = {
    # cvi42 contour name: (view class, cmr-atlas surface); "lax" = lax_2ch or lax_4ch by the image
    "saendocardialContour": ("sax", "endo"),
    "saepicardialContour": ("sax", "epi"),
    "sarvendocardialContour": ("sax", "rv_endo"),
    "sarvepicardialContour": ("sax", "rv_epi"),
    "laendocardialContour": ("lax", "endo"),
    "laepicardialContour": ("lax", "epi"),
}
POINT_NAMES: dict[str, tuple[str, str]] = {
    # cvi42 point ROI: (view class, cmr-atlas landmark); "pair"/"extent" are named by geometry
    "sacardialRefPointContour": ("sax", "rv_insert_anterior"),
    "sacardialInferiorRefPointContour": ("sax", "rv_insert_posterior"),
    "laxLvExtentPoints": ("lax", "extent"),  # two mitral hinges and the apex
}
IGNORED_NAMES = frozenset({
    # known cvi42 ROIs without a cmr-atlas counterpart: read past, never an error
    "lalaContour", "laraContour", "saendocardialOpenContour", "saepicardialOpenContour",
    "sarvendocardialOpenContour", "sarvepicardialOpenContour", "laendocardialOpenContour",
    "laepicardialOpenContour", "sapapilMuscContour", "lineRoiContour", "laxLaExtentPoints",
    "laxRaExtentPoints", "freeDrawRoiContour",
})
WRITE_SUBPIXEL = 16


def _key(el: ET.Element) -> str | None:
    return el.get(KEY)


def _child(el: ET.Element, key: str) -> ET.Element | None:
    return next((c for c in el.findall(ITEM) if _key(c) == key), None)


def _points(contour: ET.Element, where: str) -> np.ndarray:
    """``(N, 2)`` (row, col) pixel indices of one contour item."""
    pts, sub = _child(contour, "Points"), _child(contour, "SubpixelResolution")
    if pts is None or sub is None:
        raise FormatError(f"{where}: missing Points or SubpixelResolution")
    try:
        res = float(sub.text)
        xy = [(float(p.find(f"{_P}x").text), float(p.find(f"{_P}y").text)) for p in pts.findall(LIST_ITEM)]
    except (TypeError, ValueError, AttributeError):
        raise FormatError(f"{where}: Points need numeric Point:x and Point:y and a numeric "
                          "SubpixelResolution") from None
    if res <= 0 or not xy:
        raise FormatError(f"{where}: empty Points or SubpixelResolution <= 0")
    xy = np.array(xy) / res
    return xy[:, ::-1]


def _view_ok(ref: ImageRef, view_class: str, where: str, name: str) -> None:
    if (view_class == "sax") != (ref.view == "sax"):
        raise FormatError(f"{where}: {name} is a {view_class.upper()} contour but the image is "
                          f"the exam's {ref.view} view (orientation mismatch)")


def _extent_landmarks(ref: ImageRef, rc: np.ndarray, where: str) -> tuple[list[str], np.ndarray]:
    """Two mitral hinges and the apex: the apex is the point furthest from the other two."""
    if len(rc) != 3:
        raise FormatError(f"{where}: laxLvExtentPoints needs 3 points, has {len(rc)}")
    xyz = ref.plane.pixel_to_patient(rc)
    d = np.linalg.norm(xyz[:, None] - xyz[None], axis=-1).sum(axis=1)
    apex = int(np.argmax(d))
    hinges = [i for i in range(3) if i != apex]
    return name_pair(ref.view, xyz[hinges]) + ["apex"], rc[hinges + [apex]]


def _image_rows(path: Path, ref: ImageRef, state: ET.Element, observer: str) -> Annotations:
    """Contours and points of one ImageStates item."""
    contours = _child(state, "Contours")
    lines: list[pd.DataFrame] = []
    points: list[pd.DataFrame] = []
    for c in ([] if contours is None else contours.findall(ITEM)):
        name, where = _key(c), f"{path}: image {ref.sop_uid} contour {_key(c)!r}"
        if name in IGNORED_NAMES:
            continue
        if name in CONTOUR_NAMES:
            view_class, surface = CONTOUR_NAMES[name]
            _view_ok(ref, view_class, where, name)
            lines.append(contour_rows(ref, surface, _points(c, where), observer))
        elif name in POINT_NAMES:
            view_class, landmark = POINT_NAMES[name]
            _view_ok(ref, view_class, where, name)
            rc = _points(c, where)
            names, rc = _extent_landmarks(ref, rc, where) if landmark == "extent" else ([landmark], rc[:1])
            points.append(landmark_rows(ref, names, rc, observer))
        else:
            raise FormatError(f"{where}: unknown contour name (known: {sorted(CONTOUR_NAMES) + sorted(POINT_NAMES)})")
    return Annotations.from_rows(lines, points)


def read_cvi42(path: str | Path, index: CohortIndex, observer: str = "cvi42") -> Annotations:
    """Annotation rows of a cvi42 workspace.

    Every image UID must be in the cohort; images outside the cines ingest chose (localizers,
    LVOT or flow series, superseded repeats) are skipped and counted in the log."""
    path = Path(path)
    try:
        root = ET.parse(path).getroot()
    except (ET.ParseError, OSError) as exc:
        raise FormatError(f"{path}: not a readable cvi42 workspace XML ({exc})") from None
    states = [el for el in root.iter(ITEM) if _key(el) == "ImageStates"]
    if not states:
        raise FormatError(f"{path}: no Hash:item 'ImageStates' (is it a cvi42 workspace?)")
    parts, skipped = [], 0
    for image in (im for st in states for im in st.findall(ITEM)):
        ref = index.lookup(str(_key(image)), path, "ImageStates item")
        if ref is None:  # an image of the exam outside the cines ingest chose (localizer, LVOT, ...)
            skipped += 1
            continue
        parts.append(_image_rows(path, ref, image, observer))
    if skipped:
        log.info("%s: %d images outside the chosen SAX/LAX cines skipped", path, skipped)
    return assign_phases(Annotations.concat(parts))


# ---- writer ------------------------------------------------------------------------------------

_WRITE_CONTOUR = {(v, s): name for name, (v, s) in CONTOUR_NAMES.items()}
_WRITE_POINT = {lm: name for name, (_, lm) in POINT_NAMES.items() if lm != "extent"}
_EXTENT = {"lax_2ch": ("mv_anterior", "mv_inferior", "apex"), "lax_4ch": ("mv_septal", "mv_lateral", "apex")}


def _item(parent: ET.Element, key: str | None, type_: str, text: str | None = None, tag: str = ITEM) -> ET.Element:
    el = ET.SubElement(parent, tag, {KEY: key} if key is not None else {})
    el.set(f"{_H}type", type_)
    if text is not None:
        el.text = text
    return el


def _write_points(parent: ET.Element, name: str, rc: np.ndarray, subpixel: int) -> None:
    c = _item(parent, name, "Hash")
    pts = _item(c, "Points", "List")
    pts.set(f"{_L}count", str(len(rc)))
    for r, col in np.rint(np.asarray(rc) * subpixel).astype(int):
        p = _item(pts, None, "Point", tag=LIST_ITEM)
        ET.SubElement(p, f"{_P}x").text = str(col)
        ET.SubElement(p, f"{_P}y").text = str(r)
    _item(c, "SubpixelResolution", "int", str(subpixel))


def _image_ref(index: CohortIndex, exam: str, key: tuple, what: str) -> ImageRef:
    try:
        return index.at(exam, *key)
    except KeyError:
        raise FormatError(f"{what}: no image of exam {exam} at (view, slice_index, frame) {key}") from None


def _point_sets(ann: Annotations, exam: str) -> list[tuple[tuple, str, pd.DataFrame]]:
    """``(image key, cvi42 name, rows in order)`` of one exam's contours and landmarks."""
    out = []
    c = ann.contours[ann.contours["exam_id"] == exam]
    for (view, sl, fr, surf), g in c.groupby(["view", "slice_index", "frame", "surface"]):
        name = _WRITE_CONTOUR.get(("sax" if view == "sax" else "lax", surf))
        if name is None:
            raise FormatError(f"annotations: surface {surf!r} of view {view} has no cvi42 contour name")
        out.append(((view, int(sl), int(fr)), name, g.sort_values("point_index")))
    lm = ann.landmarks[ann.landmarks["exam_id"] == exam]
    for (view, sl, fr), g in lm.groupby(["view", "slice_index", "frame"]):
        key = (view, int(sl), int(fr))
        by_name = g.drop_duplicates("landmark").set_index("landmark")
        out += [(key, _WRITE_POINT[n], by_name.loc[[n]]) for n in by_name.index if n in _WRITE_POINT]
        if view in _EXTENT and all(n in by_name.index for n in _EXTENT[view]):
            out.append((key, "laxLvExtentPoints", by_name.loc[list(_EXTENT[view])]))
    return out


def write_cvi42(ann: Annotations, index: CohortIndex, exam: str, path: str | Path,
                subpixel: int = WRITE_SUBPIXEL) -> Path:
    """Write one exam's annotations as a cvi42 workspace.

    Points are projected onto their image (``x_mm, y_mm, z_mm`` -> pixel) with the image's own
    plane.  Landmarks without a cvi42 point ROI (``lv_centre``) are not written.
    """
    root = ET.Element(f"{_H}root")
    study = _item(_item(root, "StudyMapStates", "List"), None, "Hash", tag=LIST_ITEM)
    states: dict[str, ET.Element] = {}
    refs = index.images(exam)
    _item(study, "StudyUid", "string", refs[0].study_uid if refs else "")
    image_states = _item(study, "ImageStates", "Hash")
    for key, name, rows in _point_sets(ann, exam):
        ref = _image_ref(index, exam, key, str(path))
        if ref.sop_uid not in states:
            states[ref.sop_uid] = _item(_item(image_states, ref.sop_uid, "Hash"), "Contours", "Hash")
        rc, _ = ref.plane.patient_to_pixel(rows[["x_mm", "y_mm", "z_mm"]].to_numpy(dtype=float))
        _write_points(states[ref.sop_uid], name, rc, subpixel)
    for prefix, uri in NS.items():
        ET.register_namespace(prefix, uri)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    ET.ElementTree(root).write(path, encoding="UTF-8", xml_declaration=True)
    return path
