import re

import pytest

from cmr_atlas.formats import FormatError
from cmr_atlas.formats.annotations import Annotations
from cmr_atlas.formats.cvi42 import read_cvi42, write_cvi42

from tests.formats.helpers import OBSERVER, assert_same_guide_points


def _without_lv_centre(ann: Annotations) -> Annotations:
    """cvi42 has no LV-centre point: the writer leaves it out (documented)."""
    return Annotations(ann.contours, ann.landmarks[ann.landmarks["landmark"] != "lv_centre"])


def test_round_trip_gives_the_same_guide_points(cohort, tmp_path):
    ann = cohort.annotations()
    path = write_cvi42(ann, cohort.index, cohort.exam, tmp_path / "ws.cvi42wsx")
    back = read_cvi42(path, cohort.index, observer=OBSERVER)
    assert set(back.contours["surface"]) == {"endo", "epi"}
    assert_same_guide_points(cohort.guide_points(_without_lv_centre(ann)), cohort.guide_points(back), 0.1)


@pytest.fixture()
def workspace(cohort, tmp_path):
    return write_cvi42(cohort.annotations(), cohort.index, cohort.exam, tmp_path / "ws.cvi42wsx").read_text()


def _rewrite(tmp_path, text):
    p = tmp_path / "bad.cvi42wsx"
    p.write_text(text)
    return p


def test_unknown_contour_name(cohort, workspace, tmp_path):
    bad = _rewrite(tmp_path, workspace.replace('"saepicardialContour"', '"saMysteryContour"', 1))
    with pytest.raises(FormatError, match=r"bad\.cvi42wsx: image .* contour 'saMysteryContour': unknown contour name"):
        read_cvi42(bad, cohort.index)


def test_uid_not_in_cohort(cohort, workspace, tmp_path):
    uid = re.search(r'ImageStates" Hash:type="Hash"><Hash:item Hash:key="([0-9.]+)"', workspace).group(1)
    bad = _rewrite(tmp_path, workspace.replace(uid, "1.2.999.1"))
    with pytest.raises(FormatError, match=r"bad\.cvi42wsx: SOPInstanceUID 1\.2\.999\.1 \(ImageStates item\) is not"):
        read_cvi42(bad, cohort.index)


def test_sax_contour_on_a_lax_image(cohort, workspace, tmp_path):
    bad = _rewrite(tmp_path, workspace.replace('"laendocardialContour"', '"saendocardialContour"', 1))
    msg = r"saendocardialContour is a SAX contour but the image is the exam's lax_\dch view"
    with pytest.raises(FormatError, match=msg):
        read_cvi42(bad, cohort.index)


def test_bad_points_and_not_xml(cohort, workspace, tmp_path):
    bad = _rewrite(tmp_path, workspace.replace("<Point:x>", "<Point:x>z", 1))
    with pytest.raises(FormatError, match="numeric Point:x and Point:y"):
        read_cvi42(bad, cohort.index)
    with pytest.raises(FormatError, match=r"not\.xml: not a readable cvi42 workspace XML"):
        read_cvi42(_rewrite(tmp_path, "<a>").rename(tmp_path / "not.xml"), cohort.index)


def test_images_outside_the_chosen_cines_are_skipped(cohort, workspace, tmp_path):
    other = next(iter(cohort.index.other))  # e.g. a localizer image of the exam
    uid = re.search(r'ImageStates" Hash:type="Hash"><Hash:item Hash:key="([0-9.]+)"', workspace).group(1)
    first = read_cvi42(_rewrite(tmp_path, workspace), cohort.index)
    skipped = read_cvi42(_rewrite(tmp_path, workspace.replace(uid, other)), cohort.index)
    ref = cohort.index.by_uid[uid]
    c = first.contours
    on_image = (c["view"] == ref.view) & (c["slice_index"] == ref.slice_index) & (c["frame"] == ref.frame)
    assert on_image.any() and len(skipped.contours) == len(c) - on_image.sum()
