"""Helpers of the format tests: the synthetic cohort's data and guide-point comparison."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from cmr_atlas.cine.guidepoints import manual_guide_points
from cmr_atlas.cine.segmentation import label_mask
from cmr_atlas.formats.annotations import Annotations
from cmr_atlas.formats.dicom_index import CohortIndex, build_index

OBSERVER = "obs1"


@dataclass
class Cohort:
    root: Path
    index: CohortIndex
    contours: pd.DataFrame  # obs1 rows (ED and ES)
    landmarks: pd.DataFrame
    slices: pd.DataFrame  # truth slice planes
    exams: pd.DataFrame

    @property
    def exam(self) -> str:
        return str(self.exams["exam_id"].iloc[0])

    @classmethod
    def read(cls, root: Path) -> "Cohort":
        """A generated cohort folder (``dicom/``, ``truth/``) with observer 1's annotations."""
        truth = root / "truth"
        c, lm = pd.read_parquet(truth / "contours.parquet"), pd.read_parquet(truth / "landmarks.parquet")
        return cls(root=root, index=build_index(root / "dicom"),
                   contours=c[c["observer"] == OBSERVER].reset_index(drop=True),
                   landmarks=lm[lm["observer"] == OBSERVER].reset_index(drop=True),
                   slices=pd.read_parquet(truth / "slices.parquet"), exams=pd.read_parquet(truth / "exams.parquet"))

    def annotations(self, exam: str | None = None) -> Annotations:
        exam = exam or self.exam
        return Annotations(self.contours[self.contours["exam_id"] == exam].reset_index(drop=True),
                           self.landmarks[self.landmarks["exam_id"] == exam].reset_index(drop=True))

    def guide_points(self, ann: Annotations, exam: str | None = None) -> pd.DataFrame:
        """The manual path's guide points of ``ann`` (exam folder name as exam_id)."""
        exam = exam or self.exam
        return manual_guide_points(ann.contours, ann.landmarks, self.slices, {exam: exam}, OBSERVER)

    def sax_masks(self, frame: int, exam: str | None = None) -> np.ndarray:
        """(S, R, C) cmr-atlas label masks rasterised from the observer's SAX contours at ``frame``."""
        exam = exam or self.exam
        refs = [r for r in self.index.images(exam, "sax") if r.frame == frame]
        c = self.contours[(self.contours["exam_id"] == exam) & (self.contours["view"] == "sax")
                          & (self.contours["frame"] == frame)]
        masks = np.zeros((len(refs), *refs[0].plane.shape), dtype=np.uint8)
        for ref in refs:
            rc = {s: ref.plane.patient_to_pixel(g.sort_values("point_index")[["x_mm", "y_mm", "z_mm"]].to_numpy())[0]
                  for s, g in c[c["slice_index"] == ref.slice_index].groupby("surface")}
            if rc:
                masks[ref.slice_index] = label_mask(ref.plane.shape, rc.get("endo"), rc.get("epi"))
        return masks


KEYS = ["phase", "frame", "view", "slice_index", "kind", "surface", "landmark", "point_index"]


def comparable(gp: pd.DataFrame) -> pd.DataFrame:
    """Guide points sorted by their identity, for an element-wise comparison."""
    return gp.assign(surface=gp["surface"].fillna(""), landmark=gp["landmark"].fillna("")) \
        .sort_values(KEYS).reset_index(drop=True)


def assert_same_guide_points(expected: pd.DataFrame, got: pd.DataFrame, tol_mm: float) -> None:
    a, b = comparable(expected), comparable(got)
    assert len(a) == len(b) and len(a) > 0
    pd.testing.assert_frame_equal(a[KEYS], b[KEYS], check_dtype=False)
    d = np.linalg.norm(a[["x_mm", "y_mm", "z_mm"]].to_numpy() - b[["x_mm", "y_mm", "z_mm"]].to_numpy(), axis=1)
    assert d.max() < tol_mm, d.max()


def sax_planes(cohort: Cohort, frame: int, exam: str | None = None) -> list:
    refs = [r for r in cohort.index.images(exam or cohort.exam, "sax") if r.frame == frame]
    return [r.plane for r in refs]


def _polyline_distance(points: np.ndarray, closed: np.ndarray) -> np.ndarray:
    """Distance of each point to a closed polyline (N, 3)."""
    a, b = closed, np.roll(closed, -1, axis=0)
    ab, ap = b - a, points[:, None] - a[None]
    t = np.clip((ap * ab).sum(-1) / (ab * ab).sum(-1), 0, 1)
    return np.linalg.norm(ap - t[..., None] * ab, axis=-1).min(axis=1)


def contour_errors_px(cohort: Cohort, imported: pd.DataFrame, frame: int) -> np.ndarray:
    """Distance (pixels) of each imported contour point to the observer's contour it came from."""
    (exam,) = set(imported["exam_id"])
    c = cohort.contours
    truth = c[(c["exam_id"] == exam) & (c["view"] == "sax") & (c["frame"] == frame)]
    spacing = sax_planes(cohort, frame, exam)[0].pixel_spacing_mm[0]
    out = []
    for (k, surface), g in imported.groupby(["slice_index", "surface"]):
        t = truth[(truth["slice_index"] == k) & (truth["surface"] == surface)].sort_values("point_index")
        assert len(t), (k, surface)
        out.append(_polyline_distance(g[["x_mm", "y_mm", "z_mm"]].to_numpy(), t[["x_mm", "y_mm", "z_mm"]].to_numpy()))
    return np.concatenate(out) / spacing
