"""``cmr-atlas annotations import``: files -> the annotations folder the manual path reads."""

from __future__ import annotations

import pandas as pd

from cmr_atlas.cli import main
from cmr_atlas.core.geometry import planes_by_slice
from cmr_atlas.formats.cap import write_cap
from cmr_atlas.formats.cvi42 import write_cvi42
from cmr_atlas.formats.importers import import_annotations
from tests.formats.helpers import OBSERVER


def _assert_written(path, expected: pd.DataFrame) -> None:
    """The parquet at ``path`` holds ``expected`` (nulls compared as nulls, whatever pandas calls them)."""
    got = pd.read_parquet(path)
    pd.testing.assert_frame_equal(got.astype(object).where(got.notna(), None),
                                  expected.astype(object).where(expected.notna(), None), check_dtype=False)


def test_import_writes_the_annotations_folder(cohort, tmp_path, capsys):
    ws = write_cvi42(cohort.annotations(), cohort.index, cohort.exam, tmp_path / "ws" / "a.cvi42wsx")
    out = tmp_path / "annotations"
    # a folder argument is searched for the format's files
    assert main(["annotations", "import", "--format", "cvi42", "--cohort", str(cohort.root),
                 "--out", str(out), "--observer", OBSERVER, str(ws.parent)]) == 0
    expected = import_annotations("cvi42", [ws], cohort.index, OBSERVER)
    _assert_written(out / "contours.parquet", expected.contours)
    _assert_written(out / "landmarks.parquet", expected.landmarks)
    assert "1 exams" in capsys.readouterr().out


def test_cap_folders_are_found_under_the_folder_given(cohort, tmp_path):
    gp = cohort.guide_points(cohort.annotations())
    write_cap(gp, planes_by_slice(cohort.slices, cohort.exam), tmp_path / "cap" / "site1" / "exam1")
    out = tmp_path / "annotations"
    assert main(["annotations", "import", "--format", "cap", "--cohort", str(cohort.root / "dicom"),
                 "--out", str(out), "--observer", OBSERVER, str(tmp_path / "cap")]) == 0
    expected = import_annotations("cap", [tmp_path / "cap" / "site1" / "exam1"], cohort.index, OBSERVER)
    _assert_written(out / "landmarks.parquet", expected.landmarks)
    assert len(pd.read_parquet(out / "contours.parquet")) == len(expected.contours) > 0


def test_bad_input_exits_2_with_the_message(cohort, tmp_path, capsys):
    args = ["annotations", "import", "--format", "cvi42", "--cohort", str(cohort.root), "--out", str(tmp_path / "o")]
    assert main([*args, str(tmp_path / "missing.cvi42wsx")]) == 2
    assert "missing.cvi42wsx: no such file or folder" in capsys.readouterr().err
    bad = tmp_path / "bad.cvi42wsx"
    bad.write_text("<not xml")
    assert main([*args, str(bad)]) == 2
    err = capsys.readouterr().err
    assert "bad.cvi42wsx" in err and "Traceback" not in err
    (tmp_path / "empty").mkdir()
    assert main([*args, str(tmp_path / "empty")]) == 2
    assert "no cvi42 files" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()
