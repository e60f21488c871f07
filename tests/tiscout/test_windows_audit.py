"""The STEMI-Net window formulation, its decodings, and the LGE inversion-time audit."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cmr_atlas.core.config import default
from cmr_atlas.tiscout import audit, windows as W

AUDIT = default("tiscout.audit")
DRIFT = {"washout_per_min": AUDIT["washout_per_min"], "scout_to_lge": 1.0}
TOL = {"tolerance_ms": AUDIT["tolerance_ms"], "tolerance_fraction": AUDIT["tolerance_fraction"]}


def _scout(n: int = 30) -> tuple[np.ndarray, np.ndarray]:
    frames = np.arange(n, dtype=float)[:, None, None] * np.ones((n, 4, 5))
    return frames, np.linspace(90.0, 1300.0, n)


def test_windows_are_four_consecutive_frames_labelled_by_the_third():
    frames, _ = _scout(12)
    w = W.windows(frames)
    t0 = W.window_t0(12)
    assert w.shape == (len(t0), 4, 4, 5)
    for i, t in enumerate(t0):
        assert list(w[i, :, 0, 0]) == [t - 2, t - 1, t, t + 1]
    labels = W.window_labels(12, null_frame=6)
    assert list(labels) == [int(t >= 6) for t in t0]


def test_order_scout_sorts_by_inversion_time_and_keeps_the_mapping():
    frames, ti = _scout(10)
    perm = np.random.default_rng(0).permutation(10)
    s = W.order_scout(frames[perm], ti[perm])
    assert np.all(np.diff(s.ti_ms) > 0)
    np.testing.assert_array_equal(s.frames[:, 0, 0], np.arange(10))
    np.testing.assert_array_equal(perm[s.order], np.arange(10))


@pytest.mark.parametrize("mutate, reason", [
    (lambda f, t: (f, [None] * len(t)), "no InversionTime"),
    (lambda f, t: (f[:5], t[:5]), "only 5 frames"),
    (lambda f, t: (f, np.r_[t[:-1], t[3]]), "duplicated inversion times"),
    (lambda f, t: (f, np.linspace(100, 150, len(t))), "not a TI scout"),
    (lambda f, t: (f[:, 0], t), "must be"),
    (lambda f, t: (f, t[:-1]), "inversion times"),
])
def test_bad_scouts_have_specific_reasons(mutate, reason):
    frames, ti = _scout(12)
    with pytest.raises(W.ScoutError, match=reason):
        W.order_scout(*mutate(frames, ti))


def test_first_acceptable_and_change_point_agree_on_clean_probabilities():
    p = np.array([0.01, 0.02, 0.05, 0.1, 0.9, 0.95, 0.99, 0.99])
    assert W.first_acceptable(p) == 4 + W.T0_OFFSET
    frame, conf = W.change_point(p)
    assert frame == 4 + W.T0_OFFSET and conf > 0.75  # neighbours at p = 0.1 and 0.9 keep some weight


def test_change_point_ignores_a_stray_early_acceptable():
    p = np.array([0.02, 0.7, 0.05, 0.04, 0.1, 0.92, 0.97, 0.99, 0.99])
    assert W.first_acceptable(p) == 1 + W.T0_OFFSET  # the paper's rule is fooled
    assert W.change_point(p)[0] == 5 + W.T0_OFFSET


def test_no_acceptable_window_gives_none():
    p = np.full(10, 0.02)
    assert W.first_acceptable(p) is None
    assert W.change_point(p)[0] is None


@settings(max_examples=40, deadline=None)
@given(n=st.integers(8, 40), k=st.integers(0, 40), noise=st.floats(0.0, 0.3), seed=st.integers(0, 99))
def test_change_point_recovers_the_labels_it_was_given(n, k, noise, seed):
    n_windows = len(W.window_t0(n))
    k = min(k, n_windows - 1)
    rng = np.random.default_rng(seed)
    p = np.where(np.arange(n_windows) >= k, 0.95, 0.05) + rng.uniform(-noise, noise, n_windows)
    p = np.clip(p, 0.0, 1.0)
    if noise < 0.4:  # separations never cross 0.5, so the change is identifiable
        assert W.change_point(p)[0] == k + W.T0_OFFSET


def test_null_ti_drifts_up_after_the_scout():
    ti0 = 300.0
    later = audit.expected_lge_null_ms(ti0, [0.0, 5.0, 15.0], 1.5, **DRIFT)
    assert later[0] == pytest.approx(ti0)
    assert np.all(np.diff(later) > 0)
    assert 3.0 <= later[1] - ti0 <= 25.0  # a few ms per minute


@pytest.mark.parametrize("lge, expected, verdict", [
    (300.0, 305.0, "ok"), (250.0, 305.0, "too_short"), (380.0, 305.0, "too_long"),
    (None, 305.0, "no_reliable_null"), (300.0, float("nan"), "no_reliable_null"),
])
def test_verdicts(lge, expected, verdict):
    assert audit.ti_verdict(lge, expected, **TOL) == verdict
    assert verdict in audit.VERDICTS


def test_unknown_field_strength_is_a_specific_error():
    with pytest.raises(ValueError, match="field strength 7.0 T"):
        audit.expected_lge_null_ms(300.0, 5.0, 7.0, **DRIFT)


def test_null_confidence_counts_the_neighbouring_change_points():
    clear = np.array([0.01, 0.02, 0.03, 0.99, 0.99, 0.99, 0.99])
    open_ = np.array([0.3, 0.5, 0.5, 0.5, 0.5, 0.6, 0.7])
    assert W.null_confidence(clear, W.change_point(clear)[0]) > 0.95
    assert W.null_confidence(open_, W.change_point(open_)[0]) < 0.6
    assert W.null_confidence(clear, None) == 0.0
    assert W.change_point_shares(open_).sum() == pytest.approx(1.0)


@settings(max_examples=30, deadline=None)
@given(scout=st.floats(200.0, 400.0), minutes=st.floats(0.0, 20.0), factor=st.floats(1.0, 1.5),
       field=st.sampled_from([1.5, 3.0]))
def test_readout_factor_calibration_inverts_the_expected_null(scout, minutes, factor, field):
    lge = audit.expected_lge_null_ms(scout, minutes, field, AUDIT["washout_per_min"], factor)
    back = audit.scout_to_lge_factor(scout, lge, minutes, field, AUDIT["washout_per_min"])
    assert float(back[0]) == pytest.approx(factor, rel=1e-9)
    assert lge >= factor * scout - 1e-9  # the null only drifts later after contrast
