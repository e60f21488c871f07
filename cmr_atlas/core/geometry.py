"""The one coordinate convention of cmr-atlas.

Patient coordinates are DICOM's LPS frame in millimetres: +x towards the patient's left,
+y posterior, +z superior (head).

Image arrays are indexed ``image[row, col]``.  A pixel index ``(row, col)`` refers to the centre
of that pixel.  DICOM geometry maps it to patient coordinates as

    p = ImagePositionPatient + col * PixelSpacing[1] * F_row + row * PixelSpacing[0] * F_col

where ``F_row = ImageOrientationPatient[:3]`` is the direction along a row (the direction in which
the column index grows) and ``F_col = ImageOrientationPatient[3:]`` the direction down a column.
The plane normal is ``F_row x F_col``.

Every stage uses :class:`SlicePlane` for this mapping; nobody re-derives it.  A plane is stored
in one field order, :data:`PLANE_FIELDS`: as named columns of a slice-plane table
(:func:`plane_to_row`) and as the image cache's float vector (:func:`plane_vector`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

if TYPE_CHECKING:
    import pandas as pd


def _unit(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, dtype=float)
    n = np.linalg.norm(v)
    if n == 0:
        raise ValueError("zero-length direction vector")
    return v / n


@dataclass(frozen=True)
class SlicePlane:
    """Geometry of one 2D image plane (one DICOM slice position).

    Attributes:
        position_mm: ImagePositionPatient, centre of pixel (0, 0), shape (3,).
        row_cosine: ImageOrientationPatient[:3], unit vector along a row (column index grows).
        col_cosine: ImageOrientationPatient[3:], unit vector down a column (row index grows).
        pixel_spacing_mm: (row spacing, column spacing) as in DICOM PixelSpacing.
        shape: (rows, cols) of the pixel matrix.
        thickness_mm: nominal slice thickness.
    """

    position_mm: np.ndarray
    row_cosine: np.ndarray
    col_cosine: np.ndarray
    pixel_spacing_mm: tuple[float, float]
    shape: tuple[int, int]
    thickness_mm: float = 6.0
    _affine: np.ndarray = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "position_mm", np.asarray(self.position_mm, dtype=float))
        object.__setattr__(self, "row_cosine", _unit(self.row_cosine))
        object.__setattr__(self, "col_cosine", _unit(self.col_cosine))
        if abs(float(self.row_cosine @ self.col_cosine)) > 1e-3:
            raise ValueError("row and column direction cosines are not orthogonal")
        a = np.eye(4)
        a[:3, 0] = self.col_cosine * self.pixel_spacing_mm[0]
        a[:3, 1] = self.row_cosine * self.pixel_spacing_mm[1]
        a[:3, 2] = np.cross(self.row_cosine, self.col_cosine)
        a[:3, 3] = self.position_mm
        object.__setattr__(self, "_affine", a)

    @property
    def normal(self) -> np.ndarray:
        """Unit plane normal, ``row_cosine x col_cosine`` (computed once, in the affine)."""
        return self._affine[:3, 2].copy()

    @property
    def affine(self) -> np.ndarray:
        """4x4 matrix mapping ``(row, col, w, 1)`` to patient mm; ``w`` is mm along the normal."""
        return self._affine.copy()

    @property
    def centre_mm(self) -> np.ndarray:
        """Patient coordinates of the centre of the pixel matrix."""
        rows, cols = self.shape
        return self.pixel_to_patient(np.array([(rows - 1) / 2, (cols - 1) / 2]))

    def pixel_to_patient(self, rc: np.ndarray) -> np.ndarray:
        """Map pixel indices ``(..., 2)`` as (row, col) to patient coordinates ``(..., 3)`` in mm."""
        rc = np.asarray(rc, dtype=float)
        return (
            self.position_mm
            + rc[..., 1:2] * self.pixel_spacing_mm[1] * self.row_cosine
            + rc[..., 0:1] * self.pixel_spacing_mm[0] * self.col_cosine
        )

    def patient_to_pixel(self, xyz: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Project patient points ``(..., 3)`` onto the plane.

        Returns ``(rc, distance_mm)``: pixel indices ``(..., 2)`` (row, col) of the orthogonal
        projection, and the signed distance from the plane along :attr:`normal`.
        """
        d = np.asarray(xyz, dtype=float) - self.position_mm
        col = d @ self.row_cosine / self.pixel_spacing_mm[1]
        row = d @ self.col_cosine / self.pixel_spacing_mm[0]
        return np.stack([row, col], axis=-1), d @ self.normal

    def in_plane_part(self, v: np.ndarray) -> np.ndarray:
        """The part of vectors ``v (..., 3)`` (mm) that lies in the plane: ``v`` less its component
        along :attr:`normal`."""
        n = self.normal
        v = np.asarray(v, dtype=float)
        return v - (v @ n)[..., None] * n

    def project(self, xyz: np.ndarray) -> np.ndarray:
        """Orthogonal projections ``(..., 3)`` of patient points ``xyz (..., 3)`` onto the plane."""
        xyz = np.asarray(xyz, dtype=float)
        return xyz - ((xyz - self.position_mm) @ self.normal)[..., None] * self.normal

    def in_plane_mm(self, xyz: np.ndarray) -> np.ndarray:
        """In-plane coordinates ``(..., 2)`` in mm along (row_cosine, col_cosine), origin at pixel (0,0)."""
        d = np.asarray(xyz, dtype=float) - self.position_mm
        return np.stack([d @ self.row_cosine, d @ self.col_cosine], axis=-1)

    def pixel_grid_mm(self, supersample: int = 1) -> np.ndarray:
        """Patient coordinates of every pixel centre, shape (rows, cols, 3).

        With ``supersample > 1`` each pixel is split into ``supersample**2`` sub-pixel centres:
        shape (rows, cols, s*s, 3).
        """
        rows, cols = self.shape
        if supersample == 1:
            r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
            return self.pixel_to_patient(np.stack([r, c], axis=-1))
        off = (np.arange(supersample) + 0.5) / supersample - 0.5
        orr, occ = np.meshgrid(off, off, indexing="ij")
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        rc = np.stack(
            [r[..., None] + orr.ravel()[None, None], c[..., None] + occ.ravel()[None, None]], axis=-1
        )
        return self.pixel_to_patient(rc)

    def dicom_orientation(self) -> list[float]:
        """ImageOrientationPatient as written to DICOM."""
        return [float(v) for v in (*self.row_cosine, *self.col_cosine)]

    @classmethod
    def from_dicom(
        cls,
        image_position: np.ndarray,
        image_orientation: np.ndarray,
        pixel_spacing: tuple[float, float],
        shape: tuple[int, int],
        thickness_mm: float = 0.0,
    ) -> "SlicePlane":
        """Build from the DICOM attributes of the same names."""
        iop = np.asarray(image_orientation, dtype=float)
        return cls(
            position_mm=np.asarray(image_position, dtype=float),
            row_cosine=iop[:3],
            col_cosine=iop[3:],
            pixel_spacing_mm=(float(pixel_spacing[0]), float(pixel_spacing[1])),
            shape=(int(shape[0]), int(shape[1])),
            thickness_mm=float(thickness_mm),
        )

    @classmethod
    def centred(
        cls,
        centre_mm: np.ndarray,
        row_cosine: np.ndarray,
        col_cosine: np.ndarray,
        pixel_spacing_mm: tuple[float, float],
        shape: tuple[int, int],
        thickness_mm: float = 6.0,
    ) -> "SlicePlane":
        """A plane whose pixel matrix is centred on ``centre_mm``."""
        rows, cols = shape
        rc = _unit(row_cosine)
        cc = _unit(col_cosine)
        pos = (
            np.asarray(centre_mm, dtype=float)
            - (cols - 1) / 2 * pixel_spacing_mm[1] * rc
            - (rows - 1) / 2 * pixel_spacing_mm[0] * cc
        )
        return cls(pos, rc, cc, pixel_spacing_mm, shape, thickness_mm)


def plane_intersection_line(a: SlicePlane, b: SlicePlane) -> tuple[np.ndarray, np.ndarray] | None:
    """Line where two planes meet: ``(point_mm, unit_direction)``; None when they are parallel."""
    direction = np.cross(a.normal, b.normal)
    n = np.linalg.norm(direction)
    if n < 1e-6:
        return None
    direction = direction / n
    # Solve for the point on both planes closest to a's position.
    m = np.stack([a.normal, b.normal, direction])
    rhs = np.array([a.normal @ a.position_mm, b.normal @ b.position_mm, direction @ a.position_mm])
    return np.linalg.solve(m, rhs), direction


def angle_between_deg(u: np.ndarray, v: np.ndarray, undirected: bool = True) -> float:
    """Angle between two directions in degrees; ``undirected`` treats u and -u as the same."""
    c = float(_unit(u) @ _unit(v))
    if undirected:
        c = abs(c)
    return float(np.degrees(np.arccos(np.clip(c, -1.0, 1.0))))


def orthonormal_frame(axis: np.ndarray, hint: np.ndarray) -> np.ndarray:
    """Right-handed orthonormal frame (3x3, columns e1, e2, e3) with e3 along ``axis``.

    e1 is the component of ``hint`` orthogonal to ``axis``.
    """
    e3 = _unit(axis)
    e1 = np.asarray(hint, dtype=float) - (np.asarray(hint, dtype=float) @ e3) * e3
    e1 = _unit(e1)
    e2 = np.cross(e3, e1)
    return np.stack([e1, e2, e3], axis=1)


# ---- the one serialisation of a SlicePlane --------------------------------------------------


class PlaneField(NamedTuple):
    name: str  # column name in slice-plane tables
    type: str  # "float" or "int" (a cmr_atlas.core.tables type)
    unit: str
    description: str


PLANE_FIELDS: tuple[PlaneField, ...] = (
    PlaneField("ipp_x", "float", "mm", "ImagePositionPatient x"),
    PlaneField("ipp_y", "float", "mm", "ImagePositionPatient y"),
    PlaneField("ipp_z", "float", "mm", "ImagePositionPatient z"),
    PlaneField("row_cos_x", "float", "", "ImageOrientationPatient[0]"),
    PlaneField("row_cos_y", "float", "", "ImageOrientationPatient[1]"),
    PlaneField("row_cos_z", "float", "", "ImageOrientationPatient[2]"),
    PlaneField("col_cos_x", "float", "", "ImageOrientationPatient[3]"),
    PlaneField("col_cos_y", "float", "", "ImageOrientationPatient[4]"),
    PlaneField("col_cos_z", "float", "", "ImageOrientationPatient[5]"),
    PlaneField("pixel_spacing_row_mm", "float", "mm", "PixelSpacing[0] (between rows)"),
    PlaneField("pixel_spacing_col_mm", "float", "mm", "PixelSpacing[1] (between columns)"),
    PlaneField("rows", "int", "", "pixel rows"),
    PlaneField("cols", "int", "", "pixel columns"),
    PlaneField("thickness_mm", "float", "mm", "SliceThickness"),
)
"""Field order of a serialised plane: table columns and cache vector alike."""

PLANE_VECTOR_LENGTH = 17
"""Cache vectors hold :data:`PLANE_FIELDS` and then zeros (3 spare slots kept for the file format)."""


def plane_values(plane: SlicePlane) -> list[float | int]:
    """The plane's values in :data:`PLANE_FIELDS` order (rows and cols as int)."""
    return [*plane.position_mm, *plane.row_cosine, *plane.col_cosine, *plane.pixel_spacing_mm,
            int(plane.shape[0]), int(plane.shape[1]), plane.thickness_mm]


def plane_from_values(v: Sequence[float]) -> SlicePlane:
    """Inverse of :func:`plane_values` (extra trailing values are ignored)."""
    v = np.asarray(v[:len(PLANE_FIELDS)], dtype=float)
    return SlicePlane(
        position_mm=v[0:3], row_cosine=v[3:6], col_cosine=v[6:9],
        pixel_spacing_mm=(float(v[9]), float(v[10])), shape=(int(v[11]), int(v[12])),
        thickness_mm=float(v[13]),
    )


def plane_vector(plane: SlicePlane) -> np.ndarray:
    """The image cache's layout: :func:`plane_values` padded with zeros to :data:`PLANE_VECTOR_LENGTH`."""
    v = np.zeros(PLANE_VECTOR_LENGTH, dtype=float)
    v[:len(PLANE_FIELDS)] = plane_values(plane)
    return v


def plane_from_vector(v: np.ndarray) -> SlicePlane:
    """Inverse of :func:`plane_vector`."""
    return plane_from_values(np.asarray(v, dtype=float))


def plane_to_row(exam_id: str, view: str, slice_index: int, plane: SlicePlane) -> dict:
    """One slice-plane record: ``exam_id``, ``view``, ``slice_index`` and the :data:`PLANE_FIELDS`."""
    return {"exam_id": exam_id, "view": view, "slice_index": int(slice_index),
            **{f.name: x for f, x in zip(PLANE_FIELDS, plane_values(plane))}}


def row_to_plane(row: "pd.Series | Mapping") -> SlicePlane:
    """Inverse of :func:`plane_to_row`."""
    return plane_from_values([row[f.name] for f in PLANE_FIELDS])


def planes_by_slice(slices: "pd.DataFrame", exam_id: str) -> dict[tuple[str, int], SlicePlane]:
    """``{(view, slice_index): SlicePlane}`` for one exam from a slice-plane table."""
    sub = slices[slices["exam_id"] == exam_id]
    return {(r["view"], int(r["slice_index"])): row_to_plane(r) for _, r in sub.iterrows()}


# ---- planes of a stack ---------------------------------------------------------------------


def nearest_plane(xyz: np.ndarray, planes: Sequence[SlicePlane], tol_mm: float = 2.0) -> int | None:
    """Index of the plane that points ``(N, 3)`` lie on: the smallest mean |distance| to the plane,
    if it is within ``tol_mm``; None otherwise (or without points or planes)."""
    xyz = np.asarray(xyz, dtype=float)
    if len(xyz) == 0 or len(planes) == 0:
        return None
    d = [float(np.abs((xyz - p.position_mm) @ p.normal).mean()) for p in planes]
    i = int(np.argmin(d))
    return i if d[i] <= tol_mm else None


# Two images "of one plane" (a native and a post-contrast T1 map, the magnitude and PSIR of one LGE
# acquisition): a pixel mask or a landmark of one applies to the other within these.
PLANE_TOL_MM = 2.0  # first pixels further apart: another plane
PLANE_TOL_DEG = 5.0  # normals further apart: another plane


def planes_match(a: SlicePlane, b: SlicePlane, tol_mm: float = PLANE_TOL_MM, tol_deg: float = PLANE_TOL_DEG) -> bool:
    """Same slice and pixel grid: normals within ``tol_deg``, first pixels within ``tol_mm``, same
    matrix and pixel size."""
    cos = abs(float(np.dot(a.normal, b.normal)))
    return (cos >= np.cos(np.radians(tol_deg)) and tuple(a.shape) == tuple(b.shape)
            and np.allclose(a.pixel_spacing_mm, b.pixel_spacing_mm, atol=0.01)
            and float(np.linalg.norm(np.asarray(a.position_mm) - np.asarray(b.position_mm))) <= tol_mm)


def slice_spacing_mm(planes: Sequence[SlicePlane]) -> float | None:
    """Median distance between neighbouring planes of a stack along the first plane's normal
    (planes in any order); None for fewer than two planes."""
    if len(planes) < 2:
        return None
    ref = planes[0]
    offsets = np.sort([float((p.position_mm - ref.position_mm) @ ref.normal) for p in planes])
    return float(np.median(np.diff(offsets)))


def rasterise_polygon(rc: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Boolean mask of pixel centres inside the closed polygon ``rc (N, 2)`` (row, col)."""
    rc = np.asarray(rc, dtype=float)
    if len(rc) < 3 or not np.isfinite(rc).all():
        return np.zeros(shape, dtype=bool)
    from matplotlib.path import Path as MplPath  # lazy: most users of this module never need it

    rows, cols = shape
    r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
    path = MplPath(rc[:, ::-1])  # matplotlib wants (x, y) = (col, row)
    return path.contains_points(np.stack([c.ravel(), r.ravel()], 1)).reshape(shape)
