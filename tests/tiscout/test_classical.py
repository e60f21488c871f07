"""The classical magnitude inversion-recovery baseline."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.tiscout import classical as CL


@settings(max_examples=30, deadline=None)
@given(t1=st.floats(300.0, 700.0), eff=st.floats(0.85, 0.99), m0=st.floats(0.7, 1.0), seed=st.integers(0, 99))
def test_fit_recovers_the_null_of_a_look_locker_curve(t1, eff, m0, seed):
    # generated as the scanner model does (apparent T1*, incomplete recovery m0, inversion
    # efficiency), not as the fit's (A, B, T1*) parametrisation, plus Rician-like magnitude noise
    ti = np.linspace(95.0, 1290.0, 30)
    t1s = 1.0 / (1.0 / t1 + 0.0004)
    a = t1s / t1
    mz = a - (a + eff * m0) * np.exp(-ti / t1s)
    rng = np.random.default_rng(seed)
    y = np.abs(mz + rng.normal(0, 0.005, 30) + 1j * rng.normal(0, 0.005, 30))
    fa, fb, ft1s, _ = CL.fit_magnitude_ir(ti, y)
    true_null = t1s * np.log((a + eff * m0) / a)
    assert abs(ft1s * np.log(fb / fa) - true_null) < 12.0


def test_classical_null_on_generated_scouts_is_near_the_physical_null(small_scouts):
    s = small_scouts
    for i in range(len(s)):
        fit = CL.classical_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i]))
        assert fit.qc_reason is None and fit.n_pixels >= 10
        assert abs(fit.null_frame - s.null_frame[i]) <= 1
        assert abs(fit.null_ti_ms - s.null_ti_ms[i]) < 60.0


def test_no_blood_pool_is_a_reason_not_a_crash():
    frames = np.random.default_rng(0).normal(100, 1, (30, 64, 64))
    fit = CL.classical_null(frames, np.linspace(90, 1300, 30), (2.5, 2.5))
    assert fit.null_frame is None and fit.qc_reason
