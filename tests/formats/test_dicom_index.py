import numpy as np
import pytest

from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.formats import FormatError


def test_index_orders_images_as_ingest_and_truth(cohort):
    exam = cohort.exam
    planes = cohort.index.planes(exam)
    truth = planes_by_slice(cohort.slices, exam)
    assert set(planes) == set(truth)
    for key, p in truth.items():
        assert np.allclose(planes[key].position_mm, p.position_mm, atol=1e-3)
        assert np.allclose(planes[key].normal, p.normal, atol=1e-5)
    n_frames = int(cohort.exams["n_frames"].iloc[0])
    assert cohort.index.n_frames(exam) == n_frames
    ref = cohort.index.at(exam, "sax", 2, 3)
    assert cohort.index.ref(ref.sop_uid, "x") is ref


def test_unknown_uid_names_the_file(cohort):
    with pytest.raises(FormatError, match=r"ws\.xml: SOPInstanceUID 1\.2\.3 .*is not an image"):
        cohort.index.ref("1.2.3", "ws.xml")
