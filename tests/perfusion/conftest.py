"""One synthetic perfusion exam in memory (generator seed 86, as the session's clinical cohort:
disjoint from the network's training seeds 920000+), shared by the perfusion tests."""

from __future__ import annotations

import pytest

from tests.shared import shared_object


@pytest.fixture(scope="session")
def perfusion_exam(clinical_seed, tmp_path_factory):
    from cmr_atlas.perfusion import synthetic

    return shared_object(tmp_path_factory, f"perfusion_exam_{clinical_seed}",
                         lambda: synthetic.generate(clinical_seed, 0, observers=2))
