"""DICOM SEG as the only manual source (docs/review.md, the correction loop): a SEG holds SAX
contours only, so without ``manual_landmarks_from_auto`` the manual fits fail with
``missing_landmarks``; with it, the landmarks come from the automated guide points and the manual fits
succeed, close to those of the parquet annotations (contours and landmarks of the same observer).

The automated guide points here stand in for the CNN's: the generator's exact landmarks (observer
``truth``, not the annotator's) with confidences below 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.cine.annotations import write_manual_guide_points
from cmr_atlas.cine.guidepoints import manual_guide_points
from cmr_atlas.cine.lvmodel.run import fit_all
from cmr_atlas.core.ids import keyed_hash
from cmr_atlas.formats.dicom_seg import export_dicom_seg
from cmr_atlas.formats.importers import import_to_folder
from tests.formats.helpers import OBSERVER, Cohort

KEY = "landmarks-from-auto-key"
# SEG contours are mask outlines (pixel steps) and have no LAX contours; the landmarks are the
# generator's, not the annotator's: volumes within a few ml of the parquet annotations' fits.
TOL_ML = 8.0


def _exams(cohort: Cohort) -> list[str]:
    return sorted(cohort.exams["exam_id"])


def _seg_annotations(cohort: Cohort, out: Path) -> Path:
    """The observer's SAX masks at ED and ES as DICOM SEG, imported into an annotations folder."""
    for exam, row in cohort.exams.set_index("exam_id").iterrows():
        for phase, f in (("ED", int(row["ed_frame"])), ("ES", int(row["es_frame"]))):
            export_dicom_seg(cohort.sax_masks(f, exam), cohort.index, exam, f, phase, out / "seg")
    import_to_folder("dicom_seg", [out / "seg"], cohort.root, out / "annotations", OBSERVER, "acdc")
    return out / "annotations"


def _auto_guide_points(cohort: Cohort) -> pd.DataFrame:
    truth = cohort.root / "truth"
    c, lm = pd.read_parquet(truth / "contours.parquet"), pd.read_parquet(truth / "landmarks.parquet")
    gp = manual_guide_points(c, lm, cohort.slices, {e: e for e in _exams(cohort)}, "truth", source="auto")
    return gp.assign(weight=0.8)


@pytest.fixture(scope="module")
def manual(cohort, tmp_path_factory):
    """Manual guide points of the SEG source, off and on, and of the parquet annotations."""
    out = tmp_path_factory.mktemp("landmarks_from_auto")
    folder = _seg_annotations(cohort, out)
    cohort.slices.to_parquet(out / "slices.parquet")
    exams = _exams(cohort)
    pd.DataFrame({"exam_id": exams, "key_type": "exam_folder", "key_hash": [keyed_hash(e, KEY) for e in exams]}) \
        .to_parquet(out / "exam_keys.parquet")
    auto = _auto_guide_points(cohort)
    auto.to_parquet(out / "guide_points_auto.parquet")
    args = (folder, out / "slices.parquet", out / "exam_keys.parquet", KEY, OBSERVER)
    off = write_manual_guide_points(*args, out / "off.parquet")
    on = write_manual_guide_points(*args, out / "on.parquet", auto_guide_points=out / "guide_points_auto.parquet")
    ann = cohort.annotations
    parquet = pd.concat([cohort.guide_points(ann(e), e) for e in exams], ignore_index=True)
    return {"off": off, "on": on, "parquet": parquet, "auto": auto}


@pytest.fixture(scope="module")
def measures(cohort, manual) -> pd.DataFrame:
    """Model-method measures of the three manual sources, indexed by (exam_id, source)."""
    gp = pd.concat([manual[s].assign(source=s) for s in ("off", "on", "parquet")], ignore_index=True)
    m = fit_all(gp, cohort.slices)["measures"]
    return m[m["method"] == "model"].set_index(["exam_id", "source"]).sort_index()


def test_seg_manual_source_lacks_landmarks_unless_taken_from_auto(manual):
    off, on, auto = manual["off"], manual["on"], manual["auto"]
    assert len(off) and not (off["kind"] == "landmark").any()
    added = on[on["kind"] == "landmark"]
    lm = auto[auto["kind"] == "landmark"]
    assert set(added["source"]) == {"manual"} and len(added) == len(lm)
    # the copies can be told apart afterwards: each equals its automated row (coordinates, weight)
    keys = ["exam_id", "phase", "frame", "view", "slice_index", "landmark", "x_mm", "y_mm", "z_mm", "weight"]
    joined = added[keys].merge(lm[keys], on=keys, how="left", indicator=True)
    assert (joined["_merge"] == "both").all()
    pd.testing.assert_frame_equal(on[on["kind"] == "contour"].reset_index(drop=True), off.reset_index(drop=True),
                                  check_dtype=False)


@pytest.mark.slow
def test_manual_fits_fail_without_landmarks_and_succeed_with_the_automated_ones(measures):
    off = measures.xs("off", level="source")
    assert len(off) == 2 and (off["status"] == "failed").all()
    assert off["qc_reason"].str.startswith("missing_landmarks").all(), off["qc_reason"]
    on, ref = measures.xs("on", level="source"), measures.xs("parquet", level="source")
    assert (on["status"] == "ok").all() and (ref["status"] == "ok").all(), on["qc_reason"]
    assert list(on.index) == list(ref.index)
    for col in ("edv_ml", "esv_ml"):
        np.testing.assert_allclose(on[col].astype(float), ref[col].astype(float), atol=TOL_ML, err_msg=col)
