"""Column definitions that more than one table schema uses, each written once.

A schema lists these next to its own columns.  Where a table differs only in whether a column may
be null, it uses :func:`required` or :func:`optional` on the shared definition.
"""

from __future__ import annotations

from dataclasses import replace

from cmr_atlas.core.geometry import PLANE_FIELDS
from cmr_atlas.core.tables import Column
from cmr_atlas.core.vocab import PHASES, SURFACES, VIEWS, one_of


def required(column: Column) -> Column:
    """``column`` with nulls forbidden."""
    return replace(column, nullable=False)


def optional(column: Column) -> Column:
    """``column`` with nulls allowed."""
    return replace(column, nullable=True)


EXAM_ID = Column("exam_id", "str", "keyed, de-identified exam id", nullable=False)
VIEW = Column("view", "str", one_of(VIEWS), nullable=False)
SLICE_INDEX = Column("slice_index", "int", "SAX slice index, 0 = most basal; 0 for LAX views",
                     nullable=False)
FRAME = Column("frame", "int", "cine frame index (0-based, trigger-time order)", nullable=False)
PHASE = Column("phase", "str", one_of(PHASES), nullable=False)
SURFACE = Column("surface", "str", one_of(SURFACES), nullable=False)
GUIDE_POINT_SOURCE = Column("source", "str", "guide-point source: auto, manual, obs1, obs2 or truth",
                            nullable=False)
ATLAS_SOURCE = Column("source", "str", "atlas source: auto (automated pipeline) or manual (annotations)",
                      nullable=False)
SERIES_INDEX = Column("series_index", "int", "the series' row of the exam's ingest `series` table "
                      "((exam_id, series_index) is the de-identified series key)", nullable=False)
ED_FRAME = Column("ed_frame", "int", "end-diastolic frame index")
ES_FRAME = Column("es_frame", "int", "end-systolic frame index (minimal cavity volume)")

PATIENT_XYZ_MM = (
    Column("x_mm", "float", "patient x (left)", "mm"),
    Column("y_mm", "float", "patient y (posterior)", "mm"),
    Column("z_mm", "float", "patient z (superior)", "mm"),
)
"""A point in patient coordinates (DICOM LPS, :mod:`cmr_atlas.core.geometry`)."""

LOCAL_XYZ_MM = (
    Column("x_mm", "float", "local x (towards the septum)", "mm"),
    Column("y_mm", "float", "local y (= z cross x)", "mm"),
    Column("z_mm", "float", "local z (long axis, towards the apex)", "mm"),
)
"""A point in a fitted LV model's local frame (``model_frames``: patient = origin + R @ local)."""

SHIFT_MM = (
    Column("dx_mm", "float", "breath-hold displacement, patient x", "mm"),
    Column("dy_mm", "float", "breath-hold displacement, patient y", "mm"),
    Column("dz_mm", "float", "breath-hold displacement, patient z", "mm"),
)
"""Breath-hold displacement of a slice (the heart appeared at p + d)."""

PLANE_COLUMNS = tuple(Column(f.name, f.type, f.description, f.unit) for f in PLANE_FIELDS)
"""The geometry of a :class:`~cmr_atlas.core.geometry.SlicePlane`, in its one field order."""

SLICE_PLANE_COLUMNS = (EXAM_ID, VIEW, SLICE_INDEX, *PLANE_COLUMNS)
"""Columns every slice-plane table carries (ingest's `slices` and the truth's `slices`); rows come
from :func:`cmr_atlas.core.geometry.plane_to_row`."""
