"""``cmr-atlas synth --append``: one cohort folder holding several protocols, truth tables extended."""

from __future__ import annotations

import shutil

import pandas as pd
import pytest

from cmr_atlas.cli import main
from cmr_atlas.synth.merge import MergeError, merge_cohort
from cmr_atlas.synth.mesa import cohort as mesa
from tests.shared import shared_folder


@pytest.fixture()
def legacy(tmp_path_factory, tmp_path):
    """A one-exam legacy cohort of the CLI's, this test's own copy (the tests merge into it)."""
    def build(out):
        assert main(["synth", "--n-exams", "1", "--seed", "93", "--out", str(out)]) == 0

    out = tmp_path / "cohort"
    shutil.copytree(shared_folder(tmp_path_factory, "legacy_cohort_93", build), out)
    return out


def _exams(cohort) -> list[str]:
    return sorted(p.name for p in (cohort / "dicom").iterdir())


def test_clinical_exams_join_a_legacy_cohort(legacy, clinical_synth_cohort, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(clinical_synth_cohort, src)
    before = {p.name: len(pd.read_parquet(p)) for p in (legacy / "truth").glob("*.parquet")}
    clinical = {p.name: len(pd.read_parquet(p)) for p in (src / "truth").glob("*.parquet")}
    added = merge_cohort(src, legacy)
    assert added == _exams(clinical_synth_cohort)
    assert set(_exams(legacy)) == set(added) | {"SYN93-0000"} and not any((src / "dicom").iterdir())
    for name in before.keys() | clinical.keys():  # shared tables extended, one-sided ones copied
        assert len(pd.read_parquet(legacy / "truth" / name)) == before.get(name, 0) + clinical.get(name, 0), name
    subjects = pd.read_parquet(legacy / "truth" / "subjects.parquet")
    assert len(subjects) == 2 and subjects["study_instance_uid"].nunique() == 2


def test_same_exams_twice_move_nothing(legacy, tmp_path):
    copy = tmp_path / "copy"
    shutil.copytree(legacy, copy)
    truth = (legacy / "truth" / "subjects.parquet").read_bytes()
    with pytest.raises(MergeError, match="already in"):
        merge_cohort(copy, legacy)
    assert _exams(copy) == ["SYN93-0000"] and (legacy / "truth" / "subjects.parquet").read_bytes() == truth


def test_cli_append(legacy, monkeypatch):
    assert main(["synth", "--n-exams", "1", "--seed", "94", "--append", "--out", str(legacy)]) == 0
    assert _exams(legacy) == ["SYN93-0000", "SYN94-0000"]
    assert not any(p.name.startswith(".append") for p in legacy.iterdir())  # staging folder removed
    assert len(pd.read_parquet(legacy / "truth" / "subjects.parquet")) == 2

    def generate(*args, **kwargs):
        raise AssertionError("the clash is found before any exam is generated")

    monkeypatch.setattr(mesa, "generate_cohort", generate)
    with pytest.raises(SystemExit, match="already in"):
        main(["synth", "--n-exams", "2", "--seed", "94", "--append", "--out", str(legacy)])
    with pytest.raises(SystemExit, match="no cohort"):
        main(["synth", "--n-exams", "1", "--seed", "95", "--append", "--out", str(legacy / "nowhere")])


def test_cli_refuses_to_write_a_new_cohort_over_other_exams(legacy, monkeypatch):
    written = []
    monkeypatch.setattr(mesa, "generate_cohort", lambda out, *args: written.append(out) or out)
    with pytest.raises(SystemExit, match="already holds other exams .*--append"):
        main(["synth", "--n-exams", "1", "--seed", "95", "--out", str(legacy)])
    assert written == []  # refused before generating; the same exams again are written
    assert main(["synth", "--n-exams", "1", "--seed", "93", "--out", str(legacy)]) == 0 and len(written) == 1
