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
    """The 2CXM tissue response (the generator's with tissue_model="2cxm") leaks back to plasma: its
    impulse response falls in two phases, unlike the Fermi function's single plateau-and-roll-off,
    so the estimator fitting Fermi meets a model it cannot represent exactly."""
    t = np.arange(0, 60, 0.1)
    h = kin.exchange_impulse_response(t, kin.ExchangeParams(2.0), 0.42)
    logh = np.log(h)
    early, late = np.polyfit(t[:6], logh[:6], 1)[0], np.polyfit(t[300:], logh[300:], 1)[0]
    assert early < 5 * late < 0  # fast then slow exponential decay


def _bolus(t: np.ndarray, peak: float = 4.0, hct: float = 0.42) -> np.ndarray:
    return kin.plasma_from_blood(kin.aif_blood(t, peak), hct)


def _plug(t: np.ndarray, ca: np.ndarray, fp_ml_min_g: float, transit_s: float) -> np.ndarray:
    """``Fp int_{t - transit}^t Ca``: what a plug of that transit holds."""
    cum = np.concatenate([[0.0], np.cumsum(0.5 * (ca[1:] + ca[:-1]) * np.diff(t))])
    return fp_ml_min_g * kin.TISSUE_DENSITY_G_PER_ML / 60.0 * (cum - np.interp(t - transit_s, t, cum, left=0.0))


def _segment_chain(t: np.ndarray, ca: np.ndarray, fp_ml_min_g: float, ps_ml_min_g: float, vp: float, ve: float,
                   n: int) -> np.ndarray:
    """Independent solution: the capillary as ``n`` well-mixed plasma segments in series, each
    exchanging PS / n with its own interstitial segment (n = 1: the 2CXM), stepped exactly
    (matrix exponential, input linear between samples: first-order hold)."""
    from scipy.linalg import expm

    fp, ps = (x * kin.TISSUE_DENSITY_G_PER_ML / 60.0 for x in (fp_ml_min_g, ps_ml_min_g))
    a = np.zeros((2 * n + 2, 2 * n + 2))  # states: Cp_1..n, Ce_1..n, then the input and its slope
    for i in range(n):
        a[i, i] = -(fp + ps / n) / (vp / n)
        a[i, i - 1 if i else 2 * n] = fp / (vp / n)
        a[i, n + i] = (ps / n) / (vp / n)
        a[n + i, i], a[n + i, n + i] = ps / ve, -ps / ve
    a[2 * n, 2 * n + 1] = 1.0
    dt = t[1] - t[0]
    step = expm(a * dt)
    x, out = np.zeros(2 * n + 2), np.zeros(len(t))
    weights = np.concatenate([np.full(n, vp / n), np.full(n, ve / n)])
    for j in range(len(t) - 1):
        x[2 * n], x[2 * n + 1] = ca[j], (ca[j + 1] - ca[j]) / dt
        x = step @ x
        out[j + 1] = weights @ x[: 2 * n]
    return out


def test_distributed_model_converges_to_a_finely_segmented_capillary():
    """The analytic (Bessel) solution against n well-mixed segments with exchange: the error
    shrinks as n grows, and n = 1 is the 2CXM the generator also offers."""
    t = np.arange(0, 60, 0.05)
    ca = _bolus(t)
    fp, ps, vp, ve = 2.0 * 0.58, 1.5, 0.06, 0.2
    dp = kin.distributed_parameter_curve(t, ca, fp, ps, vp, ve, dt_s=0.01)
    err = {n: np.abs(_segment_chain(t, ca, fp, ps, vp, ve, n) - dp).max() / dp.max() for n in (1, 10, 100)}
    assert err[100] < 0.01 < err[10] < err[1]
    params = kin.ExchangeParams(2.0, ps, vp, ve)
    np.testing.assert_allclose(_segment_chain(t, ca, fp, ps, vp, ve, 1), kin.tissue_curve(t, ca, params, 0.42),
                               atol=2e-3 * dp.max())


@settings(max_examples=25, deadline=None)
@given(fp=st.floats(0.2, 3.0), ps=st.floats(0.3, 4.0), vp=st.floats(0.02, 0.1), ve=st.floats(0.05, 0.4))
def test_distributed_model_conserves_the_agent(fp, ps, vp, ve):
    """Area under the tissue curve = (vp + ve) x area under the input (central volume principle:
    every molecule stays for the mean transit of its volume of distribution), and the tissue
    never goes negative.  (PS >= 0.3: the washout, ve / (E Fp), ends within the window.)"""
    t = np.arange(0, 3000, 0.05)
    ca = kin.gamma_variate(t, 5.0, 3.0, 1.2)
    ct = kin.distributed_parameter_curve(t, ca, fp, ps, vp, ve)
    volume = vp + ve
    assert np.trapezoid(ct, t) == pytest.approx(volume * np.trapezoid(ca, t), rel=1e-3)
    assert ct.min() > -1e-9 * ct.max()


def test_distributed_model_limits():
    """PS -> 0: intravascular plug (vp / Fp); PS -> infinity: a plug through vp + ve."""
    t = np.arange(0, 90, 0.02)
    ca = _bolus(t)
    fp, vp, ve = 1.2, 0.05, 0.2
    fps = fp * kin.TISSUE_DENSITY_G_PER_ML / 60.0
    no_exchange = kin.distributed_parameter_curve(t, ca, fp, 0.0, vp, ve, dt_s=0.02)
    np.testing.assert_allclose(no_exchange, _plug(t, ca, fp, vp / fps), atol=1e-3 * no_exchange.max())
    free = kin.distributed_parameter_curve(t, ca, fp, 1e4 * fp, vp, ve, dt_s=0.02)
    np.testing.assert_allclose(free, _plug(t, ca, fp, (vp + ve) / fps), atol=0.03 * free.max())


@settings(max_examples=20, deadline=None)
@given(fp=st.floats(0.3, 3.0), ps=st.floats(0.1, 4.0))
def test_distributed_model_extracts_one_minus_exp_minus_ps_over_fp(fp, ps):
    """A short bolus: once it has crossed the capillary the tissue keeps E = 1 - exp(-PS / Fp) of
    it (back-diffusion is slow with a large interstitium)."""
    t = np.arange(0, 20, 0.005)
    ca = kin.gamma_variate(t, 0.5, 3.0, 0.03)
    vp, ve = 0.05, 5.0
    ct = kin.distributed_parameter_curve(t, ca, fp, ps, vp, ve, dt_s=0.005)
    fps = fp * kin.TISSUE_DENSITY_G_PER_ML / 60.0
    after = np.searchsorted(t, 0.5 + 0.5 + vp / fps)  # bolus over (~0.3 s) and one transit later
    kept = ct[after] / (fps * np.trapezoid(ca, t))
    assert kept == pytest.approx(1 - np.exp(-ps / fp), abs=0.02)


def test_models_share_the_draws():
    """Both tissue models take the 2CXM's parameters; the distributed one is a different curve."""
    t = np.arange(0, 60, 0.05)
    ca, p = _bolus(t), kin.ExchangeParams(2.0, 1.5, 0.06, 0.2)
    dp, cx = (kin.TISSUE_MODELS[m](t, ca, p, 0.42) for m in ("distributed", "2cxm"))
    np.testing.assert_allclose(dp, kin.distributed_parameter_curve(t, ca, 2.0 * 0.58, 1.5, 0.06, 0.2), atol=1e-12)
    assert np.abs(dp - cx).max() > 0.1 * cx.max()
