"""Respiratory motion correction across heartbeats (cmr_atlas.perfusion.motion)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from cmr_atlas.perfusion import motion as M
from cmr_atlas.perfusion import prepare


def phantom_series(shifts_px: np.ndarray, n_pd: int = 2, shape=(80, 96), seed=0) -> np.ndarray:
    """A static chest wall, RV and LV blood pools and a myocardial ring whose brightness follow
    their own bolus curves, the heart moved by ``shifts_px`` per frame, with noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(len(shifts_px) - n_pd, dtype=float)
    bolus = lambda t0, w: np.exp(-0.5 * ((t - t0) / w) ** 2)  # noqa: E731
    rr, cc = np.mgrid[: shape[0], : shape[1]].astype(float)
    lv = np.hypot(rr - 40, cc - 50) < 9
    myo = (np.hypot(rr - 40, cc - 50) < 14) & ~lv
    rv = (np.hypot(rr - 38, cc - 30) < 10) & ~myo & ~lv
    wall = (rr > 70).astype(float)
    frames = []
    for k, s in enumerate(shifts_px):
        if k < n_pd:
            heart = 3.0 * (lv | rv) + 2.5 * myo
        else:
            j = k - n_pd
            heart = 0.3 + 0.2 * (lv | rv) + 4 * bolus(12, 2)[j] * rv + 4 * bolus(16, 2.5)[j] * lv + (0.3 + bolus(20, 4)[j]) * myo
        moved = ndimage.shift(np.asarray(heart, float), s, order=1)
        frames.append(moved + wall + rng.normal(0, 0.05, shape))
    return np.stack(frames)


def test_recovers_known_shifts_through_the_contrast_change():
    """Breath-hold for the first beats, then breathing (3 px = 6 mm in rows, 1 px in columns) while
    the RV, LV and myocardium enhance one after the other."""
    rng = np.random.default_rng(3)
    shifts = np.c_[3.0 * np.sin(np.arange(50) / 1.7), 1.0 * np.cos(np.arange(50) / 2.3)] + rng.normal(0, 0.2, (50, 2))
    shifts[:10] = shifts[10]
    frames = phantom_series(shifts)
    mc = M.correct_series(frames, 2, 2.0)
    truth = shifts - np.median(shifts[2:], axis=0)
    err = np.linalg.norm(mc.shifts_px[2:] - truth[2:], axis=1)
    before = np.linalg.norm(truth[2:], axis=1)
    # measured 2026-12-02: mean 1.87 px before, 1.46 px after; a sign error or no
    # correction leaves it at or above the motion itself
    assert err.mean() < 0.85 * before.mean()
    assert np.abs(mc.frames.shape[0] - frames.shape[0]) == 0 and mc.shifts_px.shape == (50, 2)


def test_reduces_the_generators_breathing_motion(perfusion_exam):
    """Residual in-plane motion of the true LV centre, dynamic frames, every slice of one exam."""
    lm = perfusion_exam.truth["landmarks"]
    lm = lm[(lm.observer == "truth") & (lm.landmark == "lv_centre") & (lm.frame >= 0)]  # acquired frames
    before, after = [], []
    for p in prepare.prepare_exam(perfusion_exam.series):
        for k in range(len(p.order)):
            si = sorted(set(lm.slice_index))[k]
            rc = lm[(lm.condition == p.condition) & (lm.slice_index == si)].sort_values("frame")[["row_px", "col_px"]].to_numpy()
            if len(rc) != len(p.frames(k)):
                continue  # the slice lost the LV in some frames
            px = float(np.mean(p.series.planes[0].pixel_spacing_mm))
            mc = M.correct_series(p.frames(k), p.n_pd, px)
            d = rc[p.n_pd:] - np.median(rc[p.n_pd:], axis=0)
            r = d - mc.shifts_px[p.n_pd:]
            before.append(np.linalg.norm(d, axis=1).mean() * px)
            after.append(np.linalg.norm(r - np.median(r, axis=0), axis=1).mean() * px)
    assert len(before) >= 4
    # 4 exams of seed 777 (24 slices), 2026-12-02: 1.71 -> 1.14 mm mean
    assert np.mean(after) < 0.9 * np.mean(before)
