"""One scout in, one null point out: the shipped default network, the decodings and every QC reason."""

from __future__ import annotations

import numpy as np
import pytest

from cmr_atlas.tiscout import select as SE


@pytest.fixture(scope="module")
def options():
    return SE.default_options()


def test_shipped_default_finds_the_annotated_null_within_a_frame(small_scouts, options):
    s = small_scouts
    for i in range(len(s)):
        r = SE.select_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i]), **options)
        assert r.qc_reason is None, r.qc_reason
        assert abs(r.null_frame - s.obs1[i]) <= 1
        assert r.null_ti_ms == s.ti_ms[i][r.null_frame]
        assert len(r.p_acceptable) == len(r.window_t0) == s.ti_ms.shape[1] - 3
        assert r.p_acceptable[0] < 0.5 < r.p_acceptable[-1]  # early first, acceptable late
        assert r.classical_frame is not None and abs(r.classical_frame - s.null_frame[i]) <= 1


def test_frames_stored_out_of_inversion_time_order_give_the_same_answer(small_scouts, options):
    s = small_scouts
    perm = np.random.default_rng(1).permutation(s.ti_ms.shape[1])
    a = SE.select_null(s.raw[0], s.ti_ms[0], tuple(s.spacing_mm[0]), **options)
    b = SE.select_null(s.raw[0][perm], s.ti_ms[0][perm], tuple(s.spacing_mm[0]), **options)
    assert (a.null_frame, a.null_ti_ms) == (b.null_frame, b.null_ti_ms)


def test_decodings_and_classical_are_selectable(small_scouts, options):
    s = small_scouts
    for decoding in SE.DECODINGS:
        r = SE.select_null(s.raw[0], s.ti_ms[0], tuple(s.spacing_mm[0]), **{**options, "decoding": decoding})
        assert r.null_frame is not None and decoding.split("_")[0] in r.method
    with pytest.raises(ValueError, match="decoding must be one of"):
        SE.select_null(s.raw[0], s.ti_ms[0], tuple(s.spacing_mm[0]), **{**options, "decoding": "median"})


def _bad(kind: str, frames: np.ndarray, ti: np.ndarray):
    if kind == "no InversionTime":
        return frames, [None] * len(ti)
    if kind == "duplicated":
        return frames, np.r_[ti[:10], ti[9], ti[11:]]
    if kind == "few frames":
        return frames[:6], ti[:6]
    if kind == "cine":  # cine frames (no inversion recovery) with inversion times written
        return np.repeat(frames[-1:], len(ti), axis=0) * np.linspace(0.95, 1.05, len(ti))[:, None, None], ti
    raise AssertionError(kind)


@pytest.mark.parametrize("kind, reason", [
    ("no InversionTime", "no InversionTime on 30 of 30 frames"),
    ("duplicated", "duplicated inversion times"),
    ("few frames", "only 6 frames"),
    ("cine", "no inversion recovery"),
])
def test_bad_scouts_get_a_specific_reason_and_no_null(small_scouts, options, kind, reason):
    s = small_scouts
    frames, ti = _bad(kind, s.raw[0].astype(float), s.ti_ms[0])
    r = SE.select_null(frames, ti, tuple(s.spacing_mm[0]), **options)
    assert reason in r.qc_reason and r.null_frame is None


def test_a_stray_early_acceptable_window_does_not_decide_the_change_point(small_scouts, options, monkeypatch):
    s = small_scouts
    runs = [SE.select_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i]), **options) for i in range(len(s))]
    i = int(np.argmax([r.null_frame for r in runs]))  # the latest null: most early windows to stray in
    clean = runs[i]
    assert clean.null_frame >= 5
    stray = np.array(clean.p_acceptable)
    stray[0] = 0.9  # window t0 = 2 wrongly "acceptable" (an inversion-artefact frame)
    monkeypatch.setattr(SE, "window_probabilities", lambda *a: stray)
    fa = SE.select_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i]), **{**options, "decoding": "first_acceptable"})
    cp = SE.select_null(s.raw[i], s.ti_ms[i], tuple(s.spacing_mm[i]), **options)
    assert fa.null_frame == 2 and fa.qc_reason  # the paper's rule is fooled, and says it is unsure
    assert cp.null_frame == clean.null_frame
