"""Fixtures of the cine tests.

The known LV lives in ``known_lv.py`` (a module, not only a fixture: benchmarks/fit_accuracy.py
uses it too).
"""

from __future__ import annotations

import pytest

from tests.cine import known_lv


@pytest.fixture(scope="session")
def make_fixture():
    """``make_fixture(seed, exam_id=..., shift_sd_mm=..., ...) -> known_lv.Fixture`` (a known LV)."""
    return known_lv.make_fixture
