"""benchmarks/atlas_check.py redraws each synthetic subject from its protocol generator's subject
stream: legacy (SYN) and clinical (CLN) labels, also mixed in one cohort, give back the covariates
and target indices the generators wrote, and the true measures come from `truth/volumes` alike."""

import numpy as np
import pandas as pd
import pytest

from cmr_atlas.synth.clinical import cohort as clinical
from cmr_atlas.synth.mesa.cohort import generate_cohort


@pytest.fixture(scope="module")
def bench(benchmark_module):
    return benchmark_module("atlas_check")


@pytest.fixture(scope="module")
def legacy_truth(tmp_path_factory):
    out = tmp_path_factory.mktemp("legacy")
    generate_cohort(out, 1, seed=12, mi_fraction=0.3)
    return out / "truth"


def _clinical_subjects(seed: int, n: int, mi_fraction: float) -> pd.DataFrame:
    """The clinical generator's subjects rows (what truth/subjects holds), without rendering."""
    rows = [{"exam_id": clinical.exam_label(seed, i), **clinical.make_context(seed, i, mi_fraction).subject}
            for i in range(n)]
    return pd.DataFrame(rows)


def test_mixed_cohort_redraws_every_subject(bench, legacy_truth):
    legacy = pd.read_parquet(legacy_truth / "subjects.parquet")
    clin = _clinical_subjects(13, 3, 0.3)
    subjects = pd.concat([legacy, clin[[c for c in legacy.columns if c in clin]]], ignore_index=True)
    targets = bench.generator_targets(subjects, 0.3)
    cols = [c for c in clin.columns if c.startswith("target_")]
    assert np.array_equal(targets[cols].iloc[1:].to_numpy(float), clin[cols].to_numpy(float))
    assert [bench.parse_label(x)[0] for x in subjects["exam_id"]] == ["mesa"] + ["clinical"] * 3


def test_wrong_mi_fraction_is_named(bench):
    subjects = _clinical_subjects(13, 4, 0.9)
    subjects = subjects.drop(columns=[c for c in subjects.columns if c.startswith("target_")])
    with pytest.raises(SystemExit, match="wrong --mi-fraction"):
        bench.generator_targets(subjects, 0.0)


def test_unknown_label_is_refused(bench):
    with pytest.raises(SystemExit, match="not a synthetic exam label"):
        bench.parse_label("E0123abc")


def test_true_measures_match_the_legacy_exams_table(bench, legacy_truth):
    got = bench.true_measures(legacy_truth).set_index("exam_id")
    want = pd.read_parquet(legacy_truth / "exams.parquet").set_index("exam_id")
    for k in bench.MEASURES:
        assert np.allclose(got.loc[want.index, k], want[k]), k
