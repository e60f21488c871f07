import pandas as pd
import pytest

from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.formats import FormatError
from cmr_atlas.formats.cap import SLICE_INFO, read_cap, read_gp_file, write_cap
from tests.formats.helpers import OBSERVER, assert_same_guide_points


@pytest.fixture()
def cap_files(cohort, tmp_path):
    gp = cohort.guide_points(cohort.annotations())
    return gp, write_cap(gp, planes_by_slice(cohort.slices, cohort.exam), tmp_path / "cap")


def test_one_gp_file_per_frame_and_slice_ids(cohort, cap_files):
    gp, paths = cap_files
    assert paths[0].name == SLICE_INFO
    assert sorted(p.name for p in paths[1:]) == [f"GPFile_{f:03d}.txt" for f in sorted(gp["frame"].unique())]
    ids = [int(line.split("\t")[2]) for line in paths[0].read_text().splitlines()]
    assert ids == list(range(1, len(ids) + 1))
    df = read_gp_file(paths[1])
    assert {"SAX_LV_ENDOCARDIAL", "SAX_LV_EPICARDIAL", "LAX_LV_ENDOCARDIAL", "MITRAL_VALVE", "APEX_POINT",
            "RV_INSERT"} <= set(df["contour type"])


def test_round_trip_gives_the_same_guide_points(cohort, cap_files):
    gp, paths = cap_files
    back = read_cap(paths[1:], paths[0], cohort.index, cohort.exam, observer=OBSERVER)
    expected = gp[gp["landmark"].fillna("") != "lv_centre"]  # CAP has no LV-centre type
    assert_same_guide_points(expected, cohort.guide_points(back), 0.1)


def test_unknown_contour_type(cohort, cap_files):
    _, paths = cap_files
    paths[1].write_text(paths[1].read_text().replace("APEX_POINT", "APEX_OF_SOMETHING"))
    with pytest.raises(FormatError, match=r"GPFile_\d{3}\.txt: unknown contour type\(s\) \['APEX_OF_SOMETHING'\]"):
        read_cap(paths[1:], paths[0], cohort.index, cohort.exam)


def _shift_slices(slice_info, lines_to_shift):
    """Move slices 40 mm along x, y and z: off their plane whatever its orientation."""
    lines = slice_info.read_text().splitlines()
    for n in lines_to_shift:
        tokens = lines[n].split("\t")
        i = tokens.index("ImagePositionPatient")
        for j in (1, 2, 3):
            tokens[i + j] = repr(float(tokens[i + j]) + 40.0)
        lines[n] = "\t".join(tokens)
    slice_info.write_text("\n".join(lines) + "\n")


def test_slice_that_matches_no_image_plane(cohort, cap_files):
    _, paths = cap_files
    _shift_slices(paths[0], [0])
    with pytest.raises(FormatError, match=r"SliceInfoFile\.txt: sliceID 1 matches no SAX/LAX image plane"):
        read_cap(paths[1:], paths[0], cohort.index, cohort.exam)


def test_sax_type_on_a_lax_plane(cohort, cap_files):
    _, paths = cap_files
    df = pd.read_csv(paths[1], sep="\t")
    lax_ids = [int(line.split("\t")[2]) for line in paths[0].read_text().splitlines() if line.startswith("lax")]
    df.loc[df["sliceID"] == lax_ids[0], "contour type"] = "SAX_LV_ENDOCARDIAL"
    df.to_csv(paths[1], sep="\t", index=False)
    msg = r"SAX_LV_ENDOCARDIAL points on the exam's lax_\dch plane \(orientation mismatch\)"
    with pytest.raises(FormatError, match=msg):
        read_cap(paths[1:], paths[0], cohort.index, cohort.exam)


def test_missing_columns_and_keywords(cohort, cap_files, tmp_path):
    _, paths = cap_files
    gp = tmp_path / "GPFile_bad.txt"
    gp.write_text("x\ty\tz\n1\t2\t3\n")
    with pytest.raises(FormatError, match=r"GPFile_bad\.txt: header lacks columns \['contour type'"):
        read_cap([gp], paths[0], cohort.index, cohort.exam)
    info = tmp_path / "SliceInfoFile.txt"
    info.write_text("sax_0\tsliceID: \t1\tImagePositionPatient\t1\t2\n")
    with pytest.raises(FormatError, match=r"SliceInfoFile\.txt: line 1: missing or bad ImageOrientationPatient"):
        read_cap(paths[1:], info, cohort.index, cohort.exam)


def test_exam_found_by_geometry(cohort, cap_files):
    _, paths = cap_files
    back = read_cap(paths[1:], paths[0], cohort.index)
    assert set(back.contours["exam_id"]) == {cohort.exam}
    _shift_slices(paths[0], range(len(paths[0].read_text().splitlines())))
    with pytest.raises(FormatError, match=r"SliceInfoFile\.txt: its planes match no exam of the cohort"):
        read_cap(paths[1:], paths[0], cohort.index)
