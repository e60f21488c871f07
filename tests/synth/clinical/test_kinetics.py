"""Contrast kinetics helpers the perfusion renderer relies on (cmr_atlas.synth.kinetics)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.synth import kinetics as kin


@settings(max_examples=20, deadline=None)
@given(delay=st.floats(0.0, 5.0), arrival=st.floats(3.0, 12.0))
def test_delayed_moves_the_arrival(delay, arrival):
    t = np.arange(0, 60, 0.05)
    c = kin.aif_blood(t, 4.0, kin.AifShape(arrival_s=arrival))
    d = kin.delayed(t, c, delay)
    first = lambda y: t[np.argmax(y > 1e-3)]  # noqa: E731
    assert first(d) - first(c) == pytest.approx(delay, abs=0.06)
    assert d.max() == pytest.approx(c.max(), rel=1e-2)


@settings(max_examples=15, deadline=None)
@given(mbf=st.floats(0.4, 4.5), hct=st.floats(0.3, 0.5), peak=st.floats(1.0, 8.0))
def test_fft_convolution_matches_direct_sum(mbf, hct, peak):
    t = np.arange(0, 50, 0.5)
    cp = kin.plasma_from_blood(kin.aif_blood(t, peak), hct)
    p = kin.ExchangeParams(mbf)
    ct = kin.tissue_curve(t, cp, p, hct)
    dt = 0.05
    fine = np.arange(t[0], t[-1] + dt, dt)
    ca = np.interp(fine, t, cp)
    h = kin.exchange_impulse_response(fine - fine[0], p, hct)
    direct = np.array([np.trapezoid(ca[: i + 1] * h[i::-1], dx=dt) if i else 0.0 for i in range(len(fine))])
    np.testing.assert_allclose(ct, np.interp(t, fine, direct), atol=1e-3 * max(ct.max(), 1e-9))


def test_two_compartment_curve_is_not_a_scaled_fermi_response():
    """The generator's tissue response leaks back to plasma (a 2CXM with finite PS): its
    impulse response falls in two phases, unlike the Fermi function's single plateau-and-roll-off,
    so the estimator fitting Fermi meets a model it cannot represent exactly."""
    t = np.arange(0, 60, 0.1)
    h = kin.exchange_impulse_response(t, kin.ExchangeParams(2.0), 0.42)
    logh = np.log(h)
    early, late = np.polyfit(t[:6], logh[:6], 1)[0], np.polyfit(t[300:], logh[300:], 1)[0]
    assert early < 5 * late < 0  # fast then slow exponential decay
