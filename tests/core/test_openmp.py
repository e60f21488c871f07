"""The OpenMP wait policy the batch jobs set before torch is imported."""

from cmr_atlas.core.openmp import WAIT_POLICY, prefer_passive_wait


def test_sets_passive_when_unset(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_wait()
    import os
    assert os.environ["OMP_WAIT_POLICY"] == WAIT_POLICY == "PASSIVE"


def test_user_setting_wins(monkeypatch):
    monkeypatch.setenv("OMP_WAIT_POLICY", "ACTIVE")
    prefer_passive_wait()
    import os
    assert os.environ["OMP_WAIT_POLICY"] == "ACTIVE"
