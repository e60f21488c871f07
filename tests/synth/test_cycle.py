"""The generator's cardiac cycle (anatomy.activation_curve) against published volume-curve features
(sources in the comment above ``activation_curve``) and the per-frame truth table ``volumes``."""

import numpy as np
import pytest

from cmr_atlas.synth import anatomy as an

EF = 0.62


def _features(heart_rate: float) -> dict[str, float]:
    rr = 60.0 / heart_rate
    es = float(np.clip(0.33 / np.sqrt(rr), 0.25, 0.48))
    t = np.linspace(0.0, 1.0, 40001)
    v = 1.0 - EF * an.activation_curve(t, es)  # volume in EDV units
    rate = np.gradient(v, t * rr)  # EDV/s
    dia = t > es
    i_e = np.argmax(np.where(dia & (t < es + 0.6 * (1 - es)), rate, -np.inf))
    late = t > 1.0 - 0.3 * (1 - es)
    i_a = np.argmax(np.where(late, rate, -np.inf))
    slow = dia & (np.abs(rate) < 0.25 * rate[i_e]) & (t > t[i_e]) & (t < t[i_a])
    return {"per": -rate.min(), "pfr": rate[i_e], "par": rate[i_a], "ea": rate[i_e] / rate[i_a],
            "tpf_ms": (t[i_e] - es) * rr * 1000, "diastasis_ms": slow.sum() * (t[1] - t[0]) * rr * 1000,
            "es_argmin": abs(t[np.argmin(v)] - es) < 1e-3}


@pytest.mark.parametrize("hr", [50, 60, 70, 80, 90])
def test_cycle_within_published_ranges(hr):
    f = _features(hr)
    assert 2.5 <= f["per"] <= 3.8  # EDV/s
    assert 2.3 <= f["pfr"] <= 3.9  # Bonow 1981: 3.3 +- 0.6, lower with age
    assert 1.0 <= f["ea"] <= 1.5  # Nagueh 2009 by age: 1.28 +- 0.25 (41-60), 0.96 +- 0.18 (> 60)
    assert 85 <= f["tpf_ms"] <= 180  # Bonow 1981: 136 +- 23 ms (with isovolumic relaxation)
    assert f["es_argmin"]


def test_diastasis_shrinks_with_heart_rate():
    d = [_features(hr)["diastasis_ms"] for hr in (50, 65, 90)]
    assert d[0] > 200 and d[0] > d[1] > d[2]
    assert d[2] < 100  # E and A nearly fused: a trough, no plateau


def test_curve_is_a_cycle():
    for es in (0.25, 0.33, 0.48):
        t = np.linspace(0, 1, 2001)
        w = an.activation_curve(t, es)
        assert w[0] == pytest.approx(0.0, abs=1e-12) and w[-1] == pytest.approx(0.0, abs=1e-9)
        assert w.max() == pytest.approx(1.0) and np.all((w >= -1e-12) & (w <= 1 + 1e-12))
        # monotone: rising in systole, falling in diastole
        assert np.all(np.diff(w[t <= es]) >= -1e-12) and np.all(np.diff(w[t >= es]) <= 1e-12)


def test_truth_volumes_every_frame():
    from cmr_atlas.synth import truth as T
    from cmr_atlas.synth.mesa import cohort

    ex = cohort.generate_exam(5, 0)
    vol = ex.truth["volumes"]
    assert list(vol.columns) == T.VOLUMES.column_names
    assert len(vol) == ex.acq.n_frames and (vol["frame"].to_numpy() == np.arange(ex.acq.n_frames)).all()
    exams = ex.truth["exams"].iloc[0]
    ed = vol[vol["phase"] == "ED"].iloc[0]
    es = vol[vol["phase"] == "ES"].iloc[0]
    assert ed["volume_ml"] == pytest.approx(exams["edv_ml"]) and es["volume_ml"] == pytest.approx(exams["esv_ml"])
    assert vol["volume_ml"].max() == pytest.approx(exams["edv_ml"])
    assert vol["volume_ml"].min() == pytest.approx(exams["esv_ml"])
    assert (np.diff(vol["time_ms"]) > 0).all()
