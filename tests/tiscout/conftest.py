"""Small generated TI scouts for the tiscout tests (seed 86 = the tests' clinical cohort seed,
disjoint from the training 151000 and benchmark 152000 seeds)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def small_scouts(clinical_seed):
    """Scouts of 3 generated exams (about 1 s each), network grids included."""
    from cmr_atlas.tiscout.trainset import generate_scouts

    return generate_scouts(clinical_seed, 3)
