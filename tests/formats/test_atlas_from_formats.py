"""The manual atlas built from each core-lab format equals the one built from the annotation parquet
(issue #18), on a 3-exam synthetic cohort: truth -> format file -> import -> manual guide points ->
LV model fit (config defaults) -> atlas, against the same pipeline from the parquet annotations with
the same information:

* cvi42 and CAP carry the contours and landmarks but have no slot for ``lv_centre``: the reference
  is the parquet annotations without ``lv_centre``.  CAP writes exact decimal text (equal results);
  cvi42 rounds points to 1/32 pixel (under 0.1 mm), so its fits and atlas agree within :data:`TOL`.
* NIfTI label maps and DICOM SEG carry SAX masks only (at ED and ES): their SAX contours are the
  label regions' outlines, so the reference replaces the parquet's SAX contours by the outlines of
  the same masks (:func:`~cmr_atlas.formats.annotations.mask_contour_rows` on each SAX image), LAX
  contours and landmarks coming from the parquet for both.  The file formats then change nothing
  but float rounding of the geometry: tight tolerances.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.atlas import build_atlases
from cmr_atlas.cine.guidepoints import manual_guide_points
from cmr_atlas.cine.lvmodel.run import fit_all
from cmr_atlas.core.config import default
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.formats.annotations import Annotations, mask_contour_rows
from cmr_atlas.formats.cap import write_cap
from cmr_atlas.formats.cvi42 import write_cvi42
from cmr_atlas.formats.dicom_seg import export_dicom_seg
from cmr_atlas.formats.importers import import_annotations
from cmr_atlas.formats.nifti import LABEL_SETS, relabel, write_nifti
from cmr_atlas.synth.mesa.cohort import generate_cohort
from tests.formats.helpers import OBSERVER, Cohort, sax_planes
from tests.shared import shared_folder

# Tolerances of the comparison: "rounded" = cvi42, whose points are integers in 1/32 pixel (under
# 0.1 mm; the least-squares fit with breath-hold shifts moves extrapolated surface points -- apex,
# base -- by up to about twice that: 0.2 mm measured); "exact" = CAP (exact decimal text), NIfTI and
# SEG (the same masks, the same outlines: equal to float rounding of the geometry).
TOL = {
    "rounded": {"surface_mm": 0.3, "volume_ml": 0.5, "mass_g": 0.5, "variance_ratio": 0.01, "score_sd": 0.01},
    "exact": {"surface_mm": 1e-6, "volume_ml": 1e-6, "mass_g": 1e-6, "variance_ratio": 1e-9, "score_sd": 1e-6},
}
# format -> (reference source, tolerance)
PAIRS = {"cvi42": ("no_centre", "rounded"), "cap": ("no_centre", "exact"),
         "nifti": ("label_outlines", "exact"), "dicom_seg": ("label_outlines", "exact")}


@pytest.fixture(scope="module")
def cohort3(tmp_path_factory) -> Cohort:
    return Cohort.read(shared_folder(tmp_path_factory, "formats_cohort_3x1",
                                     lambda out: generate_cohort(out, 3, 1, observers=1)))


def _exams(cohort: Cohort) -> list[str]:
    return sorted(cohort.exams["exam_id"])


def _phase_frames(cohort: Cohort, exam: str) -> dict[str, int]:
    row = cohort.exams.set_index("exam_id").loc[exam]
    return {"ED": int(row["ed_frame"]), "ES": int(row["es_frame"])}


def _truth(cohort: Cohort) -> Annotations:
    return Annotations(cohort.contours, cohort.landmarks)


def _without_centre(ann: Annotations) -> Annotations:
    return Annotations(ann.contours, ann.landmarks[ann.landmarks["landmark"] != "lv_centre"])


def _with_sax_contours(ann: Annotations, sax: pd.DataFrame) -> Annotations:
    """``ann`` with its SAX contours replaced by ``sax`` (label-map outlines)."""
    lax = ann.contours[ann.contours["view"] != "sax"]
    return Annotations.from_rows([lax, sax[sax["view"] == "sax"]], [ann.landmarks])


def _label_outlines(cohort: Cohort) -> pd.DataFrame:
    """The reference SAX contours: outlines of the masks each label-map file is written from."""
    rows = []
    for exam in _exams(cohort):
        for phase, f in _phase_frames(cohort, exam).items():
            masks = cohort.sax_masks(f, exam)
            for ref in (r for r in cohort.index.images(exam, "sax") if r.frame == f):
                rows += mask_contour_rows(ref, masks[ref.slice_index], LABEL_SETS["cmr_atlas"], OBSERVER, phase)
    return pd.concat(rows, ignore_index=True)


def _format_files(cohort: Cohort, out: Path) -> dict[str, list[Path]]:
    files: dict[str, list[Path]] = {"cvi42": [], "cap": [], "nifti": [], "dicom_seg": []}
    for exam in _exams(cohort):
        ann = cohort.annotations(exam)
        files["cvi42"].append(write_cvi42(ann, cohort.index, exam, out / "cvi42" / f"{exam}.cvi42wsx"))
        write_cap(cohort.guide_points(ann, exam), planes_by_slice(cohort.slices, exam), out / "cap" / exam)
        files["cap"].append(out / "cap" / exam)
        for phase, f in _phase_frames(cohort, exam).items():
            masks = cohort.sax_masks(f, exam)
            files["nifti"].append(write_nifti(relabel(masks, "acdc"), sax_planes(cohort, f, exam),
                                              out / "nifti" / f"{exam}_frame{f + 1:02d}_gt.nii.gz"))
            files["dicom_seg"] += export_dicom_seg(masks, cohort.index, exam, f, phase, out / "seg")
    return files


def _annotations(cohort: Cohort, out: Path) -> dict[str, Annotations]:
    """Every source's annotations: the two references and one per format."""
    truth = _truth(cohort)
    sources = {"no_centre": _without_centre(truth), "label_outlines": _with_sax_contours(truth, _label_outlines(cohort))}
    for fmt, paths in _format_files(cohort, out).items():
        imported = import_annotations(fmt, paths, cohort.index, OBSERVER)
        sources[fmt] = imported if fmt in ("cvi42", "cap") else _with_sax_contours(truth, imported.contours)
    return sources


@pytest.fixture(scope="module")
def fitted(cohort3, tmp_path_factory):
    out = tmp_path_factory.mktemp("files")
    exams = {e: e for e in _exams(cohort3)}
    gp = pd.concat([manual_guide_points(a.contours, a.landmarks, cohort3.slices, exams, OBSERVER).assign(source=name)
                    for name, a in _annotations(cohort3, out).items()], ignore_index=True)
    tables = fit_all(gp, cohort3.slices)
    return tables["shapes"], tables["measures"]


def _surfaces(shapes: pd.DataFrame, source: str) -> np.ndarray:
    s = shapes[shapes["source"] == source].sort_values(["exam_id", "phase", "surface", "point_index"])
    return s[["x_mm", "y_mm", "z_mm"]].to_numpy()


@pytest.mark.slow
@pytest.mark.parametrize("fmt", list(PAIRS))
def test_fits_and_atlas_from_a_format_equal_those_from_the_parquet(fitted, fmt):
    shapes, measures = fitted
    reference, kind = PAIRS[fmt]
    tol = TOL[kind]
    m = measures[measures["method"] == "model"].set_index(["exam_id", "source"])
    assert (m["status"] == "ok").all(), m["qc_reason"]
    a, b = (m.xs(s, level="source").sort_index() for s in (reference, fmt))
    assert list(a.index) == list(b.index) and len(a) == 3
    for col, t in (("edv_ml", tol["volume_ml"]), ("esv_ml", tol["volume_ml"]), ("lv_mass_g", tol["mass_g"])):
        np.testing.assert_allclose(b[col].astype(float), a[col].astype(float), atol=t, err_msg=col)
    d = np.linalg.norm(_surfaces(shapes, fmt) - _surfaces(shapes, reference), axis=1)
    assert len(d) and d.max() < tol["surface_mm"], d.max()

    build = build_atlases(shapes, None, n_components=default("atlas.n_components"),
                          scaling=default("atlas.scaling"), sources=(reference, fmt))
    ref, got = build.atlases[reference], build.atlases[fmt]
    assert ref.exam_ids == got.exam_ids and ref.n_components == got.n_components >= 2
    assert np.abs(got.mean - ref.mean).max() < tol["surface_mm"]
    np.testing.assert_allclose(got.variance_ratio, ref.variance_ratio, atol=tol["variance_ratio"])
    signs = np.sign(np.sum(got.scores * ref.scores, axis=0))  # a PCA mode's sign is arbitrary
    scale = np.sqrt(ref.variance[0])
    assert np.abs(got.scores * signs - ref.scores).max() < tol["score_sd"] * scale
