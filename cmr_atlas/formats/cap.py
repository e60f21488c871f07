"""Cardiac Atlas Project guide points: ``GPFile_NNN.txt`` per frame and ``SliceInfoFile.txt``.

``GPFile_NNN.txt`` (tab-separated, one header line): ``x y z`` in patient mm (DICOM LPS),
``contour type`` (:data:`CAP_TYPES`), ``sliceID`` (a line of ``SliceInfoFile.txt``), ``weight``,
``time frame``.  cmr-atlas writes one file per cine frame, ``NNN`` = the 0-based frame index
zero-padded to 3 digits (the frame column holds the same index), as biv-me reads them.

``SliceInfoFile.txt``: one line per image plane, tab-separated keyword/value tokens::

    <name>  sliceID:  <id>  ImagePositionPatient  x y z  ImageOrientationPatient  6 values  PixelSpacing  2 values

with ids 1..N.  ``<name>`` is ``<view>_<slice_index>`` when cmr-atlas writes it; the reader ignores
it and matches each plane to the exam's images by geometry
(:func:`~cmr_atlas.formats.dicom_index.match_plane`).

Limits of the mapping (:data:`CAP_TYPES`): cmr-atlas has no tricuspid, aortic or pulmonary valve
landmarks, so written files lack the ``TRICUSPID_VALVE`` points biv-me's biventricular fit needs
(they serve LV fits as they are); an imported RV endocardium (``rv_endo``, from label maps) is
written whole as ``SAX_RV_FREEWALL``, septum included, and read back the same way
(``SAX_RV_SEPTUM`` is read past).

Points carry no phase; :func:`~cmr_atlas.formats.annotations.assign_phases` gives it.  Landmarks
that CAP types alike (two ``MITRAL_VALVE``, two ``RV_INSERT`` points of one plane) are named by
geometry (:data:`~cmr_atlas.formats.annotations.LANDMARK_PAIRS`); other counts of mitral points
are named ``mv_1``, ``mv_2``, ... (the LV fit takes every ``mv_`` point).
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.core.geometry import SlicePlane
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations, assign_phases, contour_rows, landmark_rows, name_pair
from cmr_atlas.formats.dicom_index import CohortIndex, ImageRef, exam_of_planes, match_plane

CAP_TYPES: dict[str, tuple[str, str, str]] = {
    # CAP contour type: (view class, kind, cmr-atlas surface or landmark)
    "SAX_LV_ENDOCARDIAL": ("sax", "contour", "endo"),
    "SAX_LV_EPICARDIAL": ("sax", "contour", "epi"),
    "SAX_RV_FREEWALL": ("sax", "contour", "rv_endo"),  # cmr-atlas's RV endocardium, whole
    "SAX_RV_EPICARDIAL": ("sax", "contour", "rv_epi"),
    "LAX_LV_ENDOCARDIAL": ("lax", "contour", "endo"),
    "LAX_LV_EPICARDIAL": ("lax", "contour", "epi"),
    "MITRAL_VALVE": ("lax", "landmark", "mv"),  # the hinge pair, named by geometry
    "APEX_POINT": ("lax", "landmark", "apex"),
    "RV_INSERT": ("sax", "landmark", "rv_insert"),  # anterior/posterior by geometry
}
IGNORED_TYPES = frozenset({
    # CAP types with no cmr-atlas counterpart: read past, never an error
    "SAX_RV_SEPTUM", "SAX_RV_ENDOCARDIAL", "LAX_RV_ENDOCARDIAL", "LAX_RV_EPICARDIAL",
    "LAX_RV_FREEWALL", "LAX_RV_SEPTUM", "TRICUSPID_VALVE", "AORTA_VALVE", "PULMONARY_VALVE",
    "LAX_LA", "LAX_RA", "SAX_LAX_INTERSECT", "EXCLUDED",
})
GP_HEADER = ("x", "y", "z", "contour type", "sliceID", "weight", "time frame")
SLICE_INFO = "SliceInfoFile.txt"


def gp_file_name(frame: int) -> str:
    return f"GPFile_{int(frame):03d}.txt"


# ---- writer ------------------------------------------------------------------------------------

def _num(v: float) -> str:
    return repr(float(v))  # shortest exact text: a round trip keeps every bit


def _cap_type(view: str, kind: str, name: str) -> str | None:
    cls = "sax" if view == "sax" else "lax"
    name = "mv" if name.startswith("mv_") else "rv_insert" if name.startswith("rv_insert") else name
    return next((t for t, spec in CAP_TYPES.items() if spec == (cls, kind, name)), None)


def write_slice_info(planes: dict[tuple[str, int], SlicePlane], path: str | Path) -> dict[tuple[str, int], int]:
    """Write ``SliceInfoFile.txt``; returns ``{(view, slice_index): sliceID}`` (1..N)."""
    ids, lines = {}, []
    for k, (key, p) in enumerate(sorted(planes.items()), start=1):
        ids[key] = k
        vals = [repr(float(v)) for v in (*p.position_mm, *p.dicom_orientation(), *p.pixel_spacing_mm)]
        lines.append("\t".join([f"{key[0]}_{key[1]}", "sliceID: ", str(k), "ImagePositionPatient",
                                *vals[:3], "ImageOrientationPatient", *vals[3:9],
                                "PixelSpacing", *vals[9:]]))
    Path(path).write_text("\n".join(lines) + "\n")
    return ids


def write_cap(guide_points: pd.DataFrame, planes: dict[tuple[str, int], SlicePlane],
              out_dir: str | Path) -> list[Path]:
    """Write one exam's guide points (:data:`cmr_atlas.cine.guidepoints.GUIDE_POINTS` rows of one
    exam and source) as ``SliceInfoFile.txt`` and one ``GPFile_NNN.txt`` per frame.

    Points without a CAP type (``lv_centre``) are left out; a point on a plane missing from
    ``planes`` raises :class:`FormatError`.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ids = write_slice_info(planes, out_dir / SLICE_INFO)
    gp = guide_points.sort_values(["frame", "view", "slice_index", "kind", "surface", "landmark", "point_index"])
    types = [_cap_type(v, k, s if k == "contour" else lm)
             for v, k, s, lm in zip(gp["view"], gp["kind"], gp["surface"], gp["landmark"])]
    gp = gp.assign(cap_type=types)[[t is not None for t in types]]
    missing = set(zip(gp["view"], gp["slice_index"].astype(int))) - set(ids)
    if missing:
        raise FormatError(f"guide points: planes {sorted(missing)} are not in the slice planes given")
    paths = [out_dir / SLICE_INFO]
    for frame, g in gp.groupby("frame"):
        table = pd.DataFrame({
            "x": g["x_mm"].map(_num), "y": g["y_mm"].map(_num), "z": g["z_mm"].map(_num),
            "contour type": g["cap_type"],
            "sliceID": [ids[(v, int(s))] for v, s in zip(g["view"], g["slice_index"])],
            "weight": g["weight"].fillna(1.0).map(_num), "time frame": int(frame),
        })
        paths.append(out_dir / gp_file_name(int(frame)))
        table.to_csv(paths[-1], sep="\t", index=False, header=list(GP_HEADER))
    return paths


# ---- reader ------------------------------------------------------------------------------------

def _numbers(tokens: list[str], keyword: str, n: int, where: str) -> list[float]:
    try:
        i = tokens.index(keyword)
        return [float(t) for t in tokens[i + 1:i + 1 + n]]
    except (ValueError, IndexError):
        raise FormatError(f"{where}: missing or bad {keyword} ({n} numbers)") from None


def read_slice_info(path: str | Path) -> dict[int, SlicePlane]:
    """``{sliceID: SlicePlane}`` of a ``SliceInfoFile.txt`` (shape unknown: (1, 1))."""
    out = {}
    for n, line in enumerate(Path(path).read_text().splitlines(), start=1):
        tokens = [t for t in re.split(r"[\t ]+", line.strip()) if t]
        if not tokens:
            continue
        where = f"{path}: line {n}"
        sid = _numbers(tokens, "sliceID:", 1, where)[0]
        ipp = _numbers(tokens, "ImagePositionPatient", 3, where)
        iop = _numbers(tokens, "ImageOrientationPatient", 6, where)
        ps = _numbers(tokens, "PixelSpacing", 2, where)
        try:
            out[int(sid)] = SlicePlane.from_dicom(ipp, iop, ps, (1, 1))
        except ValueError as exc:
            raise FormatError(f"{where}: ImageOrientationPatient {iop}: {exc}") from None
    return out


def read_gp_file(path: str | Path) -> pd.DataFrame:
    """A ``GPFile`` as a frame with the columns of :data:`GP_HEADER`."""
    try:
        df = pd.read_csv(path, sep="\t")
    except (OSError, ValueError) as exc:
        raise FormatError(f"{path}: not a readable GPFile ({exc})") from None
    df.columns = [c.strip() for c in df.columns]
    missing = [c for c in GP_HEADER if c not in df.columns]
    if missing:
        raise FormatError(f"{path}: header lacks columns {missing} (needs {list(GP_HEADER)})")
    unknown = sorted(set(df["contour type"]) - set(CAP_TYPES) - IGNORED_TYPES)
    if unknown:
        raise FormatError(f"{path}: unknown contour type(s) {unknown} (known: {sorted(CAP_TYPES)})")
    return df[~df["contour type"].isin(IGNORED_TYPES)]


def _landmark_names(view: str, name: str, xyz: np.ndarray) -> list[str]:
    if name in ("mv", "rv_insert") and len(xyz) == 2 and view in ("sax", "lax_2ch", "lax_4ch"):
        return name_pair(view, xyz)
    if name in ("mv", "rv_insert"):
        return [f"{name}_{k + 1}" for k in range(len(xyz))]
    return [name] * len(xyz)


def _group_rows(ref: ImageRef, cap_type: str, xyz: np.ndarray, where: str, observer: str) -> Annotations:
    view_class, kind, name = CAP_TYPES[cap_type]
    if (view_class == "sax") != (ref.view == "sax"):
        raise FormatError(f"{where}: {cap_type} points on the exam's {ref.view} plane (orientation mismatch)")
    rc, _ = ref.plane.patient_to_pixel(xyz)
    if kind == "contour":
        rows = contour_rows(ref, name, rc, observer)
    else:
        rows = landmark_rows(ref, _landmark_names(ref.view, name, xyz), rc, observer)
    rows[["x_mm", "y_mm", "z_mm"]] = xyz  # the file's coordinates, not their projection
    return Annotations.from_rows([rows] if kind == "contour" else [], [rows] if kind != "contour" else [])


def read_cap(gp_files: list[str | Path], slice_info: str | Path, index: CohortIndex, exam: str | None = None,
             observer: str = "cap") -> Annotations:
    """Annotation rows of one exam's CAP guide-point files (all frames).

    ``exam`` (folder name) defaults to the cohort's exam whose planes match the slice file's."""
    planes = read_slice_info(slice_info)
    if exam is None:
        exam = exam_of_planes(index, planes, slice_info)
    exam_planes = index.planes(exam)
    if not exam_planes:
        raise FormatError(f"{slice_info}: exam {exam!r} is not in the cohort index")
    where_slice = {sid: match_plane(exam_planes, p, slice_info, f"sliceID {sid}") for sid, p in planes.items()}
    parts = []
    for path in gp_files:
        df = read_gp_file(path)
        for (sid, frame, cap_type), g in df.groupby(["sliceID", "time frame", "contour type"], sort=False):
            where = f"{path}: sliceID {sid} frame {frame} {cap_type}"
            if int(sid) not in where_slice:
                raise FormatError(f"{where}: sliceID not in {slice_info}")
            view, sl = where_slice[int(sid)]
            try:
                ref = index.at(exam, view, sl, int(frame))
            except KeyError:
                raise FormatError(f"{where}: the exam's {view} slice {sl} has no frame {frame}") from None
            parts.append(_group_rows(ref, cap_type, g[["x", "y", "z"]].to_numpy(dtype=float), where, observer))
    return assign_phases(Annotations.concat(parts))
