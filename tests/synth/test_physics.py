"""MR signal and contrast-kinetics models of the clinical generator (cmr_atlas.synth.physics, .kinetics)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.synth import kinetics as kin
from cmr_atlas.synth import physics as ph

t1s = st.floats(200.0, 2500.0)
t2s = st.floats(20.0, 300.0)


@settings(max_examples=60, deadline=None)
@given(t1=t1s, t2=t2s, flip=st.floats(10.0, 80.0), tr=st.floats(2.5, 4.5))
def test_bssfp_fixed_point_matches_closed_form_on_resonance(t1, t2, flip, tr):
    t2 = min(t2, t1)
    a = ph.bssfp_signal(t1, t2, 1.0, flip, tr)
    b = ph.bssfp_signal_on_resonance(t1, t2, 1.0, flip, tr)
    assert a == pytest.approx(b, rel=1e-9)


def test_bssfp_bands_at_half_the_inverse_tr():
    r = ph.relaxation(3.0, "blood")
    tr = 3.2
    df = np.linspace(0, 1000.0 / tr, 201)
    s = ph.bssfp_signal(r.t1_ms, r.t2_ms, 1.0, 50, tr, df)
    band = df[np.argmin(s)]
    assert band == pytest.approx(500.0 / tr, abs=1000.0 / tr / 200 + 1e-9)
    assert s.min() < 0.1 * s.max()


def test_bssfp_contrast_bright_blood_dark_myocardium():
    for field in ph.FIELD_STRENGTHS_T:
        sig = {t: ph.bssfp_signal(r.t1_ms, r.t2_ms, r.pd, 60, 3.0) for t, r in ph.RELAXATION[field].items()}
        assert sig["blood"] > 2.5 * sig["myocardium"]
        assert sig["fat"] > sig["myocardium"]
        assert sig["lung"] < 0.5 * sig["myocardium"]


def test_spoiled_gre_matches_bloch_steady_state():
    # perfectly spoiled: Mz after n pulses converges to (1-E1)/(1-E1 cos a)
    t1, tr, a = 900.0, 5.0, np.radians(20)
    e1, mz = np.exp(-tr / t1), 1.0
    for _ in range(5000):
        mz = mz * np.cos(a) * e1 + (1 - e1)
    assert ph.spoiled_gre_signal(t1, 1e9, 1.0, 20, tr, 0.0) == pytest.approx(mz * np.sin(a), rel=1e-9)


@settings(max_examples=40, deadline=None)
@given(t1=t1s, flip=st.floats(5.0, 15.0), tr=st.floats(20.0, 400.0), eff=st.floats(0.8, 1.0))
def test_look_locker_null_is_a_zero(t1, flip, tr, eff):
    ti0 = ph.look_locker_null_ms(t1, flip, tr, eff)
    assert ph.look_locker_signal(ti0, t1, 1.0, flip, tr, eff) == pytest.approx(0.0, abs=1e-9)
    # magnitude: falls to the null, rises after it
    before, after = ph.look_locker_signal([0.5 * ti0, 2 * ti0], t1, 1.0, flip, tr, eff)
    assert before > 0 and after > 0


def test_look_locker_null_near_069_t1_without_readout_effect():
    # ideal inversion, negligible readout: null at T1 ln 2
    assert ph.look_locker_null_ms(450.0, 0.1, 1000.0, 1.0) == pytest.approx(450.0 * np.log(2), rel=1e-4)


def test_saturation_recovery_is_monotonic_and_saturates_with_concentration():
    conc = np.linspace(0, 8, 81)
    r1 = ph.r1_with_contrast(1550.0, conc, 1.5)
    s = ph.saturation_recovery_signal(r1, 1.0, 120.0, 12.0, 2.5, n_before_centre=20)
    assert np.all(np.diff(s) > 0)
    slope_low = (s[1] - s[0]) / (conc[1] - conc[0])
    slope_high = (s[-1] - s[-2]) / (conc[-1] - conc[-2])
    assert slope_high < 0.5 * slope_low  # the non-linearity the estimator must invert


def test_relaxation_rejects_unknown_inputs():
    with pytest.raises(ValueError, match="field strength"):
        ph.relaxation(7.0, "blood")
    with pytest.raises(ValueError, match="unknown tissue"):
        ph.relaxation(1.5, "spleen")


def test_aif_peak_and_recirculation():
    t = np.arange(0, 70, 0.25)
    cb = kin.aif_blood(t, 4.4)
    assert cb.max() == pytest.approx(4.4)
    i = int(np.argmax(cb))
    assert cb[:int(7.9 / 0.25)].max() == 0.0  # nothing before arrival
    tail = cb[i + 60:]  # a recirculation bump after the first pass
    assert np.any(np.diff(tail) > 0)
    assert kin.plasma_from_blood(1.0, 0.42) == pytest.approx(1 / 0.58)
    with pytest.raises(ValueError):
        kin.plasma_from_blood(1.0, 1.2)


@settings(max_examples=25, deadline=None)
@given(mbf=st.floats(0.3, 5.0), ps=st.floats(0.3, 3.0), vp=st.floats(0.02, 0.12), ve=st.floats(0.1, 0.35),
       hct=st.floats(0.3, 0.5))
def test_exchange_model_limits(mbf, ps, vp, ve, hct):
    p = kin.ExchangeParams(mbf, ps, vp, ve)
    # step input: tissue fills to the extracellular volume (vp + ve) and starts at slope Fp
    t = np.arange(0, 2500.0, 1.0)
    ct = kin.tissue_curve(t, np.ones_like(t), p, hct)
    assert ct[-1] == pytest.approx(vp + ve, rel=2e-3)
    h = kin.exchange_impulse_response(np.array([0.0]), p, hct)
    assert h[0] == pytest.approx(p.plasma_flow_per_s(hct), rel=1e-9)


def test_tissue_curve_grows_with_flow():
    t = np.arange(0, 60, 0.8)
    cp = kin.plasma_from_blood(kin.aif_blood(t, 3.5), 0.42)
    peaks = [kin.tissue_curve(t, cp, kin.ExchangeParams(f), 0.42).max() for f in (0.5, 1.0, 2.25, 4.0)]
    assert np.all(np.diff(peaks) > 0)
